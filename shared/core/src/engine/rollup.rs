//! The donor rollup (`ROLLUP#D#<bucket>`, see [`crate::domain::analytics::rollup`]): built
//! from the supporter gift index in one ordered pass when an organization has none yet, in
//! the index rebuild's own sorted pass after a full sync of transactions, and kept current
//! by the aggregator, which recomputes the bucket of every supporter marked dirty before it
//! clears the marker. Readers use it only while it is current: `ROLLUP#READY` present and no
//! supporter or whole-transactions dirty marker pending. Otherwise (a sync is running, or one died
//! halfway) they scan the index as before, and the next sync's aggregate refresh repairs
//! the rollup. Every step is idempotent: a crash only means the work is done again.

use super::aggregator::RangeDiff;
use super::{Datastore, EngineError};
use crate::domain::aggregates::GiftRef;
use crate::domain::analytics::rollup::{self, bucket_bounds, bucket_of, DonorGifts};
use crate::domain::analytics::Gift;
use crate::domain::keys::{self, org_pk};
use crate::domain::{Entity, OrgId};
use crate::ports::store::{for_each_page, Condition, Item, SkRange, WriteOp};
use crate::ports::{Store, StoreError};
use std::collections::BTreeSet;

/// Groups supporter index entries, offered in key order, into each supporter's successful
/// gifts (a supporter with plan entries or failed gifts only yields an empty list).
#[derive(Default)]
pub(super) struct GiftGrouper {
    current: Option<u64>,
    gifts: Vec<Gift>,
}

impl GiftGrouper {
    /// Offers one index entry; returns the previous supporter when this one starts another.
    pub(super) fn offer(&mut self, item: &Item) -> Result<Option<DonorGifts>, StoreError> {
        self.offer_entry(&item.sk, &item.data)
    }

    /// [`Self::offer`] for an entry not (yet) stored as an item.
    pub(super) fn offer_entry(
        &mut self,
        sk: &str,
        data: &str,
    ) -> Result<Option<DonorGifts>, StoreError> {
        let Some(sup) = sk.split('#').nth(1).and_then(|s| s.parse().ok()) else {
            return Ok(None);
        };
        let mut done = None;
        if self.current != Some(sup) {
            done = self.finish();
            self.current = Some(sup);
        }
        if sk.contains(keys::SUPPORTER_GIFT_MARK) {
            let g: GiftRef = serde_json::from_str(data)
                .map_err(|e| StoreError::Corrupt(format!("index entry {sk}: {e}")))?;
            if g.success {
                self.gifts.push(Gift {
                    date: g.date.unix(),
                    gross: g.gross_cents,
                    net: g.net_cents,
                    campaign: g.campaign,
                });
            }
        }
        Ok(done)
    }

    /// The last supporter offered, if any.
    pub(super) fn finish(&mut self) -> Option<DonorGifts> {
        self.current
            .take()
            .map(|id| (id, std::mem::take(&mut self.gifts)))
    }
}

/// Builds the whole donor rollup from the supporter index offered in key order (a scan of
/// the index, or the index rebuild's own sorted pass), writing only the buckets that differ
/// and deleting those no longer backed; [`Self::finish`] marks the rollup ready.
pub(super) struct DonorRollupWriter<'a> {
    diff: RangeDiff<'a>,
    grouper: GiftGrouper,
    bucket: Option<(u64, Vec<DonorGifts>)>,
}

impl<'a> DonorRollupWriter<'a> {
    pub(super) fn new(store: &'a dyn Store, pk: &'a str, page: usize) -> Self {
        DonorRollupWriter {
            diff: RangeDiff::new(store, pk, keys::DONOR_ROLLUP_PREFIX, page, |_| true),
            grouper: GiftGrouper::default(),
            bucket: None,
        }
    }

    /// Offers the next supporter index entry (gift or plan, in key order).
    pub(super) async fn offer(&mut self, sk: &str, data: &str) -> Result<(), EngineError> {
        if let Some(donor) = self.grouper.offer_entry(sk, data)? {
            self.push(donor).await?;
        }
        Ok(())
    }

    async fn push(&mut self, donor: DonorGifts) -> Result<(), EngineError> {
        if donor.1.is_empty() {
            return Ok(());
        }
        let b = bucket_of(donor.0);
        if self.bucket.as_ref().is_some_and(|(cur, _)| *cur != b) {
            let (cur, rows) = self.bucket.take().expect("checked");
            self.diff
                .offer(keys::donor_rollup_sk(cur), rollup::encode(&rows))
                .await?;
        }
        self.bucket
            .get_or_insert_with(|| (b, Vec::new()))
            .1
            .push(donor);
        Ok(())
    }

    /// Writes the last bucket, deletes stale ones, marks the rollup ready; returns the items
    /// written or deleted.
    pub(super) async fn finish(mut self) -> Result<u64, EngineError> {
        if let Some(donor) = self.grouper.finish() {
            self.push(donor).await?;
        }
        if let Some((cur, rows)) = self.bucket.take() {
            self.diff
                .offer(keys::donor_rollup_sk(cur), rollup::encode(&rows))
                .await?;
        }
        self.diff.finish().await?;
        let (store, pk) = (self.diff.store, self.diff.pk);
        store
            .put(
                Item::new(pk, keys::ROLLUP_READY_SK, "{}"),
                Condition::Always,
            )
            .await?;
        Ok(self.diff.written)
    }
}

fn corrupt(sk: &str, e: String) -> StoreError {
    StoreError::Corrupt(format!("rollup {sk}: {e}"))
}

