//! The hourly plugin schedule (input `{"plugins": true}` to `dispatch`): one plugin job per
//! due organization×plugin on the plugin queue (`CLASSY_SYNC_PLUGIN_QUEUE_URL`).

use crate::Services;
use anyhow::{Context, Result};
use classy_sync_core::ports::JobQueue;
use serde_json::Value;

pub const ENV_PLUGIN_QUEUE_URL: &str = "CLASSY_SYNC_PLUGIN_QUEUE_URL";

/// Whether a dispatch invocation is the plugin schedule's.
pub fn is_plugin_dispatch(event: &Value) -> bool {
    event.get("plugins").and_then(Value::as_bool) == Some(true)
        || event
            .get("detail")
            .and_then(|d| d.get("plugins"))
            .and_then(Value::as_bool)
            == Some(true)
}

/// The plugin queue, from the environment the SAM template sets.
pub fn plugin_queue_from_env(sdk: &aws_config::SdkConfig) -> Result<classy_sync_aws::SqsQueue> {
    let url = std::env::var(ENV_PLUGIN_QUEUE_URL)
        .ok()
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
        .engine
        .dispatch_plugins(plugin_queue, services.settings.marker_ttl)
        .await?;
    tracing::info!(
        enqueued = report.enqueued.len(),
        already_queued = report.already_queued.len(),
        "plugin jobs dispatched"
    );
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recognises_the_plugin_schedule_only() {
        assert!(is_plugin_dispatch(&json!({"plugins": true})));
        assert!(is_plugin_dispatch(&json!({"detail": {"plugins": true}})));
        assert!(!is_plugin_dispatch(&json!({"entity": "supporters"})));
        assert!(!is_plugin_dispatch(&json!({"plugins": "yes"})));
    }
}
