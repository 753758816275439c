//! `alert`: on `HealthChanged`, `SyncFailed`, `CredentialExpiring`, the dead-letter alarm and
//! a 15-minute schedule, checks health and applies the alert rules (state in DynamoDB);
//! publishes `CredentialExpiring` once per credential stage.

use crate::Services;
use anyhow::{Context, Result};
use classy_sync::domain::alerts::{default_rules, parse_rules, Rule};
use classy_sync::engine::alerts::Alerts;
use classy_sync::ports::Notifier;
use serde_json::{json, Value};
use std::sync::Arc;

/// `CLASSY_SYNC_ALERT_RULES`: a JSON array of rules; the defaults when unset.
pub fn rules_from_env() -> Result<Vec<Rule>> {
    match std::env::var("CLASSY_SYNC_ALERT_RULES") {
        Ok(j) if !j.trim().is_empty() => {
            parse_rules(&j).context("environment variable CLASSY_SYNC_ALERT_RULES")
        }
        _ => Ok(default_rules()),
    }
}

pub async fn handle(
    services: &Services,
    notifier: Arc<dyn Notifier>,
    rules: Vec<Rule>,
    event: Value,
) -> Result<Value> {
    let trigger = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("invocation")
        .to_string();
    let report = crate::health_check::monitor(services).run(None).await;
    let alerts = Alerts::new(services.engine.clone(), notifier, rules);
    let eval = alerts.evaluate(&report).await?;
    if !eval.events.is_empty() {
        services.bus.publish(eval.events.clone()).await?;
    }
    tracing::info!(
        trigger,
        firing = eval.firing,
        notifications = eval.messages.len(),
        "alerts evaluated"
    );
    Ok(json!({
        "trigger": trigger,
        "health": report.status,
        "firing": eval.firing,
        "messages": eval.messages,
        "failed_deliveries": eval.failed_deliveries,
    }))
}

/// Until the notification service (branch `notify`) is merged, messages go to the function's
/// log (CloudWatch Logs) as one structured line each; the integrator swaps this for the
/// configured `NotificationService`.
pub fn notifier() -> Arc<dyn Notifier> {
    Arc::new(LogNotifier)
}

struct LogNotifier;

#[async_trait::async_trait]
impl Notifier for LogNotifier {
    async fn notify(
        &self,
        m: &classy_sync::ports::Message,
        channels: &[String],
    ) -> Result<Vec<classy_sync::ports::DeliveryReport>, classy_sync::ports::NotifyError> {
        tracing::warn!(
            message_id = %m.id,
            kind = ?m.kind,
            severity = m.severity.as_str(),
            subject = %m.subject,
            text = %m.text,
            "alert notification"
        );
        Ok(channels
            .iter()
            .map(|c| classy_sync::ports::DeliveryReport {
                message_id: m.id.clone(),
                channel: c.clone(),
                status: classy_sync::ports::DeliveryStatus::Sent,
                attempts: 1,
                error: None,
            })
            .collect())
    }
}
