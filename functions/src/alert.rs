//! `alert`: on `HealthChanged`, `SyncFailed`, `CredentialExpiring`, the dead-letter alarm and
//! a 15-minute schedule, applies the alert rules (state in DynamoDB) to the health of the
//! moment: the store, queue and sync-state checks run now, the Classy and destination results
//! come from the report the health-check function recorded (so a burst of events spends no
//! Classy or Mailchimp budget; the function has no Classy client). Publishes
//! `CredentialExpiring` once per credential stage. On the schedule it also retries the failed
//! notification deliveries that are due.

use crate::events::AlertTrigger;
use crate::Services;
use anyhow::{Context, Result};
use classy_sync_core::domain::alerts::{default_rules, parse_rules, Rule};
use classy_sync_core::engine::alerts::Alerts;
use classy_sync_core::ports::Notifier;
use serde_json::{json, Value};
use std::sync::Arc;

pub const ENV_ALERT_RULES: &str = "CLASSY_SYNC_ALERT_RULES";

/// `CLASSY_SYNC_ALERT_RULES` read through `var` (the function's declared environment): a
/// JSON array of rules; the defaults when unset.
pub fn rules_from(var: impl Fn(&str) -> Option<String>) -> Result<Vec<Rule>> {
    match var(ENV_ALERT_RULES) {
        Some(j) if !j.trim().is_empty() => {
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
    let report = services
        .root
        .health_without_classy()
        .run_with_recorded()
        .await?;
    let alerts = Alerts::new(services.data.clone(), notifier.clone(), rules);
    let eval = alerts.evaluate(&report).await?;
    if !eval.events.is_empty() {
        services.bus.publish(eval.events.clone()).await?;
    }
    // Failed deliveries due for another attempt (alerts, small reports; a large report is
    // retried by the report function, which rebuilds it): on the schedule and on a bare
    // invocation, not on every event of a burst.
    let retries = if retries_on(&trigger) {
        match notifier.retry_due(false).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "retrying failed deliveries failed");
                None
            }
        }
    } else {
        None
    };
    let retried = retries.as_ref().map_or(0, Vec::len);
    let still_failed = retries.as_ref().map_or(0, |r| {
        r.iter()
            .filter(|d| d.status != classy_sync_core::ports::DeliveryStatus::Sent)
            .count()
    });
    tracing::info!(
        trigger,
        firing = eval.firing,
        notifications = eval.messages.len(),
        retried,
        still_failed,
        "alerts evaluated"
    );
    Ok(json!({
        "trigger": trigger,
        "health": report.status,
        "firing": eval.firing,
        "messages": eval.messages,
        "failed_deliveries": eval.failed_deliveries,
        "retried_deliveries": retried,
        "retries_failed": still_failed,
    }))
}

/// The triggers on which due deliveries are retried: the schedule and a bare invocation.
fn retries_on(trigger: &str) -> bool {
    matches!(trigger, "Scheduled Event" | "invocation")
}

/// The notification service: channels and delivery records in the table, channel secrets in
/// Secrets Manager, email through SES v2 (`CLASSY_SYNC_EMAIL_FROM` and the other
/// `NotifySettings` variables).
pub fn notifier(services: &Services) -> Result<Arc<dyn Notifier>> {
    Ok(Arc::new(services.root.notifier()?))
}
