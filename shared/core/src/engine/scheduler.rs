//! The local scheduler behind `classy-sync run`: every tick it enqueues the due jobs on the
//! durable queue (one live job per organization×entity), and workers run them with bounded
//! concurrency across organizations. On stop, running syncs halt at their next checkpoint
//! and their messages are released, so the next start resumes them.

use super::jobs::SyncJob;
use super::plugins::{PluginService, PushOptions};
use super::sync::{RunControl, SyncOutcome, SyncReport, SyncService};
use super::{Datastore, EngineError};
use crate::ports::queue::send_in_batches;
use crate::ports::{JobQueue, Received};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub tick: Duration,
    pub concurrency: usize,
    /// How long a received job stays hidden; extended while the job runs.
    pub visibility: Duration,
    /// Stop once nothing is due, queued or running (tests and one-shot runs).
    pub exit_when_idle: bool,
    /// Run the destination plugins after an organization's sync changed something, and
    /// whenever they are due (hourly, daily reconcile).
    pub plugins: bool,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            tick: Duration::from_secs(30),
            concurrency: 4,
            visibility: Duration::from_secs(300),
            exit_when_idle: false,
            plugins: true,
        }
    }
}

/// Enqueues due jobs; returns how many were sent (duplicates of live jobs are dropped by
/// the queue).
pub async fn enqueue_due(data: &Datastore, queue: &dyn JobQueue) -> Result<usize, EngineError> {
    let jobs = data.due_jobs(None).await?;
    let n = jobs.len();
    let not_sent = send_in_batches(queue, jobs.iter().map(SyncJob::to_message).collect()).await;
    if let Some(e) = not_sent.first_error {
        // Due jobs stay due: the next tick sends them again.
        tracing::warn!(not_sent = not_sent.positions.len(), error = %e, "some due jobs were not enqueued");
    }
    Ok(n - not_sent.positions.len())
}

