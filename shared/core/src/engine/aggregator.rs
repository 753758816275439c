//! Keeps the aggregates the API lacks. Incremental runs mark the supporters and campaigns
//! they touch (`DIRTY#S#…`, `DIRTY#C#…`) and each is recomputed from its slim index entries
//! (`SIDX#<supporter>#…`, `CIDX#<campaign>#…`). A full sync writes records only and leaves
//! `DIRTY#ALL#<entity>`: the entity's index entries are then rebuilt from its stored records
//! in key order (an external sort, then a merge with what is stored, writing only the
//! differences) and the aggregates are folded in the same pass. The donor rollup
//! (`ROLLUP#D#…`, see [`super::rollup`]) follows: rebuilt after the gift index is, and each
//! marked supporter's bucket recomputed before the marker goes. Everything here is
//! idempotent: a crash only means the work is done again.

use super::quality_rollup::FactsWriter;
use super::rollup::DonorRollupWriter;
use super::sorter::ExternalSorter;
use super::writer::Synced;
use super::{Datastore, EngineError};
use crate::domain::aggregates::{CampaignFold, GiftRef, PlanRef, SupporterFold};
use crate::domain::keys::{self, org_pk};
use crate::domain::{Entity, OrgId, RecurringPlan, Transaction};
use crate::ports::store::{for_each_page, Condition, Item, SkRange, Store, WriteOp};
use crate::ports::StoreError;
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AggregateReport {
    pub supporters_recomputed: u64,
    pub campaigns_recomputed: u64,
    pub written: u64,
}

/// Markers handled, and writes batched, this many at a time.
const BATCH: usize = 500;

fn id_segment(sk: &str, index: usize) -> Option<u64> {
    sk.split('#').nth(index)?.parse().ok()
}

fn fold_supporter_entry(fold: &mut SupporterFold, sk: &str, data: &str) -> Result<(), EngineError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("index entry {sk}: {e}"));
    if sk.contains(keys::SUPPORTER_GIFT_MARK) {
        fold.gift(&serde_json::from_str::<GiftRef>(data).map_err(corrupt)?);
    } else if sk.contains(keys::SUPPORTER_PLAN_MARK) {
        fold.plan(&serde_json::from_str::<PlanRef>(data).map_err(corrupt)?);
    }
    Ok(())
}

impl Datastore {
    /// Brings every aggregate marked dirty up to date.
    pub async fn refresh_aggregates(&self, org: OrgId) -> Result<AggregateReport, EngineError> {
        let pk = org_pk(org);
        let mut report = AggregateReport::default();
        let mut rollup_built = false;
        for entity in [Entity::Transactions, Entity::RecurringPlans] {
            let sk = keys::dirty_all_sk(entity);
            if let Some(all) = self.store.get(&pk, &sk).await? {
                // Rebuilding the gift index rebuilds the donor rollup in the same pass,
                // before the marker that keeps readers off it goes.
                self.rebuild(org, entity, &mut report).await?;
                rollup_built |= entity == Entity::Transactions;
                match self
                    .store
                    .delete(&pk, &sk, Condition::VersionIs(all.version))
                    .await
                {
                    Err(e) if !e.is_condition_failed() => return Err(e.into()),
                    _ => {}
                }
            }
        }
        if !rollup_built && self.store.get(&pk, keys::ROLLUP_READY_SK).await?.is_none() {
            // A store from before the rollup existed: build it once.
            report.written += self.rebuild_donor_rollup(org).await?;
        }
        self.recompute_marked(org, keys::DIRTY_SUPPORTER_PREFIX, true, &mut report)
            .await?;
        self.recompute_marked(org, keys::DIRTY_CAMPAIGN_PREFIX, false, &mut report)
            .await?;
        Ok(report)
    }

    /// What a completed walk of `entity` leaves to do before its cursor commits: the
    /// aggregates and rollups its records feed, and the entity's quality facts.
    pub(crate) async fn refresh_after_walk(
        &self,
        org: OrgId,
        entity: Entity,
    ) -> Result<AggregateReport, EngineError> {
        let mut report = if super::sync::has_aggregates(entity) {
            self.refresh_aggregates(org).await?
        } else {
            AggregateReport::default()
        };
        report.written += self.refresh_quality_rollup(org, entity).await?;
        Ok(report)
    }

    /// Asks for `entity`'s index entries and aggregates to be rebuilt from stored records.
    pub async fn mark_all_dirty(&self, org: OrgId, entity: Entity) -> Result<(), EngineError> {
        let m = super::writer::marker(&org_pk(org), keys::dirty_all_sk(entity));
        self.store.put(m, Condition::Always).await?;
        Ok(())
    }

