//! `classy-sync health [<component>] [--detailed] [--watch --interval S] [--json]`.
//! Exit code: 0 pass, 1 warn, 2 fail (like monitoring plugins), so scripts can act on it.

use crate::output::{print_json, table};
use crate::runtime;
use anyhow::Result;
use clap::Args;
use classy_sync_core::domain::health::{HealthReport, HealthStatus};
use classy_sync_core::engine::health::HealthMonitor;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// Only this component: store, secrets, queue, classy, sync, credential, mailchimp,
    /// destination.
    pub component: Option<String>,
    /// Show every observation with recommendations, not only problems.
    #[arg(long)]
    pub detailed: bool,
    /// Check again every --interval seconds until stopped.
    #[arg(long)]
    pub watch: bool,
    #[arg(long, default_value_t = 30, requires = "watch")]
    pub interval: u64,
    /// Seconds one check may take.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// The application/health+json document.
    #[arg(long)]
    pub json: bool,
    /// Show the last N recorded summaries instead of checking.
    #[arg(long, conflicts_with_all = ["watch", "component"])]
    pub history: Option<usize>,
}

pub fn monitor(root: &runtime::Root, timeout: Duration) -> Result<HealthMonitor> {
    let mut m = root.health()?;
    m.timeout = timeout;
    Ok(m)
}

pub async fn run(target: &runtime::Target, args: HealthArgs) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    if args.timeout == 0 {
        anyhow::bail!("--timeout must be at least 1 second");
    }
    if let Some(n) = args.history {
        let h = root.data().health_history(n).await?;
        if args.json {
            print_json(&h)?;
        } else {
            let mut t = table(&["time", "status", "pass", "warn", "fail", "ms"]);
            for s in &h {
                t.add_row(vec![
                    s.time.clone(),
                    s.status.to_string(),
                    s.pass.to_string(),
                    s.warn.to_string(),
                    s.fail.to_string(),
                    s.duration_ms.to_string(),
                ]);
            }
            println!("{t}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let m = monitor(&root, Duration::from_secs(args.timeout))?;
    loop {
        let report = match &args.component {
            Some(c) => m.run(Some(c)).await,
            None => {
                let (report, _, _) = m.run_and_record().await?;
                report
            }
        };
        if args.component.is_some() && report.checks.is_empty() {
            anyhow::bail!(
                "no checks for component {:?} (store, secrets, queue, classy, sync, credential, mailchimp, destination)",
                args.component.as_deref().unwrap_or_default()
            );
        }
        if args.json {
            print_json(&report)?;
        } else {
            print_report(&report, args.detailed);
        }
        if !args.watch {
            return Ok(exit_code(report.status));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.interval.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit_code(report.status)),
        }
    }
}

pub fn exit_code(s: HealthStatus) -> ExitCode {
    match s {
        HealthStatus::Pass => ExitCode::SUCCESS,
        HealthStatus::Warn => ExitCode::from(1),
        HealthStatus::Fail => ExitCode::from(2),
    }
}

fn print_report(report: &HealthReport, detailed: bool) {
    println!(
        "health: {} ({} pass, {} warn, {} fail) in {} ms at {}",
        report.status,
        report.count(HealthStatus::Pass),
        report.count(HealthStatus::Warn),
        report.count(HealthStatus::Fail),
        report.duration_ms,
        report.time
    );
    let mut header = vec!["check", "component", "status", "observed", "output"];
    if detailed {
        header.push("recommendation");
    }
    let mut t = table(&header);
    let mut rows = 0;
    for r in report.results() {
        if !detailed && r.status == HealthStatus::Pass {
            continue;
        }
        let observed = match (&r.observed_value, &r.observed_unit) {
            (Some(v), Some(u)) => format!("{v} {u}"),
            (Some(v), None) => v.to_string(),
            _ => "-".into(),
        };
        let mut row = vec![
            r.key.clone(),
            r.component_id.clone().unwrap_or_else(|| "-".into()),
            format!(
                "{}{}",
                r.status,
                if r.critical { " (critical)" } else { "" }
            ),
            observed,
            r.output.clone().unwrap_or_else(|| "-".into()),
        ];
        if detailed {
            row.push(r.recommendation.clone().unwrap_or_else(|| "-".into()));
        }
        t.add_row(row);
        rows += 1;
    }
    if rows > 0 {
        println!("{t}");
    }
}
