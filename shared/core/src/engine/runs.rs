//! Run records: one per job (`RUN#<entity>#<start>#<id>`, kept 90 days) plus a copy of the
//! newest under `LASTRUN#<entity>` so status needs one read per organization×entity.

use super::sync::SyncReport;
use super::{Datastore, EngineError};
use crate::domain::keys::{last_run_sk, org_pk, run_prefix, run_sk};
use crate::domain::{Entity, OrgId};
use crate::ports::store::{Item, SkRange, WriteOp};

impl Datastore {
    pub(crate) async fn save_run(&self, report: &SyncReport) -> Result<(), EngineError> {
        let pk = org_pk(report.org);
        let expires = self.clock.unix() + self.options.run_retention.as_secs() as i64;
        let run = Item::json(
            &pk,
            run_sk(report.entity, report.started_at_ms, &report.run_id),
            report,
        )
        .with_expiry(expires);
        let last = Item::json(&pk, last_run_sk(report.entity), report);
        self.store
            .batch_write(vec![WriteOp::Put(run), WriteOp::Put(last)])
            .await?;
        Ok(())
    }

    pub async fn last_run(
        &self,
        org: OrgId,
        entity: Entity,
    ) -> Result<Option<SyncReport>, EngineError> {
        match self.store.get(&org_pk(org), &last_run_sk(entity)).await? {
            Some(i) => Ok(Some(i.parse()?)),
            None => Ok(None),
        }
    }

    /// Run records of one organization×entity, oldest first, at most `limit`.
    pub async fn runs(
        &self,
        org: OrgId,
        entity: Entity,
        limit: usize,
    ) -> Result<Vec<SyncReport>, EngineError> {
        let page = self
            .store
            .query(
                &org_pk(org),
                &SkRange::prefix(run_prefix(entity)),
                None,
                limit,
            )
            .await?;
        page.items
            .iter()
            .map(|i| i.parse().map_err(EngineError::from))
            .collect()
    }
}
