//! `plugin-worker`: consumes plugin jobs (`{"org": n, "plugin": "change-feed"?}`) from the
//! plugin queue and pushes that organization's plugins. Each plugin's outcome is recorded on
//! its own state by the engine and logged as one EMF line; a failed plugin is reported in
//! `batchItemFailures`, so SQS retries the message later and, after the redrive limit,
//! dead-letters it. A plugin another worker is pushing right now is not a failure: the job
//! goes back on the plugin queue with a delay (a new message, so it does not count toward
//! the redrive limit) and this message is done. Pushes are idempotent, so a retry that
//! re-runs a plugin that already succeeded sends nothing new.

use crate::metrics::plugin_emf_line;
use crate::worker::JobResult;
use crate::Services;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use classy_sync_core::engine::plugin_jobs::PluginJob;
use classy_sync_core::engine::plugins::PushOptions;
use classy_sync_core::engine::EngineError;
use classy_sync_core::ports::JobQueue;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How long a job whose plugin is busy waits before it is tried again.
pub const BUSY_RETRY_DELAY: Duration = Duration::from_secs(60);

/// `later` takes the jobs whose plugin another worker is pushing (the plugin queue).
pub async fn handle(
    services: &Services,
    later: &dyn JobQueue,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("plugin_job", message_id = %id);
        let result = run_message(services, later, &message)
            .instrument(span)
            .await;
        if let JobResult::Failed(reason) = &result {
            tracing::warn!(message_id = %id, reason = %reason, "plugin job failed; SQS will retry it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

pub async fn run_message(
    services: &Services,
    later: &dyn JobQueue,
    message: &SqsMessage,
) -> JobResult {
    let job = match message.body.as_deref().map(PluginJob::parse) {
        Some(Ok(job)) => job,
        Some(Err(e)) => return JobResult::Failed(e.to_string()),
        None => return JobResult::Failed("message has no body".into()),
    };
    let span = tracing::info_span!(
        "push",
        org = job.org,
        plugin = job.plugin.as_deref().unwrap_or("*")
    );
    let message_id = message.message_id.clone().unwrap_or_default();
    run_job(services, later, job, &message_id)
        .instrument(span)
        .await
}

/// A run refused because another worker holds the plugin's lease (see engine::plugins).
fn lease_held(reason: &str) -> bool {
    reason.contains("is already running")
}

async fn run_job(
    services: &Services,
    later: &dyn JobQueue,
    job: PluginJob,
    message_id: &str,
) -> JobResult {
    let plugins = services.plugins();
    let started = Instant::now();
    let opts = PushOptions {
        plugin: job.plugin.clone(),
        ..PushOptions::default()
    };
    let runs = match plugins.push_org(job.org, &opts).await {
        Ok(runs) => runs,
        // The organization is gone or disabled, or the plugin was removed: nothing to do.
        Err(
            e
            @ (EngineError::UnknownOrg(_) | EngineError::OrgDisabled(_) | EngineError::Invalid(_)),
        ) => {
            if let Some(p) = &job.plugin {
                let _ = plugins.plugin_job_finished(job.org, p).await;
            }
            return JobResult::Dropped(e.to_string());
        }
        Err(e) => return JobResult::Failed(e.to_string()),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let now_ms = plugins.data.clock.now().timestamp_millis();
    let mut failures = Vec::new();
    let mut busy = false;
    for run in &runs {
        println!(
            "{}",
            plugin_emf_line(
                run,
                duration_ms,
                now_ms,
                services.settings.metric_dimensions
            )
        );
        match &run.result {
            Ok(r) => tracing::info!(
                plugin = %run.plugin,
                considered = r.considered,
                sent = r.sent,
                unchanged = r.unchanged,
                failed = r.failed,
                reconcile = run.reconcile,
                "plugin pushed"
            ),
            Err(e) if lease_held(e) => {
                busy = true;
                tracing::info!(plugin = %run.plugin, "another worker is pushing this plugin; retried later");
            }
            Err(e) => failures.push(format!("{}: {e}", run.plugin)),
        }
    }
    if failures.is_empty() && !busy {
        if let Some(p) = &job.plugin {
            if let Err(e) = plugins.plugin_job_finished(job.org, p).await {
                tracing::warn!(error = %e, "could not clear the queued marker; it expires on its own");
            }
        }
        return JobResult::Completed;
    }
    if failures.is_empty() {
        // Busy is "later", not a failure: the queued marker stays (the job goes on), and a
        // delayed copy comes back once the other worker is likely done.
        let mut again = job.to_message();
        again.delay = BUSY_RETRY_DELAY;
        // Its own id: the copy must not be taken for a duplicate of the message in hand.
        again.dedup_id = Some(format!(
            "{}:later:{message_id}",
            again.dedup_id.unwrap_or_default()
        ));
        return match later.send_batch(vec![again]).await {
            Ok(()) => JobResult::Deferred(BUSY_RETRY_DELAY),
            Err(e) => JobResult::Failed(format!(
                "plugin busy, and the delayed retry could not be queued: {e}"
            )),
        };
    }
    JobResult::Failed(failures.join("; "))
}
