//! Sync jobs as queue messages, and which organization×entity pairs are due.

use super::{Datastore, EngineError, SyncMode};
use crate::domain::schedule::is_due;
use crate::domain::{Entity, OrgId, Organization};
use crate::ports::OutMessage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncJob {
    pub org: OrgId,
    pub entity: Entity,
    pub mode: SyncMode,
    /// Asked for by a webhook or a `SyncRequested` event: runs whether or not the pair is
    /// due, and waits for a running sync of the pair instead of being dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requested: bool,
    /// One slice of a sliced full sync, worked by its own worker (the sync-worker on AWS
    /// fans a large full sync out into one job per slice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<SliceJob>,
}

/// Which slice of which full sync a job works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceJob {
    /// The full sync's run id (a job of an older run finds its run over and does nothing).
    pub run: String,
    pub index: u32,
}

impl SyncJob {
    /// One live job per organization×entity: the queue drops a second one.
    /// A slice job: one live job per slice of one run.
    pub fn dedup_id(&self) -> String {
        match &self.slice {
            None => format!("sync:{}:{}", self.org, self.entity.name()),
            Some(s) => format!(
                "sync:{}:{}:{}:{}",
                self.org,
                self.entity.name(),
                s.run,
                s.index
            ),
        }
    }

    /// The FIFO message group: the organization, so that its jobs run one after another;
    /// a slice job has a group of its own per slice, so that the slices run at once.
    pub fn group_id(&self) -> String {
        match &self.slice {
            None => self.org.to_string(),
            Some(s) => format!("{}:{}:slice{}", self.org, self.entity.name(), s.index),
        }
    }

    pub fn to_message(&self) -> OutMessage {
        let mut m = OutMessage::new(serde_json::to_string(self).expect("jobs serialize"));
        m.dedup_id = Some(self.dedup_id());
        m.group_id = Some(self.group_id());
        m
    }

    pub fn parse(body: &str) -> Result<Self, EngineError> {
        serde_json::from_str(body)
            .map_err(|e| EngineError::Invalid(format!("sync job message: {e}")))
    }
}

impl Datastore {
    /// Jobs for every enabled organization whose `entity` (or any entity) is due now.
    pub async fn due_jobs(&self, entity: Option<Entity>) -> Result<Vec<SyncJob>, EngineError> {
        let now = self.clock.unix();
        let mut jobs = Vec::new();
        for org in self
            .list_orgs()
            .await?
            .into_iter()
            .filter(|o| o.is_enabled())
        {
            for e in Entity::ALL
                .into_iter()
                .filter(|e| entity.is_none_or(|x| x == *e))
            {
                if self.pair_due(&org, e, now).await? {
                    jobs.push(SyncJob {
                        org: org.id,
                        entity: e,
                        mode: SyncMode::Auto,
                        requested: false,
                        slice: None,
                    });
                }
            }
        }
        Ok(jobs)
    }

    /// Whether a queued job is still due when a worker takes it: between the due check and
    /// the queue's duplicate check, the same pair may have run and finished.
    pub async fn still_due(&self, job: &SyncJob) -> Result<bool, EngineError> {
        let org = self.get_org(job.org).await?;
        Ok(org.is_enabled() && self.pair_due(&org, job.entity, self.clock.unix()).await?)
    }

    async fn pair_due(&self, org: &Organization, e: Entity, now: i64) -> Result<bool, EngineError> {
        let (cursor, _) = self.load_cursor(org.id, e).await?;
        let f = self.load_failures(org.id, e).await?;
        if f.is_disabled() {
            return Ok(false);
        }
        // An unfinished run is due at once (it resumes from its checkpoint), unless
        // it failed: then the failure backoff applies.
        Ok(
            (cursor.in_progress.is_some() && f.consecutive_failures == 0)
                || is_due(
                    org,
                    e,
                    now,
                    cursor.last_success_at,
                    f.last_failure_at,
                    f.consecutive_failures,
                ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_jobs_have_a_group_and_dedup_id_per_slice_and_run() {
        let pair = SyncJob {
            org: 7,
            entity: Entity::Supporters,
            mode: SyncMode::Auto,
            requested: false,
            slice: None,
        };
        let slice = |run: &str, index| SyncJob {
            slice: Some(SliceJob {
                run: run.into(),
                index,
            }),
            ..pair.clone()
        };
        let (a, b, c) = (slice("r1", 0), slice("r1", 1), slice("r2", 0));
        assert_eq!(pair.to_message().group_id.as_deref(), Some("7"));
        let groups = [&pair, &a, &b].map(|j| j.to_message().group_id.unwrap());
        assert!(groups[0] != groups[1] && groups[1] != groups[2] && groups[0] != groups[2]);
        let dedups = [&pair, &a, &b, &c].map(|j| j.dedup_id());
        for i in 0..4 {
            for k in i + 1..4 {
                assert_ne!(dedups[i], dedups[k]);
            }
        }
        // A pair job's message is what it was; a slice job reads back whole.
        assert!(!pair.to_message().body.contains("slice"));
        assert_eq!(SyncJob::parse(&b.to_message().body).unwrap(), b);
    }
}
