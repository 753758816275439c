//! The HTTP side: one reqwest client (connections reused), a semaphore bounding requests in
//! flight, bounded retries.

use super::types::*;
use classy_sync_core::ports::{within, ConcurrencyLimit};
use classy_sync_core::retry::Backoff;
use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The member id Mailchimp uses: MD5 of the lower-cased address.
pub fn subscriber_hash(email: &str) -> String {
    hex::encode(Md5::digest(email.trim().to_lowercase().as_bytes()))
}

/// How a key is named where it must be told apart from others (its shared semaphore): the
/// first 16 hex digits of its SHA-256. The key cannot be recovered from it.
pub fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_string()
}

/// Whether a 403 is throttling rather than a refusal: Mailchimp (or the network in front of
/// it) answers a key over its connection limit with a 403 that has no body, or a body that
/// is not a problem document naming an error (an HTML page). A problem document with a
/// title or detail is a real permission error.
pub fn is_bare_403(body: &str) -> bool {
    match serde_json::from_str::<Problem>(body) {
        Ok(p) => p.title.trim().is_empty() && p.detail.trim().is_empty(),
        Err(_) => true,
    }
}

/// `https://<dc>.api.mailchimp.com/3.0`, `<dc>` being the key's suffix after the last dash.
pub fn base_url_for_key(key: &str) -> Result<String, MailchimpError> {
    let dc = key
        .rsplit_once('-')
        .map(|(_, dc)| dc)
        .filter(|dc| !dc.is_empty() && dc.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            MailchimpError::InvalidKey(
                "expected <key>-<data center>, e.g. ...-us14 (the key is not shown)".into(),
            )
        })?;
    Ok(format!("https://{dc}.api.mailchimp.com/3.0"))
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Requests in flight from this client (Mailchimp allows 10 connections per key; the
    /// destination sets its per-key limit here and in the shared semaphore).
    pub max_in_flight: usize,
    pub timeout: Duration,
    /// Retries after the first attempt on 429, 5xx and bare 403.
    pub max_retries: u32,
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_in_flight: 10,
            timeout: Duration::from_secs(120),
            max_retries: 6,
            retry_base: Duration::from_millis(200),
            retry_cap: Duration::from_secs(10),
        }
    }
}

pub struct MailchimpClient {
    http: reqwest::Client,
    base: String,
    key: SecretString,
    slots: Arc<Semaphore>,
    opts: ClientOptions,
    calls: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    shared: Option<SharedLimit>,
}

/// The key's places across every process: a semaphore in the store.
struct SharedLimit {
    limiter: Arc<dyn ConcurrencyLimit>,
    name: String,
    limit: u32,
}

impl std::fmt::Debug for MailchimpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailchimpClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

enum Attempt<T> {
    Done(T),
    Retry(MailchimpError),
}

