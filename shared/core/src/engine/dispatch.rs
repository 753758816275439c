//! Fan-out for the serverless deployment: for one entity, every enabled organization that is
//! due gets one job on the queue, unless a job for that pair is already queued or running.
//! A `QUEUED#<entity>` marker (conditional put, with an expiry) stands for "queued or
//! running"; the worker clears it when the job ends and refreshes it when the job continues.

use super::jobs::SyncJob;
use super::{Datastore, EngineError};
use crate::domain::keys::{lease_sk, org_pk, queued_sk};
use crate::domain::{Entity, OrgId};
use crate::ports::queue::send_in_batches;
use crate::ports::store::{Condition, Item};
use crate::ports::JobQueue;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    pub entity: Option<Entity>,
    pub enqueued: Vec<OrgId>,
    pub already_queued: Vec<OrgId>,
    pub running: Vec<OrgId>,
    /// Due organizations the queue refused: their markers are removed, so the next dispatch
    /// tries them again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_enqueued: Vec<OrgId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_error: Option<String>,
}

impl Datastore {
    /// Enqueues one job per due, enabled organization for `entity`. `marker_ttl` bounds how
    /// long a lost job blocks the next one (longer than a worker's run plus its retries).
    pub async fn dispatch(
        &self,
        entity: Entity,
        queue: &dyn JobQueue,
        marker_ttl: Duration,
    ) -> Result<DispatchReport, EngineError> {
        let mut report = DispatchReport {
            entity: Some(entity),
            ..Default::default()
        };
        let now = self.clock.unix();
        let mut to_send = Vec::new();
        for job in self.due_jobs(Some(entity)).await? {
            let pk = org_pk(job.org);
            if let Some(lease) = self.store.get(&pk, &lease_sk(entity)).await? {
                if lease.expires_at.is_some_and(|t| t >= now) {
                    report.running.push(job.org);
                    continue;
                }
            }
            let marker = Item::json(&pk, queued_sk(entity), &job)
                .with_expiry(now + marker_ttl.as_secs() as i64);
            match self
                .store
                .put(marker, Condition::NotExistsOrExpired { now })
                .await
            {
                Ok(()) => to_send.push(job),
                Err(e) if e.is_condition_failed() => report.already_queued.push(job.org),
                Err(e) => return Err(e.into()),
            }
        }
        let not_sent =
            send_in_batches(queue, to_send.iter().map(SyncJob::to_message).collect()).await;
        for (i, job) in to_send.iter().enumerate() {
            if not_sent.positions.contains(&i) {
                // Nothing was queued for this pair: let the next dispatch try again.
                self.job_finished(job.org, entity).await?;
                report.not_enqueued.push(job.org);
            } else {
                report.enqueued.push(job.org);
            }
        }
        report.queue_error = not_sent.first_error;
        Ok(report)
    }

    /// The job for this pair has ended (done, failed for good, or dropped).
    pub async fn job_finished(&self, org: OrgId, entity: Entity) -> Result<(), EngineError> {
        self.store
            .delete(&org_pk(org), &queued_sk(entity), Condition::Always)
            .await?;
        Ok(())
    }

    /// The job continues in a new message: keep the pair marked as queued.
    pub async fn job_continues(
        &self,
        job: &SyncJob,
        marker_ttl: Duration,
    ) -> Result<(), EngineError> {
        let marker = Item::json(org_pk(job.org), queued_sk(job.entity), job)
            .with_expiry(self.clock.unix() + marker_ttl.as_secs() as i64);
        self.store.put(marker, Condition::Always).await?;
        Ok(())
    }
}
