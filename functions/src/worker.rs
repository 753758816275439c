//! `sync-worker`: consumes sync jobs from SQS. Each job runs the engine (checkpoint per
//! page); shortly before the invocation deadline the run stops at a checkpoint and the job
//! continues in a new message. A failed run is reported in `batchItemFailures`, so SQS
//! retries it and, after the redrive limit, moves it to the dead-letter queue.
//!
//! A large full sync is split into id slices worked by several invocations at once: the
//! job that plans it (or finds it in progress) queues one job per other unfinished slice,
//! each in a message group of its own, and works the first itself. Each slice job takes
//! the slice's lease, walks only its slice from its `SLICE#` item, and the one that finds
//! every slice done commits the cursor, once.

use crate::metrics::emf_line;
use crate::Services;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use classy_sync_core::engine::events::sync_event;
use classy_sync_core::engine::jobs::{SliceJob, SyncJob};
use classy_sync_core::engine::{EngineError, RunControl, SyncOutcome};
use classy_sync_core::ports::queue::send_in_batches;
use std::time::{Duration, SystemTime};
use tracing::Instrument;

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Completed,
    /// Stopped before the deadline; a continuation message was sent.
    Continued,
    /// Another worker holds this pair, or the organization is gone/disabled: nothing to do.
    Dropped(String),
    /// Report as a batch item failure (SQS retries it, then dead-letters it).
    Failed(String),
    /// Not now: a copy was queued to run after this delay; this message is done.
    Deferred(std::time::Duration),
}

