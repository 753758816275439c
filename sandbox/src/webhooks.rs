//! Svix-signed webhooks, as GoFundMe Pro (Classy) sends them through Svix.
//!
//! An organization registers one endpoint (`PUT /admin/orgs/{org}/webhook`, body
//! `{"url": .., "secret": "whsec_..", "retry_delays_ms"?: [..]}`); every change of a supporter,
//! transaction or recurring plan made through the admin API then sends the matching event
//! (`supporter.created`, `transaction.updated`, ...) as a POST with a minimal JSON body
//! `{"type", "data": {"id", "organization_id"}, "timestamp"}` (the real payload schema is not
//! public) and the headers `svix-id`, `svix-timestamp`, `svix-signature`. Deliveries run in the
//! background (never blocking the admin call), each attempt with a 15 s timeout; a failed attempt
//! (no 2xx, timeout, connection error) is retried on a short schedule (see
//! [`DEFAULT_RETRY_DELAYS_MS`]) with the same `svix-id` and a fresh timestamp and signature.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Delays before the retries of a failed delivery: five attempts in all, over about 40 s.
/// Svix retries for days (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); a sandbox keeps it short.
pub const DEFAULT_RETRY_DELAYS_MS: [u64; 4] = [500, 2_000, 8_000, 30_000];

/// Svix counts an attempt as failed when the endpoint has not answered 2xx within 15 s.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// At most this many deliveries are in flight at once (a burst queues behind them).
const MAX_IN_FLIGHT: usize = 128;

/// An organization's registered endpoint.
#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    key: Arc<Vec<u8>>,
    pub retry_delays_ms: Vec<u64>,
}

impl Endpoint {
    /// `secret` is the `whsec_<base64>` value (the prefix is optional, as in Svix's libraries).
    pub fn new(url: &str, secret: &str, retry_delays_ms: Option<Vec<u64>>) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("url: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("url: must be http or https".into());
        }
        let key = decode_secret(secret)?;
        Ok(Self {
            url: url.to_string(),
            key: Arc::new(key),
            retry_delays_ms: retry_delays_ms.unwrap_or_else(|| DEFAULT_RETRY_DELAYS_MS.to_vec()),
        })
    }
}

/// The signing key of a `whsec_<base64>` secret.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    match B64.decode(b64) {
        Ok(k) if !k.is_empty() => Ok(k),
        _ => Err("secret: expected whsec_ followed by base64".into()),
    }
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, the Svix signature.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The Classy event name prefix of an entity path (`None`: campaigns send no events).
pub fn event_prefix(entity_path: &str) -> Option<&'static str> {
    match entity_path {
        "supporters" => Some("supporter"),
        "transactions" => Some("transaction"),
        "recurring-donation-plans" => Some("recurring_donation_plan"),
        _ => None,
    }
}

#[derive(Default)]
struct Counts {
    events: AtomicU64,
    attempts: AtomicU64,
    sent: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
}

/// Counters as `GET /admin/webhooks` shows them.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Events produced by changes (one per record changed, for organizations with an endpoint).
    pub events: u64,
    /// HTTP attempts made.
    pub attempts: u64,
    /// Events delivered (a 2xx answer).
    pub sent: u64,
    /// Attempts that were retries of a failed one.
    pub retried: u64,
    /// Events given up after the last retry.
    pub failed: u64,
    /// Events not yet delivered or given up.
    pub in_flight: u64,
}

/// Endpoints, the HTTP client and the counters.
pub struct Webhooks {
    endpoints: RwLock<BTreeMap<i64, Endpoint>>,
    client: reqwest::Client,
    counts: Arc<Counts>,
    permits: Arc<Semaphore>,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self::new()
    }
}

impl Webhooks {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self {
            endpoints: RwLock::new(BTreeMap::new()),
            client,
            counts: Arc::new(Counts::default()),
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    pub fn set_endpoint(&self, org: i64, endpoint: Endpoint) {
        self.endpoints
            .write()
            .expect("endpoints lock")
            .insert(org, endpoint);
    }

    pub fn remove_endpoint(&self, org: i64) -> bool {
        self.endpoints
            .write()
            .expect("endpoints lock")
            .remove(&org)
            .is_some()
    }

    pub fn endpoint(&self, org: i64) -> Option<Endpoint> {
        self.endpoints
            .read()
            .expect("endpoints lock")
            .get(&org)
            .cloned()
    }

