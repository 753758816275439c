//! `classy-sync push`: run the destination plugins now. Exits non-zero when any plugin
//! failed, naming which.

use crate::cli::PushArgs;
use crate::output::{print_json, table, thousands};
use crate::runtime;
use anyhow::Result;
use classy_sync_core::engine::plugins::{PluginRun, PushOptions};
use serde_json::json;
use std::process::ExitCode;

pub async fn run(target: &runtime::Target, args: PushArgs) -> Result<ExitCode> {
    let service = &runtime::open(target).await?.plugins();
    let opts = PushOptions {
        plugin: args.plugin.clone(),
        dry_run: args.dry_run,
        full: args.full,
    };
    let orgs: Vec<u64> = match args.org_id {
        Some(id) => vec![id],
        None => service
            .data
            .list_orgs()
            .await?
            .into_iter()
            .filter(|o| o.is_enabled())
            .map(|o| o.id)
            .collect(),
    };
    let mut runs: Vec<PluginRun> = Vec::new();
    for org in orgs {
        match service.push_org(org, &opts).await {
            Ok(r) => runs.extend(r),
            // With --all, an organization without that plugin is not an error.
            Err(e)
                if args.all
                    && args.plugin.is_some()
                    && e.to_string().contains("not configured") => {}
            Err(e) => return Err(e.into()),
        }
    }
    if args.json {
        let v: Vec<_> = runs
            .iter()
            .map(|r| match &r.result {
                Ok(rep) => json!({"org": r.org, "plugin": r.plugin, "reconcile": r.reconcile,
                                  "dry_run": args.dry_run, "ok": true, "report": rep}),
                Err(e) => json!({"org": r.org, "plugin": r.plugin, "reconcile": r.reconcile,
                                 "dry_run": args.dry_run, "ok": false, "error": e}),
            })
            .collect();
        print_json(&v)?;
    } else {
        if args.dry_run {
            for r in &runs {
                if let Ok(rep) = &r.result {
                    for line in &rep.diff {
                        println!("org {} {}: {line}", r.org, r.plugin);
                    }
                }
            }
        }
        let mut t = table(&[
            "org",
            "plugin",
            "mode",
            "considered",
            "sent",
            "unchanged",
            "failed",
            "details",
        ]);
        for r in &runs {
            let mode = format!(
                "{}{}",
                if r.reconcile { "reconcile" } else { "changes" },
                if args.dry_run { " (dry run)" } else { "" }
            );
            match &r.result {
                Ok(rep) => t.add_row(vec![
                    r.org.to_string(),
                    r.plugin.clone(),
                    mode,
                    thousands(rep.considered),
                    thousands(rep.sent),
                    thousands(rep.unchanged),
                    thousands(rep.failed),
                    rep.counts
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]),
                Err(e) => t.add_row(vec![
                    r.org.to_string(),
                    r.plugin.clone(),
                    mode,
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("FAILED: {e}"),
                ]),
            };
        }
        println!("{t}");
        for r in &runs {
            if let Ok(rep) = &r.result {
                for e in &rep.errors {
                    println!("org {} {}: member error: {e}", r.org, r.plugin);
                }
            }
        }
        if runs.is_empty() {
            println!("no plugins configured (see `classy-sync org plugin add`)");
        }
    }
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r.failed())
        .map(|r| format!("{} for organization {}", r.plugin, r.org))
        .collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: plugin failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
