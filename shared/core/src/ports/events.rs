//! Domain events (`SyncCompleted`, `SyncFailed`, ...) published for other functions and for
//! customers' own rules. EventBridge on AWS; a JSON-lines file locally.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The `source` of every classy-sync event.
pub const EVENT_SOURCE: &str = "classy-sync";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// EventBridge `detail-type`, e.g. `SyncCompleted`.
    pub detail_type: String,
    pub detail: serde_json::Value,
    pub time: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    #[error("{failed} of {total} events were not accepted: {reason}")]
    Rejected {
        failed: usize,
        total: usize,
        reason: String,
    },
}

/// EventBridge's batch limit.
pub const MAX_EVENTS_PER_CALL: usize = 10;

#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, events: Vec<Event>) -> Result<(), EventError>;
}

/// Opens an event bus that a user names (a change feed's target bus): EventBridge on both
/// backends, wired by the composition root so destinations never build an SDK client.
#[async_trait]
pub trait EventBusConnector: Send + Sync {
    async fn connect(&self, bus: &str) -> Result<Arc<dyn EventBus>, EventError>;
}
