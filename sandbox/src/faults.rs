//! Fault injection (seeded random rates and scripted sequences) and per-app rate limiting.

use crate::api::{json_response, too_many};
use crate::config::FaultConfig;
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What happens to one API request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Normal,
    /// A JSON error with this status (429 also carries `Retry-After`).
    Status {
        code: u16,
        retry_after: u64,
    },
    /// Headers and part of the body are sent, then the connection is cut.
    Drop,
    /// Status 200 with a truncated, invalid JSON body.
    Malformed,
    /// Sleep this many ms, then answer normally.
    Slow(u64),
    /// Revoke the caller's token, answer 401 invalid_token.
    Revoke,
}

/// One scripted outcome, e.g. `{"status":429,"retry_after":1}`, `{"drop":true}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptStep {
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub drop: bool,
    pub malformed: bool,
    pub slow_ms: Option<u64>,
    pub revoke: bool,
}

impl ScriptStep {
    pub fn outcome(&self, default_retry: u64) -> Result<Outcome, String> {
        let chosen = [
            self.status.is_some(),
            self.drop,
            self.malformed,
            self.slow_ms.is_some(),
            self.revoke,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if chosen > 1 {
            return Err("a script step names more than one fault".into());
        }
        Ok(if let Some(code) = self.status {
            if !(200..=599).contains(&code) {
                return Err(format!("status {code} is not an HTTP status"));
            }
            if code < 300 {
                Outcome::Normal
            } else {
                Outcome::Status {
                    code,
                    retry_after: self.retry_after.unwrap_or(default_retry),
                }
            }
        } else if self.drop {
            Outcome::Drop
        } else if self.malformed {
            Outcome::Malformed
        } else if let Some(ms) = self.slow_ms {
            Outcome::Slow(ms)
        } else if self.revoke {
            Outcome::Revoke
        } else {
            Outcome::Normal
        })
    }
}

pub struct Faults {
    config: Mutex<FaultConfig>,
    rng: Mutex<ChaCha8Rng>,
    script: Mutex<VecDeque<Outcome>>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Faults {
            config: Mutex::new(config),
            rng: Mutex::new(rng),
            script: Mutex::new(VecDeque::new()),
        }
    }

    pub fn config(&self) -> FaultConfig {
        self.config.lock().expect("faults lock").clone()
    }

    /// Replaces the config and reseeds the RNG, so the same config replays the same faults.
    pub fn set_config(&self, config: FaultConfig) {
        *self.rng.lock().expect("rng lock") = ChaCha8Rng::seed_from_u64(config.seed);
        *self.config.lock().expect("faults lock") = config;
    }

    pub fn default_retry_after(&self) -> u64 {
        self.config().retry_after_secs.max(1)
    }

    pub fn push_script(&self, steps: Vec<Outcome>) -> usize {
        let mut s = self.script.lock().expect("script lock");
        s.extend(steps);
        s.len()
    }

    pub fn clear_script(&self) {
        self.script.lock().expect("script lock").clear();
    }

    pub fn script_len(&self) -> usize {
        self.script.lock().expect("script lock").len()
    }

    /// Scripted outcomes first, then the random rates.
    pub fn next(&self) -> Outcome {
        if let Some(o) = self.script.lock().expect("script lock").pop_front() {
            return o;
        }
        let c = self.config.lock().expect("faults lock").clone();
        let rates = [
            c.rate_limit_rate,
            c.error_500_rate,
            c.error_503_rate,
            c.drop_rate,
            c.malformed_rate,
            c.revoke_token_rate,
            c.slow_rate,
        ];
        if rates.iter().all(|r| *r <= 0.0) {
            return Outcome::Normal;
        }
        let mut r: f64 = self.rng.lock().expect("rng lock").gen();
        let retry = c.retry_after_secs.max(1);
        let outcomes = [
            Outcome::Status {
                code: 429,
                retry_after: retry,
            },
            Outcome::Status {
                code: 500,
                retry_after: retry,
            },
            Outcome::Status {
                code: 503,
                retry_after: retry,
            },
            Outcome::Drop,
            Outcome::Malformed,
            Outcome::Revoke,
            Outcome::Slow(c.slow_ms),
        ];
        for (rate, outcome) in rates.iter().zip(outcomes) {
            if r < rate.max(0.0) {
                return outcome;
            }
            r -= rate.max(0.0);
        }
        Outcome::Normal
    }
}

