//! The quality rollup (`ROLLUP#Q#<entity>#<bucket>`): the [`Facts`] of every supporter,
//! transaction and plan, [`FACTS_PER_ROLLUP`] records to an item. The writer marks the bucket
//! of each record it creates or changes (`ROLLUP#QD#…`, written with the dirty markers,
//! before the records); a full sync marks the whole entity (`ROLLUP#QALL#…`) before its
//! first page (transactions and plans then rebuild their facts in the aggregator's pass over
//! their records that rebuilds the indexes). When an entity's sync completes, its marked buckets are recomputed from their
//! stretch of records (or the whole entity in one ordered pass) and only then are the
//! markers removed (each only if it is still the version read). The quality report reads
//! the facts only while every marker is gone and every entity's facts were built
//! (`ROLLUP#QREADY#…`); otherwise it checks the records themselves. Idempotent throughout.

use super::aggregator::RangeDiff;
use super::{Datastore, EngineError};
use crate::domain::keys::{self, org_pk};
use crate::domain::quality::facts::{Facts, FACTS_PER_ROLLUP};
use crate::domain::{Entity, OrgId, RecurringPlan, Supporter, Transaction};
use crate::ports::store::{for_each_page, Condition, Item, SkRange, WriteOp};
use crate::ports::StoreError;

/// The entities whose records have quality facts (campaigns are few: read as they are).
pub const QUALITY_ENTITIES: [Entity; 3] = [
    Entity::Supporters,
    Entity::Transactions,
    Entity::RecurringPlans,
];

/// The bucket of a record.
pub fn facts_bucket(id: u64) -> u64 {
    id / FACTS_PER_ROLLUP
}

fn facts_of(entity: Entity, item: &Item) -> Result<Facts, StoreError> {
    Ok(match entity {
        Entity::Supporters => Facts::of_supporter(&item.parse::<Supporter>()?),
        Entity::Transactions => Facts::of_transaction(&item.parse::<Transaction>()?),
        Entity::RecurringPlans => Facts::of_plan(&item.parse::<RecurringPlan>()?),
        Entity::Campaigns => {
            return Err(StoreError::Invalid(
                "campaigns have no quality facts".into(),
            ))
        }
    })
}

fn encode(facts: &[Facts]) -> String {
    serde_json::to_string(facts).expect("facts serialize")
}

/// Makes an entity's stored facts equal to facts offered in record order (writing only the
/// buckets that differ, deleting the ones no longer wanted).
pub(super) struct FactsWriter<'a> {
    entity: Entity,
    diff: RangeDiff<'a>,
    bucket: Option<(u64, Vec<Facts>)>,
}

impl<'a> FactsWriter<'a> {
    pub(super) fn new(
        store: &'a dyn crate::ports::store::Store,
        pk: &'a str,
        entity: Entity,
        page: usize,
    ) -> Self {
        let prefix = keys::quality_rollup_prefix(entity);
        FactsWriter {
            entity,
            diff: RangeDiff::new(store, pk, &prefix, page, |_| true),
            bucket: None,
        }
    }

    pub(super) async fn push(&mut self, f: Facts) -> Result<(), EngineError> {
        let b = facts_bucket(f.id);
        if self.bucket.as_ref().is_some_and(|(cur, _)| *cur != b) {
            let (cur, rows) = self.bucket.take().expect("checked");
            self.diff
                .offer(keys::quality_rollup_sk(self.entity, cur), encode(&rows))
                .await?;
        }
        self.bucket.get_or_insert_with(|| (b, Vec::new())).1.push(f);
        Ok(())
    }

    /// Writes the rest and marks the entity's facts built; returns the items written.
    pub(super) async fn finish(mut self) -> Result<u64, EngineError> {
        if let Some((cur, rows)) = self.bucket.take() {
            self.diff
                .offer(keys::quality_rollup_sk(self.entity, cur), encode(&rows))
                .await?;
        }
        self.diff.finish().await?;
        let ready = Item::new(self.diff.pk, keys::quality_ready_sk(self.entity), "{}");
        self.diff.store.put(ready, Condition::Always).await?;
        Ok(self.diff.written)
    }
}

impl Datastore {
    /// Asks for `entity`'s quality facts to be rebuilt when its sync completes.
    pub async fn mark_quality_all(&self, org: OrgId, entity: Entity) -> Result<(), EngineError> {
        if QUALITY_ENTITIES.contains(&entity) {
            let m = super::writer::marker(&org_pk(org), keys::quality_all_sk(entity));
            self.store.put(m, Condition::Always).await?;
        }
        Ok(())
    }

    /// Whether the quality report may read the facts of `org`.
    pub async fn quality_rollup_current(&self, org: OrgId) -> Result<bool, EngineError> {
        self.rollup_readable(
            org,
            &QUALITY_ENTITIES.map(keys::quality_ready_sk),
            &QUALITY_ENTITIES.map(keys::quality_all_sk),
            keys::QUALITY_DIRTY_PREFIX,
        )
        .await
    }

