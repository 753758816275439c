//! Fault injection (seeded random rates and scripted sequences) and per-app rate limiting.

use crate::api::{json_response, too_many};
use crate::config::FaultConfig;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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

/// What the limiter decided for one request of an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttle {
    /// Limiting is off: no `X-RateLimit-*` headers.
    Off,
    /// Served; `remaining` requests are left in the application's current window.
    Allowed { limit: u32, remaining: u32 },
    /// Refused until the window resets in `retry_after` seconds (rounded up, at least 1), at
    /// unix time `reset_at`.
    Limited {
        limit: u32,
        retry_after: u64,
        reset_at: u64,
    },
}

impl Throttle {
    /// Adds Laravel's throttle headers: `X-RateLimit-Limit` and `X-RateLimit-Remaining` on
    /// every answer; `Retry-After` and `X-RateLimit-Reset` once over the limit.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        let (limit, remaining) = match *self {
            Throttle::Off => return,
            Throttle::Allowed { limit, remaining } => (limit, remaining),
            Throttle::Limited {
                limit,
                retry_after,
                reset_at,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                headers.insert("x-ratelimit-reset", HeaderValue::from(reset_at));
                (limit, 0)
            }
        };
        headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    }
}

/// Classy's limit as Laravel's throttle middleware applies it: per application, a fixed window
/// that opens at the application's first request and closes `window` later, whatever the
/// connection or token; refused requests do not count.
pub struct RateLimiter {
    per_window: AtomicU32,
    /// The window's length in milliseconds: a minute, or shorter for tests that scale time.
    window_ms: AtomicU64,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_window: u32, window: Duration) -> Self {
        RateLimiter {
            per_window: AtomicU32::new(per_window),
            window_ms: AtomicU64::new((window.as_millis() as u64).max(1)),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_window.load(Ordering::SeqCst)
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms.load(Ordering::SeqCst))
    }

    /// Counts the limit per window of `ms` instead of a minute (tests that scale time); every
    /// application's window starts afresh.
    pub fn set_window_ms(&self, ms: u64) {
        self.window_ms.store(ms.max(1), Ordering::SeqCst);
        self.windows.lock().expect("limiter lock").clear();
    }

    /// A new limit; every application's window starts afresh.
    pub fn set_per_minute(&self, n: u32) {
        self.per_window.store(n, Ordering::SeqCst);
        self.windows.lock().expect("limiter lock").clear();
    }

    /// Counts a request of `client_id` when it is within the limit.
    pub fn check(&self, client_id: &str) -> Throttle {
        let limit = self.per_minute();
        if limit == 0 {
            return Throttle::Off;
        }
        let now = Instant::now();
        let window = self.window();
        let mut w = self.windows.lock().expect("limiter lock");
        let entry = w.entry(client_id.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            let left = window.saturating_sub(now.duration_since(entry.0));
            let retry_after = (left.as_secs_f64().ceil() as u64).max(1);
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Throttle::Limited {
                limit,
                retry_after,
                reset_at: unix + retry_after,
            };
        }
        entry.1 += 1;
        Throttle::Allowed {
            limit,
            remaining: limit - entry.1,
        }
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
        let l = RateLimiter::new(3, Duration::from_millis(300));
        let remaining: Vec<_> = (0..3)
            .map(|_| match l.check("a") {
                Throttle::Allowed {
                    limit: 3,
                    remaining,
                } => remaining,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        // Refused requests do not count, and do not move the window.
        for _ in 0..3 {
            assert!(matches!(
                l.check("a"),
                Throttle::Limited {
                    limit: 3,
                    retry_after: 1,
                    ..
                }
            ));
        }
        assert_eq!(
            l.check("b"),
            Throttle::Allowed {
                limit: 3,
                remaining: 2
            }
        );
        std::thread::sleep(Duration::from_millis(320));
        assert_eq!(
            l.check("a"),
            Throttle::Allowed {
                limit: 3,
                remaining: 2
            }
        );
        let mut h = HeaderMap::new();
        Throttle::Limited {
            limit: 3,
            retry_after: 7,
            reset_at: 100,
        }
        .add_headers(&mut h);
        assert_eq!(h["retry-after"], "7");
        assert_eq!(h["x-ratelimit-reset"], "100");
        assert_eq!(h["x-ratelimit-remaining"], "0");
        assert_eq!(h["x-ratelimit-limit"], "3");
        let mut h = HeaderMap::new();
        Throttle::Off.add_headers(&mut h);
        assert!(h.is_empty());
        l.set_per_minute(0);
        assert_eq!(l.check("a"), Throttle::Off);
    }

    #[test]
    fn a_scaled_window_reopens_sooner() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        l.set_window_ms(200);
        assert!(matches!(l.check("a"), Throttle::Allowed { .. }));
        assert!(matches!(l.check("a"), Throttle::Allowed { .. }));
        assert!(matches!(l.check("a"), Throttle::Limited { .. }));
        std::thread::sleep(Duration::from_millis(210));
        assert!(matches!(l.check("a"), Throttle::Allowed { .. }));
    }
}
