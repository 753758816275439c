//! Usage analytics against the store: operation records are written here
//! (`ORG#<id>` / `OP#<operation>#<start ms>#<id>`, expiring with the run records), and the
//! usage of a period is read from each organization's run records and operation records by
//! sort-key range from the period's start (no scan of anything older), streamed page by page
//! into the pure aggregation of `domain::usage`.

use super::sync::{SyncOutcome, SyncReport};
use super::{Datastore, EngineError};
use crate::domain::keys::run_sk_from;
use crate::domain::keys::{op_prefix, op_sk, op_sk_from, org_pk, prefix_end, run_prefix};
use crate::domain::usage::{OpRecord, Operation, Usage, UsageBuilder};
use crate::domain::{Entity, OrgId};
use crate::ports::store::{for_each_page, Item, SkRange};
use std::collections::BTreeMap;

/// A sync's run record as an operation.
pub fn sync_op(r: &SyncReport) -> OpRecord {
    OpRecord {
        id: r.run_id.clone(),
        org: r.org,
        operation: Operation::Sync,
        subject: r.entity.name().to_string(),
        started_at_ms: r.started_at_ms,
        duration_ms: r.duration_ms,
        records: Some(r.fetched),
        classy_calls: Some(r.api_calls),
        mailchimp_calls: Some(0),
        destination_calls: None,
        error: match r.outcome {
            SyncOutcome::Failed => Some(r.error.clone().unwrap_or_else(|| "failed".into())),
            SyncOutcome::Succeeded | SyncOutcome::Interrupted => None,
        },
    }
}

impl Datastore {
    /// A new operation record of `org` started now-ish at `started_at_ms` (its id is made
    /// here); the caller fills in the rest.
    pub fn new_op(
        &self,
        org: OrgId,
        operation: Operation,
        subject: impl Into<String>,
        started_at_ms: i64,
    ) -> OpRecord {
        OpRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            org,
            operation,
            subject: subject.into(),
            started_at_ms,
            duration_ms: 0,
            records: None,
            classy_calls: None,
            mailchimp_calls: None,
            destination_calls: None,
            error: None,
        }
    }

    /// The store item of an operation record (expiring after the run retention).
    pub fn op_item(&self, op: &OpRecord) -> Item {
        let expires = self.clock.unix() + self.options.run_retention.as_secs() as i64;
        Item::json(
            org_pk(op.org),
            op_sk(op.operation.name(), op.started_at_ms, &op.id),
            op,
        )
        .with_expiry(expires)
    }

    /// Writes an operation record.
    pub async fn record_op(&self, op: &OpRecord) -> Result<(), EngineError> {
        self.store
            .put(self.op_item(op), crate::ports::Condition::Always)
            .await?;
        Ok(())
    }

    /// Writes an operation record; a failure is logged, never the operation's failure.
    pub async fn record_op_logged(&self, op: &OpRecord) {
        if let Err(e) = self.record_op(op).await {
            tracing::warn!(org = op.org, operation = %op.operation, error = %e, "could not record the operation");
        }
    }

    /// Usage of one organization (or every one) for runs that started in
    /// `[from_ms, to_ms]`: run records and operation records read from `from_ms` on.
    pub async fn usage(
        &self,
        org: Option<OrgId>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Usage, EngineError> {
        let orgs = match org {
            Some(id) => vec![self.get_org(id).await?],
            None => self.list_orgs().await?,
        };
        let mut b = UsageBuilder::new(from_ms, to_ms);
        let mut names = BTreeMap::new();
        let mut apps = BTreeMap::new();
        let page = self.options.scan_page;
        for o in orgs {
            names.insert(o.id, o.name.clone());
            apps.insert(o.id, o.client_id.clone());
            let pk = org_pk(o.id);
            for entity in Entity::ALL {
                let range = SkRange::Between(
                    run_sk_from(entity, from_ms),
                    prefix_end(&run_prefix(entity)),
                );
                for_each_page(self.store.as_ref(), &pk, &range, page, |items| {
                    for i in &items {
                        b.add(&sync_op(&i.parse::<SyncReport>()?));
                    }
                    Ok(())
                })
                .await?;
            }
            for op in Operation::RECORDED {
                let range = SkRange::Between(
                    op_sk_from(op.name(), from_ms),
                    prefix_end(&op_prefix(op.name())),
                );
                for_each_page(self.store.as_ref(), &pk, &range, page, |items| {
                    for i in &items {
                        b.add(&i.parse::<OpRecord>()?);
                    }
                    Ok(())
                })
                .await?;
            }
        }
        Ok(b.finish(&names, &apps))
    }
}
