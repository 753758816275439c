//! Stores one page idempotently: unchanged records are not rewritten; a changed transaction
//! or plan also rewrites its slim index entries and marks the supporters and campaigns whose
//! aggregates must be recomputed. Index entries are written before the dirty markers, and
//! markers with (or before) the records, so a crash at any point leaves a state the next
//! run repairs: the record is re-fetched as changed, or the marker is still there.

use super::quality_rollup::{facts_bucket, QUALITY_ENTITIES};
use super::EngineError;
use crate::domain::aggregates::{GiftRef, PlanRef};
use crate::domain::changes::{change_sk, ChangeNote, CHANGE_RETENTION_SECS};
use crate::domain::entities::Record;
use crate::domain::keys::{self, org_pk};
use crate::domain::quality::facts::Facts;
use crate::domain::{Campaign, Entity, OrgId, RecurringPlan, Supporter, Transaction};
use crate::ports::store::{Item, Store, WriteOp};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};

/// What the engine needs to know about each synced entity beyond [`Record`].
pub trait Synced: Record {
    const ENTITY: Entity;

    /// Slim index entries (sort key, JSON) this version of the record contributes.
    fn index_entries(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Dirty markers (sort keys) for the aggregates this version of the record feeds.
    fn dirty_markers(&self) -> Vec<String> {
        Vec::new()
    }

    /// Secondary key for cross-organization lookups.
    fn gsi1(&self) -> Option<String> {
        None
    }

    /// The supporter whose giving data this version of the record feeds (change log note).
    fn supporter_ref(&self) -> Option<u64> {
        None
    }

    /// Its quality facts (supporters, transactions and plans).
    fn quality_facts(&self) -> Option<Facts> {
        None
    }
}

/// `EMAIL#<sha256 of the trimmed, lower-cased address>`: finds one person across
/// organizations without storing the address in the key.
pub fn email_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    keys::email_gsi(&digest)
}

impl Synced for Supporter {
    const ENTITY: Entity = Entity::Supporters;
    fn quality_facts(&self) -> Option<Facts> {
        Some(Facts::of_supporter(self))
    }
    fn gsi1(&self) -> Option<String> {
        self.email_address
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .map(email_key)
    }
}

impl Synced for Campaign {
    const ENTITY: Entity = Entity::Campaigns;
}

impl Synced for Transaction {
    const ENTITY: Entity = Entity::Transactions;

    fn quality_facts(&self) -> Option<Facts> {
        Some(Facts::of_transaction(self))
    }

    fn supporter_ref(&self) -> Option<u64> {
        self.supporter_id
    }

    fn index_entries(&self) -> Vec<(String, String)> {
        let gift = GiftRef::of(self);
        let json = serde_json::to_string(&gift).expect("gift refs serialize");
        let mut out = Vec::with_capacity(2);
        if let Some(s) = self.supporter_id {
            out.push((keys::supporter_gift_sk(s, self.id), json.clone()));
        }
        if let Some(c) = self.campaign_id {
            out.push((
                keys::campaign_gift_sk(c, self.supporter_id.unwrap_or(0), self.id),
                json,
            ));
        }
        out
    }

    fn dirty_markers(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(2);
        if let Some(s) = self.supporter_id {
            out.push(keys::dirty_supporter_sk(s));
        }
        if let Some(c) = self.campaign_id {
            out.push(keys::dirty_campaign_sk(c));
        }
        out
    }
}

impl Synced for RecurringPlan {
    const ENTITY: Entity = Entity::RecurringPlans;

    fn quality_facts(&self) -> Option<Facts> {
        Some(Facts::of_plan(self))
    }

    fn supporter_ref(&self) -> Option<u64> {
        self.supporter_id
    }

    fn index_entries(&self) -> Vec<(String, String)> {
        match self.supporter_id {
            Some(s) => vec![(
                keys::supporter_plan_sk(s, self.id),
                serde_json::to_string(&PlanRef::of(self)).expect("plan refs serialize"),
            )],
            None => Vec::new(),
        }
    }

