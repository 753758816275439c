//! `dispatch`: invoked per entity by an EventBridge Scheduler schedule (input
//! `{"entity":"supporters"}`, see [`crate::events::DispatchEvent`]); enqueues one job per due
//! organization.

use crate::Services;
use anyhow::Result;
use classy_sync_core::domain::Entity;
use serde_json::Value;

pub async fn handle(services: &Services, entity: Entity) -> Result<Value> {
    let report = services
        .data
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
        not_enqueued = report.not_enqueued.len(),
        "dispatched"
    );
    if let Some(e) = &report.queue_error {
        // The refused pairs' markers are gone: a retry of this invocation (or the next
        // schedule) sends just those. Failing makes the Errors alarm see it.
        anyhow::bail!(
            "{} of {} due organizations were not enqueued: {e}",
            report.not_enqueued.len(),
            report.not_enqueued.len() + report.enqueued.len()
        );
    }
    Ok(serde_json::to_value(report)?)
}
