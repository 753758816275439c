//! The Classy API 2.0 surface: `/oauth2/auth` and the `/2.0/...` read endpoints.

pub mod auth;
pub mod envelope;
pub mod filter;
pub mod list;

use crate::config::Quirks;
use crate::counters::Counters;
use crate::data::record::SerOpts;
use crate::data::store::Store;
use crate::faults::{Faults, Outcome, RateLimiter, Throttle};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Everything the handlers share.
pub struct AppState {
    pub store: Store,
    pub tokens: auth::Tokens,
    pub faults: Faults,
    pub limiter: RateLimiter,
    /// Milliseconds added to every Classy API request (`PUT /admin/latency`).
    pub latency_ms: AtomicU64,
    pub counters: Counters,
    pub quirks: RwLock<Quirks>,
    /// Svix-signed webhook endpoints, deliveries and their counters.
    pub webhooks: crate::webhooks::Webhooks,
    /// Client secrets regenerated since start (`POST /admin/apps/{client_id}/secret`), by
    /// client id: the old secret stops working at once, as in GoFundMe Pro's developer portal.
    pub regenerated_secrets: RwLock<std::collections::HashMap<String, String>>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// The client secret an application authenticates with now.
    pub fn client_secret(&self, app: &crate::data::store::AppInfo) -> String {
        self.regenerated_secrets
            .read()
            .expect("secrets lock")
            .get(&app.client_id)
            .cloned()
            .unwrap_or_else(|| app.client_secret.clone())
    }

    pub fn quirks(&self) -> Quirks {
        *self.quirks.read().expect("quirks lock")
    }

    pub fn ser_opts(&self) -> SerOpts {
        let q = self.quirks();
        SerOpts {
            string_amounts: q.string_amounts,
            missing_emails: q.missing_emails,
        }
    }
}

pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    json_bytes(status, serde_json::to_vec(v).expect("json"))
}

pub fn bad_request(msg: impl Into<String>) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"errors": [msg.into()]}))
}

pub fn forbidden() -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        &json!({"error": "This action is unauthorized."}),
    )
}

pub fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "The resource cannot be found"}),
    )
}

pub fn too_many(retry_after: u64) -> Response {
    let mut r = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"message": "Too Many Attempts.", "retry_after": retry_after}),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// The application a `/2.0/` answer went to, for the per-application counters.
#[derive(Clone, Debug)]
pub struct AnsweredApp(pub String);

/// Auth, rate limit and fault injection in front of every `/2.0/` route.
async fn guard(State(state): State<Shared>, mut req: Request, next: Next) -> Response {
    let caller = match auth::authenticate(&state, req.headers()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let throttle = state.limiter.check(&caller.client_id);
    let mut resp = match throttle {
        Throttle::Limited { retry_after, .. } => too_many(retry_after),
        Throttle::Off | Throttle::Allowed { .. } => {
            let outcome = state.faults.next();
            req.extensions_mut().insert(caller.clone());
            apply(&state, &caller, outcome, req, next).await
        }
    };
    throttle.add_headers(resp.headers_mut());
    resp.extensions_mut().insert(AnsweredApp(caller.client_id));
    resp
}

/// Serves a request the limiter let through, with its injected fault if any.
async fn apply(
    state: &Shared,
    caller: &auth::Caller,
    outcome: Outcome,
    req: Request,
    next: Next,
) -> Response {
    match outcome {
        Outcome::Normal => next.run(req).await,
        Outcome::Status {
            code: 429,
            retry_after,
        } => too_many(retry_after),
        Outcome::Status { code, retry_after } => crate::faults::error_response(code, retry_after),
        Outcome::Slow(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            next.run(req).await
        }
        Outcome::Revoke => {
            state.tokens.revoke(&caller.token);
            auth::invalid_token("The access token has been revoked")
        }
        Outcome::Drop => crate::faults::cut_connection(next.run(req).await).await,
        Outcome::Malformed => crate::faults::malform(next.run(req).await).await,
    }
}

/// Adds the configured latency, then counts every API request (not admin ones) by endpoint,
/// final status and application.
async fn count(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let latency = state.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let endpoint = crate::counters::endpoint_of(req.uri().path());
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let resp = next.run(req).await;
    let app = resp.extensions().get::<AnsweredApp>().map(|a| a.0.as_str());
    state.counters.record(endpoint, resp.status().as_u16(), app);
    tracing::debug!(%method, %uri, status = resp.status().as_u16(), "api request");
    resp
}

pub fn router(state: Shared) -> Router {
    let v2 = Router::new()
        .route("/organizations/{org}", get(list::organization))
        .route("/organizations/{org}/{entity}", get(list::org_list))
        .route(
            "/apps/{client_id}/organizations",
            get(list::app_organizations),
        )
        .route("/{entity}", get(list::global_list))
        .fallback(|| async { not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .route("/oauth2/auth", post(auth::token))
        .nest("/2.0", v2)
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}
