//! [`ClassyClient`]: the HTTP implementation of [`ClassySource`].

use super::auth::{CacheKey, CachedToken, TokenCache, TokenResponse};
use super::config::ClassyConfig;
use super::envelope::Envelope;
use super::limiter::AppLimiter;
use super::retry::{combine_hints, parse_retry_after_body, parse_retry_after_header, RetryPolicy};
use super::url::{app_orgs_path, encode, list_query_string, loggable_path, org_list_path};
use async_trait::async_trait;
use bytes::Bytes;
use classy_sync_core::domain::{Entity, OrgId};
use classy_sync_core::ports::{
    AppCredentials, ClassySource, ListQuery, RateBudget, SourceError, SourcePage,
};
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest server message quoted in an error.
const MAX_MESSAGE_CHARS: usize = 300;
/// Guard against a server whose `next_page_url` never ends.
const MAX_ORG_LIST_PAGES: u32 = 10_000;
/// Largest API answer read: a page of 100 records is tens of kilobytes, a few MB at worst.
pub const MAX_API_BODY: usize = 8 * 1024 * 1024;
/// Largest token-endpoint answer read.
pub const MAX_TOKEN_BODY: usize = 64 * 1024;

tokio::task_local! {
    /// HTTP requests made on behalf of the current `list_page` call.
    static REQUESTS: Cell<u32>;
}

/// Classy API 2.0 client. Cheap to clone (one `Arc`); create one per process so the
/// connection pool, token cache and rate limiter are shared by every task.
#[derive(Clone)]
pub struct ClassyClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClassyConfig,
    http: reqwest::Client,
    retry: RetryPolicy,
    /// This process's own pace per application: used without a shared budget, or when the
    /// budget's store cannot be reached.
    limiter: AppLimiter,
    /// The application's budget shared with every process (replaces `limiter` when set).
    budget: Option<Arc<dyn RateBudget>>,
    tokens: TokenCache,
    calls: AtomicU64,
}

impl fmt::Debug for ClassyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassyClient")
            .field("config", &self.inner.config)
            .field("calls_made", &self.calls_made())
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt after a wait. `decode`: the answer arrived but was unreadable.
    Transient {
        last: String,
        hint: Option<Duration>,
        decode: bool,
    },
    /// 401 from the API: the token is no longer accepted.
    Unauthorized(String),
    Fatal(SourceError),
}

/// What a request is about, for error messages and logs (never secrets or queries).
struct Ctx<'a> {
    what: String,
    path: &'a str,
}

impl ClassyClient {
    /// Builds the client (validates the configuration). It follows no redirect (a 307/308
    /// would re-send the client secret elsewhere) and, unless [`ClassyConfig::allow_http`],
    /// speaks https only.
    pub fn new(config: ClassyConfig) -> Result<Self, SourceError> {
        Self::build(config, None)
    }

    /// [`ClassyClient::new`] spending `budget`, the application's request budget shared by
    /// every process (see docs/classy-budget.md), instead of a limiter of its own. Answers
    /// correct it: a 429's wait blocks the budget for every process, and an
    /// `X-RateLimit-Remaining` below a block pauses it.
    pub fn with_budget(
        config: ClassyConfig,
        budget: Arc<dyn RateBudget>,
    ) -> Result<Self, SourceError> {
        Self::build(config, Some(budget))
    }

