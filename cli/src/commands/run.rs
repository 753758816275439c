//! `classy-sync run`: the local scheduler loop. SIGINT/SIGTERM stop it cleanly: running
//! syncs halt at their next checkpoint and their jobs go back on the queue. With
//! `--listen ADDR` it also receives GoFundMe Pro webhooks (`POST /webhooks/classy/<org-id>`),
//! stopped with the scheduler.

use crate::cli::RunArgs;
use crate::runtime;
use anyhow::Result;
use classy_sync_core::engine::scheduler::{run_scheduler, SchedulerOptions};
use classy_sync_core::engine::webhooks::WebhookReceiver;
use classy_sync_core::engine::{RunControl, SyncReport};
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(target: &runtime::Target, args: RunArgs) -> Result<ExitCode> {
    if target.backend == crate::cli::Backend::Aws {
        anyhow::bail!(
            "`run` is the local scheduler; on AWS, EventBridge Scheduler invokes the dispatch function \
             (use `sync` to enqueue jobs now)"
        );
    }
    let root = runtime::open(target).await?;
    let queue = root.job_queue()?;
    let sync = root.sync()?;
    let ctl = RunControl::default();
    // GoFundMe Pro webhooks next to the scheduler: verified, deduped and turned into debounced
    // incremental jobs on the queue the scheduler consumes. Bound before anything runs, so a
    // busy address fails the command at once.
    let (server_stop, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = match args.listen {
        Some(addr) => {
            let listener = super::listen::bind(addr).await?;
            let receiver = std::sync::Arc::new(WebhookReceiver::new(
                root.data(),
                root.secrets(),
                queue.clone(),
            ));
            eprintln!(
                "receiving webhooks on http://{}/webhooks/classy/<org-id>",
                listener.local_addr().unwrap_or(addr)
            );
            let stop = ctl.stop.clone();
            let shutdown = async move {
                let stopped = async {
                    while !stop.is_stopped() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = server_stopped => {}
                }
            };
            Some(tokio::spawn(super::listen::serve(
                listener, receiver, shutdown,
            )))
        }
        None => None,
    };
    let stop = ctl.stop.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        eprintln!("stopping: running syncs halt at their next checkpoint");
        stop.stop();
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<SyncReport, String>>();
    let printer = tokio::spawn(async move {
        let mut failed = 0usize;
        while let Some(r) = rx.recv().await {
            match r {
                Ok(rep) => {
                    let line = serde_json::json!({
                        "org": rep.org, "entity": rep.entity, "mode": rep.mode, "outcome": rep.outcome,
                        "fetched": rep.fetched, "created": rep.created, "updated": rep.updated,
                        "unchanged": rep.unchanged, "api_calls": rep.api_calls, "duration_ms": rep.duration_ms,
                        "error": rep.error,
                    });
                    if rep.error.is_some() {
                        failed += 1;
                    }
                    println!("{line}");
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("job failed: {e}");
                }
            }
        }
        failed
    });
    let opts = SchedulerOptions {
        tick: Duration::from_secs(args.tick.max(1)),
        concurrency: args.concurrency.max(1),
        exit_when_idle: args.once,
        ..Default::default()
    };
    // Health and alerts every 5 minutes while the scheduler runs (not for one-shot runs).
    let watchdog = if args.once {
        None
    } else {
        Some(super::alerts::spawn_watchdog(&root, target).await?)
    };
    // Scheduled reports and failed deliveries: checked every tick. Sent-markers make each
    // occurrence go out once; a delivery that failed is tried again when its backoff is over
    // (reports rebuilt by `send_due`, alerts and small messages by the notifier).
    let reports_task = {
        let reports = root.reports()?;
        let stop = ctl.stop.clone();
        let tick = opts.tick;
        let once = args.once;
        tokio::spawn(async move {
            loop {
                let round = reports.scheduled_round().await;
                match round.reports {
                    Ok(outcomes) => {
                        for o in outcomes {
                            match &o.error {
                                Some(e) => eprintln!("report {} failed: {e}", o.report_id),
                                None => eprintln!(
                                    "report {}: {} channels, {} not sent{}",
                                    o.report_id,
                                    o.deliveries.len(),
                                    o.unsent(),
                                    if o.complete { "" } else { " (retried later)" }
                                ),
                            }
                        }
                    }
                    Err(e) => eprintln!("reports: {e}"),
                }
                match round.retried {
                    Ok(retried) => {
                        for d in retried {
                            eprintln!(
                                "delivery {} on {} retried: {:?}",
                                d.message_id, d.channel, d.status
                            );
                        }
                    }
                    Err(e) => eprintln!("notification retries: {e}"),
                }
                if once || stop.is_stopped() {
                    break;
                }
                // Sleep out the tick, but notice a stop at once (a long --tick must not hold
                // the shutdown).
                let wake = tokio::time::Instant::now() + tick;
                while !stop.is_stopped() && tokio::time::Instant::now() < wake {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
    };
    let scheduled = run_scheduler(sync, root.plugins(), queue, opts, ctl, tx).await;
    if let Some(server) = server {
        let _ = server_stop.send(());
        match tokio::time::timeout(Duration::from_secs(20), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("webhook receiver: {e}"),
            Ok(Err(e)) => eprintln!("webhook receiver: {e}"),
            Err(_) => eprintln!("webhook receiver: requests still open after 20 s; stopped"),
        }
    }
    scheduled?;
    if let Some(w) = watchdog {
        w.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), reports_task).await;
    let failed = printer.await?;
    Ok(if args.once && failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
