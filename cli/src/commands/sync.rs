//! `classy-sync sync`: sync now, with progress bars on a terminal and a summary table.

use crate::cli::SyncArgs;
use crate::output::{print_json, table, thousands};
use crate::runtime;
use anyhow::Result;
use classy_sync_core::domain::{Entity, OrgId};
use classy_sync_core::engine::sync::{Progress, ProgressFn};
use classy_sync_core::engine::{
    EngineError, RunControl, SyncMode, SyncOutcome, SyncReport, SyncService,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Serialize)]
struct Failure {
    org: OrgId,
    entity: Option<Entity>,
    error: String,
}

fn progress_bars(enabled: bool) -> Option<(MultiProgress, ProgressFn)> {
    if !enabled {
        return None;
    }
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let bars: Arc<Mutex<HashMap<(OrgId, Entity), ProgressBar>>> = Arc::default();
    let style = ProgressStyle::with_template(
        "{spinner} org {prefix:>8} {msg:<16} {human_pos:>12} records  {per_sec:>14}",
    )
    .expect("static template");
    let m = multi.clone();
    let f: ProgressFn = Arc::new(move |p: Progress| {
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry((p.org, p.entity)).or_insert_with(|| {
            let b = m.add(ProgressBar::no_length().with_style(style.clone()));
            b.set_prefix(p.org.to_string());
            b.set_message(p.entity.to_string());
            b
        });
        bar.set_position(p.fetched);
    });
    Some((multi, f))
}

pub async fn run(target: &runtime::Target, args: SyncArgs) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let data = root.data();
    let mode = if args.full {
        SyncMode::Full
    } else {
        SyncMode::Auto
    };
    let orgs: Vec<OrgId> = match args.org_id {
        Some(id) => vec![data.get_org(id).await?.id],
        None => data
            .list_orgs()
            .await?
            .into_iter()
            .filter(|o| o.is_enabled())
            .map(|o| o.id)
            .collect(),
    };
    if orgs.is_empty() {
        anyhow::bail!("no enabled organizations: add one with `classy-sync org add`");
    }
    if root.backend() == crate::cli::Backend::Aws {
        return enqueue(&root, &orgs, &args).await;
    }
    let sync = root.sync()?;
    let bars = progress_bars(!args.json && std::io::stderr().is_terminal());
    let ctl = RunControl {
        progress: bars.as_ref().map(|(_, f)| f.clone()),
        ..Default::default()
    };
    let stop = ctl.stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping at the next checkpoint...");
            stop.stop();
        }
    });

    let slots = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for org in orgs {
        let (sync, ctl, slots, entity) = (sync.clone(), ctl.clone(), slots.clone(), args.entity);
        tasks.spawn(async move {
            let _permit = slots
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            (org, sync_one(&sync, org, entity, mode, &ctl).await)
        });
    }
    let mut reports: Vec<SyncReport> = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (org, results) = joined?;
        for r in results {
            match r {
                Ok(rep) => {
                    if let Some(e) = &rep.error {
                        failures.push(Failure {
                            org,
                            entity: Some(rep.entity),
                            error: e.clone(),
                        });
                    }
                    reports.push(rep);
                }
                Err(e) => failures.push(Failure {
                    org,
                    entity: None,
                    error: e.to_string(),
                }),
            }
        }
    }
    if let Some((multi, _)) = bars {
        multi.clear().ok();
    }
    reports.sort_by_key(|r| (r.org, r.entity));
    if args.json {
        print_json(&serde_json::json!({ "runs": reports, "failures": failures }))?;
    } else {
        print_summary(&reports);
        for f in &failures {
            let what = f.entity.map(|e| format!(" {e}")).unwrap_or_default();
            eprintln!("error: organization {}{what}: {}", f.org, f.error);
        }
    }
    let interrupted = reports
        .iter()
        .any(|r| r.outcome == SyncOutcome::Interrupted);
    Ok(if failures.is_empty() && !interrupted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn sync_one(
    sync: &SyncService,
    org: OrgId,
    entity: Option<Entity>,
    mode: SyncMode,
    ctl: &RunControl,
) -> Vec<Result<SyncReport, EngineError>> {
    match entity {
        Some(e) => vec![sync.sync_entity(org, e, mode, ctl).await],
        None => sync.sync_org(org, mode, ctl).await,
    }
}

fn print_summary(reports: &[SyncReport]) {
    let mut t = table(&[
        "org",
        "entity",
        "mode",
        "outcome",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "quarantined",
        "api calls",
        "seconds",
        "records/s",
    ]);
    let (mut fetched, mut calls) = (0u64, 0u64);
    for r in reports {
        let secs = r.duration_ms as f64 / 1000.0;
        t.add_row(vec![
            r.org.to_string(),
            r.entity.to_string(),
            format!("{}{}", r.mode, if r.resumed { " (resumed)" } else { "" }),
            format!("{:?}", r.outcome).to_lowercase(),
            thousands(r.fetched),
            thousands(r.created),
            thousands(r.updated),
            thousands(r.unchanged),
            thousands(r.quarantined),
            thousands(r.api_calls),
            format!("{secs:.2}"),
            if secs > 0.0 {
                thousands((r.fetched as f64 / secs) as u64)
            } else {
                "-".into()
            },
        ]);
        fetched += r.fetched;
        calls += r.api_calls;
    }
    println!("{t}");
    println!(
        "{} records fetched with {} Classy calls",
        thousands(fetched),
        thousands(calls)
    );
}

/// Against a deployed stack the workers sync: enqueue one job per organization×entity.
async fn enqueue(root: &runtime::Root, orgs: &[OrgId], args: &SyncArgs) -> Result<ExitCode> {
    let queue = root.job_queue()?;
    let data = root.data();
    let entities: Vec<Entity> = match args.entity {
        Some(e) => vec![e],
        None => Entity::ALL.to_vec(),
    };
    let mode = if args.full {
        SyncMode::Full
    } else {
        SyncMode::Auto
    };
    let mut jobs = Vec::new();
    for &org in orgs {
        for &entity in &entities {
            let job = classy_sync_core::engine::jobs::SyncJob {
                org,
                entity,
                mode,
                requested: false,
                slice: None,
            };
            data.job_continues(&job, std::time::Duration::from_secs(2 * 3600))
                .await?;
            jobs.push(job);
        }
    }
    for chunk in jobs.chunks(classy_sync_core::ports::queue::MAX_SEND_BATCH) {
        queue
            .send_batch(chunk.iter().map(|j| j.to_message()).collect())
            .await?;
    }
    if args.json {
        print_json(&serde_json::json!({ "enqueued": jobs }))?;
    } else {
        println!("enqueued {} sync jobs; the sync-worker function runs them (see `classy-sync --backend aws status`)", jobs.len());
    }
    Ok(ExitCode::SUCCESS)
}