pub async fn handle(
    services: &Services,
    event: SqsEvent,
    deadline: SystemTime,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("job", message_id = %id);
        let result = run_message(services, &message, deadline)
            .instrument(span)
            .await;
        if let JobResult::Failed(reason) = &result {
            tracing::warn!(message_id = %id, reason = %reason, "job failed; SQS will retry it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

pub async fn run_message(
    services: &Services,
    message: &SqsMessage,
    deadline: SystemTime,
) -> JobResult {
    let job = match message.body.as_deref().map(SyncJob::parse) {
        Some(Ok(job)) => job,
        Some(Err(e)) => return JobResult::Failed(e.to_string()),
        None => return JobResult::Failed("message has no body".into()),
    };
    let span = tracing::info_span!("sync", org = job.org, entity = %job.entity);
    run_job(services, job, deadline).instrument(span).await
}

/// Stops `ctl` at the next checkpoint once the deadline comes near. A deadline already past
/// means the runtime gave none (local emulators): run to completion.
fn stop_before(
    services: &Services,
    ctl: &RunControl,
    deadline: SystemTime,
) -> Option<tokio::task::JoinHandle<()>> {
    match deadline.duration_since(SystemTime::now()) {
        Ok(until) => {
            let left = until.saturating_sub(services.settings.deadline_margin);
            tracing::debug!(
                run_for_ms = left.as_millis() as u64,
                "time this job may run before continuing"
            );
            let stop = ctl.stop.clone();
            Some(tokio::spawn(async move {
                tokio::time::sleep(left).await;
                stop.stop();
            }))
        }
        Err(_) => {
            tracing::debug!("no invocation deadline given: the job runs to completion");
            None
        }
    }
}

async fn run_job(services: &Services, job: SyncJob, deadline: SystemTime) -> JobResult {
    if let Some(slice) = job.slice.clone() {
        let span = tracing::info_span!("slice", index = slice.index);
        return run_slice_job(services, job, slice, deadline)
            .instrument(span)
            .await;
    }
    let data = &services.data;
    let sync = match services.sync() {
        Ok(sync) => sync,
        Err(e) => return JobResult::Failed(e.to_string()),
    };
    // A sliced full sync is worked by one invocation per slice (below), not in tasks here.
    let ctl = RunControl {
        fan_out_slices: true,
        ..RunControl::default()
    };
    let timer = stop_before(services, &ctl, deadline);
    let result = sync.sync_entity(job.org, job.entity, job.mode, &ctl).await;
    if let Some(t) = timer {
        t.abort();
    }

    let report = match result {
        Ok(report) => report,
        Err(EngineError::LeaseHeld { .. }) if job.requested => {
            // A follow-up of a running sync (webhook): it runs after that one, not never.
            let delay = classy_sync_core::engine::webhooks::RETRY_WHILE_RUNNING;
            return requeue_later(services, &job, delay, "the follow-up").await;
        }
        Err(e @ EngineError::LeaseHeld { .. }) => return JobResult::Dropped(e.to_string()),
        Err(e @ (EngineError::UnknownOrg(_) | EngineError::OrgDisabled(_))) => {
            let _ = data.job_finished(job.org, job.entity).await;
            return JobResult::Dropped(e.to_string());
        }
        Err(e) => return JobResult::Failed(e.to_string()),
    };
    println!(
        "{}",
        emf_line(
            &report,
            data.clock.now().timestamp_millis(),
            services.settings.metric_dimensions
        )
    );
    if let Some(event) = sync_event(&report, data.clock.now()) {
        if let Err(e) = services.bus.publish(vec![event]).await {
            // The run itself is recorded; a lost notification must not redo the sync.
            tracing::error!(error = %e, "could not publish the sync event");
        }
    }
    match report.outcome {
        SyncOutcome::Succeeded => {
            tracing::info!(
                fetched = report.fetched,
                created = report.created,
                updated = report.updated,
                "sync completed"
            );
            if let Err(e) = data.job_finished(job.org, job.entity).await {
                tracing::warn!(error = %e, "could not clear the queued marker; it expires on its own");
            }
            JobResult::Completed
        }
        SyncOutcome::Interrupted => {
            match data.slice_jobs(&job).await {
                Ok(Some(slices)) => return fan_out(services, &job, slices, deadline).await,
                Ok(None) => {}
                Err(e) => return JobResult::Failed(format!("could not read the slices: {e}")),
            }
            let next = SyncJob {
                mode: classy_sync_core::engine::SyncMode::Auto,
                ..job.clone()
            };
            match send_continuation(services, &next, &report.run_id).await {
                Ok(()) => {
                    tracing::info!(
                        fetched = report.fetched,
                        "deadline near: continues in a new message"
                    );
                    JobResult::Continued
                }
                // Retrying this message resumes from the checkpoint just the same.
                Err(e) => JobResult::Failed(format!("could not enqueue the continuation: {e}")),
            }
        }
        SyncOutcome::Failed => {
            JobResult::Failed(report.error.unwrap_or_else(|| "sync failed".into()))
        }
    }
}

/// Queues a job for every slice but the first, each in a message group of its own so that
/// they run at once, and works the first here. The pair stays marked as queued until the
/// slice job that commits clears it. A failure to queue fails this message: its retry
/// queues again (the same deduplication ids within SQS's five minutes; a slice job that
/// runs twice finds the slice leased or done).
async fn fan_out(
    services: &Services,
    job: &SyncJob,
    slices: Vec<SyncJob>,
    deadline: SystemTime,
) -> JobResult {
    let Some((first, others)) = slices.split_first() else {
        // Every unfinished slice is being worked by another invocation.
        return JobResult::Dropped("every unfinished slice is being worked".into());
    };
    if let Err(e) = services
        .data
        .job_continues(job, services.settings.marker_ttl)
        .await
    {
        return JobResult::Failed(format!("could not keep the queued marker: {e}"));
    }
    let not_sent = send_in_batches(
        services.queue.as_ref(),
        others.iter().map(SyncJob::to_message).collect(),
    )
    .await;
    if let Some(e) = not_sent.first_error {
        return JobResult::Failed(format!("could not queue the slice jobs: {e}"));
    }
    tracing::info!(
        slices = slices.len(),
        "full sync worked in slices by several invocations"
    );
    let Some(slice) = first.slice.clone() else {
        return JobResult::Failed("a slice job without its slice".into());
    };
    let span = tracing::info_span!("slice", index = slice.index);
    run_slice_job(services, first.clone(), slice, deadline)
        .instrument(span)
        .await
}

/// Keeps the pair marked as queued and sends `job` again to resume from its checkpoint, with
/// a fresh deduplication id: the message being handled is still live.
async fn send_continuation(
    services: &Services,
    job: &SyncJob,
    run_id: &str,
) -> Result<(), EngineError> {
    services
        .data
        .job_continues(job, services.settings.marker_ttl)
        .await?;
    let mut message = job.to_message();
    message.dedup_id = Some(format!("{}:{}", job.dedup_id(), run_id));
    services.queue.send_batch(vec![message]).await?;
    Ok(())
}

/// Sends `job` again as a new message seen after `delay` (its own dedup id, so FIFO
/// deduplication does not swallow it); the message being handled is then done.
async fn requeue_later(
    services: &Services,
    job: &SyncJob,
    delay: Duration,
    what: &str,
) -> JobResult {
    let mut message = job.to_message();
    message.dedup_id = Some(format!(
        "{}:wait:{}",
        job.dedup_id(),
        services.data.clock.now().timestamp_millis()
    ));
    message.delay = delay;
    match services.queue.send_batch(vec![message]).await {
        Ok(()) => JobResult::Deferred(delay),
        Err(e) => JobResult::Failed(format!("could not requeue {what}: {e}")),
    }
}

async fn run_slice_job(
    services: &Services,
    job: SyncJob,
    slice: SliceJob,
    deadline: SystemTime,
) -> JobResult {
    let data = &services.data;
    let sync = match services.sync() {
        Ok(sync) => sync,
        Err(e) => return JobResult::Failed(e.to_string()),
    };
    let ctl = RunControl::default();
    let timer = stop_before(services, &ctl, deadline);
    let result = sync
        .sync_slice(job.org, job.entity, &slice.run, slice.index, &ctl)
        .await;
    if let Some(t) = timer {
        t.abort();
    }
    let run = match result {
        Ok(Some(run)) => run,
        Ok(None) => return JobResult::Dropped("the slice's full sync is over".into()),
        Err(EngineError::LeaseHeld { .. }) => {
            // Another invocation has the slice: a duplicate, or one that died and whose
            // lease has not expired yet. Look again once the lease would have expired, so
            // the slice is never left behind (SQS delays at most 15 minutes).
            let delay = data.options.lease_ttl.min(Duration::from_secs(15 * 60));
            return requeue_later(services, &job, delay, "the slice").await;
        }
        Err(e @ (EngineError::UnknownOrg(_) | EngineError::OrgDisabled(_))) => {
            let _ = data.job_finished(job.org, job.entity).await;
            return JobResult::Dropped(e.to_string());
        }
        Err(e) => return JobResult::Failed(e.to_string()),
    };
    let report = run.report;
    println!(
        "{}",
        emf_line(
            &report,
            data.clock.now().timestamp_millis(),
            services.settings.metric_dimensions
        )
    );
    match report.outcome {
        SyncOutcome::Succeeded => {
            tracing::info!(
                fetched = report.fetched,
                committed = run.committed,
                "slice done"
            );
            if run.committed {
                if let Some(event) = sync_event(&report, data.clock.now()) {
                    if let Err(e) = services.bus.publish(vec![event]).await {
                        tracing::error!(error = %e, "could not publish the sync event");
                    }
                }
                if let Err(e) = data.job_finished(job.org, job.entity).await {
                    tracing::warn!(error = %e, "could not clear the queued marker; it expires on its own");
                }
            }
            JobResult::Completed
        }
        SyncOutcome::Interrupted => match send_continuation(services, &job, &report.run_id).await {
            Ok(()) => JobResult::Continued,
            Err(e) => JobResult::Failed(format!("could not enqueue the continuation: {e}")),
        },
        SyncOutcome::Failed => {
            if let Some(event) = sync_event(&report, data.clock.now()) {
                if let Err(e) = services.bus.publish(vec![event]).await {
                    tracing::error!(error = %e, "could not publish the sync event");
                }
            }
            JobResult::Failed(report.error.unwrap_or_else(|| "slice sync failed".into()))
        }
    }
}
