//! `classy-sync alerts list|ack|silence|rules|history|evaluate`.

use crate::output::{opt, print_json, table};
use crate::runtime;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use classy_sync_core::domain::alerts::{default_rules, parse_rules, AlertStatus, Rule};
use classy_sync_core::domain::Timestamp;
use classy_sync_core::engine::alerts::Alerts;
use classy_sync_core::ports::Notifier;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// Firing alerts (--all: resolved ones too).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a firing alert: no more reminders (it still resolves).
    Ack {
        /// The alert id (or its first characters) from `alerts list`.
        id: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Notify nothing for matching alerts for a while.
    Silence {
        /// An alert id, a rule id (e.g. data-stale), or `org <id>`.
        matcher: String,
        /// How long: 90m, 2h, 1d, or seconds.
        #[arg(long = "for")]
        duration: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The rules in force (defaults, or CLASSY_SYNC_ALERT_RULES / <data-dir>/alert-rules.json).
    Rules {
        #[arg(long)]
        json: bool,
    },
    /// Alert history (90 days), newest first.
    History {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Check health now and apply the rules (fire, repeat, resolve, notify).
    Evaluate {
        #[arg(long)]
        json: bool,
    },
}

/// Rules from the file CLASSY_SYNC_ALERT_RULES names, else `<data-dir>/alert-rules.json`,
/// else the defaults.
pub fn load_rules(data_dir: &std::path::Path) -> Result<Vec<Rule>> {
    let path = match std::env::var_os("CLASSY_SYNC_ALERT_RULES") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = data_dir.join("alert-rules.json");
            if !p.exists() {
                return Ok(default_rules());
            }
            p
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read alert rules {}", path.display()))?;
    parse_rules(&text).with_context(|| format!("in {}", path.display()))
}

/// `90m`, `2h`, `1d`, `45s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('h') => (&s[..s.len() - 1], 3600),
        Some('d') => (&s[..s.len() - 1], 86_400),
        _ => (s, 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n * mult)),
        _ => bail!("--for {s:?}: expected a positive duration like 90m, 2h, 1d"),
    }
}

pub async fn run(target: &runtime::Target, cmd: AlertsCommand) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let rules = load_rules(&target.data_dir)?;
    let alerts = Alerts::new(
        root.data(),
        Arc::new(root.notifier()?) as Arc<dyn Notifier>,
        rules.clone(),
    );
    match cmd {
        AlertsCommand::List { all, json } => {
            let mut states = alerts.states().await?;
            states.retain(|s| all || s.status == AlertStatus::Firing);
            states.sort_by_key(|s| (s.severity, s.started_at));
            if json {
                print_json(&states)?;
                return Ok(ExitCode::SUCCESS);
            }
            if states.is_empty() {
                println!("no {}alerts", if all { "" } else { "firing " });
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table(&[
                "id", "severity", "rule", "subject", "status", "since", "acked", "summary",
            ]);
            for s in &states {
                t.add_row(vec![
                    s.fingerprint.clone(),
                    s.severity.as_str().into(),
                    s.rule.clone(),
                    s.subject.clone(),
                    format!("{:?}", s.status).to_lowercase(),
                    Timestamp::from_unix(s.started_at).to_rfc3339(),
                    opt(&s.acked_by),
                    s.summary.clone(),
                ]);
            }
            println!("{t}");
        }
        AlertsCommand::Ack { id, by } => {
            let before = alerts.states().await.ok().and_then(|states| {
                let mut found = states
                    .into_iter()
                    .filter(|s| s.fingerprint.starts_with(&id));
                found.next().filter(|_| found.next().is_none())
            });
            let acked = alerts.ack(&id, &by).await;
            let mut audited =
                crate::audit::Audited::new(&root, "alerts ack", format!("alert {id}"))
                    .before(before.as_ref().and_then(crate::audit::state));
            if let Some(org) = before.as_ref().and_then(|s| s.org) {
                audited = audited.org(org);
            }
            let s = audited.finish(acked, crate::audit::state).await?;
            println!("acknowledged {} ({}: {})", s.fingerprint, s.rule, s.subject);
        }
        AlertsCommand::Silence {
            matcher,
            duration,
            reason,
        } => {
            let d = parse_duration(&duration)?;
            let silenced = alerts.silence(&matcher, d.as_secs(), reason).await;
            let s =
                crate::audit::Audited::new(&root, "alerts silence", format!("silence {matcher}"))
                    .finish(silenced, crate::audit::state)
                    .await?;
            println!(
                "silenced {:?} until {} (silence {})",
                s.matcher,
                Timestamp::from_unix(s.until).to_rfc3339(),
                s.id
            );
        }
        AlertsCommand::Rules { json } => {
            if json {
                print_json(&rules)?;
            } else {
                let mut t = table(&["id", "kind", "severity", "channels", "repeat", "enabled"]);
                for r in &rules {
                    t.add_row(vec![
                        r.id.clone(),
                        format!("{:?}", r.kind),
                        r.severity.as_str().into(),
                        r.channels.join(", "),
                        if r.repeat_secs == 0 {
                            "never".into()
                        } else {
                            format!("{} s", r.repeat_secs)
                        },
                        r.enabled.to_string(),
                    ]);
                }
                println!("{t}");
            }
        }
        AlertsCommand::History { limit, json } => {
            let h = alerts.history(limit).await?;
            if json {
                print_json(&h)?;
            } else {
                let mut t = table(&["time", "what", "rule", "subject", "id", "summary"]);
                for e in &h {
                    t.add_row(vec![
                        Timestamp::from_unix(e.at).to_rfc3339(),
                        e.what.clone(),
                        e.rule.clone(),
                        e.subject.clone(),
                        e.fingerprint.clone(),
                        e.summary.clone(),
                    ]);
                }
                println!("{t}");
            }
        }
        AlertsCommand::Evaluate { json } => {
            let m = super::health::monitor(&root, Duration::from_secs(10))?;
            let (report, _, _) = m.run_and_record().await?;
            let eval = alerts.evaluate(&report).await?;
            if json {
                print_json(&eval)?;
            } else {
                println!(
                    "health {}; {} alert(s) firing; {} notification(s) sent{}",
                    report.status,
                    eval.firing,
                    eval.messages.len(),
                    if eval.failed_deliveries > 0 {
                        format!(", {} delivery(ies) failed", eval.failed_deliveries)
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How often `classy-sync run` checks health and applies the alert rules.
pub const WATCHDOG_EVERY: Duration = Duration::from_secs(300);

/// The local counterpart of the `health-check` and `alert` functions, run beside the
/// scheduler: every 5 minutes, record health and apply the rules. Errors are reported and the
/// next round tries again.
pub async fn spawn_watchdog(
    root: &runtime::Root,
    target: &runtime::Target,
) -> Result<tokio::task::JoinHandle<()>> {
    let rules = load_rules(&target.data_dir)?;
    let notifier: Arc<dyn Notifier> = Arc::new(root.notifier()?);
    let alerts = Alerts::new(root.data(), notifier, rules);
    let monitor = root.health()?;
    Ok(tokio::spawn(async move {
        loop {
            match monitor.run_and_record().await {
                Ok((report, _, _)) => {
                    if let Err(e) = alerts.evaluate(&report).await {
                        eprintln!("alert evaluation failed: {e}");
                    }
                }
                Err(e) => eprintln!("health check failed: {e}"),
            }
            tokio::time::sleep(WATCHDOG_EVERY).await;
        }
    }))
}
