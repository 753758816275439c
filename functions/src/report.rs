//! The `report` function: invoked hourly by an EventBridge Scheduler schedule (or directly
//! with `{"report_id": "..."}`), it sends every report definition whose cron occurrence in its
//! own time zone has come and was not sent yet. Email goes through SES, Slack through the
//! webhook URLs kept in Secrets Manager; sent-markers make a repeated invocation harmless.

use crate::events::ReportEvent;
use classy_sync_core::engine::ReportService;
use classy_sync_core::ports::DeliveryStatus;
use serde_json::{json, Value};

pub async fn handle(reports: &ReportService, event: ReportEvent) -> anyhow::Result<Value> {
    let sent = reports.send_due(event.report_id.as_deref()).await?;
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
