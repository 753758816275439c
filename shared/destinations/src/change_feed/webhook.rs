//! One signed webhook delivery: `POST` the batch body with `X-Classy-Sync-Signature`
//! (fresh `t=` per try) and `X-Classy-Sync-Delivery`, over the client pinned to the address
//! the SSRF guard checked. 429s are waited out within a bound (the notifications' helper).

use classy_sync_core::signing::{sign, DELIVERY_HEADER, SIGNATURE_HEADER};
use classy_sync_http::post::post_honouring_429;
use classy_sync_http::url_guard::CheckedUrl;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Any 2xx is the receiver's acknowledgement. Errors never contain the URL or the secret.
pub async fn post(
    client: &reqwest::Client,
    url: &CheckedUrl,
    signing_secret: &SecretString,
    delivery: &str,
    body: Vec<u8>,
    now: impl Fn() -> i64,
    max_429_wait: Duration,
) -> Result<(), String> {
    post_honouring_429(
        || {
            client
                .post(url.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(
                    SIGNATURE_HEADER,
                    sign(signing_secret.expose_secret().as_bytes(), now(), &body),
                )
                .header(DELIVERY_HEADER, delivery)
                .body(body.clone())
        },
        max_429_wait,
    )
    .await
    .map_err(|e| e.reason)
}