    /// Registered endpoints (never the secrets).
    pub fn endpoints_json(&self) -> Value {
        let eps = self.endpoints.read().expect("endpoints lock");
        Value::Array(
            eps.iter()
                .map(|(org, e)| json!({"organization_id": org, "url": e.url, "retry_delays_ms": e.retry_delays_ms}))
                .collect(),
        )
    }

    pub fn snapshot(&self) -> Snapshot {
        let c = &self.counts;
        Snapshot {
            events: c.events.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
        }
    }

    /// Zeroes the counters (events still in flight keep counting as they finish).
    pub fn reset(&self) {
        let c = &self.counts;
        for a in [&c.events, &c.attempts, &c.sent, &c.retried, &c.failed] {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// Sends `{prefix}.{created|updated}` for each id, in the background, when the organization
    /// has an endpoint and the entity sends events. Must be called inside a tokio runtime.
    pub fn emit(&self, org: i64, entity_path: &str, created: bool, ids: &[i64]) {
        let Some(prefix) = event_prefix(entity_path) else {
            return;
        };
        let Some(endpoint) = self.endpoint(org) else {
            return;
        };
        let kind = format!("{prefix}.{}", if created { "created" } else { "updated" });
        for &id in ids {
            let body = json!({
                "type": kind,
                "data": {"id": id, "organization_id": org},
                "timestamp": crate::data::time::format_ts(crate::data::time::now()),
            });
            let body = serde_json::to_vec(&body).expect("json");
            let msg_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
            self.counts.events.fetch_add(1, Ordering::Relaxed);
            self.counts.in_flight.fetch_add(1, Ordering::Relaxed);
            let delivery = Delivery {
                client: self.client.clone(),
                counts: self.counts.clone(),
                permits: self.permits.clone(),
                endpoint: endpoint.clone(),
                msg_id,
                body,
            };
            tokio::spawn(delivery.run());
        }
    }
}

struct Delivery {
    client: reqwest::Client,
    counts: Arc<Counts>,
    permits: Arc<Semaphore>,
    endpoint: Endpoint,
    msg_id: String,
    body: Vec<u8>,
}

impl Delivery {
    async fn run(self) {
        let mut delays = self.endpoint.retry_delays_ms.iter();
        let mut attempt = 0u32;
        loop {
            if attempt > 0 {
                self.counts.retried.fetch_add(1, Ordering::Relaxed);
            }
            attempt += 1;
            let ok = {
                let _permit = self.permits.acquire().await.expect("semaphore open");
                self.attempt().await
            };
            if ok {
                self.counts.sent.fetch_add(1, Ordering::Relaxed);
                break;
            }
            match delays.next() {
                Some(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                None => {
                    self.counts.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(msg_id = %self.msg_id, attempts = attempt, "webhook given up");
                    break;
                }
            }
        }
        self.counts.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// One signed POST; true on a 2xx answer.
    async fn attempt(&self) -> bool {
        self.counts.attempts.fetch_add(1, Ordering::Relaxed);
        let ts = crate::data::time::now();
        let sig = sign(&self.endpoint.key, &self.msg_id, ts, &self.body);
        let res = self
            .client
            .post(&self.endpoint.url)
            .header("content-type", "application/json")
            .header("svix-id", &self.msg_id)
            .header("svix-timestamp", ts.to_string())
            .header("svix-signature", sig)
            .body(self.body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::debug!(msg_id = %self.msg_id, status = r.status().as_u16(), "webhook attempt failed");
                false
            }
            Err(e) => {
                tracing::debug!(msg_id = %self.msg_id, error = %e, "webhook attempt failed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svix_test_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_and_urls_checked() {
        assert!(decode_secret("whsec_!!!").is_err());
        assert!(decode_secret("whsec_").is_err());
        assert!(Endpoint::new("ftp://x", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", None).is_err());
        let e = Endpoint::new(
            "http://127.0.0.1:1/h",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            None,
        )
        .unwrap();
        assert_eq!(e.retry_delays_ms, DEFAULT_RETRY_DELAYS_MS.to_vec());
        assert_eq!(event_prefix("campaigns"), None);
        assert_eq!(
            event_prefix("recurring-donation-plans"),
            Some("recurring_donation_plan")
        );
    }
}
