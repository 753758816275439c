//! The change feed's events and batches, pure: what a change looks like on the wire, its
//! stable id, and how changes are grouped into deliveries.
//!
//! A change id is `<entity>:<record id>:<digest>`, the digest being the first 16 hex digits
//! of SHA-256 over the event's `data` JSON. The same record content always has the same id,
//! so a re-sync that changes nothing produces nothing new, and a receiver can dedup on it.

use classy_sync_core::domain::{OrgId, Transaction};
use classy_sync_core::ports::SupporterView;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const SUPPORTER_CHANGED: &str = "SupporterChanged";
pub const TRANSACTION_CHANGED: &str = "TransactionChanged";

/// Which kind of record a change is about (also the key of its sent-record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Supporter,
    Transaction,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Supporter => "supporter",
            Kind::Transaction => "transaction",
        }
    }

    pub fn event_type(self) -> &'static str {
        match self {
            Kind::Supporter => SUPPORTER_CHANGED,
            Kind::Transaction => TRANSACTION_CHANGED,
        }
    }
}

/// One change, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: Kind,
    pub record_id: u64,
    /// Digest of `data`: the version of the record this change carries.
    pub digest: String,
    pub org: OrgId,
    /// The record's `updated_at` (RFC 3339).
    pub updated_at: String,
    pub data: Value,
}

impl Change {
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.kind.name(), self.record_id, self.digest)
    }

    /// The event as it is sent: `{id, type, org_id, entity_id, updated_at, data}`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id(),
            "type": self.kind.event_type(),
            "org_id": self.org,
            "entity_id": self.record_id,
            "updated_at": self.updated_at,
            "data": self.data,
        })
    }
}

fn digest(data: &Value) -> String {
    // serde_json writes struct fields in declaration order: the bytes are stable.
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

fn change(kind: Kind, record_id: u64, org: OrgId, updated_at: String, data: Value) -> Change {
    Change {
        kind,
        record_id,
        digest: digest(&data),
        org,
        updated_at,
        data,
    }
}

/// `data` = `{"supporter": {...}, "aggregates": {...}}`: giving totals change without the
/// supporter record changing, and are part of what downstream systems want.
pub fn supporter_change(org: OrgId, v: &SupporterView) -> Change {
    let data = json!({"supporter": v.supporter, "aggregates": v.aggregates});
    change(
        Kind::Supporter,
        v.supporter.id,
        org,
        v.supporter.updated_at.0.to_rfc3339(),
        data,
    )
}

/// `data` = the transaction record.
pub fn transaction_change(org: OrgId, t: &Transaction) -> Change {
    let data = serde_json::to_value(t).unwrap_or(Value::Null);
    change(
        Kind::Transaction,
        t.id,
        org,
        t.updated_at.0.to_rfc3339(),
        data,
    )
}

/// A delivery's id: a digest of its change ids (sorted), so the same batch sent again after
/// a crash carries the same id and a receiver can drop the repeat.
pub fn delivery_id(change_ids: &[String]) -> String {
    let mut ids: Vec<&str> = change_ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    format!("cf-{}", hex::encode(&h.finalize()[..16]))
}

/// Splits the changes to send into batches of at most `size`. Changes named by the batch
/// that was in flight when a previous run stopped (`pending`) come first and alone, so that
/// batch is sent again exactly as before, with the same delivery id.
pub fn batches(mut changes: Vec<Change>, pending: &[String], size: usize) -> Vec<Vec<Change>> {
    let size = size.max(1);
    let mut out = Vec::new();
    if !pending.is_empty() {
        let (first, rest): (Vec<Change>, Vec<Change>) =
            changes.into_iter().partition(|c| pending.contains(&c.id()));
        if !first.is_empty() {
            for chunk in first.chunks(size) {
                out.push(chunk.to_vec());
            }
        }
        changes = rest;
    }
    for chunk in changes.chunks(size) {
        out.push(chunk.to_vec());
    }
    out
}

/// The webhook body: `{"delivery": id, "org_id": n, "events": [...]}`. It holds no send
/// time, so a retried delivery is byte-identical (the signature header carries the time).
pub fn webhook_body(delivery: &str, org: OrgId, batch: &[Change]) -> Vec<u8> {
    let events: Vec<Value> = batch.iter().map(Change::to_json).collect();
    serde_json::to_vec(&json!({"delivery": delivery, "org_id": org, "events": events}))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: u64, name: &str) -> Change {
        change(
            Kind::Supporter,
            id,
            7,
            "2024-01-01T00:00:00+00:00".into(),
            json!({"name": name}),
        )
    }

    #[test]
    fn change_ids_follow_content() {
        assert_eq!(sample(1, "a").id(), sample(1, "a").id());
        assert_ne!(sample(1, "a").id(), sample(1, "b").id());
        assert!(sample(1, "a").id().starts_with("supporter:1:"));
    }

    #[test]
    fn delivery_ids_ignore_order() {
        let a = vec!["x".to_string(), "y".to_string()];
        let b = vec!["y".to_string(), "x".to_string()];
        assert_eq!(delivery_id(&a), delivery_id(&b));
        assert_ne!(delivery_id(&a), delivery_id(&a[..1]));
    }

    #[test]
    fn the_pending_batch_is_rebuilt_first_and_alone() {
        let changes: Vec<Change> = (1..=5).map(|i| sample(i, "n")).collect();
        let pending = vec![changes[3].id(), changes[1].id(), "gone:9:0".to_string()];
        let b = batches(changes.clone(), &pending, 3);
        let ids = |v: &Vec<Change>| v.iter().map(|c| c.record_id).collect::<Vec<_>>();
        assert_eq!(
            b.iter().map(ids).collect::<Vec<_>>(),
            vec![vec![2, 4], vec![1, 3, 5]]
        );
        let plain = batches(changes, &[], 2);
        assert_eq!(plain.len(), 3);
    }
}
