//! `classy-sync status`: per organization×entity, the last run, cursor, counts and failures.

use crate::cli::StatusArgs;
use crate::output::{opt, print_json, table, thousands};
use crate::runtime;
use anyhow::Result;
use std::process::ExitCode;

pub async fn run(target: &runtime::Target, args: StatusArgs) -> Result<ExitCode> {
    let data = runtime::open(target).await?.data();
    let status = data.status(args.org_id).await?;
    if args.json {
        print_json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "org",
        "name",
        "entity",
        "cursor",
        "last run",
        "outcome",
        "fetched",
        "created",
        "updated",
        "quarantined",
        "failures",
        "last error",
    ]);
    for s in &status {
        let run = s.last_run.as_ref();
        t.add_row(vec![
            s.org.to_string(),
            format!(
                "{}{}",
                s.org_name,
                if s.org_status == "disabled" {
                    " (disabled)"
                } else {
                    ""
                }
            ),
            s.entity.to_string(),
            match &s.resumable {
                Some(r) => format!("{} (resumes {r})", opt(&s.cursor)),
                None => opt(&s.cursor),
            },
            run.map(|r| r.started_at.clone())
                .unwrap_or_else(|| "never".into()),
            run.map(|r| format!("{:?}", r.outcome).to_lowercase())
                .unwrap_or_else(|| "-".into()),
            run.map(|r| thousands(r.fetched))
                .unwrap_or_else(|| "-".into()),
            run.map(|r| thousands(r.created))
                .unwrap_or_else(|| "-".into()),
            run.map(|r| thousands(r.updated))
                .unwrap_or_else(|| "-".into()),
            thousands(s.quarantined),
            s.failures.consecutive_failures.to_string(),
            opt(&s
                .failures
                .last_error
                .as_ref()
                .filter(|_| s.failures.consecutive_failures > 0)),
        ]);
    }
    println!("{t}");
    // Health as last recorded by `classy-sync health` / the health-check function.
    match data.last_health().await? {
        Some(h) => println!(
            "health: {} at {} ({} pass, {} warn, {} fail){}",
            h.status,
            h.time,
            h.pass,
            h.warn,
            h.fail,
            if h.warn + h.fail > 0 {
                "; see `classy-sync health`"
            } else {
                ""
            }
        ),
        None => println!("health: not checked yet (run `classy-sync health`)"),
    }
    Ok(ExitCode::SUCCESS)
}
