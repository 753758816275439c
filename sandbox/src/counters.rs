//! Request counters for API calls (admin calls are not counted): by endpoint, status and
//! application.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

const ENDPOINTS: [&str; 6] = [
    "oauth2/auth",
    "supporters",
    "campaigns",
    "transactions",
    "recurring-donation-plans",
    "apps/organizations",
];

#[derive(Default)]
struct Data {
    total: u64,
    by_endpoint: BTreeMap<&'static str, u64>,
    by_status: BTreeMap<u16, u64>,
    /// Per client id: authenticated `/2.0/` requests and their 429 answers.
    by_application: BTreeMap<String, (u64, u64)>,
}

#[derive(Default)]
pub struct Counters(Mutex<Data>);

/// Classifies a request path into a counter key.
pub fn endpoint_of(path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["oauth2", "auth"] => "oauth2/auth",
        ["2.0", "organizations", _, entity] => ENDPOINTS
            .iter()
            .copied()
            .find(|e| e == entity && *e != "oauth2/auth")
            .unwrap_or("other"),
        ["2.0", "organizations", _] => "organizations",
        ["2.0", "apps", _, "organizations"] => "apps/organizations",
        _ => "other",
    }
}

impl Counters {
    /// One answer; `app` is the client id of an authenticated `/2.0/` request.
    pub fn record(&self, endpoint: &'static str, status: u16, app: Option<&str>) {
        let mut d = self.0.lock().expect("counters lock");
        d.total += 1;
        *d.by_endpoint.entry(endpoint).or_default() += 1;
        *d.by_status.entry(status).or_default() += 1;
        if let Some(app) = app {
            let entry = match d.by_application.get_mut(app) {
                Some(e) => e,
                None => d.by_application.entry(app.to_string()).or_default(),
            };
            entry.0 += 1;
            if status == 429 {
                entry.1 += 1;
            }
        }
    }

    pub fn reset(&self) {
        *self.0.lock().expect("counters lock") = Data::default();
    }

    pub fn snapshot(&self) -> Value {
        let d = self.0.lock().expect("counters lock");
        let mut by_endpoint: BTreeMap<&str, u64> = ENDPOINTS.iter().map(|e| (*e, 0)).collect();
        for (k, v) in &d.by_endpoint {
            by_endpoint.insert(k, *v);
        }
        let by_status: BTreeMap<String, u64> = d
            .by_status
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let by_application: BTreeMap<&str, Value> = d
            .by_application
            .iter()
            .map(|(k, (requests, limited))| {
                (k.as_str(), json!({"requests": requests, "429": limited}))
            })
            .collect();
        json!({
            "total": d.total,
            "by_endpoint": by_endpoint,
            "by_status": by_status,
            "by_application": by_application,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_and_count() {
        assert_eq!(endpoint_of("/oauth2/auth"), "oauth2/auth");
        assert_eq!(
            endpoint_of("/2.0/organizations/10001/recurring-donation-plans"),
            "recurring-donation-plans"
        );
        assert_eq!(
            endpoint_of("/2.0/apps/x/organizations"),
            "apps/organizations"
        );
        assert_eq!(endpoint_of("/2.0/transactions"), "other");
        let c = Counters::default();
        c.record("supporters", 200, Some("app-1"));
        c.record("supporters", 429, Some("app-1"));
        c.record("oauth2/auth", 200, None);
        let s = c.snapshot();
        assert_eq!(s["total"], 3);
        assert_eq!(s["by_endpoint"]["supporters"], 2);
        assert_eq!(s["by_endpoint"]["campaigns"], 0);
        assert_eq!(s["by_status"]["429"], 1);
        assert_eq!(
            s["by_application"],
            json!({"app-1": {"requests": 2, "429": 1}})
        );
        c.reset();
        assert_eq!(c.snapshot()["total"], 0);
    }
}
