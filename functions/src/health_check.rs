//! `health-check`: every 5 minutes, runs the health monitor, records the summary (90-day
//! history) and publishes `HealthChanged` only when the overall status changed.

use crate::Services;
use anyhow::Result;
use classy_sync_core::engine::alerts::health_changed_event;
use serde_json::{json, Value};

pub async fn handle(services: &Services) -> Result<Value> {
    let (report, previous, changed) = services.health()?.run_and_record().await?;
    if changed {
        let event = health_changed_event(previous, &report, services.data.clock.now());
        services.bus.publish(vec![event]).await?;
    }
    tracing::info!(
        status = %report.status,
        changed,
        duration_ms = report.duration_ms,
        "health checked"
    );
    Ok(json!({
        "status": report.status,
        "previous": previous,
        "changed": changed,
        "duration_ms": report.duration_ms,
    }))
}
