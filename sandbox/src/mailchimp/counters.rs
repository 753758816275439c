//! API call counters by route, and the per-key in-flight limit.

use axum::http::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const ROUTES: [&str; 11] = [
    "GET /ping",
    "GET /lists/{id}",
    "POST /lists/{id}",
    "PUT /lists/{id}/members/{hash}",
    "GET /lists/{id}/members/{hash}",
    "PATCH /lists/{id}/members/{hash}",
    "POST /lists/{id}/members/{hash}/tags",
    "GET /lists/{id}/merge-fields",
    "POST /lists/{id}/merge-fields",
    "GET /lists/{id}/segments",
    "POST /lists/{id}/segments/{segment_id}",
];

/// The route template of a request path below `/3.0`; "other" for anything else.
pub fn route_of(method: &Method, path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = method.as_str();
    let found = match segs.as_slice() {
        ["ping"] => format!("{m} /ping"),
        ["lists", _] => format!("{m} /lists/{{id}}"),
        ["lists", _, "members", _] => format!("{m} /lists/{{id}}/members/{{hash}}"),
        ["lists", _, "members", _, "tags"] => format!("{m} /lists/{{id}}/members/{{hash}}/tags"),
        ["lists", _, "merge-fields"] => format!("{m} /lists/{{id}}/merge-fields"),
        ["lists", _, "segments"] => format!("{m} /lists/{{id}}/segments"),
        ["lists", _, "segments", _] => format!("{m} /lists/{{id}}/segments/{{segment_id}}"),
        _ => return "other",
    };
    ROUTES
        .iter()
        .copied()
        .find(|r| *r == found)
        .unwrap_or("other")
}

#[derive(Default)]
struct Counts {
    requests: u64,
    by_route: BTreeMap<&'static str, u64>,
}

/// What one API key did: the most requests it had in flight at once, and its refusals.
#[derive(Default, Clone, Copy)]
struct KeyCounts {
    max_in_flight: usize,
    rejected_concurrency: u64,
}

/// How the counters name an API key without showing it: the first 12 hex digits of the
/// SHA-256 of the key.
pub fn key_fingerprint(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(key.as_bytes()))[..12].to_string()
}