/// Runs until `ctl.stop` is set (or idle, with `exit_when_idle`). Reports go to `reports`.
pub async fn run_scheduler(
    sync: SyncService,
    plugins: PluginService,
    queue: Arc<dyn JobQueue>,
    opts: SchedulerOptions,
    ctl: RunControl,
    reports: mpsc::UnboundedSender<Result<SyncReport, String>>,
) -> Result<(), EngineError> {
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut next_tick = tokio::time::Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    loop {
        if ctl.stop.is_stopped() {
            break;
        }
        if tokio::time::Instant::now() >= next_tick {
            enqueue_due(&sync.data, queue.as_ref()).await?;
            if opts.plugins {
                // Plugins are isolated: a failure to even list them must not stop syncing.
                match plugins.due_pushes().await {
                    Ok(due) => {
                        for (org, plugin) in due {
                            let plugins = plugins.clone();
                            workers.spawn(async move {
                                push_plugins(&plugins, org, Some(plugin)).await;
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list due plugin pushes"),
                }
            }
            next_tick = tokio::time::Instant::now() + opts.tick;
        }
        let free = slots.available_permits();
        let received = if free > 0 {
            queue.receive(free, opts.visibility).await?
        } else {
            Vec::new()
        };
        if received.is_empty() {
            while workers.try_join_next().is_some() {}
            if opts.exit_when_idle
                && workers.is_empty()
                && sync.data.due_jobs(None).await?.is_empty()
            {
                let stats = queue.stats().await?;
                if stats.visible == 0 && stats.in_flight == 0 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for msg in received {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let (sync, plugins, queue, ctl, reports, vis, run_plugins) = (
                sync.clone(),
                plugins.clone(),
                queue.clone(),
                ctl.clone(),
                reports.clone(),
                opts.visibility,
                opts.plugins,
            );
            workers.spawn(async move {
                let _permit = permit;
                if let Some(out) = run_job(&sync, queue.as_ref(), msg, vis, &ctl).await {
                    let changed = match &out {
                        Ok(r)
                            if r.outcome == SyncOutcome::Succeeded && r.created + r.updated > 0 =>
                        {
                            Some(r.org)
                        }
                        _ => None,
                    };
                    let _ = reports.send(out);
                    if let Some(org) = changed.filter(|_| run_plugins) {
                        push_plugins(&plugins, org, None).await;
                    }
                }
            });
        }
    }
    // Let running jobs reach their checkpoint and release their messages.
    while workers.join_next().await.is_some() {}
    Ok(())
}

/// Runs an organization's plugins (or one of them); outcomes go to the log, failures stay
/// on each plugin's state and never touch the sync.
async fn push_plugins(plugins: &PluginService, org: crate::domain::OrgId, plugin: Option<String>) {
    let opts = PushOptions {
        plugin,
        ..PushOptions::default()
    };
    match plugins.push_org(org, &opts).await {
        Ok(runs) => {
            for r in runs {
                match &r.result {
                    Ok(rep) => tracing::info!(org, plugin = %r.plugin, sent = rep.sent,
                        unchanged = rep.unchanged, failed = rep.failed, "plugin push done"),
                    Err(e) => {
                        tracing::warn!(org, plugin = %r.plugin, error = %e, "plugin push failed")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(org, error = %e, "cannot run plugins"),
    }
}

/// Runs one received job, keeping its message hidden while it runs. `None`: the job was
/// dropped because its pair is no longer due (it ran meanwhile, or was disabled).
async fn run_job(
    sync: &SyncService,
    queue: &dyn JobQueue,
    msg: Received,
    visibility: Duration,
    ctl: &RunControl,
) -> Option<Result<SyncReport, String>> {
    let job = match SyncJob::parse(&msg.body) {
        Ok(j) => j,
        Err(e) => {
            // A message that can never run: leave it to the dead-letter limit.
            return Some(Err(e.to_string()));
        }
    };
    // A requested job (webhook, SyncRequested) runs whether or not its pair is due.
    match sync.data.still_due(&job).await {
        _ if job.requested => {}
        Ok(true) => {}
        Ok(false) => {
            let _ = queue.delete(&msg.receipt).await;
            return None;
        }
        // Unknown organization and the like: the run reports it.
        Err(_) => {}
    }
    Some(run_due_job(sync, queue, job, msg, visibility, ctl).await)
}

async fn run_due_job(
    sync: &SyncService,
    queue: &dyn JobQueue,
    job: SyncJob,
    msg: Received,
    visibility: Duration,
    ctl: &RunControl,
) -> Result<SyncReport, String> {
    let heartbeat = async {
        loop {
            tokio::time::sleep(visibility / 2).await;
            let _ = queue.release(&msg.receipt, visibility).await;
        }
    };
    let result = tokio::select! {
        r = sync.sync_entity(job.org, job.entity, job.mode, ctl) => r,
        _ = heartbeat => unreachable!("the heartbeat never ends"),
    };
    match result {
        Ok(report) if report.outcome == SyncOutcome::Interrupted => {
            let _ = queue.release(&msg.receipt, Duration::ZERO).await;
            Ok(report)
        }
        // Failures are recorded on the organization×entity; the schedule retries with backoff.
        Ok(report) => {
            let _ = queue.delete(&msg.receipt).await;
            // A webhook may have marked the pair queued: the job has ended.
            let _ = sync.data.job_finished(job.org, job.entity).await;
            Ok(report)
        }
        Err(e @ EngineError::LeaseHeld { .. }) if job.requested => {
            // A follow-up of a running sync: it must run after that one, not be dropped.
            let _ = queue
                .release(&msg.receipt, super::webhooks::RETRY_WHILE_RUNNING)
                .await;
            Err(e.to_string())
        }
        Err(e @ EngineError::LeaseHeld { .. }) => {
            // Already running elsewhere: this copy is redundant.
            let _ = queue.delete(&msg.receipt).await;
            Err(e.to_string())
        }
        Err(e) => {
            let _ = queue.delete(&msg.receipt).await;
            let _ = sync.data.job_finished(job.org, job.entity).await;
            Err(e.to_string())
        }
    }
}
