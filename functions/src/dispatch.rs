//! `dispatch`: invoked per entity by an EventBridge Scheduler schedule (input
//! `{"entity":"supporters"}`) or a classic scheduled rule (`detail.entity`); enqueues one job
//! per due organization.

use crate::Services;
use anyhow::{anyhow, Context, Result};
use classy_sync_core::domain::Entity;
use serde_json::Value;

/// The entity an invocation is for, from either event shape.
pub fn entity_of(event: &Value) -> Result<Entity> {
    let raw = event
        .get("entity")
        .or_else(|| event.get("detail").and_then(|d| d.get("entity")))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            anyhow!("event has no \"entity\" (expected {{\"entity\":\"supporters\"}})")
        })?;
    raw.parse::<Entity>().context("event field \"entity\"")
}

pub async fn handle(services: &Services, event: Value) -> Result<Value> {
    let entity = entity_of(&event)?;
    let report = services
        .engine
        .dispatch(
            entity,
            services.queue.as_ref(),
            services.settings.marker_ttl,
        )
        .await?;
    tracing::info!(
        entity = %entity,
        enqueued = report.enqueued.len(),
        already_queued = report.already_queued.len(),
        running = report.running.len(),
        "dispatched"
    );
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_event_shapes_name_the_entity() {
        assert_eq!(
            entity_of(&json!({"entity": "transactions"})).unwrap(),
            Entity::Transactions
        );
        let scheduled =
            json!({"detail-type": "Scheduled Event", "detail": {"entity": "recurring-plans"}});
        assert_eq!(entity_of(&scheduled).unwrap(), Entity::RecurringPlans);
        let e = entity_of(&json!({"entity": "donations"})).unwrap_err();
        assert!(format!("{e:#}").contains("donations"));
        assert!(entity_of(&json!({})).is_err());
    }
}