    async fn recompute_marked(
        &self,
        org: OrgId,
        prefix: &str,
        supporters: bool,
        report: &mut AggregateReport,
    ) -> Result<(), EngineError> {
        let pk = org_pk(org);
        let range = SkRange::prefix(prefix);
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .query(&pk, &range, after.as_deref(), BATCH)
                .await?;
            let mut computed = Vec::with_capacity(page.items.len());
            for m in &page.items {
                let Some(id) = id_segment(&m.sk, 2) else {
                    continue;
                };
                let item = if supporters {
                    report.supporters_recomputed += 1;
                    Item::json(
                        &pk,
                        keys::supporter_agg_sk(id),
                        &self.supporter_fold(org, id).await?.finish(),
                    )
                } else {
                    report.campaigns_recomputed += 1;
                    Item::json(
                        &pk,
                        keys::campaign_agg_sk(id),
                        &self.campaign_fold(org, id).await?.finish(),
                    )
                };
                computed.push(item);
            }
            report.written += self.put_changed(&pk, computed).await?;
            if supporters {
                // The rollup buckets of these supporters, before their markers go.
                let ids = page.items.iter().filter_map(|m| id_segment(&m.sk, 2));
                report.written += self.recompute_donor_buckets(org, ids).await?;
            }
            for m in &page.items {
                match self
                    .store
                    .delete(&pk, &m.sk, Condition::VersionIs(m.version))
                    .await
                {
                    // Marked again meanwhile: the next pass recomputes it.
                    Err(e) if !e.is_condition_failed() => return Err(e.into()),
                    _ => {}
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(()),
            }
        }
    }