/// The key's last 4 characters, as Mailchimp's account page shows keys.
fn key_hint(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

#[derive(Default)]
pub struct Counters {
    counts: Mutex<Counts>,
    by_key: Mutex<HashMap<String, KeyCounts>>,
    max_in_flight: AtomicUsize,
    rejected_concurrency: AtomicU64,
    compliance_rejections: AtomicU64,
}

impl Counters {
    pub fn record(&self, route: &'static str) {
        let mut c = self.counts.lock().expect("counters lock");
        c.requests += 1;
        *c.by_route.entry(route).or_default() += 1;
    }

    fn with_key(&self, key: &str, f: impl FnOnce(&mut KeyCounts)) {
        let mut m = self.by_key.lock().expect("counters lock");
        match m.get_mut(key) {
            Some(k) => f(k),
            None => f(m.entry(key.to_string()).or_default()),
        }
    }

    /// `key` now has `n` requests in flight.
    pub fn saw_in_flight(&self, key: &str, n: usize) {
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
        self.with_key(key, |k| k.max_in_flight = k.max_in_flight.max(n));
    }

    /// A request of `key` was refused for being over the in-flight cap.
    pub fn rejected(&self, key: &str) {
        self.rejected_concurrency.fetch_add(1, Ordering::SeqCst);
        self.with_key(key, |k| k.rejected_concurrency += 1);
    }

    pub fn compliance(&self, n: u64) {
        self.compliance_rejections.fetch_add(n, Ordering::SeqCst);
    }

    pub fn reset(&self) {
        *self.counts.lock().expect("counters lock") = Counts::default();
        self.by_key.lock().expect("counters lock").clear();
        self.max_in_flight.store(0, Ordering::SeqCst);
        self.rejected_concurrency.store(0, Ordering::SeqCst);
        self.compliance_rejections.store(0, Ordering::SeqCst);
    }

    pub fn snapshot(&self) -> Value {
        let c = self.counts.lock().expect("counters lock");
        let mut by_route: BTreeMap<&str, u64> = ROUTES.iter().map(|r| (*r, 0)).collect();
        for (k, v) in &c.by_route {
            by_route.insert(k, *v);
        }
        let by_key: BTreeMap<String, Value> = self
            .by_key
            .lock()
            .expect("counters lock")
            .iter()
            .map(|(key, k)| {
                let v = json!({
                    "key_hint": key_hint(key),
                    "max_in_flight": k.max_in_flight,
                    "rejected_concurrency": k.rejected_concurrency,
                });
                (key_fingerprint(key), v)
            })
            .collect();
        json!({
            "requests": c.requests,
            "by_route": by_route,
            "by_key": by_key,
            "max_in_flight": self.max_in_flight.load(Ordering::SeqCst),
            "rejected_concurrency": self.rejected_concurrency.load(Ordering::SeqCst),
            "compliance_rejections": self.compliance_rejections.load(Ordering::SeqCst),
        })
    }
}

/// Requests in flight per API key, capped at `limit` (0 = no cap).
pub struct InFlight {
    limit: AtomicUsize,
    by_key: Arc<Mutex<HashMap<String, usize>>>,
}

/// Holds one slot; dropping it (also when the client hangs up) frees the slot.
pub struct Slot {
    key: String,
    by_key: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.by_key.lock().expect("in-flight lock");
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

impl InFlight {
    pub fn new(limit: usize) -> InFlight {
        InFlight {
            limit: AtomicUsize::new(limit),
            by_key: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::SeqCst)
    }

    pub fn set_limit(&self, n: usize) {
        self.limit.store(n, Ordering::SeqCst);
    }

    /// A slot and the key's in-flight count including it, or `None` when the key is at its cap.
    pub fn acquire(&self, key: &str) -> Option<(Slot, usize)> {
        let limit = self.limit();
        let mut m = self.by_key.lock().expect("in-flight lock");
        let n = m.entry(key.to_string()).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        let now = *n;
        Some((
            Slot {
                key: key.to_string(),
                by_key: self.by_key.clone(),
            },
            now,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_slots() {
        assert_eq!(route_of(&Method::GET, "/ping"), "GET /ping");
        assert_eq!(
            route_of(&Method::POST, "/lists/abc/members/0f/tags"),
            "POST /lists/{id}/members/{hash}/tags"
        );
        assert_eq!(
            route_of(&Method::POST, "/lists/abc/segments/7"),
            "POST /lists/{id}/segments/{segment_id}"
        );
        assert_eq!(
            route_of(&Method::GET, "/lists/abc/segments"),
            "GET /lists/{id}/segments"
        );
        assert_eq!(route_of(&Method::DELETE, "/lists/abc"), "other");
        let f = InFlight::new(2);
        let a = f.acquire("k").unwrap();
        let b = f.acquire("k").unwrap();
        assert_eq!(b.1, 2);
        assert!(f.acquire("k").is_none());
        assert!(f.acquire("other").is_some());
        drop(a);
        assert!(f.acquire("k").is_some());
        drop(b);

        let c = Counters::default();
        c.saw_in_flight("0123456789abcdef0123456789abcdef-us1", 3);
        c.saw_in_flight("0123456789abcdef0123456789abcdef-us1", 2);
        c.rejected("0123456789abcdef0123456789abcdef-us1");
        c.saw_in_flight("other-us2", 1);
        let s = c.snapshot();
        let fp = key_fingerprint("0123456789abcdef0123456789abcdef-us1");
        assert_eq!(fp.len(), 12);
        assert_eq!(
            s["by_key"][&fp],
            json!({"key_hint": "…-us1", "max_in_flight": 3, "rejected_concurrency": 1})
        );
        assert_eq!(
            s["by_key"][key_fingerprint("other-us2")]["max_in_flight"],
            1
        );
        assert_eq!(
            (
                s["max_in_flight"].as_u64(),
                s["rejected_concurrency"].as_u64()
            ),
            (Some(3), Some(1))
        );
        assert!(
            !s.to_string().contains("0123456789abcdef"),
            "the key never shows: {s}"
        );
        c.reset();
        assert_eq!(c.snapshot()["by_key"], json!({}));
    }
}
