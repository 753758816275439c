//! Mailchimp Marketing API 3.0 stand-in, served under `/3.0` next to the Classy API: the
//! member, batch, tag, segment and merge-field calls classy-sync uses, with Mailchimp's
//! compliance rule, its 10-connections-per-key limit, fault injection and an admin API under
//! `/admin/mailchimp`. State lives in memory.

pub mod admin;
pub mod auth;
pub mod counters;
pub mod faults;
pub mod member;
pub mod problem;
pub mod routes;
pub mod store;
pub mod view;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::sync::{Arc, Mutex};

pub use auth::DEFAULT_API_KEY;
pub use store::DEFAULT_LIST_ID;

/// Mailchimp allows 10 simultaneous connections per API key.
pub const DEFAULT_CONCURRENCY: usize = 10;

pub struct MailchimpState {
    pub lists: Mutex<store::Lists>,
    pub keys: auth::Keys,
    pub faults: faults::Faults,
    pub counters: counters::Counters,
    pub in_flight: counters::InFlight,
    /// The key accepted from the start (printed at startup).
    pub api_key: String,
}

pub type McShared = Arc<MailchimpState>;

impl MailchimpState {
    pub fn new(api_key: &str) -> MailchimpState {
        MailchimpState {
            lists: Mutex::new(store::Lists::default()),
            keys: auth::Keys::new(api_key),
            faults: faults::Faults::default(),
            counters: counters::Counters::default(),
            in_flight: counters::InFlight::new(DEFAULT_CONCURRENCY),
            api_key: api_key.to_string(),
        }
    }

    pub fn lists(&self) -> std::sync::MutexGuard<'_, store::Lists> {
        self.lists.lock().expect("mailchimp lists lock")
    }
}

/// Counting, auth, the in-flight cap, delay and injected faults, in that order, in front of
/// every `/3.0` request.
async fn guard(State(state): State<McShared>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let route = counters::route_of(req.method(), path.strip_prefix("/3.0").unwrap_or(path));
    state.counters.record(route);
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key = match state.keys.check(header) {
        Ok(k) => k,
        Err(auth::AuthError::Missing) => return problem::api_key_missing(),
        Err(auth::AuthError::Invalid) => return problem::api_key_invalid(),
    };
    let Some((slot, now_in_flight)) = state.in_flight.acquire(&key) else {
        state.counters.rejected(&key);
        return problem::too_many_requests(state.in_flight.limit());
    };
    state.counters.saw_in_flight(&key, now_in_flight);
    let delay = state.faults.delay_ms();
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let resp = match state.faults.next() {
        faults::Answer::Ok => next.run(req).await,
        faults::Answer::Status(code) => problem::injected(code),
        faults::Answer::ForbiddenHtml => problem::forbidden_html(),
        faults::Answer::ForbiddenProblem => problem::forbidden(),
    };
    drop(slot);
    resp
}

/// `/3.0/...` and `/admin/mailchimp/...`, ready to merge into the sandbox's router.
pub fn router(state: McShared) -> Router {
    let api = routes::router()
        .fallback(|| async { problem::not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state.clone());
    Router::new().nest("/3.0", api).merge(admin::router(state))
}
