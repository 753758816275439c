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

#[derive(Default)]
pub struct Counters {
    counts: Mutex<Counts>,
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

    pub fn saw_in_flight(&self, n: usize) {
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
    }

    pub fn rejected(&self) {
        self.rejected_concurrency.fetch_add(1, Ordering::SeqCst);
    }

    pub fn compliance(&self, n: u64) {
        self.compliance_rejections.fetch_add(n, Ordering::SeqCst);
    }

    pub fn reset(&self) {
        *self.counts.lock().expect("counters lock") = Counts::default();
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
        json!({
            "requests": c.requests,
            "by_route": by_route,
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
    }
}