    /// Every stored fact of `entity`, in record order.
    pub(super) async fn for_each_facts(
        &self,
        org: OrgId,
        entity: Entity,
        mut f: impl FnMut(Facts) -> Result<(), StoreError>,
    ) -> Result<(), EngineError> {
        let range = SkRange::prefix(keys::quality_rollup_prefix(entity));
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page.min(100),
            |items| {
                for i in &items {
                    for facts in i.parse::<Vec<Facts>>()? {
                        f(facts)?;
                    }
                }
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// The stored facts of `entity` (for tests and checks).
    pub async fn quality_facts(
        &self,
        org: OrgId,
        entity: Entity,
    ) -> Result<Vec<Facts>, EngineError> {
        let mut out = Vec::new();
        self.for_each_facts(org, entity, |f| {
            out.push(f);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Brings `entity`'s quality facts up to date after its sync completed: the whole
    /// entity when marked (or never built), then every marked bucket. Returns the items
    /// written or deleted.
    pub async fn refresh_quality_rollup(
        &self,
        org: OrgId,
        entity: Entity,
    ) -> Result<u64, EngineError> {
        if !QUALITY_ENTITIES.contains(&entity) {
            return Ok(0);
        }
        let pk = org_pk(org);
        let mut written = 0;
        let all = self.store.get(&pk, &keys::quality_all_sk(entity)).await?;
        let ready = self
            .store
            .get(&pk, &keys::quality_ready_sk(entity))
            .await?
            .is_some();
        // One sync of an organization × entity at a time (its lease), and the markers are
        // its own: after a whole rebuild, the buckets marked are already current.
        let rebuilt = all.is_some() || !ready;
        if rebuilt {
            written += self.rebuild_quality_rollup(org, entity).await?;
            if let Some(a) = all {
                self.delete_marker(&pk, &a).await?;
            }
        }
        let range = SkRange::prefix(keys::quality_dirty_prefix(entity));
        let mut after: Option<String> = None;
        loop {
            let page = self.store.query(&pk, &range, after.as_deref(), 500).await?;
            let mut puts = Vec::new();
            let mut empty = Vec::new();
            for m in page.items.iter().filter(|_| !rebuilt) {
                let Some(b) = m.sk.rsplit('#').next().and_then(|b| b.parse().ok()) else {
                    continue;
                };
                let sk = keys::quality_rollup_sk(entity, b);
                match self.quality_bucket(org, entity, b).await? {
                    Some(data) => puts.push(Item::new(&pk, sk, data)),
                    None => empty.push(sk),
                }
            }
            written += self.put_changed(&pk, puts).await?;
            if !empty.is_empty() {
                let ops: Vec<WriteOp> = self
                    .store
                    .batch_get(&pk, &empty)
                    .await?
                    .into_iter()
                    .map(|i| WriteOp::Delete {
                        pk: pk.clone(),
                        sk: i.sk,
                    })
                    .collect();
                written += ops.len() as u64;
                if !ops.is_empty() {
                    self.store.batch_write(ops).await?;
                }
            }
            for m in &page.items {
                self.delete_marker(&pk, m).await?;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(written),
            }
        }
    }

    /// Deletes a marker if it is still the version read (marked again meanwhile: kept).
    pub(super) async fn delete_marker(&self, pk: &str, m: &Item) -> Result<(), EngineError> {
        match self
            .store
            .delete(pk, &m.sk, Condition::VersionIs(m.version))
            .await
        {
            Err(e) if !e.is_condition_failed() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// One bucket's facts from its records; `None` when it has none.
    async fn quality_bucket(
        &self,
        org: OrgId,
        entity: Entity,
        bucket: u64,
    ) -> Result<Option<String>, EngineError> {
        let lo = bucket * FACTS_PER_ROLLUP;
        let range = SkRange::Between(
            keys::record_sk(entity, lo),
            keys::record_sk(entity, lo + FACTS_PER_ROLLUP - 1),
        );
        let mut facts = Vec::new();
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page,
            |items| {
                for i in &items {
                    facts.push(facts_of(entity, i)?);
                }
                Ok(())
            },
        )
        .await?;
        Ok((!facts.is_empty()).then(|| encode(&facts)))
    }

    /// Rebuilds all of `entity`'s facts from its records in one ordered pass (writing only
    /// the buckets that differ), then marks them built. Returns the items written or deleted.
    pub async fn rebuild_quality_rollup(
        &self,
        org: OrgId,
        entity: Entity,
    ) -> Result<u64, EngineError> {
        let pk = org_pk(org);
        let store = self.store.as_ref();
        let mut out = FactsWriter::new(store, &pk, entity, self.options.scan_page);
        let range = SkRange::prefix(entity.sk_prefix());
        let mut after: Option<String> = None;
        loop {
            let page = store
                .query(&pk, &range, after.as_deref(), self.options.scan_page)
                .await?;
            for i in &page.items {
                out.push(facts_of(entity, i)?).await?;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        out.finish().await
    }
}