impl MailchimpClient {
    /// `base_override` (checked by the caller: an organization's data center, or the
    /// deployment's `MAILCHIMP_API_BASE_URL`) wins over the URL derived from the key.
    pub fn new(
        key: SecretString,
        base_override: Option<&str>,
        opts: ClientOptions,
    ) -> Result<Self, MailchimpError> {
        let derived = base_url_for_key(key.expose_secret());
        let base = match base_override.map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => b.trim_end_matches('/').to_string(),
            None => derived?,
        };
        // No redirects: a 3xx would carry the key (Basic auth) to wherever it points.
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .pool_max_idle_per_host(opts.max_in_flight)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| MailchimpError::Transport(e.to_string()))?;
        Ok(MailchimpClient {
            http,
            base,
            key,
            slots: Arc::new(Semaphore::new(opts.max_in_flight.max(1))),
            opts,
            calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            shared: None,
        })
    }

    /// Every request also holds a place of semaphore `name` (at most `limit` in flight for
    /// the key across every process sharing `limiter`'s store).
    pub fn with_shared_limit(
        mut self,
        limiter: Arc<dyn ConcurrencyLimit>,
        name: String,
        limit: u32,
    ) -> Self {
        self.shared = Some(SharedLimit {
            limiter,
            name,
            limit: limit.max(1),
        });
        self
    }

    /// The digest that names this client's key ([`key_digest`]).
    pub fn key_digest(&self) -> String {
        key_digest(self.key.expose_secret())
    }

    /// Answers that were throttling (429, bare 403), each retried.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// HTTP requests sent so far (retries included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub async fn ping(&self) -> Result<serde_json::Value, MailchimpError> {
        self.call(Method::GET, "/ping", None::<&()>).await
    }

    pub async fn list(&self, list_id: &str) -> Result<ListInfo, MailchimpError> {
        self.call(
            Method::GET,
            &format!("/lists/{}", seg(list_id)),
            None::<&()>,
        )
        .await
    }

    pub async fn merge_fields(&self, list_id: &str) -> Result<Vec<MergeField>, MailchimpError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            merge_fields: Vec<MergeField>,
        }
        let p: Page = self
            .call(
                Method::GET,
                &format!("/lists/{}/merge-fields?count=1000", seg(list_id)),
                None::<&()>,
            )
            .await?;
        Ok(p.merge_fields)
    }

    pub async fn create_merge_field(
        &self,
        list_id: &str,
        field: &NewMergeField,
    ) -> Result<MergeField, MailchimpError> {
        self.call(
            Method::POST,
            &format!("/lists/{}/merge-fields", seg(list_id)),
            Some(field),
        )
        .await
    }

    /// Batch upsert of at most 500 members.
    pub async fn batch_upsert(
        &self,
        list_id: &str,
        req: &BatchRequest,
    ) -> Result<BatchResponse, MailchimpError> {
        self.call(Method::POST, &format!("/lists/{}", seg(list_id)), Some(req))
            .await
    }

    /// Every static segment of the list: the tags, with their segment ids.
    pub async fn static_segments(&self, list_id: &str) -> Result<Vec<Segment>, MailchimpError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            segments: Vec<Segment>,
            #[serde(default)]
            total_items: usize,
        }
        const PAGE: usize = 1000;
        let mut out = Vec::new();
        loop {
            let p: Page = self
                .call(
                    Method::GET,
                    &format!(
                        "/lists/{}/segments?type=static&count={PAGE}&offset={}",
                        seg(list_id),
                        out.len()
                    ),
                    None::<&()>,
                )
                .await?;
            let got = p.segments.len();
            out.extend(p.segments);
            if got < PAGE || out.len() >= p.total_items {
                return Ok(out);
            }
        }
    }

    /// Adds and removes up to 500 addresses each to and from a static segment (a tag) in
    /// one call: how a tag leaves many members at once.
    pub async fn segment_members(
        &self,
        list_id: &str,
        segment_id: u64,
        req: &SegmentMembersRequest,
    ) -> Result<SegmentMembersResponse, MailchimpError> {
        self.call(
            Method::POST,
            &format!("/lists/{}/segments/{segment_id}", seg(list_id)),
            Some(req),
        )
        .await
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, MailchimpError> {
        let mut retry = 0;
        loop {
            match self.attempt(method.clone(), path, body).await? {
                Attempt::Done(v) => return Ok(v),
                Attempt::Retry(e) => {
                    if retry >= self.opts.max_retries {
                        return Err(e);
                    }
                    retry += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff(retry)).await;
                }
            }
        }
    }

    /// Equal jitter: callers turned away together do not return together.
    fn backoff(&self, retry: u32) -> Duration {
        Backoff::equal(self.opts.retry_base, self.opts.retry_cap).delay(retry)
    }

    async fn attempt<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Attempt<T>, MailchimpError> {
        let _slot = self.slots.acquire().await.expect("semaphore never closed");
        let exchange = self.exchange(method, path, body);
        let answer = match &self.shared {
            Some(s) => within(&s.limiter, &s.name, s.limit, exchange).await,
            None => exchange.await,
        };
        let (status, text) = match answer? {
            Ok(a) => a,
            Err(e) => return Ok(Attempt::Retry(e)),
        };
        if status.is_success() {
            let text = if text.trim().is_empty() {
                "null"
            } else {
                &text
            };
            return serde_json::from_str(text)
                .map(Attempt::Done)
                .map_err(|e| MailchimpError::Decode(format!("{path}: {e}")));
        }
        let problem: Problem = serde_json::from_str(&text).unwrap_or_default();
        let err = MailchimpError::Api {
            status: status.as_u16(),
            title: if problem.title.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                problem.title
            },
            detail: problem.detail,
        };
        let throttled = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && is_bare_403(&text));
        if throttled {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if throttled || status.is_server_error() {
            Ok(Attempt::Retry(err))
        } else {
            Err(err)
        }
    }
}

