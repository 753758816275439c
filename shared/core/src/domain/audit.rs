//! The audit trail's entries and the pure rules of its hash chain.
//!
//! Every entry holds the hash of the entry before it (`prev_hash`) and when that one was
//! written (`prev_at`); its own `hash` is sha256 over the canonical JSON of every other field.
//! A changed entry no longer matches its hash, a deleted one leaves a gap in the sequence
//! numbers (or a `prev_hash` that matches nothing), and a deleted tail leaves the head (which
//! names the last sequence number and its hash) pointing past the last entry. Entries expire
//! after the retention: a gap is legitimate only when the entry after it says the entry
//! before the gap was written longer ago than the retention.
//!
//! Never a secret: `before_digest` / `after_digest` are digests of the state, and callers
//! must leave secret values out of that state (the CLI records names and ids, never a
//! client secret, signing secret or token).

use super::OrgId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// What an audited command reports as its outcome.
pub const OUTCOME_OK: &str = "ok";

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3, … without gaps.
    pub seq: u64,
    /// When it was written (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// Who: the OS user, or the AWS caller's ARN.
    pub actor: String,
    /// What: the command (`org add`, `alerts ack`, …).
    pub action: String,
    /// On which target (`org 42`, `channel board`, …).
    pub target: String,
    pub org: Option<OrgId>,
    /// `ok` or `failed: <message>`.
    pub outcome: String,
    /// sha256 hex of the canonical JSON of the state before, `None` when there was none.
    pub before_digest: Option<String>,
    /// sha256 hex of the canonical JSON of the state after, `None` when there is none.
    pub after_digest: Option<String>,
    /// The previous entry's hash (`None` for the first entry).
    pub prev_hash: Option<String>,
    /// When the previous entry was written (`None` for the first entry).
    pub prev_at: Option<String>,
    /// sha256 hex over the canonical JSON of every other field.
    pub hash: String,
}

/// The head of the chain: the last entry's sequence number, hash and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
    pub at: String,
}

/// `outcome` as stored: `ok` or `failed: <message>`.
pub fn outcome_text(outcome: &Result<(), String>) -> String {
    match outcome {
        Ok(()) => OUTCOME_OK.to_owned(),
        Err(m) => format!("failed: {m}"),
    }
}

/// JSON with object keys sorted at every level and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// sha256 hex of the canonical JSON of a state.
pub fn state_digest(state: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(state).as_bytes()))
}

impl AuditEntry {
    /// The hash this entry should carry: sha256 over the canonical JSON of every field but
    /// `hash`.
    pub fn compute_hash(&self) -> String {
        let fields = serde_json::json!({
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "org": self.org,
            "outcome": self.outcome,
            "before_digest": self.before_digest,
            "after_digest": self.after_digest,
            "prev_hash": self.prev_hash,
            "prev_at": self.prev_at,
        });
        hex::encode(Sha256::digest(canonical_json(&fields).as_bytes()))
    }

    /// The entry after `prev` (or the first one), hashed.
    #[allow(clippy::too_many_arguments)]
    pub fn chained(
        prev: Option<&AuditHead>,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        target: &str,
        org: Option<OrgId>,
        outcome: &Result<(), String>,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> AuditEntry {
        let mut e = AuditEntry {
            seq: prev.map_or(1, |h| h.seq + 1),
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            org,
            outcome: outcome_text(outcome),
            before_digest: before.map(state_digest),
            after_digest: after.map(state_digest),
            prev_hash: prev.map(|h| h.hash.clone()),
            prev_at: prev.map(|h| h.at.clone()),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    /// The head that points at this entry.
    pub fn head(&self) -> AuditHead {
        AuditHead {
            seq: self.seq,
            hash: self.hash.clone(),
            at: self.at.clone(),
        }
    }
}

/// What `verify_chain` checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries whose hash and link were checked.
    pub checked: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Sequence numbers missing because they expired (older than the retention).
    pub expired: u64,
}

/// Exactly what is broken, and at which sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {seq} was changed: its hash does not match its content")]
    Changed { seq: u64 },
    #[error("entry {seq} does not link to entry {prev}: its prev_hash or prev_at differs")]
    BadLink { seq: u64, prev: u64 },
    #[error("entries {from}..={to} were deleted (entry {next} follows a gap)")]
    Deleted { from: u64, to: u64, next: u64 },
    #[error(
        "entries 1..={to} were deleted: the first remaining entry {first} was written after \
         one that is younger than the retention"
    )]
    DeletedStart { to: u64, first: u64 },
    #[error("the last entries {from}..={to} were deleted (the head says {to})")]
    DeletedTail { from: u64, to: u64 },
    #[error("entry {seq} is not the one the head names: hashes differ")]
    HeadMismatch { seq: u64 },
    #[error("entry {seq} is stored twice or out of order")]
    Duplicate { seq: u64 },
    #[error("entry {seq} lies beyond the head (seq {head})")]
    BeyondHead { seq: u64, head: u64 },
    #[error("the head is missing while entries exist ({count} of them)")]
    HeadMissing { count: usize },
    #[error("entry {seq}: unreadable time {value:?}")]
    BadTime { seq: u64, value: String },
    #[error("the item {key} is not a readable audit entry: {message}")]
    Unreadable { key: String, message: String },
    #[error("the item {key} holds entry {seq}: entries were moved")]
    Misplaced { key: String, seq: u64 },
}

