//! What can stop a sync, with enough context to act on.

use crate::domain::{Entity, OrgId};
use crate::ports::{QueueError, SecretError, SourceError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("organization {0} is not onboarded (see `classy-sync org add`)")]
    UnknownOrg(OrgId),
    #[error("organization {0} already exists")]
    OrgExists(OrgId),
    #[error("organization {0} is disabled")]
    OrgDisabled(OrgId),
    #[error("another sync of organization {org} {entity} holds the lease until {until}")]
    LeaseHeld {
        org: OrgId,
        entity: Entity,
        until: String,
    },
    #[error("lost the lease on organization {org} {entity} to another worker")]
    LeaseLost { org: OrgId, entity: Entity },
    #[error("{entity} record {id} of organization {org}: {message}")]
    BadRecord {
        org: OrgId,
        entity: Entity,
        id: String,
        message: String,
    },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cancelled")]
    Cancelled,
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl EngineError {
    /// Errors that concern one org×entity run and count as its failure.
    pub fn counts_as_failure(&self) -> bool {
        !matches!(self, EngineError::LeaseHeld { .. } | EngineError::Cancelled)
    }
}
