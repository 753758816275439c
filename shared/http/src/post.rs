//! POSTing to a checked URL, honouring 429 `Retry-After` within one delivery up to a bound.

use classy_sync_core::ports::SendError;
use std::time::Duration;

/// What to do with a non-success HTTP answer.
pub fn classify(status: u16, body: &str) -> SendError {
    // Slack's and most receivers' error bodies are short codes (`invalid_payload`); keep a
    // bounded, single-line excerpt, never the URL.
    let excerpt: String = body
        .chars()
        .take(120)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let permanent = (400..500).contains(&status) && status != 408 && status != 429;
    SendError {
        reason: format!("HTTP {status}: {}", excerpt.trim()),
        retry_after: None,
        permanent,
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    v.to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The most of an error answer's body that is read (an excerpt is all that is kept).
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Tries per delivery attempt, however short the `Retry-After`s are.
const MAX_TRIES: u32 = 5;

/// Sends the request `build` makes (called again for each try, so signatures are fresh) until
/// a non-429 answer, sleeping through `Retry-After` while the total wait stays within
/// `max_wait`. A 429 beyond that is a transient failure carrying the server's retry time.
pub async fn post_honouring_429<F>(mut build: F, max_wait: Duration) -> Result<(), SendError>
where
    F: FnMut() -> reqwest::RequestBuilder,
{
    let mut waited = Duration::ZERO;
    let mut tries = 0u32;
    loop {
        tries += 1;
        let resp = build().send().await.map_err(|e| SendError {
            // reqwest errors include the URL; strip it (webhook URLs are secrets).
            reason: format!("request failed: {}", e.without_url()),
            retry_after: None,
            permanent: false,
        })?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(());
        }
        if status == 429 {
            let wait = retry_after(&resp).unwrap_or(Duration::from_secs(1));
            if waited + wait <= max_wait && tries < MAX_TRIES {
                tracing::info!(wait_secs = wait.as_secs(), "rate limited (429); waiting");
                tokio::time::sleep(wait).await;
                waited += wait;
                continue;
            }
            return Err(SendError {
                reason: format!("HTTP 429: rate limited, retry after {} s", wait.as_secs()),
                retry_after: Some(wait),
                permanent: false,
            });
        }
        // Only an excerpt is kept: read a bounded body, whatever the receiver sends.
        let body = crate::body::read_capped_text(resp, MAX_ERROR_BODY)
            .await
            .unwrap_or_else(|e| e.to_string());
        return Err(classify(status, &body));
    }
}
