//! Records Classy sent that do not decode. One such record must not fail its
//! organization×entity on every run: it is kept raw under `QUARANTINE#<entity>#<id>`, counted
//! on the run, and the walk goes on. A later version of it that decodes releases it.

use super::pager::Quarantined;
use super::EngineError;
use crate::domain::entities::Record;
use crate::domain::keys::{org_pk, quarantine_prefix, quarantine_sk};
use crate::domain::{Entity, OrgId};
use crate::ports::store::{for_each_page, Item, SkRange, Store, WriteOp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// What is kept of a quarantined record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    pub id: Option<u64>,
    /// Which field failed and how (never a value of the record).
    pub reason: String,
    /// The record exactly as Classy sent it.
    pub raw: String,
    pub run_id: String,
    pub at_ms: i64,
}

/// The quarantine of one organization×entity during one run.
pub struct QuarantineBook {
    org: OrgId,
    entity: Entity,
    /// Keys (the part after the prefix) held in the store.
    held: HashSet<String>,
    /// Records set aside by this run.
    pub quarantined: u64,
    /// Of those, the ones not held before this run.
    pub newly: u64,
    /// Held records whose newer version decoded in this run.
    pub released: u64,
}

/// The key part of a quarantined record: its id, or a digest of its text when even the id
/// does not read (the same text lands on the same item).
fn entry_key(q: &Quarantined) -> String {
    match q.failure.id {
        Some(id) => id.to_string(),
        None => {
            let digest = Sha256::digest(q.raw.as_bytes());
            format!("raw-{}", hex::encode(&digest[..8]))
        }
    }
}

impl QuarantineBook {
    /// Reads what is held for the pair (usually nothing: one short query).
    pub async fn load(store: &dyn Store, org: OrgId, entity: Entity) -> Result<Self, EngineError> {
        let prefix = quarantine_prefix(entity);
        let mut held = HashSet::new();
        for_each_page(
            store,
            &org_pk(org),
            &SkRange::prefix(prefix.clone()),
            500,
            |items| {
                held.extend(
                    items
                        .into_iter()
                        .filter_map(|i| i.sk.strip_prefix(&prefix).map(str::to_owned)),
                );
                Ok(())
            },
        )
        .await?;
        Ok(QuarantineBook {
            org,
            entity,
            held,
            quarantined: 0,
            newly: 0,
            released: 0,
        })
    }

    /// How many records of the pair are held now.
    pub fn held(&self) -> u64 {
        self.held.len() as u64
    }

    /// Keeps the records of a page that did not decode.
    pub async fn keep(
        &mut self,
        store: &dyn Store,
        items: &[Quarantined],
        run_id: &str,
        at_ms: i64,
    ) -> Result<(), EngineError> {
        if items.is_empty() {
            return Ok(());
        }
        let pk = org_pk(self.org);
        let mut ops = Vec::with_capacity(items.len());
        for q in items {
            let key = entry_key(q);
            tracing::warn!(
                org = self.org,
                entity = %self.entity,
                record = %key,
                reason = %q.failure.reason,
                "record does not decode: quarantined, the sync goes on"
            );
            let entry = QuarantineEntry {
                id: q.failure.id,
                reason: q.failure.reason.clone(),
                raw: q.raw.clone(),
                run_id: run_id.to_string(),
                at_ms,
            };
            let data = serde_json::to_string(&entry).expect("entries serialize");
            ops.push(WriteOp::Put(Item::new(
                pk.clone(),
                quarantine_sk(self.entity, &key),
                data,
            )));
            self.quarantined += 1;
            if self.held.insert(key) {
                self.newly += 1;
            }
        }
        store.batch_write(ops).await?;
        Ok(())
    }

    /// Releases held records whose current version decoded (they are stored now).
    pub async fn release<T: Record>(
        &mut self,
        store: &dyn Store,
        records: &[T],
    ) -> Result<(), EngineError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let pk = org_pk(self.org);
        let mut ops = Vec::new();
        for r in records {
            let key = r.id().to_string();
            if self.held.remove(&key) {
                ops.push(WriteOp::Delete {
                    pk: pk.clone(),
                    sk: quarantine_sk(self.entity, &key),
                });
            }
        }
        if !ops.is_empty() {
            self.released += ops.len() as u64;
            store.batch_write(ops).await?;
        }
        Ok(())
    }
}

/// The quarantined records of one organization×entity, for `status` and inspection.
pub async fn list(
    store: &dyn Store,
    org: OrgId,
    entity: Entity,
) -> Result<Vec<QuarantineEntry>, EngineError> {
    Ok(crate::ports::store::parse_all(
        store,
        &org_pk(org),
        &SkRange::prefix(quarantine_prefix(entity)),
        500,
    )
    .await?)
}
