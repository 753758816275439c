//! Per organization×entity sync state: the incremental cursor with the in-flight checkpoint
//! (`CURSOR#<entity>`) and the failure streak (`FAIL#<entity>`).

use super::{Datastore, EngineError};
use crate::domain::keys::{cursor_sk, fail_sk, org_pk};
use crate::domain::{Entity, OrgId};
use crate::ports::store::{Condition, Item};
use serde::{Deserialize, Serialize};

/// A position in an organization×entity's stream of changes, ordered by `updated_at`.
///
/// Mid-run (a checkpoint) it means: everything before second `ts` is stored, and so are the
/// records `ids_at_ts` of that second, so a resumed walk skips exactly those.
///
/// Committed (between runs) it is where the next run starts reading. Classy stamps
/// `updated_at` with one-second precision when it writes, and a record can change twice in
/// one second, or become visible a little after its timestamp. So a run that ends on a
/// recent second does not commit that second: it commits `now - SETTLED_AFTER_SECS` and the
/// next run reads that window again (changed records are written, unchanged ones only
/// compared). Once the newest second is older than that, it commits the second with
/// `complete` and the next run reads strictly after it. Nothing is missed, nothing is
/// written twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub ts: i64,
    pub ids_at_ts: Vec<u64>,
    /// Read strictly after `ts`.
    #[serde(default)]
    pub complete: bool,
}

/// A second this old can no longer receive records (Classy stamps at write time).
pub const SETTLED_AFTER_SECS: i64 = 120;

impl Position {
    /// Where the next run starts after a walk that saw everything up to `newest` (unix
    /// seconds), decided at `now`.
    pub fn committed_after(newest: i64, now: i64) -> Position {
        let settled = now - SETTLED_AFTER_SECS;
        if newest <= settled {
            Position {
                ts: newest,
                ids_at_ts: Vec::new(),
                complete: true,
            }
        } else {
            Position {
                ts: settled,
                ids_at_ts: Vec::new(),
                complete: false,
            }
        }
    }
}

impl Position {
    /// Whether a record at (`ts`, `id`) is already covered by this position.
    pub fn covers(&self, ts: i64, id: u64) -> bool {
        ts < self.ts || (ts == self.ts && self.ids_at_ts.contains(&id))
    }

    /// Moves past a record (records arrive in `updated_at` order).
    pub fn advance(&mut self, ts: i64, id: u64) {
        if ts > self.ts {
            self.ts = ts;
            self.ids_at_ts.clear();
            self.complete = false;
        }
        if ts == self.ts && !self.ids_at_ts.contains(&id) {
            self.ids_at_ts.push(id);
        }
    }
}

/// Where an unfinished run stands; saved after every page so a killed run resumes there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Checkpoint {
    /// Full sync walks ids upwards. `then` is where incremental runs start once it is done,
    /// fixed before it began from the newest `updated_at` at that time: anything changed
    /// during the walk is stamped later, so it is read again afterwards.
    ///
    /// A sliced full sync (`slices` > 0) walks several id ranges at once; where each stands
    /// is kept in its own item (`SLICE#<entity>#<index>`) and `after_id` is unused.
    Full {
        run_id: String,
        after_id: u64,
        then: Position,
        #[serde(default, skip_serializing_if = "is_zero")]
        slices: u32,
    },
    Incremental {
        run_id: String,
        at: Position,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Checkpoint {
    pub fn run_id(&self) -> &str {
        match self {
            Checkpoint::Full { run_id, .. } | Checkpoint::Incremental { run_id, .. } => run_id,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The committed position; `None` until a first full sync completed.
    pub committed: Option<Position>,
    pub in_progress: Option<Checkpoint>,
    pub last_success_at: Option<i64>,
    pub last_full_at: Option<i64>,
    /// Records of the pair held in quarantine (they do not decode) after the latest page.
    #[serde(default)]
    pub quarantined: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureState {
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_failure_at: Option<i64>,
    pub last_success_at: Option<i64>,
    /// Set when the streak reached `max_consecutive_failures`: the schedule skips this
    /// organization×entity until `failures reset` or a successful sync.
    #[serde(default)]
    pub disabled_at: Option<i64>,
}

impl FailureState {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

impl Datastore {
    pub async fn load_cursor(
        &self,
        org: OrgId,
        entity: Entity,
    ) -> Result<(Cursor, u64), EngineError> {
        match self.store.get(&org_pk(org), &cursor_sk(entity)).await? {
            Some(item) => Ok((item.parse()?, item.version)),
            None => Ok((Cursor::default(), 0)),
        }
    }

    /// Saves the cursor if nobody else changed it since `version`; returns the new version.
    pub async fn save_cursor(
        &self,
        org: OrgId,
        entity: Entity,
        cursor: &Cursor,
        version: u64,
    ) -> Result<u64, EngineError> {
        let cond = if version == 0 {
            Condition::NotExists
        } else {
            Condition::VersionIs(version)
        };
        let item = Item::json(org_pk(org), cursor_sk(entity), cursor).with_version(version + 1);
        self.store.put(item, cond).await.map_err(|e| {
            if e.is_condition_failed() {
                EngineError::LeaseLost { org, entity }
            } else {
                e.into()
            }
        })?;
        Ok(version + 1)
    }

    /// Forgets the cursor so the next run is a full sync.
    pub async fn reset_cursor(&self, org: OrgId, entity: Entity) -> Result<(), EngineError> {
        self.store
            .delete(&org_pk(org), &cursor_sk(entity), Condition::Always)
            .await?;
        Ok(())
    }

    pub async fn load_failures(
        &self,
        org: OrgId,
        entity: Entity,
    ) -> Result<FailureState, EngineError> {
        match self.store.get(&org_pk(org), &fail_sk(entity)).await? {
            Some(item) => Ok(item.parse()?),
            None => Ok(FailureState::default()),
        }
    }

    pub(crate) async fn record_outcome(
        &self,
        org: OrgId,
        entity: Entity,
        error: Option<&str>,
    ) -> Result<FailureState, EngineError> {
        let mut f = self.load_failures(org, entity).await?;
        let now = self.clock.unix();
        match error {
            None => {
                f.consecutive_failures = 0;
                f.last_success_at = Some(now);
                f.disabled_at = None;
            }
            Some(e) => {
                f.consecutive_failures += 1;
                f.last_error = Some(e.to_string());
                f.last_failure_at = Some(now);
                if f.consecutive_failures >= self.options.max_consecutive_failures.max(1)
                    && f.disabled_at.is_none()
                {
                    f.disabled_at = Some(now);
                    tracing::warn!(org, entity = %entity, failures = f.consecutive_failures,
                        "disabled after consecutive failures; `classy-sync failures reset` re-enables");
                }
            }
        }
        self.store
            .put(
                Item::json(org_pk(org), fail_sk(entity), &f),
                Condition::Always,
            )
            .await?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_second_is_covered_only_for_seen_ids() {
        let mut p = Position::default();
        p.advance(100, 1);
        p.advance(100, 2);
        assert!(p.covers(99, 50));
        assert!(p.covers(100, 1) && p.covers(100, 2));
        assert!(
            !p.covers(100, 3),
            "same second, new record: must be fetched"
        );
        p.advance(101, 3);
        assert_eq!(
            p,
            Position {
                ts: 101,
                ids_at_ts: vec![3],
                complete: false
            }
        );
        assert!(p.covers(100, 3));
    }
}