impl MailchimpClient {
    /// One request and its body: the status and text; `Ok(Err(_))` for trouble worth another
    /// try (connection, timeout, a body cut short).
    async fn exchange<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Result<(StatusCode, String), MailchimpError>, MailchimpError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .basic_auth("classy-sync", Some(self.key.expose_secret()));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            // Connection trouble and timeouts are worth another try; the URL holds no secret.
            Err(e) => return Ok(Err(MailchimpError::Transport(e.without_url().to_string()))),
        };
        let status = resp.status();
        // A page of 1,000 members is a few MB; more than this is refused, not buffered.
        const MAX_BODY: usize = 16 * 1024 * 1024;
        match classy_sync_http::read_capped_text(resp, MAX_BODY).await {
            Ok(t) => Ok(Ok((status, t))),
            Err(e @ classy_sync_http::BodyError::TooLarge { .. }) => {
                Err(MailchimpError::Decode(format!("{path}: {e}")))
            }
            Err(e) => Ok(Err(MailchimpError::Transport(e.to_string()))),
        }
    }
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_is_throttling_unless_a_problem_document_names_the_error() {
        assert!(is_bare_403(""));
        assert!(is_bare_403("  \n"));
        assert!(is_bare_403(
            "<html><head><title>Access Denied</title></head></html>"
        ));
        assert!(is_bare_403("{}"));
        assert!(is_bare_403(r#"{"type":"x","status":403}"#));
        assert!(!is_bare_403(
            r#"{"type":"https://mailchimp.com/developer/marketing/docs/errors/","title":"Forbidden","status":403,"detail":"You don't have permission to access this resource.","instance":"1"}"#
        ));
        assert!(!is_bare_403(r#"{"title":"User Disabled","status":403}"#));
    }

    #[test]
    fn a_key_is_named_by_a_digest_that_does_not_show_it() {
        let d = key_digest("0123456789abcdef0123456789abcdef-us1");
        assert_eq!(d.len(), 16);
        assert!(d.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(d, key_digest("0123456789abcdef0123456789abcdef-us2"));
        assert!(!"0123456789abcdef0123456789abcdef-us1".contains(&d));
    }

    #[test]
    fn hash_is_md5_of_the_lowercased_address() {
        assert_eq!(
            subscriber_hash(" Urist.McVankab@Freddiesjokes.com "),
            "62eeb292278cc15f5817cb78f7790b08"
        );
    }

    #[test]
    fn base_url_comes_from_the_data_center_and_errors_hide_the_key() {
        assert_eq!(
            base_url_for_key("abc123-us14").unwrap(),
            "https://us14.api.mailchimp.com/3.0"
        );
        let e = base_url_for_key("secretkeywithoutdc")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secretkeywithoutdc"), "{e}");
        let c = MailchimpClient::new(
            SecretString::from("k-us1"),
            Some("http://127.0.0.1:9/3.0/"),
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:9/3.0");
        assert!(!format!("{c:?}").contains("k-us1"));
    }
}
