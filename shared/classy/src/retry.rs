//! Retry policy: exponential backoff with full jitter, and the server's own hints
//! (`Retry-After` header, `retry_after` JSON field).

use super::config::ClassyConfig;
use classy_sync_core::retry::Backoff;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &ClassyConfig) -> Self {
        RetryPolicy {
            max_retries: c.max_retries,
            base: c.retry_base,
            cap: c.retry_cap,
            max_retry_after: c.max_retry_after,
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::full(self.base, self.cap)
    }

    /// Wait before retry number `retry`: full jitter below the ceiling, or the server's own
    /// wait (capped at `max_retry_after`) when it named one.
    pub fn delay(&self, retry: u32, server_hint: Option<Duration>) -> Duration {
        match server_hint {
            Some(hint) => self.backoff().after_hint(hint, self.max_retry_after),
            None => self.backoff().delay(retry),
        }
    }
}

/// `Retry-After` as delta-seconds (possibly fractional) or an HTTP date.
pub(crate) fn parse_retry_after_header(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Some(d) = parse_seconds(v) {
        return Some(d);
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = when.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// The `retry_after` field of a JSON error body (number or numeric string).
pub(crate) fn parse_retry_after_body(body: &[u8]) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    match v.get("retry_after")? {
        serde_json::Value::Number(n) => n.as_f64().and_then(secs_f64),
        serde_json::Value::String(s) => parse_seconds(s.trim()),
        _ => None,
    }
}

/// The larger of the two hints, capped at `cap`.
pub(crate) fn combine_hints(
    header: Option<Duration>,
    body: Option<Duration>,
    cap: Duration,
) -> Option<Duration> {
    match (header, body) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or_default().max(b.unwrap_or_default()).min(cap)),
    }
}

fn parse_seconds(s: &str) -> Option<Duration> {
    s.parse::<f64>().ok().and_then(secs_f64)
}

fn secs_f64(f: f64) -> Option<Duration> {
    if f.is_finite() && f >= 0.0 {
        // Anything absurd is clamped by the caller's cap; keep the conversion total.
        Some(Duration::from_secs_f64(f.min(1e9)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let p = policy();
        assert_eq!(p.backoff().ceiling(1), Duration::from_millis(500));
        assert_eq!(p.backoff().ceiling(2), Duration::from_secs(1));
        assert_eq!(p.backoff().ceiling(3), Duration::from_secs(2));
        assert_eq!(p.backoff().ceiling(7), Duration::from_secs(30));
        assert_eq!(p.backoff().ceiling(1000), Duration::from_secs(30));
        assert_eq!(p.backoff().ceiling(0), Duration::from_millis(500));
    }

    #[test]
    fn full_jitter_stays_within_bounds_and_varies() {
        let p = policy();
        for retry in 1..=10 {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..200 {
                let d = p.delay(retry, None);
                assert!(
                    d <= p.backoff().ceiling(retry),
                    "{d:?} > ceiling at {retry}"
                );
                seen.insert(d);
            }
            assert!(seen.len() > 50, "not jittered at retry {retry}");
        }
        // Spread over the whole range, not stuck near one end.
        let (mut low, mut high) = (0, 0);
        for _ in 0..1000 {
            let d = p.delay(3, None);
            if d < Duration::from_millis(500) {
                low += 1;
            }
            if d > Duration::from_millis(1500) {
                high += 1;
            }
        }
        assert!(low > 100 && high > 100, "low {low} high {high}");
    }

    #[test]
    fn zero_base_means_no_wait() {
        let p = RetryPolicy {
            base: Duration::ZERO,
            ..policy()
        };
        assert_eq!(p.delay(5, None), Duration::ZERO);
    }

    #[test]
    fn server_hint_is_honoured_and_capped() {
        let p = policy();
        for _ in 0..100 {
            let d = p.delay(1, Some(Duration::from_secs(42)));
            assert!(d >= Duration::from_secs(42));
            assert!(d <= Duration::from_millis(42_500));
            let d = p.delay(1, Some(Duration::from_secs(3600)));
            assert!(d >= Duration::from_secs(120) && d <= Duration::from_millis(120_500));
        }
    }

    #[test]
    fn retry_after_header_forms() {
        assert_eq!(
            parse_retry_after_header("42"),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            parse_retry_after_header(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after_header("-1"), None);
        assert_eq!(parse_retry_after_header("soon"), None);
        let past = parse_retry_after_header("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(past, Some(Duration::ZERO));
        let future = chrono::Utc::now() + chrono::Duration::seconds(100);
        let d = parse_retry_after_header(&future.to_rfc2822()).unwrap();
        assert!(d >= Duration::from_secs(98) && d <= Duration::from_secs(100));
    }

    #[test]
    fn retry_after_body_forms() {
        let b = br#"{"message":"Too Many Attempts.","retry_after":42}"#;
        assert_eq!(parse_retry_after_body(b), Some(Duration::from_secs(42)));
        assert_eq!(
            parse_retry_after_body(br#"{"retry_after":"7"}"#),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after_body(br#"{"retry_after":0.25}"#),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after_body(br#"{"retry_after":null}"#), None);
        assert_eq!(parse_retry_after_body(br#"{"message":"x"}"#), None);
        assert_eq!(parse_retry_after_body(b"<html>"), None);
    }

    #[test]
    fn larger_hint_wins_capped() {
        let cap = Duration::from_secs(120);
        let s = Duration::from_secs;
        assert_eq!(combine_hints(None, None, cap), None);
        assert_eq!(combine_hints(Some(s(5)), None, cap), Some(s(5)));
        assert_eq!(combine_hints(None, Some(s(9)), cap), Some(s(9)));
        assert_eq!(combine_hints(Some(s(5)), Some(s(9)), cap), Some(s(9)));
        assert_eq!(combine_hints(Some(s(50)), Some(s(9)), cap), Some(s(50)));
        assert_eq!(combine_hints(Some(s(500)), Some(s(9)), cap), Some(cap));
    }
}
