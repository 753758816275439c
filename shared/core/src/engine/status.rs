//! What `classy-sync status` shows per organization×entity: last run, cursor, failures.

use super::state::{Checkpoint, Cursor, FailureState};
use super::sync::SyncReport;
use super::{Datastore, EngineError};
use crate::domain::{Entity, OrgId, Timestamp};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct EntityStatus {
    pub org: OrgId,
    pub org_name: String,
    pub org_status: String,
    pub entity: Entity,
    /// The committed incremental cursor (Classy timestamp), if any.
    pub cursor: Option<String>,
    /// `full` / `incremental` when a run was left unfinished and will resume.
    pub resumable: Option<String>,
    pub last_success_at: Option<String>,
    pub last_run: Option<SyncReport>,
    pub failures: FailureState,
    /// Records of the pair held in quarantine (they do not decode).
    pub quarantined: u64,
}

fn describe(cursor: &Cursor) -> (Option<String>, Option<String>) {
    let committed = cursor
        .committed
        .as_ref()
        .map(|p| Timestamp::from_unix(p.ts).to_classy());
    let resumable = cursor.in_progress.as_ref().map(|c| match c {
        Checkpoint::Full { slices, .. } if *slices > 0 => format!("full in {slices} slices"),
        Checkpoint::Full { after_id, .. } => format!("full after id {after_id}"),
        Checkpoint::Incremental { at, .. } => {
            format!("incremental at {}", Timestamp::from_unix(at.ts).to_classy())
        }
    });
    (committed, resumable)
}

impl Datastore {
    pub async fn status(&self, only: Option<OrgId>) -> Result<Vec<EntityStatus>, EngineError> {
        let orgs = match only {
            Some(id) => vec![self.get_org(id).await?],
            None => self.list_orgs().await?,
        };
        let mut out = Vec::new();
        for org in orgs {
            for entity in Entity::ALL {
                let (cursor, _) = self.load_cursor(org.id, entity).await?;
                let (committed, resumable) = describe(&cursor);
                out.push(EntityStatus {
                    org: org.id,
                    org_name: org.name.clone(),
                    org_status: org.status.to_string(),
                    entity,
                    cursor: committed,
                    resumable,
                    last_success_at: cursor
                        .last_success_at
                        .map(|t| Timestamp::from_unix(t).to_rfc3339()),
                    last_run: self.last_run(org.id, entity).await?,
                    failures: self.load_failures(org.id, entity).await?,
                    quarantined: cursor.quarantined,
                });
            }
        }
        Ok(out)
    }
}