    async fn supporter_fold(
        &self,
        org: OrgId,
        supporter: u64,
    ) -> Result<SupporterFold, EngineError> {
        let mut fold = SupporterFold::default();
        let range = SkRange::prefix(keys::supporter_index_prefix(supporter));
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page,
            |items| {
                items.iter().try_for_each(|i| {
                    fold_supporter_entry(&mut fold, &i.sk, &i.data).map_err(store_err)
                })
            },
        )
        .await?;
        Ok(fold)
    }

    async fn campaign_fold(&self, org: OrgId, campaign: u64) -> Result<CampaignFold, EngineError> {
        let mut fold = CampaignFold::default();
        let range = SkRange::prefix(keys::campaign_index_prefix(campaign));
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page,
            |items| {
                for i in &items {
                    fold.gift(&i.parse::<GiftRef>()?);
                }
                Ok(())
            },
        )
        .await?;
        Ok(fold)
    }

    /// Writes the items whose stored body differs; returns how many were written.
    pub(super) async fn put_changed(&self, pk: &str, items: Vec<Item>) -> Result<u64, EngineError> {
        if items.is_empty() {
            return Ok(0);
        }
        let sks: Vec<String> = items.iter().map(|i| i.sk.clone()).collect();
        let stored: HashMap<String, String> = self
            .store
            .batch_get(pk, &sks)
            .await?
            .into_iter()
            .map(|i| (i.sk, i.data))
            .collect();
        let ops: Vec<WriteOp> = items
            .into_iter()
            .filter(|i| stored.get(&i.sk) != Some(&i.data))
            .map(WriteOp::Put)
            .collect();
        let n = ops.len() as u64;
        if n > 0 {
            self.store.batch_write(ops).await?;
        }
        Ok(n)
    }

    /// Rebuilds `entity`'s index entries from its stored records and refolds the aggregates
    /// they feed, in one ordered pass.
    async fn rebuild(
        &self,
        org: OrgId,
        entity: Entity,
        report: &mut AggregateReport,
    ) -> Result<(), EngineError> {
        let sorted = match entity {
            Entity::Transactions => self.sorted_entries::<Transaction>(org).await?,
            Entity::RecurringPlans => self.sorted_entries::<RecurringPlan>(org).await?,
            _ => return Ok(()),
        };
        let pk = org_pk(org);
        let store = self.store.as_ref();
        let scan = self.options.scan_page;
        let owned_kind = if entity == Entity::Transactions {
            keys::SUPPORTER_GIFT_MARK
        } else {
            keys::SUPPORTER_PLAN_MARK
        };
        let mut cidx = RangeDiff::new(store, &pk, keys::CAMPAIGN_INDEX_PREFIX, scan, |_| true);
        let mut sidx = RangeDiff::new(store, &pk, keys::SUPPORTER_INDEX_PREFIX, scan, move |sk| {
            sk.contains(owned_kind)
        });
        let mut camp_aggs = RangeDiff::new(store, &pk, keys::CAMPAIGN_AGG_PREFIX, scan, |_| true);
        let mut sup_aggs = RangeDiff::new(store, &pk, keys::SUPPORTER_AGG_PREFIX, scan, |_| true);
        // The whole supporter index passes here in key order: the donor rollup is built from
        // it rather than from a second scan of the index.
        let mut rollup =
            (entity == Entity::Transactions).then(|| DonorRollupWriter::new(store, &pk, scan));
        let mut campaign: Option<(u64, CampaignFold)> = None;
        let mut supporter: Option<(u64, SupporterFold)> = None;

        for pair in sorted {
            let (sk, data) =
                pair.map_err(|e| StoreError::Unavailable(format!("sorting index entries: {e}")))?;
            if sk.starts_with(keys::CAMPAIGN_INDEX_PREFIX) {
                let id = id_segment(&sk, 1).unwrap_or_default();
                if campaign.as_ref().is_some_and(|(c, _)| *c != id) {
                    let (c, fold) = campaign.take().expect("checked");
                    report.campaigns_recomputed += 1;
                    camp_aggs
                        .offer(keys::campaign_agg_sk(c), json(&fold.finish()))
                        .await?;
                }
                let fold = &mut campaign
                    .get_or_insert_with(|| (id, CampaignFold::default()))
                    .1;
                fold.gift(
                    &serde_json::from_str(&data)
                        .map_err(|e| StoreError::Corrupt(format!("{sk}: {e}")))?,
                );
                cidx.offer(sk, data).await?;
            } else {
                // Entries of the other kind (plans while rebuilding gifts) pass through in order.
                for other in sidx.offer(sk.clone(), data.clone()).await? {
                    self.fold_supporter(
                        &mut supporter,
                        &mut sup_aggs,
                        &other.sk,
                        &other.data,
                        report,
                    )
                    .await?;
                    if let Some(r) = rollup.as_mut() {
                        r.offer(&other.sk, &other.data).await?;
                    }
                }
                self.fold_supporter(&mut supporter, &mut sup_aggs, &sk, &data, report)
                    .await?;
                if let Some(r) = rollup.as_mut() {
                    r.offer(&sk, &data).await?;
                }
            }
        }
        if let Some((c, fold)) = campaign.take() {
            report.campaigns_recomputed += 1;
            camp_aggs
                .offer(keys::campaign_agg_sk(c), json(&fold.finish()))
                .await?;
        }
        for other in sidx.finish().await? {
            self.fold_supporter(
                &mut supporter,
                &mut sup_aggs,
                &other.sk,
                &other.data,
                report,
            )
            .await?;
            if let Some(r) = rollup.as_mut() {
                r.offer(&other.sk, &other.data).await?;
            }
        }
        if let Some((s, fold)) = supporter.take() {
            report.supporters_recomputed += 1;
            sup_aggs
                .offer(keys::supporter_agg_sk(s), json(&fold.finish()))
                .await?;
        }
        sup_aggs.finish().await?;
        // Plans feed no campaign totals: leave those as they are.
        if entity == Entity::Transactions {
            cidx.finish().await?;
            camp_aggs.finish().await?;
        }
        report.written += cidx.written + sidx.written + camp_aggs.written + sup_aggs.written;
        if let Some(r) = rollup {
            report.written += r.finish().await?;
        }
        Ok(())
    }

    async fn fold_supporter(
        &self,
        current: &mut Option<(u64, SupporterFold)>,
        aggs: &mut RangeDiff<'_>,
        sk: &str,
        data: &str,
        report: &mut AggregateReport,
    ) -> Result<(), EngineError> {
        let id = id_segment(sk, 1).unwrap_or_default();
        if current.as_ref().is_some_and(|(s, _)| *s != id) {
            let (s, fold) = current.take().expect("checked");
            report.supporters_recomputed += 1;
            aggs.offer(keys::supporter_agg_sk(s), json(&fold.finish()))
                .await?;
        }
        fold_supporter_entry(
            &mut current
                .get_or_insert_with(|| (id, SupporterFold::default()))
                .1,
            sk,
            data,
        )
    }

    /// Every index entry the stored records of `T` imply, in key order. When the entity's
    /// quality facts are marked for a rebuild too (a full sync marks both), they are rebuilt
    /// in the same pass over the records.
    async fn sorted_entries<T: Synced>(
        &self,
        org: OrgId,
    ) -> Result<super::sorter::Sorted, EngineError> {
        let pk = org_pk(org);
        let all = self
            .store
            .get(&pk, &keys::quality_all_sk(T::ENTITY))
            .await?;
        let mut facts = all
            .as_ref()
            .map(|_| FactsWriter::new(self.store.as_ref(), &pk, T::ENTITY, self.options.scan_page));
        let mut sorter = ExternalSorter::new(self.options.sort_chunk);
        let io = |e: std::io::Error| StoreError::Unavailable(format!("sorting index entries: {e}"));
        let range = SkRange::prefix(T::ENTITY.sk_prefix());
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .query(
                    &org_pk(org),
                    &range,
                    after.as_deref(),
                    self.options.scan_page,
                )
                .await?;
            for item in &page.items {
                let record: T = item.parse()?;
                for (sk, data) in record.index_entries() {
                    sorter.push(sk, data).map_err(io)?;
                }
                if let (Some(w), Some(f)) = (facts.as_mut(), record.quality_facts()) {
                    w.push(f).await?;
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        if let (Some(w), Some(all)) = (facts, all) {
            w.finish().await?;
            self.delete_marker(&pk, &all).await?;
        }
        Ok(sorter.finish().map_err(io)?)
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("aggregates serialize")
}

fn store_err(e: EngineError) -> StoreError {
    match e {
        EngineError::Store(s) => s,
        other => StoreError::Corrupt(other.to_string()),
    }
}

/// Makes one sort-key range of the store equal to a stream of wanted items offered in key
/// order: unchanged items are left alone, changed and new ones written, owned items that
/// are no longer wanted deleted. Items the range holds but this diff does not own are
/// handed back, in order, so the caller can fold them too. Writes go out in batches.
pub(super) struct RangeDiff<'a> {
    pub(super) store: &'a dyn Store,
    pub(super) pk: &'a str,
    range: SkRange,
    page: usize,
    owned: Box<dyn Fn(&str) -> bool + Send + Sync + 'a>,
    stored: VecDeque<Item>,
    after: Option<String>,
    exhausted: bool,
    ops: Vec<WriteOp>,
    pub(super) written: u64,
}

impl<'a> RangeDiff<'a> {
    pub(super) fn new(
        store: &'a dyn Store,
        pk: &'a str,
        prefix: &str,
        page: usize,
        owned: impl Fn(&str) -> bool + Send + Sync + 'a,
    ) -> Self {
        RangeDiff {
            store,
            pk,
            range: SkRange::prefix(prefix),
            page,
            owned: Box::new(owned),
            stored: VecDeque::new(),
            after: None,
            exhausted: false,
            ops: Vec::new(),
            written: 0,
        }
    }

    async fn peek(&mut self) -> Result<Option<&Item>, EngineError> {
        if self.stored.is_empty() && !self.exhausted {
            let p = self
                .store
                .query(self.pk, &self.range, self.after.as_deref(), self.page)
                .await?;
            self.exhausted = p.next.is_none();
            self.after = p.next;
            self.stored.extend(p.items);
        }
        Ok(self.stored.front())
    }

    async fn push(&mut self, op: WriteOp) -> Result<(), EngineError> {
        self.ops.push(op);
        self.written += 1;
        if self.ops.len() >= BATCH * 2 {
            self.store
                .batch_write(std::mem::take(&mut self.ops))
                .await?;
        }
        Ok(())
    }

    /// A stored item nobody wants: deleted if this diff owns it, else handed back.
    async fn delete_or_pass(
        &mut self,
        item: Item,
        passed: &mut Vec<Item>,
    ) -> Result<(), EngineError> {
        if (self.owned)(&item.sk) {
            self.push(WriteOp::Delete {
                pk: self.pk.to_string(),
                sk: item.sk,
            })
            .await
        } else {
            passed.push(item);
            Ok(())
        }
    }

    /// Offers the next wanted item; returns the not-owned stored items that precede it.
    pub(super) async fn offer(
        &mut self,
        sk: String,
        data: String,
    ) -> Result<Vec<Item>, EngineError> {
        let mut passed = Vec::new();
        while let Some(head) = self.peek().await? {
            if head.sk < sk {
                let item = self.stored.pop_front().expect("peeked");
                self.delete_or_pass(item, &mut passed).await?;
            } else if head.sk == sk {
                let item = self.stored.pop_front().expect("peeked");
                if item.data != data {
                    self.push(WriteOp::Put(Item::new(self.pk, sk, data)))
                        .await?;
                }
                return Ok(passed);
            } else {
                break;
            }
        }
        self.push(WriteOp::Put(Item::new(self.pk, sk, data)))
            .await?;
        Ok(passed)
    }

    /// Deletes the owned items nobody offered; returns the remaining not-owned ones.
    pub(super) async fn finish(&mut self) -> Result<Vec<Item>, EngineError> {
        let mut passed = Vec::new();
        while self.peek().await?.is_some() {
            let item = self.stored.pop_front().expect("peeked");
            self.delete_or_pass(item, &mut passed).await?;
        }
        if !self.ops.is_empty() {
            self.store
                .batch_write(std::mem::take(&mut self.ops))
                .await?;
        }
        Ok(passed)
    }
}
