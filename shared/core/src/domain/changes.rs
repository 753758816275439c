//! The per-organization change log: one item per record the sync created or changed,
//! `CHG#<unix millis>#<entity>#<id>`, kept for [`CHANGE_RETENTION_SECS`]. Destination plugins
//! read it from their cursor (minus an overlap window, because concurrent writers commit out
//! of order) to learn which supporters and transactions changed since their last push.

use super::{Entity, OrgId};
use serde::{Deserialize, Serialize};

pub use super::keys::{change_sk, change_sk_from, CHANGE_PREFIX};

/// Change entries expire after 14 days; a plugin idle for longer reconciles in full.
pub const CHANGE_RETENTION_SECS: i64 = 14 * 24 * 3600;

/// What a change entry says beyond its key: the supporters a gift or plan belongs (or
/// belonged) to, so a plugin can refresh their giving data without reading the record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNote {
    #[serde(default, rename = "s", skip_serializing_if = "Vec::is_empty")]
    pub supporters: Vec<u64>,
}

/// One parsed change entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEntry {
    pub org: OrgId,
    pub at_ms: i64,
    pub entity: Entity,
    pub id: u64,
    pub note: ChangeNote,
}

/// Parses a change entry's sort key and body; `None` for anything that is not one.
pub fn parse_change(org: OrgId, sk: &str, data: &str) -> Option<ChangeEntry> {
    let rest = sk.strip_prefix(CHANGE_PREFIX)?;
    let mut parts = rest.splitn(3, '#');
    let at_ms = parts.next()?.parse().ok()?;
    let entity = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    Some(ChangeEntry {
        org,
        at_ms,
        entity,
        id,
        note: serde_json::from_str(data).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_and_parse_back() {
        let a = change_sk(999, Entity::Transactions, 5);
        let b = change_sk(1000, Entity::Supporters, 1);
        assert!(a < b);
        assert!(change_sk_from(1000) <= b && change_sk_from(1001) > b);
        let e = parse_change(7, &a, r#"{"s":[42]}"#).unwrap();
        assert_eq!(
            (e.at_ms, e.entity, e.id, e.note.supporters),
            (999, Entity::Transactions, 5, vec![42])
        );
        assert_eq!(
            parse_change(7, &change_sk(1, Entity::RecurringPlans, 9), "{}")
                .unwrap()
                .entity,
            Entity::RecurringPlans
        );
        assert!(parse_change(7, "CHG#x#supporters#1", "{}").is_none());
        assert!(parse_change(7, "SUPPORTER#1", "{}").is_none());
    }
}
