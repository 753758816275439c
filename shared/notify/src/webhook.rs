//! Generic webhooks: a JSON body signed with [`classy_sync_core::signing`] (HMAC-SHA256 over
//! `"<t>.<body>"`), plus the message id in `X-Classy-Sync-Delivery` for the receiver's dedup.

use super::SendError;
use classy_sync_core::ports::Message;
use classy_sync_core::signing::{sign, DELIVERY_HEADER, SIGNATURE_HEADER};
use classy_sync_http::post::post_honouring_429;
use classy_sync_http::url_guard::CheckedUrl;
use serde_json::{json, Value};
use std::time::Duration;

/// `{id, kind, severity, org_id, subject, text, fields: [{name, value}], sent_at}`.
/// `sent_at` is the first attempt's time (RFC 3339), the same on every retry.
pub fn body(m: &Message, sent_at: i64) -> Value {
    let sent_at = chrono::DateTime::from_timestamp(sent_at, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "id": m.id,
        "kind": m.kind,
        "severity": m.severity,
        "org_id": m.org_id,
        "subject": m.subject,
        "text": m.text,
        "fields": m.fields.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "sent_at": sent_at,
    })
}

/// Posts the signed body. `now` gives the signing time of each try.
pub async fn send(
    url: &CheckedUrl,
    secret: &[u8],
    m: &Message,
    sent_at: i64,
    now: impl Fn() -> i64,
    timeout: Duration,
    max_429_wait: Duration,
) -> Result<(), SendError> {
    let client = url.client(timeout).map_err(|e| SendError {
        reason: format!("HTTP client: {}", e.without_url()),
        retry_after: None,
        permanent: false,
    })?;
    let payload = serde_json::to_vec(&body(m, sent_at)).map_err(|e| SendError {
        reason: format!("payload does not serialize: {e}"),
        retry_after: None,
        permanent: true,
    })?;
    post_honouring_429(
        || {
            client
                .post(url.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, sign(secret, now(), &payload))
                .header(DELIVERY_HEADER, m.id.as_str())
                .body(payload.clone())
        },
        max_429_wait,
    )
    .await
}
