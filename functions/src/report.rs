//! The `report` function: invoked hourly by an EventBridge Scheduler schedule (or directly
//! with `{"report_id": "..."}`), it sends every report definition whose cron occurrence in its
//! own time zone has come and was not sent yet. Email goes through SES, Slack through the
//! webhook URLs kept in Secrets Manager; sent-markers make a repeated invocation harmless.

use classy_sync_core::engine::{reports, Engine};
use classy_sync_core::ports::{DeliveryStatus, Notifier};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Default, Deserialize)]
pub struct ReportEvent {
    /// Only this definition; absent: all due definitions.
    #[serde(default)]
    pub report_id: Option<String>,
}

/// Parses the scheduler's input (anything without `report_id` means "all").
pub fn parse_event(payload: &Value) -> anyhow::Result<ReportEvent> {
    if payload.is_null() {
        return Ok(ReportEvent::default());
    }
    serde_json::from_value(payload.clone())
        .map_err(|e| anyhow::anyhow!("report event: {e} (expected {{\"report_id\": \"...\"}})"))
}

pub async fn handle(
    engine: &Engine,
    notifier: &dyn Notifier,
    payload: Value,
) -> anyhow::Result<Value> {
    let event = parse_event(&payload)?;
    let sent = reports::send_due(engine, notifier, event.report_id.as_deref()).await?;
    let failed: usize = sent
        .iter()
        .flat_map(|o| &o.deliveries)
        .filter(|d| d.status != DeliveryStatus::Sent)
        .count();
    let out = json!({
        "sent": sent.iter().map(|o| json!({"report_id": o.report_id, "occurrence": o.occurrence,
            "deliveries": o.deliveries})).collect::<Vec<_>>(),
        "failed_deliveries": failed,
    });
    tracing::info!(reports = sent.len(), failed, "report run finished");
    Ok(out)
}
