//! When a failed delivery is tried again: a fixed ladder of delays, then give up.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the 1st, 2nd, ... failed attempt; the last one repeats.
    pub delays: Vec<Duration>,
    /// Attempts in all (the first included); after that the delivery stays `failed`.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1, 5, 15, 60 minutes; six attempts in all (the last about 2.5 hours after the first).
    fn default() -> Self {
        RetryPolicy {
            delays: [60, 300, 900, 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: 6,
        }
    }
}

impl RetryPolicy {
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

    #[test]
    fn ladder_then_give_up() {
        let p = RetryPolicy::default();
        let mins: Vec<Option<u64>> = (1..=7)
            .map(|a| p.next_delay(a).map(|d| d.as_secs() / 60))
            .collect();
        assert_eq!(
            mins,
            vec![Some(1), Some(5), Some(15), Some(60), Some(60), None, None]
        );
    }
}
