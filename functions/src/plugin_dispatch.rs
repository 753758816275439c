//! The hourly plugin schedule (input `{"plugins": true}` to `dispatch`): one plugin job per
//! due organization×plugin on the plugin queue (`CLASSY_SYNC_PLUGIN_QUEUE_URL`).

use crate::Services;
use anyhow::{Context, Result};
use classy_sync_core::ports::JobQueue;
use serde_json::Value;

pub const ENV_PLUGIN_QUEUE_URL: &str = "CLASSY_SYNC_PLUGIN_QUEUE_URL";

/// The plugin queue, from the environment the SAM template sets (read through `var`, the
/// function's declared environment).
pub fn plugin_queue_from(
    var: impl Fn(&str) -> Option<String>,
    sdk: &aws_config::SdkConfig,
) -> Result<classy_sync_aws::SqsQueue> {
    let url = var(ENV_PLUGIN_QUEUE_URL)
        .filter(|v| !v.trim().is_empty())
        .with_context(|| format!("{ENV_PLUGIN_QUEUE_URL} is not set"))?;
    Ok(classy_sync_aws::SqsQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        url.trim(),
        None,
    ))
}

pub async fn handle(services: &Services, plugin_queue: &dyn JobQueue) -> Result<Value> {
    let report = services
        .plugins()
        .dispatch_plugins(plugin_queue, services.settings.marker_ttl)
        .await?;
    tracing::info!(
        enqueued = report.enqueued.len(),
        already_queued = report.already_queued.len(),
        not_enqueued = report.not_enqueued.len(),
        "plugin jobs dispatched"
    );
    if let Some(e) = &report.queue_error {
        // As for sync jobs: the refused pushes' markers are gone, a retry sends just those.
        anyhow::bail!(
            "{} of {} due pushes were not enqueued: {e}",
            report.not_enqueued.len(),
            report.not_enqueued.len() + report.enqueued.len()
        );
    }
    Ok(serde_json::to_value(report)?)
}