/// The retention when none is configured: one year.
pub const DEFAULT_RETENTION_DAYS: u64 = 365;

/// The retention from its setting in whole days (`None`: the default year).
pub fn retention_from_days(value: Option<&str>) -> Result<Duration, String> {
    let days = match value.map(str::trim) {
        None | Some("") => DEFAULT_RETENTION_DAYS,
        Some(v) => match v.parse::<u64>() {
            Ok(d) if (1..=36_500).contains(&d) => d,
            _ => {
                return Err(format!(
                    "the audit retention must be a whole number of days from 1 to 36500, not {v:?}"
                ))
            }
        },
    };
    Ok(Duration::from_secs(days * 24 * 3600))
}

fn parse_time(seq: u64, value: &str) -> Result<DateTime<Utc>, ChainBreak> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ChainBreak::BadTime {
            seq,
            value: value.to_owned(),
        })
}

/// Whether something written at `at` is older than the retention at `now`.
fn expired(at: DateTime<Utc>, now: DateTime<Utc>, retention: Duration) -> bool {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    at.checked_add_signed(retention)
        .is_some_and(|end| end < now)
}

/// Checks the chain: `entries` in sequence order (as stored), `head` as stored. A gap (at
/// the start, in the middle, or everything) is accepted only when the entries missing were
/// written longer than `retention` before `now`, which the entry after the gap says through
/// its `prev_at` (or the head, when every entry is gone).
pub fn verify_chain(
    entries: &[AuditEntry],
    head: Option<&AuditHead>,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<VerifyReport, ChainBreak> {
    let Some(head) = head else {
        if entries.is_empty() {
            return Ok(VerifyReport {
                checked: 0,
                first_seq: None,
                last_seq: None,
                expired: 0,
            });
        }
        return Err(ChainBreak::HeadMissing {
            count: entries.len(),
        });
    };
    let mut expired_count = 0u64;
    let mut prev: Option<&AuditEntry> = None;
    for e in entries {
        if e.compute_hash() != e.hash {
            return Err(ChainBreak::Changed { seq: e.seq });
        }
        if e.seq > head.seq {
            return Err(ChainBreak::BeyondHead {
                seq: e.seq,
                head: head.seq,
            });
        }
        let expected = prev.map_or(1, |p| p.seq + 1);
        if e.seq < expected {
            return Err(ChainBreak::Duplicate { seq: e.seq });
        }
        if e.seq > expected {
            // Entries expected..e.seq-1 are gone: legitimate only if they expired.
            let gone_expired = match &e.prev_at {
                Some(t) => expired(parse_time(e.seq, t)?, now, retention),
                None => false,
            };
            if !gone_expired {
                return Err(if prev.is_none() {
                    ChainBreak::DeletedStart {
                        to: e.seq - 1,
                        first: e.seq,
                    }
                } else {
                    ChainBreak::Deleted {
                        from: expected,
                        to: e.seq - 1,
                        next: e.seq,
                    }
                });
            }
            expired_count += e.seq - expected;
        } else if let Some(p) = prev {
            if e.prev_hash.as_deref() != Some(p.hash.as_str())
                || e.prev_at.as_deref() != Some(p.at.as_str())
            {
                return Err(ChainBreak::BadLink {
                    seq: e.seq,
                    prev: p.seq,
                });
            }
        } else if e.prev_hash.is_some() || e.prev_at.is_some() {
            // The first entry of all links to nothing.
            return Err(ChainBreak::BadLink { seq: 1, prev: 0 });
        }
        prev = Some(e);
    }
    match prev {
        Some(last) if last.seq == head.seq => {
            if last.hash != head.hash {
                return Err(ChainBreak::HeadMismatch { seq: last.seq });
            }
        }
        Some(last) => {
            return Err(ChainBreak::DeletedTail {
                from: last.seq + 1,
                to: head.seq,
            })
        }
        None => {
            // Every entry is gone: fine only if the last one expired.
            if head.seq > 0 && !expired(parse_time(head.seq, &head.at)?, now, retention) {
                return Err(ChainBreak::DeletedTail {
                    from: 1,
                    to: head.seq,
                });
            }
            expired_count = head.seq;
        }
    }
    Ok(VerifyReport {
        checked: entries.len() as u64,
        first_seq: entries.first().map(|e| e.seq),
        last_seq: prev.map(|e| e.seq),
        expired: expired_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// `n` entries, one a day from `start`.
    fn chain(n: u64, start: DateTime<Utc>) -> (Vec<AuditEntry>, AuditHead) {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let head = out.last().map(AuditEntry::head);
            out.push(AuditEntry::chained(
                head.as_ref(),
                start + chrono::Duration::days(i as i64),
                "alice",
                "org add",
                &format!("org {i}"),
                Some(i),
                &Ok(()),
                None,
                Some(&json!({"id": i, "name": "Acme"})),
            ));
        }
        let head = out.last().unwrap().head();
        (out, head)
    }

    fn now_after(days: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::days(days)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (c, h) = chain(5, t0());
        let r = verify_chain(&c, Some(&h), now_after(5), YEAR).unwrap();
        assert_eq!(
            r,
            VerifyReport {
                checked: 5,
                first_seq: Some(1),
                last_seq: Some(5),
                expired: 0
            }
        );
        assert_eq!(c[0].prev_hash, None);
        assert_eq!(c[1].prev_hash.as_deref(), Some(c[0].hash.as_str()));
        assert_eq!(
            verify_chain(&[], None, now_after(5), YEAR).unwrap().checked,
            0
        );
    }

    #[test]
    fn changing_any_field_is_detected() {
        let (c, h) = chain(4, t0());
        type Tamper = Box<dyn Fn(&mut AuditEntry)>;
        let tampers: Vec<(&str, Tamper)> = vec![
            ("seq", Box::new(|e| e.seq += 10)),
            ("at", Box::new(|e| e.at = "2026-01-02T00:00:01.000Z".into())),
            ("actor", Box::new(|e| e.actor = "mallory".into())),
            ("action", Box::new(|e| e.action = "org disable".into())),
            ("target", Box::new(|e| e.target = "org 99".into())),
            ("org", Box::new(|e| e.org = None)),
            ("outcome", Box::new(|e| e.outcome = "failed: no".into())),
            (
                "before_digest",
                Box::new(|e| e.before_digest = Some("00".into())),
            ),
            ("after_digest", Box::new(|e| e.after_digest = None)),
            (
                "prev_hash",
                Box::new(|e| e.prev_hash = Some("ab".repeat(32))),
            ),
            ("prev_at", Box::new(|e| e.prev_at = None)),
            ("hash", Box::new(|e| e.hash = "cd".repeat(32))),
        ];
        for (field, tamper) in tampers {
            let mut t = c.clone();
            tamper(&mut t[2]);
            let err = verify_chain(&t, Some(&h), now_after(4), YEAR).unwrap_err();
            assert_eq!(err, ChainBreak::Changed { seq: t[2].seq }, "{field}");
        }
    }

    #[test]
    fn a_rehashed_forgery_breaks_the_link() {
        let (mut c, h) = chain(4, t0());
        c[1].actor = "mallory".into();
        c[1].hash = c[1].compute_hash();
        let err = verify_chain(&c, Some(&h), now_after(4), YEAR).unwrap_err();
        assert_eq!(err, ChainBreak::BadLink { seq: 3, prev: 2 });
        // Forging the last one too: the head no longer matches.
        let (mut c, h) = chain(3, t0());
        c[2].actor = "mallory".into();
        c[2].hash = c[2].compute_hash();
        let err = verify_chain(&c, Some(&h), now_after(4), YEAR).unwrap_err();
        assert_eq!(err, ChainBreak::HeadMismatch { seq: 3 });
    }

    #[test]
    fn a_deleted_middle_entry_is_detected() {
        let (mut c, h) = chain(5, t0());
        c.remove(2);
        let err = verify_chain(&c, Some(&h), now_after(5), YEAR).unwrap_err();
        assert_eq!(
            err,
            ChainBreak::Deleted {
                from: 3,
                to: 3,
                next: 4
            }
        );
        assert!(
            err.to_string().contains("entries 3..=3 were deleted"),
            "{err}"
        );
    }

    #[test]
    fn a_deleted_tail_is_detected() {
        let (mut c, h) = chain(5, t0());
        c.truncate(3);
        let err = verify_chain(&c, Some(&h), now_after(5), YEAR).unwrap_err();
        assert_eq!(err, ChainBreak::DeletedTail { from: 4, to: 5 });
        // Every entry deleted while still young.
        let err = verify_chain(&[], Some(&h), now_after(5), YEAR).unwrap_err();
        assert_eq!(err, ChainBreak::DeletedTail { from: 1, to: 5 });
        // Entries without a head.
        let (c, _) = chain(2, t0());
        let err = verify_chain(&c, None, now_after(5), YEAR).unwrap_err();
        assert_eq!(err, ChainBreak::HeadMissing { count: 2 });
    }

    #[test]
    fn an_expired_start_is_accepted_and_a_deleted_recent_start_refused() {
        // Ten entries a day apart, retention 3 days, checked on day 12: entries 1..=8 are
        // older than the retention (entry 9's prev_at is day 7, 5 days old).
        let (c, h) = chain(10, t0());
        let remaining = &c[8..];
        let r = verify_chain(remaining, Some(&h), now_after(12), 3 * DAY).unwrap();
        assert_eq!(r.first_seq, Some(9));
        assert_eq!(r.last_seq, Some(10));
        assert_eq!(r.expired, 8);
        assert_eq!(r.checked, 2);
        // The same start deleted on day 9: entry 8 was written 1 day ago, younger than 3.
        let err = verify_chain(remaining, Some(&h), now_after(9), 3 * DAY).unwrap_err();
        assert_eq!(err, ChainBreak::DeletedStart { to: 8, first: 9 });
        // With the default year, a deleted start is refused.
        let err = verify_chain(remaining, Some(&h), now_after(12), YEAR).unwrap_err();
        assert_eq!(err, ChainBreak::DeletedStart { to: 8, first: 9 });
        // Everything expired: the head alone is fine once its last entry is old.
        let r = verify_chain(&[], Some(&h), now_after(20), 3 * DAY).unwrap();
        assert_eq!(r.expired, 10);
    }

    #[test]
    fn an_expired_gap_is_accepted_but_a_recent_one_not() {
        // TTL sweeps expire old entries in any order: a gap among expired entries is fine.
        let (c, h) = chain(10, t0());
        let mut rest = c.clone();
        rest.remove(3); // entry 4, day 3
        let r = verify_chain(&rest, Some(&h), now_after(12), 3 * DAY).unwrap();
        assert_eq!(r.expired, 1);
        let err = verify_chain(&rest, Some(&h), now_after(6), 3 * DAY).unwrap_err();
        assert_eq!(
            err,
            ChainBreak::Deleted {
                from: 4,
                to: 4,
                next: 5
            }
        );
    }

    #[test]
    fn retention_is_whole_days() {
        assert_eq!(retention_from_days(None).unwrap(), YEAR);
        assert_eq!(retention_from_days(Some("30")).unwrap(), 30 * DAY);
        assert!(retention_from_days(Some("0")).is_err());
        assert!(retention_from_days(Some("1y")).unwrap_err().contains("1y"));
    }

    #[test]
    fn digests_are_canonical() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(state_digest(&a), state_digest(&b));
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
        assert_ne!(state_digest(&a), state_digest(&json!({"b": 2})));
        assert_eq!(outcome_text(&Err("boom".into())), "failed: boom");
    }
}
