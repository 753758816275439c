//! `classy-sync run --listen ADDR`: receives GoFundMe Pro (Classy) webhooks next to the
//! scheduler at `POST /webhooks/classy/<org-id>`. The raw body and the Svix headers go to the
//! core's webhook service (the same code the `webhook` Lambda runs), which verifies, dedupes
//! and enqueues the debounced incremental syncs on the queue the scheduler consumes; the
//! answer is its status code, with no body. Neither the body nor the secret is logged.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use classy_sync_core::domain::webhook::{SvixHeaders, MAX_BODY_BYTES};
use classy_sync_core::engine::webhooks::WebhookReceiver;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The receiver's routes. The body limit answers 413 before the handler runs.
pub fn router(receiver: Arc<WebhookReceiver>) -> Router {
    Router::new()
        .route("/webhooks/classy/{org_id}", post(deliver))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(receiver)
}

async fn deliver(
    State(receiver): State<Arc<WebhookReceiver>>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let started = Instant::now();
    let svix = SvixHeaders::from_pairs(
        headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))),
    );
    let outcome = receiver.receive(&org_id, &svix, &body).await;
    let status =
        StatusCode::from_u16(outcome.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    tracing::debug!(
        status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "webhook delivery answered"
    );
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        outcome.body(),
    )
}

/// Binds `addr` (the error says which address could not be bound).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {addr}: cannot listen: {e}"))
}

/// Serves until `shutdown` completes; requests in flight are answered first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    receiver: Arc<WebhookReceiver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(receiver))
        .with_graceful_shutdown(shutdown)
        .await
}
