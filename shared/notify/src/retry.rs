//! When a failed delivery is tried again: the shared ladder of delays
//! ([`classy_sync_core::retry::Ladder`]), with the notifications' default.

use classy_sync_core::retry::Ladder;
use std::time::Duration;

/// The delivery retry policy.
pub type RetryPolicy = Ladder;

/// 1, 5, 15, 60 minutes; six attempts in all (the last about 2.5 hours after the first).
pub fn default_policy() -> RetryPolicy {
    Ladder {
        delays: [60, 300, 900, 3600]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
        max_attempts: 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ladder() {
        let p = default_policy();
        let mins: Vec<Option<u64>> = (1..=7)
            .map(|a| p.next_delay(a).map(|d| d.as_secs() / 60))
            .collect();
        assert_eq!(
            mins,
            vec![Some(1), Some(5), Some(15), Some(60), Some(60), None, None]
        );
    }
}
