//! The `report` function: invoked hourly by an EventBridge Scheduler schedule (or directly
//! with `{"report_id": "..."}`), it sends every report definition whose cron occurrence in its
//! own time zone has come and was not sent yet, and retries the failed deliveries of those
//! already tried (rebuilding the report: delivery records keep a digest, not the report). Email
//! goes through SES, Slack through the webhook URLs kept in Secrets Manager; a sent-marker,
//! written once every delivery is final, makes a repeated invocation harmless. A definition
//! that fails is reported and does not stop the others.

use crate::events::ReportEvent;
use classy_sync_core::engine::ReportService;
use serde_json::{json, Value};

pub async fn handle(reports: &ReportService, event: ReportEvent) -> anyhow::Result<Value> {
    let outcomes = reports.send_due(event.report_id.as_deref()).await?;
    let unsent: usize = outcomes.iter().map(|o| o.unsent()).sum();
    let failed_reports: Vec<Value> = outcomes
        .iter()
        .filter_map(|o| {
            o.error
                .as_ref()
                .map(|e| json!({"report_id": o.report_id, "occurrence": o.occurrence, "error": e}))
        })
        .collect();
    let out = json!({
        "sent": outcomes.iter().filter(|o| o.error.is_none()).map(|o| json!({
            "report_id": o.report_id, "occurrence": o.occurrence, "complete": o.complete,
            "deliveries": o.deliveries})).collect::<Vec<_>>(),
        "failed_deliveries": unsent,
        "failed_reports": failed_reports,
    });
    tracing::info!(
        reports = outcomes.len(),
        failed_deliveries = unsent,
        failed_reports = failed_reports.len(),
        "report run finished"
    );
    Ok(out)
}