/// JSON error bodies for injected statuses.
pub fn error_response(code: u16, retry_after: u64) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code == 429 {
        return too_many(retry_after);
    }
    let message = status.canonical_reason().unwrap_or("Error");
    let mut r = json_response(status, &json!({"error": message, "message": message}));
    if code == 503 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, retry_after.into());
    }
    r
}

/// Sends the headers with the full Content-Length and half the body, then fails the body
/// stream: hyper aborts the connection, the client sees a truncated response.
pub async fn cut_connection(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, bytes.len().max(1).into());
    // A short pause lets hyper flush the headers and the first half before the error aborts
    // the connection, so clients see a truncated body rather than an empty reply.
    let stream = futures::stream::unfold(0u8, move |step| {
        let half = half.clone();
        async move {
            match step {
                0 => Some((Ok(half), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let err = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "sandbox drop fault",
                    );
                    Some((Err::<Bytes, _>(err), 2))
                }
                _ => None,
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Status 200 with the body cut in half (never valid JSON).
pub async fn malform(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = (bytes.len() / 2).max(1).min(bytes.len());
    let mut truncated = bytes.slice(..cut).to_vec();
    if truncated.is_empty() || serde_json::from_slice::<serde_json::Value>(&truncated).is_ok() {
        truncated = b"{\"current_page\":1,\"data\":[{\"id\":".to_vec();
    }
    parts.status = StatusCode::OK;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(truncated))
}

/// Fixed one-minute windows per app.
pub struct RateLimiter {
    per_minute: AtomicU32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: AtomicU32::new(per_minute),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute.load(Ordering::SeqCst)
    }

    pub fn set_per_minute(&self, n: u32) {
        self.per_minute.store(n, Ordering::SeqCst);
        self.windows.lock().expect("limiter lock").clear();
    }

    /// Counts a request; `Err(secs)` when the app is over its limit for this window.
    pub fn check(&self, client_id: &str) -> Result<(), u64> {
        let limit = self.per_minute();
        if limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let window = Duration::from_secs(60);
        let mut w = self.windows.lock().expect("limiter lock");
        let entry = w.entry(client_id.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            let left = window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_then_random_is_deterministic() {
        let f = Faults::new(FaultConfig {
            seed: 7,
            error_500_rate: 0.5,
            ..Default::default()
        });
        f.push_script(vec![Outcome::Drop, Outcome::Revoke]);
        assert_eq!(f.next(), Outcome::Drop);
        assert_eq!(f.next(), Outcome::Revoke);
        let a: Vec<_> = (0..50).map(|_| f.next()).collect();
        f.set_config(FaultConfig {
            seed: 7,
            error_500_rate: 0.5,
            ..Default::default()
        });
        let b: Vec<_> = (0..50).map(|_| f.next()).collect();
        assert_eq!(a, b);
        let errors = a.iter().filter(|o| **o != Outcome::Normal).count();
        assert!((10..40).contains(&errors), "{errors}");
    }

    #[test]
    fn limiter_window() {
        let l = RateLimiter::new(3);
        assert!(l.check("a").is_ok() && l.check("a").is_ok() && l.check("a").is_ok());
        assert!(l.check("a").unwrap_err() >= 1);
        assert!(l.check("b").is_ok());
        l.set_per_minute(0);
        assert!(l.check("a").is_ok());
    }
}
