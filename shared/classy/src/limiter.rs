//! Client-side rate limit per application (client_id): every organization and task using
//! the same application shares one budget. Requests wait for their turn; they never fail.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

pub(crate) struct AppLimiter {
    inner: Option<DefaultKeyedRateLimiter<String>>,
}

impl AppLimiter {
    /// `per_minute` requests a minute, paced evenly (burst of one); 0 = unlimited.
    pub fn new(per_minute: u32) -> Self {
        AppLimiter {
            inner: NonZeroU32::new(per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(NonZeroU32::MIN))),
        }
    }

    pub async fn wait(&self, client_id: &str) {
        if let Some(l) = &self.inner {
            l.until_key_ready(&client_id.to_string()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn paces_one_application_and_not_another() {
        let l = AppLimiter::new(600); // one every 100 ms
        let start = Instant::now();
        for _ in 0..4 {
            l.wait("app-a").await;
        }
        let a = start.elapsed();
        assert!(a >= Duration::from_millis(280), "{a:?}");
        let start = Instant::now();
        l.wait("app-b").await;
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn zero_is_unlimited() {
        let l = AppLimiter::new(0);
        let start = Instant::now();
        for _ in 0..1000 {
            l.wait("app").await;
        }
        assert!(start.elapsed() < Duration::from_millis(100));
    }
}
