//! Failure recovery: which organization×entity pairs are failing or disabled, and putting
//! them back on the schedule. The streaks themselves live in `FAIL#<entity>` (engine/state.rs);
//! disabling is per pair (`FailureState::disabled_at`) so one broken entity does not stop an
//! organization's others, and the organization's own enable/disable stays the operator's.

use super::state::FailureState;
use super::{Datastore, EngineError};
use crate::domain::keys::{fail_sk, org_pk};
use crate::domain::{Entity, OrgId};
use crate::ports::store::{Condition, Item};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FailingPair {
    pub org: OrgId,
    pub org_name: String,
    pub entity: Entity,
    pub failures: FailureState,
}

impl Datastore {
    /// Pairs with a failure streak or disabled by one (`only`: one organization).
    pub async fn failing_pairs(
        &self,
        only: Option<OrgId>,
    ) -> Result<Vec<FailingPair>, EngineError> {
        let orgs = match only {
            Some(id) => vec![self.get_org(id).await?],
            None => self.list_orgs().await?,
        };
        let mut out = Vec::new();
        for org in orgs {
            for entity in Entity::ALL {
                let f = self.load_failures(org.id, entity).await?;
                if f.consecutive_failures > 0 || f.is_disabled() {
                    out.push(FailingPair {
                        org: org.id,
                        org_name: org.name.clone(),
                        entity,
                        failures: f,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Clears the streak (and the automatic disable) so the pair is due at once. Keeps the
    /// last error and the last success for the record. Returns the pairs that changed.
    pub async fn reset_failures(
        &self,
        org: OrgId,
        entity: Option<Entity>,
    ) -> Result<Vec<Entity>, EngineError> {
        self.get_org(org).await?;
        let mut changed = Vec::new();
        for e in Entity::ALL
            .into_iter()
            .filter(|e| entity.is_none_or(|x| x == *e))
        {
            let mut f = self.load_failures(org, e).await?;
            if f.consecutive_failures == 0 && !f.is_disabled() {
                continue;
            }
            f.consecutive_failures = 0;
            f.disabled_at = None;
            f.last_failure_at = None;
            self.store
                .put(Item::json(org_pk(org), fail_sk(e), &f), Condition::Always)
                .await?;
            changed.push(e);
        }
        Ok(changed)
    }
}

/// Dead letters, oldest first, with the job each carries when it parses.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub id: String,
    pub receive_count: u32,
    pub job: Option<super::jobs::SyncJob>,
    pub body: String,
}

pub async fn dead_letters(
    queue: &dyn crate::ports::JobQueue,
    limit: usize,
) -> Result<Vec<DeadLetter>, EngineError> {
    Ok(queue
        .dead_letters(limit)
        .await?
        .into_iter()
        .map(|m| DeadLetter {
            job: super::jobs::SyncJob::parse(&m.body).ok(),
            id: m.id,
            receive_count: m.receive_count,
            body: m.body,
        })
        .collect())
}

/// Moves dead letters back to the queue: the given ids, or all of them (up to 10,000).
/// Replaying twice is harmless: a message already moved is no longer a dead letter.
pub async fn replay_dead_letters(
    queue: &dyn crate::ports::JobQueue,
    ids: &[String],
) -> Result<usize, EngineError> {
    let ids: Vec<String> = if ids.is_empty() {
        queue
            .dead_letters(10_000)
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect()
    } else {
        ids.to_vec()
    };
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(queue.redrive(&ids).await?)
}
