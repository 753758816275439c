//! `classy-sync report add|list|remove|preview|send|send-due`: scheduled reports. Preview
//! renders without sending; send goes through the notification channels (email by SMTP
//! locally or SES on AWS, Slack webhooks).

use crate::runtime;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use classy_sync_core::domain::report::{
    self as report, Recipients, ReportDefinition, ReportScope, Section,
};
use classy_sync_core::domain::Timestamp;
use classy_sync_core::engine::reports;
use classy_sync_core::ports::DeliveryStatus;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Define a scheduled report.
    Add(AddArgs),
    /// List report definitions with their next run.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a report definition (and the email channel it owns).
    Remove { id: String },
    /// Render a report of an organization (or `all`) without sending it.
    Preview(PreviewArgs),
    /// Send now every report defined for an organization (or `all`), or one with --report.
    Send(SendArgs),
    /// Send the reports whose scheduled time has come and that were not sent yet.
    SendDue {
        /// Only this report.
        #[arg(long)]
        report: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// 1-48 lowercase letters, digits, '-' or '_'.
    pub id: String,
    /// An organization id, or `all`.
    #[arg(long)]
    pub org: String,
    /// A ready-made report: `weekly` (Mondays 08:00, the last 7 days, with the FEP figures).
    /// --sections, --period and --schedule override its own.
    #[arg(long)]
    pub preset: Option<String>,
    /// Comma-separated: headline, donors, campaigns, recurring, trends, prospects, at_risk,
    /// quality, fep (default: the preset's, else all).
    #[arg(long)]
    pub sections: Option<String>,
    /// Analytics period: 7d, 30d, 12m, ytd, ... (default: the preset's, else 7d).
    #[arg(long)]
    pub period: Option<String>,
    /// Cron (5 fields: min hour day month weekday), read in --timezone (required without
    /// --preset).
    #[arg(long)]
    pub schedule: Option<String>,
    /// IANA time zone.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// Email recipient (repeatable).
    #[arg(long = "email")]
    pub emails: Vec<String>,
    /// Name of a Slack notification channel (`notify` channels; repeatable).
    #[arg(long = "slack")]
    pub slack: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum PreviewFormat {
    Html,
    Text,
    Slack,
}

#[derive(Args, Debug)]
pub struct PreviewArgs {
    /// An organization id, or `all`.
    pub org: String,
    #[arg(long, value_enum, default_value_t = PreviewFormat::Html)]
    pub format: PreviewFormat,
    /// Write here (the file appears only once complete) instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[arg(long, default_value = "30d")]
    pub period: String,
    /// Comma-separated sections (default: all).
    #[arg(long)]
    pub sections: Option<String>,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// An organization id, or `all`.
    pub org: String,
    /// Only this report definition.
    #[arg(long)]
    pub report: Option<String>,
}

fn parse_sections(raw: Option<&str>) -> Result<Vec<Section>> {
    match raw {
        None => Ok(Section::ALL.to_vec()),
        Some(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.parse::<Section>()
                    .map_err(|e| anyhow::anyhow!("--sections: {e}"))
            })
            .collect(),
    }
}

