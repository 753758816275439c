//! Every retry in classy-sync waits by this module: exponential backoff with jitter for calls
//! retried in place (the Classy and Mailchimp clients, the AWS adapters), honouring a
//! server's own wait when it names one, and a ladder of delays for work retried later from
//! the store (notification deliveries).

use std::time::Duration;

/// How a wait is spread below its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, ceiling]`: the least load on a struggling server.
    Full,
    /// Half the ceiling plus a uniform part up to the other half: a caller waits at least
    /// something, and callers turned away together do not return together.
    Equal,
}

/// Exponential backoff: the ceiling before retry `n` (1-based) is `min(cap, base * 2^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    pub const fn full(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            jitter: Jitter::Full,
        }
    }

    pub const fn equal(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            jitter: Jitter::Equal,
        }
    }

    /// Upper bound of the wait before retry number `retry` (1-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The wait before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        match self.jitter {
            Jitter::Full => jitter_up_to(ceiling),
            Jitter::Equal => ceiling / 2 + jitter_up_to(ceiling - ceiling / 2),
        }
    }

    /// The wait when the server named one (`Retry-After`, `retry_after`): that wait, at most
    /// `max`, plus a jitter of at most `base` so callers told the same number do not all
    /// come back at once.
    pub fn after_hint(&self, hint: Duration, max: Duration) -> Duration {
        hint.min(max) + jitter_up_to(self.base.min(self.cap))
    }
}

/// A uniform duration in `[0, max]`.
pub fn jitter_up_to(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// Work retried later (the next attempt's time is stored): a fixed ladder of delays, the last
/// repeating, then give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// Delay after the 1st, 2nd, ... failed attempt; the last one repeats.
    pub delays: Vec<Duration>,
    /// Attempts in all (the first included); after that the work stays failed.
    pub max_attempts: u32,
}

impl Ladder {
    /// The wait after `attempts` failed attempts, or `None` once no attempt is left.
    pub fn next_delay(&self, attempts: u32) -> Option<Duration> {
        if attempts == 0 || attempts >= self.max_attempts || self.delays.is_empty() {
            return None;
        }
        let i = (attempts as usize - 1).min(self.delays.len() - 1);
        Some(self.delays[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = Backoff::full(100 * MS, 1000 * MS);
        let c: Vec<u128> = (1..=6).map(|r| b.ceiling(r).as_millis()).collect();
        assert_eq!(c, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.ceiling(u32::MAX), 1000 * MS);
    }

    #[test]
    fn full_and_equal_jitter_stay_in_their_bounds_and_vary() {
        let full = Backoff::full(100 * MS, 1000 * MS);
        let equal = Backoff::equal(100 * MS, 1000 * MS);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let f = full.delay(3);
            assert!(f <= 400 * MS);
            seen.insert(f);
            let e = equal.delay(3);
            assert!(e >= 200 * MS && e <= 400 * MS, "{e:?}");
        }
        assert!(seen.len() > 100, "jitter varies");
        assert_eq!(Backoff::full(Duration::ZERO, MS).delay(5), Duration::ZERO);
    }

    #[test]
    fn a_server_hint_is_honoured_capped_and_spread() {
        let b = Backoff::full(100 * MS, 1000 * MS);
        for _ in 0..50 {
            let d = b.after_hint(Duration::from_secs(2), Duration::from_secs(60));
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(2) + 100 * MS);
            let capped = b.after_hint(Duration::from_secs(600), Duration::from_secs(60));
            assert!(capped <= Duration::from_secs(60) + 100 * MS);
        }
    }

    #[test]
    fn ladder_then_give_up() {
        let l = Ladder {
            delays: [60, 300, 900, 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: 6,
        };
        let mins: Vec<Option<u64>> = (0..=7)
            .map(|a| l.next_delay(a).map(|d| d.as_secs() / 60))
            .collect();
        assert_eq!(
            mins,
            vec![
                None,
                Some(1),
                Some(5),
                Some(15),
                Some(60),
                Some(60),
                None,
                None
            ]
        );
    }
}