    fn build(
        config: ClassyConfig,
        budget: Option<Arc<dyn RateBudget>>,
    ) -> Result<Self, SourceError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!config.allow_http)
            .gzip(true)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("classy-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Config(format!("HTTP client: {e}")))?;
        Ok(ClassyClient {
            inner: Arc::new(Inner {
                retry: RetryPolicy::from_config(&config),
                limiter: AppLimiter::new(config.requests_per_minute),
                budget,
                tokens: TokenCache::default(),
                calls: AtomicU64::new(0),
                http,
                config,
            }),
        })
    }

    /// [`ClassyClient::new`] with [`ClassyConfig::from_env`].
    pub fn from_env() -> Result<Self, SourceError> {
        Self::new(ClassyConfig::from_env()?)
    }

    pub fn config(&self) -> &ClassyConfig {
        &self.inner.config
    }

    /// Every organization the application may read (`GET /apps/{client_id}/organizations`,
    /// all pages).
    pub async fn organizations(
        &self,
        creds: &AppCredentials,
    ) -> Result<Vec<serde_json::Value>, SourceError> {
        let path = app_orgs_path(self.inner.config.api_base(), &creds.client_id);
        let log_path = loggable_path(&path).to_string();
        let ctx = Ctx {
            what: format!("organizations of client {}", creds.client_id),
            path: &log_path,
        };
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let url = format!(
                "{path}?page={page}&per_page={}",
                classy_sync_core::ports::source::MAX_PER_PAGE
            );
            let envelope = self.get_envelope(creds, &url, &ctx).await?;
            let has_next = envelope.has_next();
            let empty = envelope.data.is_empty();
            for raw in envelope.data {
                let value = serde_json::from_str(raw.get()).map_err(|e| {
                    SourceError::Decode(format!(
                        "{}: {}: organization record: {e}",
                        ctx.what, ctx.path
                    ))
                })?;
                out.push(value);
            }
            if !has_next || empty || page >= MAX_ORG_LIST_PAGES {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// Onboarding / health check: obtains a token and reads one supporter of `org`.
    pub async fn verify(&self, creds: &AppCredentials, org: OrgId) -> Result<(), SourceError> {
        let query = ListQuery {
            per_page: 1,
            ..ListQuery::default()
        };
        self.list_page(creds, org, Entity::Supporters, &query)
            .await
            .map(|_| ())
    }

    /// GETs a list envelope with token handling and retries.
    async fn get_envelope(
        &self,
        creds: &AppCredentials,
        url: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Envelope, SourceError> {
        let retry = self.inner.retry;
        let mut attempts = 0u32;
        let mut reauthenticated = false;
        loop {
            let token = self.token(creds).await?;
            attempts += 1;
            let request = self
                .inner
                .http
                .get(url)
                .header(ACCEPT, "application/json")
                .bearer_auth(token.expose_secret());
            let secrets = [creds.client_secret.expose_secret(), token.expose_secret()];
            let outcome = match self
                .send(
                    &creds.client_id,
                    request,
                    "GET",
                    ctx,
                    attempts,
                    &secrets,
                    MAX_API_BODY,
                )
                .await
            {
                Ok((status, _, body)) if status.is_success() => {
                    Envelope::parse(&body).map_err(|e| Failure::Transient {
                        last: format!("{}: {}: {e}", ctx.what, ctx.path),
                        hint: None,
                        decode: true,
                    })
                }
                Ok((status, headers, body)) => Err(classify_api_error(
                    status, &headers, &body, ctx, &retry, &secrets,
                )),
                Err(f) => Err(f),
            };
            match outcome {
                Ok(envelope) => return Ok(envelope),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Unauthorized(message)) => {
                    self.inner
                        .tokens
                        .invalidate(
                            &CacheKey::new(&creds.client_id, &creds.client_secret),
                            &token,
                        )
                        .await;
                    if reauthenticated {
                        return Err(SourceError::Unauthorized {
                            client_id: creds.client_id.clone(),
                            message: format!("{}: {message}", ctx.what),
                        });
                    }
                    reauthenticated = true;
                    tracing::debug!(path = ctx.path, "token refused, re-authenticating once");
                    attempts -= 1;
                }
                Err(Failure::Transient { last, hint, decode }) => {
                    if attempts > retry.max_retries {
                        return Err(give_up(attempts, last, decode));
                    }
                    let delay = retry.delay(attempts, hint);
                    tracing::debug!(
                        path = ctx.path,
                        attempt = attempts,
                        delay_ms = delay.as_millis() as u64,
                        reason = %last,
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The application's access token, from the cache or freshly obtained (single-flight).
    /// Cached per client id and secret: a rotated secret is never answered with the token of
    /// the old one.
    async fn token(&self, creds: &AppCredentials) -> Result<SecretString, SourceError> {
        let slot = self
            .inner
            .tokens
            .slot(&CacheKey::new(&creds.client_id, &creds.client_secret));
        let mut guard = slot.lock().await;
        if let Some(t) = guard.as_ref().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(t.access.clone());
        }
        *guard = None;
        let fresh = self.fetch_token(creds).await?;
        let access = fresh.access.clone();
        *guard = Some(fresh);
        Ok(access)
    }

    /// `POST auth_url` with the client-credentials grant, retried on transient failures.
    async fn fetch_token(&self, creds: &AppCredentials) -> Result<CachedToken, SourceError> {
        let retry = self.inner.retry;
        let auth_url = &self.inner.config.auth_url;
        let log_path = loggable_path(auth_url).to_string();
        let ctx = Ctx {
            what: format!("token for client {}", creds.client_id),
            path: &log_path,
        };
        let secret = creds.client_secret.expose_secret();
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            encode(&creds.client_id),
            encode(secret)
        );
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let obtained = Instant::now();
            let request = self
                .inner
                .http
                .post(auth_url)
                .header(ACCEPT, "application/json")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.clone());
            let secrets = [secret];
            let outcome = match self
                .send(
                    &creds.client_id,
                    request,
                    "POST",
                    &ctx,
                    attempts,
                    &secrets,
                    MAX_TOKEN_BODY,
                )
                .await
            {
                Ok((status, _, body)) if status.is_success() => {
                    match serde_json::from_slice::<TokenResponse>(&body) {
                        Ok(t) if !t.access_token.is_empty() => {
                            let lifetime = t.lifetime();
                            return Ok(CachedToken::new(
                                SecretString::from(t.access_token),
                                lifetime,
                                obtained,
                            ));
                        }
                        _ => Failure::Transient {
                            last: format!(
                                "{}: {}: no access_token in the answer",
                                ctx.what, ctx.path
                            ),
                            hint: None,
                            decode: true,
                        },
                    }
                }
                Ok((status, headers, body)) => {
                    classify_token_error(status, &headers, &body, creds, &ctx, &retry, &secrets)
                }
                Err(f) => f,
            };
            match outcome {
                Failure::Fatal(e) => return Err(e),
                Failure::Unauthorized(message) => {
                    return Err(SourceError::Unauthorized {
                        client_id: creds.client_id.clone(),
                        message,
                    })
                }
                Failure::Transient { last, hint, decode } => {
                    if attempts > retry.max_retries {
                        return Err(give_up(attempts, last, decode));
                    }
                    let delay = retry.delay(attempts, hint);
                    tracing::debug!(
                        path = ctx.path,
                        attempt = attempts,
                        delay_ms = delay.as_millis() as u64,
                        reason = %last,
                        "retrying token request"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One HTTP attempt: waits for the application's rate limit, counts the call, reads the
    /// body up to `max_body` bytes (more is a fatal decode error). Transport faults (connect,
    /// timeout, truncated body) are transient; a redirect is refused, never followed.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        client_id: &str,
        request: RequestBuilder,
        method: &str,
        ctx: &Ctx<'_>,
        attempt: u32,
        secrets: &[&str],
        max_body: usize,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Failure> {
        self.wait_turn(client_id).await;
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        // Per-page accounting, for run records (the global counter mixes concurrent runs).
        let _ = REQUESTS.try_with(|c| c.set(c.get() + 1));
        let started = Instant::now();
        let transport = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "transport error"
            };
            let detail = redact(&error_chain(&e.without_url()), secrets);
            tracing::debug!(
                method,
                path = ctx.path,
                attempt,
                latency_ms = started.elapsed().as_millis() as u64,
                error = %detail,
                "classy request failed"
            );
            Failure::Transient {
                last: format!("{}: {method} {}: {kind}: {detail}", ctx.what, ctx.path),
                hint: None,
                decode: false,
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_redirection() {
            // Following it would send the secret or the token to wherever it points (maybe
            // over http): a configuration problem, never retried. The target is not quoted.
            return Err(Failure::Fatal(SourceError::Config(format!(
                "{}: {method} {}: HTTP {}: redirects are not followed; check CLASSY_API_BASE_URL and CLASSY_AUTH_URL",
                ctx.what,
                ctx.path,
                status.as_u16()
            ))));
        }
        let body = match classy_sync_http::read_capped(response, max_body).await {
            Ok(b) => Bytes::from(b),
            Err(classy_sync_http::BodyError::TooLarge { limit }) => {
                return Err(Failure::Fatal(SourceError::Decode(format!(
                    "{}: {method} {}: HTTP {}: response body larger than {limit} bytes: refused",
                    ctx.what,
                    ctx.path,
                    status.as_u16()
                ))))
            }
            Err(classy_sync_http::BodyError::Transport(detail)) => {
                let detail = redact(&detail, secrets);
                return Err(Failure::Transient {
                    last: format!(
                        "{}: {method} {}: transport error: {detail}",
                        ctx.what, ctx.path
                    ),
                    hint: None,
                    decode: false,
                });
            }
        };
        tracing::debug!(
            method,
            path = ctx.path,
            status = status.as_u16(),
            attempt,
            latency_ms = started.elapsed().as_millis() as u64,
            bytes = body.len(),
            "classy request"
        );
        self.correct_budget(client_id, status, &headers, &body)
            .await;
        Ok((status, headers, body))
    }

    /// Waits for the application's turn: the shared budget when there is one (the local
    /// limiter's pace if the budget's store cannot be reached), else the local limiter.
    async fn wait_turn(&self, client_id: &str) {
        let Some(budget) = &self.inner.budget else {
            self.inner.limiter.wait(client_id).await;
            return;
        };
        if let Err(e) = budget.acquire(client_id, 1).await {
            tracing::warn!(client_id, error = %e, "shared Classy budget unavailable; pacing locally");
            self.inner.limiter.wait(client_id).await;
        }
    }

    /// What an answer says about the budget: a 429's wait empties it for every process; a
    /// low `X-RateLimit-Remaining` pauses it.
    async fn correct_budget(
        &self,
        client_id: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) {
        let Some(budget) = &self.inner.budget else {
            return;
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            let header = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after_header);
            let wait = combine_hints(
                header,
                parse_retry_after_body(body),
                self.inner.retry.max_retry_after,
            )
            .unwrap_or(Duration::from_secs(1));
            if let Err(e) = budget.block_for(client_id, wait).await {
                tracing::warn!(client_id, error = %e, "could not record a 429 in the shared budget");
            }
        } else if let Some(remaining) = headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            budget.remaining(client_id, remaining).await;
        }
    }
}

#[async_trait]
impl ClassySource for ClassyClient {
    async fn list_page(
        &self,
        creds: &AppCredentials,
        org: OrgId,
        entity: Entity,
        query: &ListQuery,
    ) -> Result<SourcePage, SourceError> {
        self.list_page_counted(creds, org, entity, query).await.0
    }

    async fn list_page_counted(
        &self,
        creds: &AppCredentials,
        org: OrgId,
        entity: Entity,
        query: &ListQuery,
    ) -> (Result<SourcePage, SourceError>, Option<u32>) {
        let path = org_list_path(self.inner.config.api_base(), org, entity);
        let url = format!("{path}?{}", list_query_string(query));
        let log_path = loggable_path(&path).to_string();
        let ctx = Ctx {
            what: format!("org {org} {entity} page {}", query.page.max(1)),
            path: &log_path,
        };
        let (envelope, requests) = REQUESTS
            .scope(Cell::new(0), async {
                let envelope = self.get_envelope(creds, &url, &ctx).await;
                (envelope, REQUESTS.with(Cell::get))
            })
            .await;
        let page = envelope.map(|e| {
            let mut page = e.into_page(query.page.max(1));
            page.requests = requests;
            page
        });
        (page, Some(requests))
    }

    fn calls_made(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }
}

fn give_up(attempts: u32, last: String, decode: bool) -> SourceError {
    if decode {
        SourceError::Decode(format!("after {attempts} attempts: {last}"))
    } else {
        SourceError::Exhausted { attempts, last }
    }
}

fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn transient(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    ctx: &Ctx<'_>,
    retry: &RetryPolicy,
    secrets: &[&str],
) -> Failure {
    let header = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after_header);
    let hint = combine_hints(header, parse_retry_after_body(body), retry.max_retry_after);
    Failure::Transient {
        last: format!(
            "{}: {}: HTTP {}: {}",
            ctx.what,
            ctx.path,
            status.as_u16(),
            server_message(body, secrets)
        ),
        hint,
        decode: false,
    }
}

fn classify_api_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    ctx: &Ctx<'_>,
    retry: &RetryPolicy,
    secrets: &[&str],
) -> Failure {
    if is_transient(status) {
        return transient(status, headers, body, ctx, retry, secrets);
    }
    let message = format!(
        "{}: {}: {}",
        ctx.what,
        ctx.path,
        server_message(body, secrets)
    );
    match status.as_u16() {
        401 => Failure::Unauthorized(message),
        403 => Failure::Fatal(SourceError::Forbidden(message)),
        404 => Failure::Fatal(SourceError::NotFound(message)),
        400 => Failure::Fatal(SourceError::BadRequest(message)),
        s if s >= 500 => transient(status, headers, body, ctx, retry, secrets),
        s => Failure::Fatal(SourceError::BadRequest(format!("HTTP {s}: {message}"))),
    }
}

fn classify_token_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    creds: &AppCredentials,
    ctx: &Ctx<'_>,
    retry: &RetryPolicy,
    secrets: &[&str],
) -> Failure {
    if is_transient(status) || status.is_server_error() {
        return transient(status, headers, body, ctx, retry, secrets);
    }
    let message = format!(
        "{}: HTTP {}: {}",
        ctx.path,
        status.as_u16(),
        server_message(body, secrets)
    );
    match status.as_u16() {
        400 | 401 | 403 => Failure::Unauthorized(message),
        _ => Failure::Fatal(SourceError::Config(format!(
            "token endpoint for client {} answered {message}: check CLASSY_AUTH_URL",
            creds.client_id
        ))),
    }
}

/// The server's own words: `error`/`message`/`error_description`/`errors`, else the start of
/// the body. Secrets are blanked in case the server echoes them.
fn server_message(body: &[u8], secrets: &[&str]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| json_message(&v));
    let text = from_json.unwrap_or_else(|| {
        let s = String::from_utf8_lossy(body);
        let s = s.trim();
        if s.is_empty() {
            "(empty body)".to_string()
        } else {
            s.to_string()
        }
    });
    let text = redact(&text, secrets);
    if text.chars().count() > MAX_MESSAGE_CHARS {
        let cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn json_message(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let flatten = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                (!parts.is_empty()).then(|| parts.join("; "))
            }
            Value::Object(map) => {
                let parts: Vec<String> = map
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}: {s}"),
                        Value::Array(a) => format!(
                            "{k}: {}",
                            a.iter()
                                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        other => format!("{k}: {other}"),
                    })
                    .collect();
                (!parts.is_empty()).then(|| parts.join("; "))
            }
            _ => None,
        }
    };
    let mut parts = Vec::new();
    for key in ["error", "message", "error_description", "errors"] {
        if let Some(s) = v.get(key).and_then(flatten) {
            if !parts.contains(&s) {
                parts.push(s);
            }
        }
    }
    (!parts.is_empty()).then(|| parts.join(": "))
}

fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s, "[redacted]");
            let enc = encode(s);
            if enc != *s {
                out = out.replace(&enc, "[redacted]");
            }
        }
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_extracted() {
        assert_eq!(
            server_message(br#"{"error":"This action is unauthorized."}"#, &[]),
            "This action is unauthorized."
        );
        assert_eq!(
            server_message(br#"{"message":"Too Many Attempts.","retry_after":42}"#, &[]),
            "Too Many Attempts."
        );
        assert_eq!(
            server_message(br#"{"errors":["bad filter","bad sort"]}"#, &[]),
            "bad filter; bad sort"
        );
        assert_eq!(
            server_message(br#"{"errors":{"filter":["invalid operator"]}}"#, &[]),
            "filter: invalid operator"
        );
        assert_eq!(server_message(b"", &[]), "(empty body)");
        assert_eq!(server_message(b"Bad Gateway", &[]), "Bad Gateway");
        let long = "x".repeat(1000);
        assert!(server_message(long.as_bytes(), &[]).chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn echoed_secrets_are_blanked() {
        let m = server_message(
            br#"{"error":"invalid_client","error_description":"secret s3cr3t+/x is wrong"}"#,
            &["s3cr3t+/x"],
        );
        assert!(!m.contains("s3cr3t"), "{m}");
        let m = redact("client_secret=s3cr3t%2B%2Fx", &["s3cr3t+/x"]);
        assert!(!m.contains("s3cr3t"), "{m}");
    }

    #[test]
    fn config_is_validated_and_debug_has_no_secrets() {
        let bad = ClassyConfig {
            api_base_url: "nope".into(),
            ..ClassyConfig::default()
        };
        assert!(matches!(
            ClassyClient::new(bad),
            Err(SourceError::Config(_))
        ));
        let c = ClassyClient::new(ClassyConfig::default()).unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("api.classy.org"));
        assert_eq!(c.calls_made(), 0);
    }

    #[test]
    fn status_classification() {
        let retry = RetryPolicy::from_config(&ClassyConfig::default());
        let ctx = Ctx {
            what: "org 7 supporters page 1".into(),
            path: "/2.0/organizations/7/supporters",
        };
        let h = HeaderMap::new();
        let f = classify_api_error(
            StatusCode::FORBIDDEN,
            &h,
            br#"{"error":"nope"}"#,
            &ctx,
            &retry,
            &[],
        );
        match f {
            Failure::Fatal(SourceError::Forbidden(m)) => {
                assert!(
                    m.contains("org 7") && m.contains("supporters") && m.contains("nope"),
                    "{m}"
                )
            }
            _ => panic!("403 must be fatal Forbidden"),
        }
        assert!(matches!(
            classify_api_error(StatusCode::NOT_FOUND, &h, b"", &ctx, &retry, &[]),
            Failure::Fatal(SourceError::NotFound(_))
        ));
        assert!(matches!(
            classify_api_error(StatusCode::BAD_REQUEST, &h, b"", &ctx, &retry, &[]),
            Failure::Fatal(SourceError::BadRequest(_))
        ));
        assert!(matches!(
            classify_api_error(StatusCode::UNAUTHORIZED, &h, b"", &ctx, &retry, &[]),
            Failure::Unauthorized(_)
        ));
        for s in [429u16, 500, 502, 503, 504] {
            assert!(matches!(
                classify_api_error(StatusCode::from_u16(s).unwrap(), &h, b"", &ctx, &retry, &[]),
                Failure::Transient { decode: false, .. }
            ));
        }
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        match classify_api_error(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            br#"{"retry_after":5}"#,
            &ctx,
            &retry,
            &[],
        ) {
            Failure::Transient { hint, .. } => assert_eq!(hint, Some(Duration::from_secs(5))),
            _ => panic!("429 must be transient"),
        }
    }
}