fn parse_scope(raw: &str) -> Result<ReportScope> {
    raw.parse::<ReportScope>()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn write_out(output: Option<&PathBuf>, body: &str) -> Result<()> {
    match output {
        None => {
            println!("{body}");
            Ok(())
        }
        Some(path) => {
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, body)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
    }
}

fn print_deliveries(id: &str, ds: &[classy_sync_core::ports::DeliveryReport]) -> usize {
    let mut failed = 0;
    for d in ds {
        if d.status != DeliveryStatus::Sent {
            failed += 1;
        }
        println!(
            "{}",
            serde_json::json!({"report": id, "channel": d.channel, "status": d.status,
                "attempts": d.attempts, "error": d.error})
        );
    }
    failed
}

pub async fn run(target: &runtime::Target, cmd: ReportCommand) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let definitions = root.report_definitions();
    let clock = &definitions.data.clock;
    match cmd {
        ReportCommand::Add(a) => {
            let preset = a
                .preset
                .as_deref()
                .map(report::preset)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--preset: {}", e.reason))?;
            let sections = match (&a.sections, preset) {
                (None, Some(p)) => p.sections.to_vec(),
                (s, _) => parse_sections(s.as_deref())?,
            };
            let Some(schedule) = a.schedule.or(preset.map(|p| p.schedule.to_owned())) else {
                bail!("--schedule is required without --preset (e.g. --schedule \"0 9 * * MON\")");
            };
            let def = ReportDefinition {
                id: a.id,
                scope: parse_scope(&a.org)?,
                sections,
                period: a
                    .period
                    .or(preset.map(|p| p.period.to_owned()))
                    .unwrap_or_else(|| "7d".into()),
                schedule,
                timezone: a.timezone,
                recipients: Recipients {
                    emails: a.emails,
                    slack_channels: a.slack,
                },
                created_at: clock.unix(),
            };
            let added = definitions.add(&def).await;
            let org = match def.scope {
                ReportScope::Org(o) => Some(o),
                ReportScope::All => None,
            };
            let mut audited =
                crate::audit::Audited::new(&root, "report add", format!("report {}", def.id));
            if let Some(o) = org {
                audited = audited.org(o);
            }
            audited.finish(added, |_| crate::audit::state(&def)).await?;
            let next = def.next_run_after(clock.unix())?;
            println!(
                "report {} added; next run {}",
                def.id,
                next.map(|t| Timestamp::from_unix(t).to_rfc3339())
                    .unwrap_or_else(|| "never".into())
            );
        }
        ReportCommand::List { json } => {
            let now = clock.unix();
            for d in definitions.list().await? {
                let next = d.next_run_after(now).ok().flatten();
                if json {
                    println!("{}", serde_json::json!({"definition": d, "next_run": next}));
                } else {
                    let scope = match d.scope {
                        ReportScope::Org(o) => o.to_string(),
                        ReportScope::All => "all".into(),
                    };
                    println!(
                        "{}\torg {scope}\t{}\t{} {}\tnext {}\tchannels {}",
                        d.id,
                        d.period,
                        d.schedule,
                        d.timezone,
                        next.map(|t| Timestamp::from_unix(t).to_rfc3339())
                            .unwrap_or_else(|| "never".into()),
                        d.channels().join(",")
                    );
                }
            }
        }
        ReportCommand::Remove { id } => {
            let before = definitions.load(&id).await.ok();
            let removed = definitions.remove(&id).await;
            let mut audited =
                crate::audit::Audited::new(&root, "report remove", format!("report {id}"))
                    .before(before.as_ref().and_then(crate::audit::state));
            if let Some(ReportScope::Org(o)) = before.as_ref().map(|d| &d.scope) {
                audited = audited.org(*o);
            }
            audited.finish(removed, |_| None).await?;
            println!("report {id} removed");
        }
        ReportCommand::Preview(a) => {
            let scope = parse_scope(&a.org)?;
            let sections = parse_sections(a.sections.as_deref())?;
            let now = Timestamp(clock.now());
            let sums = reports::summaries(&definitions.data, scope, &a.period, now).await?;
            let fep = reports::fep_reports(&definitions.data, &sections, &sums, now).await?;
            let r = reports::render(
                reports::title_for(None, &sums),
                &sections,
                &sums,
                &fep,
                now.unix(),
            );
            let body = match a.format {
                PreviewFormat::Html => r.html,
                PreviewFormat::Text => r.text,
                PreviewFormat::Slack => {
                    serde_json::to_string_pretty(&serde_json::json!({"blocks": r.slack_blocks}))?
                }
            };
            write_out(a.output.as_ref(), &body)?;
        }
        ReportCommand::Send(a) => {
            let scope = parse_scope(&a.org)?;
            let defs: Vec<ReportDefinition> = definitions
                .list()
                .await?
                .into_iter()
                .filter(|d| d.scope == scope)
                .filter(|d| a.report.as_deref().is_none_or(|r| r == d.id))
                .collect();
            if defs.is_empty() {
                bail!(
                    "no report is defined for {} (see `classy-sync report add`)",
                    a.org
                );
            }
            let sender = root.reports()?;
            let now = Timestamp(clock.now());
            let mut failed = 0;
            for d in &defs {
                let id = format!("report:{}:manual:{}", d.id, now.unix());
                let ds = sender.send_report(d, id, now).await?;
                failed += print_deliveries(&d.id, &ds);
            }
            if failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        ReportCommand::SendDue { report } => {
            let mut failed = 0;
            for o in root.reports()?.send_due(report.as_deref()).await? {
                if let Some(e) = &o.error {
                    failed += 1;
                    println!(
                        "{}",
                        serde_json::json!({"report": o.report_id, "occurrence": o.occurrence,
                            "error": e})
                    );
                }
                failed += print_deliveries(&o.report_id, &o.deliveries);
            }
            if failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
