//! `alert`: on `HealthChanged`, `SyncFailed`, `CredentialExpiring`, the dead-letter alarm and
//! a 15-minute schedule, checks health and applies the alert rules (state in DynamoDB);
//! publishes `CredentialExpiring` once per credential stage.

use crate::events::AlertTrigger;
use crate::Services;
use anyhow::{Context, Result};
use classy_sync_core::domain::alerts::{default_rules, parse_rules, Rule};
use classy_sync_core::engine::alerts::Alerts;
use classy_sync_core::ports::Notifier;
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
    trigger: AlertTrigger,
) -> Result<Value> {
    let trigger = trigger.detail_type.unwrap_or_else(|| "invocation".into());
    let report = services.health()?.run(None).await;
    let alerts = Alerts::new(services.data.clone(), notifier, rules);
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

/// The notification service: channels and delivery records in the table, channel secrets in
/// Secrets Manager, email through SES v2 (`CLASSY_SYNC_EMAIL_FROM` and the other
/// `NotifySettings` variables).
pub fn notifier(services: &Services) -> Result<Arc<dyn Notifier>> {
    Ok(Arc::new(services.root.notifier()?))
}