    fn dirty_markers(&self) -> Vec<String> {
        self.supporter_id
            .map(keys::dirty_supporter_sk)
            .into_iter()
            .collect()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageCounts {
    pub fetched: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl PageCounts {
    pub fn add(&mut self, o: PageCounts) {
        self.fetched += o.fetched;
        self.created += o.created;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
}

/// Writes one page. With `rebuild_later` (a full sync, whose index entries and aggregates
/// are rebuilt in key order once it completes) only the records are written. Every created
/// or changed record also gets a change-log entry stamped `now_ms` (see
/// [`crate::domain::changes`]), written after the record so an entry never precedes its data.
pub async fn write_page<T: Synced>(
    store: &dyn Store,
    org: OrgId,
    records: &[T],
    rebuild_later: bool,
    now_ms: i64,
) -> Result<PageCounts, EngineError> {
    let mut counts = PageCounts {
        fetched: records.len() as u64,
        ..Default::default()
    };
    if records.is_empty() {
        return Ok(counts);
    }
    let pk = org_pk(org);
    let sks: Vec<String> = records
        .iter()
        .map(|r| keys::record_sk(T::ENTITY, r.id()))
        .collect();
    let existing: HashMap<String, Item> = store
        .batch_get(&pk, &sks)
        .await?
        .into_iter()
        .map(|i| (i.sk.clone(), i))
        .collect();

    let mut index_ops = Vec::new();
    let mut markers = BTreeSet::new();
    let mut record_ops = Vec::new();
    let mut change_ops = Vec::new();
    for (record, sk) in records.iter().zip(sks) {
        let data = serde_json::to_string(record).expect("records serialize");
        let old = existing.get(&sk);
        match old {
            Some(o) if o.data == data => {
                counts.unchanged += 1;
                continue;
            }
            Some(_) => counts.updated += 1,
            None => counts.created += 1,
        }
        change_ops.push(WriteOp::Put(change_entry(&pk, record, old, now_ms)));
        if !rebuild_later {
            // A stored version that no longer parses contributes nothing to remove.
            let old_record: Option<T> = old.and_then(|o| serde_json::from_str(&o.data).ok());
            let new_entries = record.index_entries();
            if let Some(o) = &old_record {
                for (old_sk, _) in o.index_entries() {
                    if !new_entries.iter().any(|(s, _)| *s == old_sk) {
                        index_ops.push(WriteOp::Delete {
                            pk: pk.clone(),
                            sk: old_sk,
                        });
                    }
                }
                markers.extend(o.dirty_markers());
            }
            markers.extend(record.dirty_markers());
            if QUALITY_ENTITIES.contains(&T::ENTITY) {
                // Its quality facts' bucket, recomputed when the sync completes.
                markers.insert(keys::quality_dirty_sk(T::ENTITY, facts_bucket(record.id())));
            }
            index_ops.extend(
                new_entries
                    .into_iter()
                    .map(|(s, d)| WriteOp::Put(Item::new(pk.clone(), s, d))),
            );
        }
        let mut item = Item::new(pk.clone(), sk, data);
        item.gsi1 = record.gsi1();
        record_ops.push(WriteOp::Put(item));
    }
    if !index_ops.is_empty() {
        store.batch_write(index_ops).await?;
    }
    if !record_ops.is_empty() {
        let mut ops: Vec<WriteOp> = markers
            .into_iter()
            .map(|m| WriteOp::Put(marker(&pk, m)))
            .collect();
        ops.extend(record_ops);
        ops.extend(change_ops);
        store.batch_write(ops).await?;
    }
    Ok(counts)
}

/// The change-log entry of a created or changed record; it names the supporters whose giving
/// data the old and new versions feed.
fn change_entry<T: Synced>(pk: &str, record: &T, old: Option<&Item>, now_ms: i64) -> Item {
    let mut note = ChangeNote::default();
    let previous = old
        .and_then(|o| serde_json::from_str::<T>(&o.data).ok())
        .and_then(|o| o.supporter_ref());
    for s in [record.supporter_ref(), previous].into_iter().flatten() {
        if !note.supporters.contains(&s) {
            note.supporters.push(s);
        }
    }
    Item::json(pk, change_sk(now_ms, T::ENTITY, record.id()), &note)
        .with_expiry(now_ms / 1000 + CHANGE_RETENTION_SECS)
}

/// A dirty marker. Its version is a fresh random number: the aggregator deletes it only if
/// it is still the marker it read, so a change marked meanwhile is never lost.
pub fn marker(pk: &str, sk: String) -> Item {
    Item::new(pk, sk, "{}").with_version(fastrand::u64(1..i64::MAX as u64))
}