impl Datastore {
    /// Whether the donor rollup of `org` may be read: built, and no change waiting to be
    /// folded into it.
    pub async fn donor_rollup_current(&self, org: OrgId) -> Result<bool, EngineError> {
        self.rollup_readable(
            org,
            &[keys::ROLLUP_READY_SK.to_owned()],
            &[keys::dirty_all_sk(Entity::Transactions)],
            keys::DIRTY_SUPPORTER_PREFIX,
        )
        .await
    }

    /// Whether a rollup of `org` may be read: every `ready` marker is there, no `rebuilding`
    /// marker is, and no item under `pending_prefix` (a change not folded in yet) waits.
    pub(super) async fn rollup_readable(
        &self,
        org: OrgId,
        ready: &[String],
        rebuilding: &[String],
        pending_prefix: &str,
    ) -> Result<bool, EngineError> {
        let pk = org_pk(org);
        for sk in ready {
            if self.store.get(&pk, sk).await?.is_none() {
                return Ok(false);
            }
        }
        for sk in rebuilding {
            if self.store.get(&pk, sk).await?.is_some() {
                return Ok(false);
            }
        }
        let range = SkRange::prefix(pending_prefix);
        Ok(self
            .store
            .query(&pk, &range, None, 1)
            .await?
            .items
            .is_empty())
    }

    /// Every donor of the stored rollup, in supporter order (whether or not it is current).
    pub async fn donor_rollup(&self, org: OrgId) -> Result<Vec<DonorGifts>, EngineError> {
        let mut out = Vec::new();
        self.for_each_rollup_donor(org, |id, gifts| out.push((id, gifts.to_vec())))
            .await?;
        Ok(out)
    }

    /// Every donor with a successful gift, recomputed from the supporter gift index.
    pub async fn donor_gifts_from_index(&self, org: OrgId) -> Result<Vec<DonorGifts>, EngineError> {
        let mut out = Vec::new();
        self.for_each_index_donor(org, |id, gifts| {
            if !gifts.is_empty() {
                out.push((id, gifts.to_vec()));
            }
        })
        .await?;
        Ok(out)
    }

    pub(super) async fn for_each_rollup_donor(
        &self,
        org: OrgId,
        mut f: impl FnMut(u64, &[Gift]),
    ) -> Result<(), EngineError> {
        let range = SkRange::prefix(keys::DONOR_ROLLUP_PREFIX);
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page,
            |items| {
                for i in &items {
                    for (id, gifts) in rollup::decode(&i.data).map_err(|e| corrupt(&i.sk, e))? {
                        f(id, &gifts);
                    }
                }
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// Every supporter of the gift index (those with plans only, or failed gifts only, with
    /// no gifts), in supporter order.
    pub(super) async fn for_each_index_donor(
        &self,
        org: OrgId,
        mut f: impl FnMut(u64, &[Gift]),
    ) -> Result<(), EngineError> {
        let mut grouper = GiftGrouper::default();
        let range = SkRange::prefix(keys::SUPPORTER_INDEX_PREFIX);
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page,
            |items| {
                for i in &items {
                    if let Some((id, gifts)) = grouper.offer(i)? {
                        f(id, &gifts);
                    }
                }
                Ok(())
            },
        )
        .await?;
        if let Some((id, gifts)) = grouper.finish() {
            f(id, &gifts);
        }
        Ok(())
    }

    /// Rebuilds the whole donor rollup from the gift index in one ordered pass (writing only
    /// the buckets that differ, deleting the ones no longer wanted), then marks it ready.
    /// Returns the items written or deleted.
    pub async fn rebuild_donor_rollup(&self, org: OrgId) -> Result<u64, EngineError> {
        let pk = org_pk(org);
        let store = self.store.as_ref();
        let mut rollup = DonorRollupWriter::new(store, &pk, self.options.scan_page);
        let range = SkRange::prefix(keys::SUPPORTER_INDEX_PREFIX);
        let mut after: Option<String> = None;
        loop {
            let page = store
                .query(&pk, &range, after.as_deref(), self.options.scan_page)
                .await?;
            for i in &page.items {
                rollup.offer(&i.sk, &i.data).await?;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        rollup.finish().await
    }

    /// Recomputes the rollup buckets of `supporters` from their stretches of the gift index.
    /// Returns the items written or deleted.
    pub(super) async fn recompute_donor_buckets(
        &self,
        org: OrgId,
        supporters: impl IntoIterator<Item = u64>,
    ) -> Result<u64, EngineError> {
        let buckets: BTreeSet<u64> = supporters.into_iter().map(bucket_of).collect();
        if buckets.is_empty() {
            return Ok(0);
        }
        let pk = org_pk(org);
        let mut puts = Vec::new();
        let mut empty = Vec::new();
        for b in buckets {
            let (lo, hi) = bucket_bounds(b);
            let range = SkRange::Between(
                keys::supporter_index_prefix(lo),
                keys::prefix_end(&keys::supporter_index_prefix(hi)),
            );
            let mut grouper = GiftGrouper::default();
            let mut rows = Vec::new();
            for_each_page(
                self.store.as_ref(),
                &pk,
                &range,
                self.options.scan_page,
                |items| {
                    for i in &items {
                        rows.extend(grouper.offer(i)?.filter(|d| !d.1.is_empty()));
                    }
                    Ok(())
                },
            )
            .await?;
            rows.extend(grouper.finish().filter(|d| !d.1.is_empty()));
            let sk = keys::donor_rollup_sk(b);
            if rows.is_empty() {
                empty.push(sk);
            } else {
                puts.push(Item::new(&pk, sk, rollup::encode(&rows)));
            }
        }
        let mut written = self.put_changed(&pk, puts).await?;
        if !empty.is_empty() {
            let stored = self.store.batch_get(&pk, &empty).await?;
            let ops: Vec<WriteOp> = stored
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
        Ok(written)
    }
}
