//! The events a sync emits, with their documented shapes (docs/events.md).

use super::sync::{SyncOutcome, SyncReport};
use crate::ports::Event;
use serde_json::json;

/// `SyncCompleted` for a successful run, `SyncFailed` for a failed one; none for a run
/// interrupted at a checkpoint (it continues).
pub fn sync_event(report: &SyncReport, now: chrono::DateTime<chrono::Utc>) -> Option<Event> {
    let detail_type = match report.outcome {
        SyncOutcome::Succeeded => "SyncCompleted",
        SyncOutcome::Failed => "SyncFailed",
        SyncOutcome::Interrupted => return None,
    };
    Some(Event {
        detail_type: detail_type.to_string(),
        detail: json!({
            "version": 1,
            "organization_id": report.org,
            "entity": report.entity,
            "run_id": report.run_id,
            "mode": report.mode,
            "resumed": report.resumed,
            "fetched": report.fetched,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "api_calls": report.api_calls,
            "duration_ms": report.duration_ms,
            "started_at": report.started_at,
            "error": report.error,
        }),
        time: now,
    })
}
