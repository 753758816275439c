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

/// `SyncRequested`: one sync of `org` (every entity, or `entity`), full when asked,
/// coalesced with what is queued or running for each pair (the QUEUED marker and the lease,
/// as webhooks are). An unknown or disabled organization is answered, not retried.
pub async fn handle_requested(
    services: &Services,
    org: classy_sync_core::domain::OrgId,
    entity: Option<Entity>,
    full: bool,
) -> Result<Value> {
    use classy_sync_core::engine::jobs::SyncJob;
    use classy_sync_core::engine::{EngineError, SyncMode};
    match services.data.get_org(org).await {
        Ok(o) if o.is_enabled() => {}
        Ok(_) | Err(EngineError::UnknownOrg(_)) => {
            tracing::warn!(org, "SyncRequested for an unknown or disabled organization");
            return Ok(serde_json::json!({
                "organization_id": org,
                "refused": "unknown or disabled organization",
            }));
        }
        Err(e) => return Err(e.into()),
    }
    let entities = entity.map_or_else(|| Entity::ALL.to_vec(), |e| vec![e]);
    let mode = if full {
        SyncMode::Full
    } else {
        SyncMode::Incremental
    };
    let mut done = serde_json::Map::new();
    for e in entities {
        let job = SyncJob {
            org,
            entity: e,
            mode,
            requested: true,
            slice: None,
        };
        let r = services
            .data
            .request_sync(
                job,
                services.queue.as_ref(),
                std::time::Duration::ZERO,
                services.settings.marker_ttl,
            )
            .await?;
        done.insert(e.name().to_owned(), serde_json::to_value(r)?);
    }
    tracing::info!(org, full, requested = ?done, "sync requested");
    Ok(serde_json::json!({ "organization_id": org, "entities": done }))
}
