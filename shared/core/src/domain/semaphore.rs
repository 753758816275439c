//! The math of a counting semaphore kept in one store item: the holders of its places, each
//! with an expiry, so that a place taken by a process that died comes back on its own. Pure:
//! times are unix milliseconds passed in.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who holds the places of one semaphore, and until when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holders {
    /// Holder id → when its place expires (unix ms) unless renewed.
    #[serde(default)]
    pub holders: BTreeMap<String, i64>,
}

/// The answer to a take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The place is the holder's until the given time (unix ms).
    Granted { until_ms: i64 },
    /// Every place is held; the first of them expires at `next_expiry_ms` (a release may come
    /// sooner).
    Full { next_expiry_ms: i64 },
}

impl Holders {
    /// Forgets the holders whose places expired before `now_ms`; how many went.
    pub fn drop_expired(&mut self, now_ms: i64) -> usize {
        let before = self.holders.len();
        self.holders.retain(|_, until| *until >= now_ms);
        before - self.holders.len()
    }

    /// Forgets the holders `gone` says have ended (a local process known to be dead); how
    /// many went.
    pub fn drop_gone(&mut self, gone: impl Fn(&str) -> bool) -> usize {
        let before = self.holders.len();
        self.holders.retain(|id, _| !gone(id));
        before - self.holders.len()
    }

    /// Places held and not expired at `now_ms`.
    pub fn live(&self, now_ms: i64) -> usize {
        self.holders.values().filter(|u| **u >= now_ms).count()
    }

    /// Gives `holder` a place for `ttl_ms` when fewer than `limit` are held (expired places
    /// count as free). A holder that already has a place keeps it (renewed).
    pub fn take(&mut self, holder: &str, limit: u32, now_ms: i64, ttl_ms: i64) -> Take {
        self.drop_expired(now_ms);
        let until_ms = now_ms.saturating_add(ttl_ms);
        if let Some(u) = self.holders.get_mut(holder) {
            *u = until_ms;
            return Take::Granted { until_ms };
        }
        if self.holders.len() < limit.max(1) as usize {
            self.holders.insert(holder.to_string(), until_ms);
            return Take::Granted { until_ms };
        }
        let next_expiry_ms = self.holders.values().copied().min().unwrap_or(now_ms);
        Take::Full { next_expiry_ms }
    }

    /// Extends `holder`'s place to `now_ms + ttl_ms`; false when it no longer holds one (it
    /// expired and was dropped, perhaps taken by another).
    pub fn renew(&mut self, holder: &str, now_ms: i64, ttl_ms: i64) -> bool {
        match self.holders.get_mut(holder) {
            Some(u) if *u >= now_ms => {
                *u = now_ms.saturating_add(ttl_ms);
                true
            }
            _ => false,
        }
    }

    /// Gives `holder`'s place back; false when it held none.
    pub fn give(&mut self, holder: &str) -> bool {
        self.holders.remove(holder).is_some()
    }

    /// When the item may be swept (unix seconds): an hour after its last place expires, so
    /// an idle semaphore does not stay in the table forever.
    pub fn item_expiry_s(&self, now_ms: i64) -> i64 {
        let last = self
            .holders
            .values()
            .copied()
            .max()
            .unwrap_or(now_ms)
            .max(now_ms);
        last / 1000 + 3600
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_up_to_the_limit_then_says_when_a_place_expires() {
        let mut h = Holders::default();
        assert_eq!(
            h.take("a", 2, 1_000, 500),
            Take::Granted { until_ms: 1_500 }
        );
        assert_eq!(
            h.take("b", 2, 1_100, 500),
            Take::Granted { until_ms: 1_600 }
        );
        assert_eq!(
            h.take("c", 2, 1_200, 500),
            Take::Full {
                next_expiry_ms: 1_500
            }
        );
        assert_eq!(h.live(1_200), 2);
        // A holder asking again keeps its place.
        assert_eq!(
            h.take("a", 2, 1_300, 500),
            Take::Granted { until_ms: 1_800 }
        );
        assert!(h.give("b"));
        assert!(!h.give("b"));
        assert_eq!(
            h.take("c", 2, 1_400, 500),
            Take::Granted { until_ms: 1_900 }
        );
    }

    #[test]
    fn a_dead_holders_place_comes_back_when_it_expires() {
        let mut h = Holders::default();
        h.take("dead", 1, 0, 1_000);
        assert!(matches!(h.take("x", 1, 999, 1_000), Take::Full { .. }));
        assert!(matches!(h.take("x", 1, 1_001, 1_000), Take::Granted { .. }));
        assert!(!h.holders.contains_key("dead"));
        // The dead holder cannot renew what it lost.
        assert!(!h.renew("dead", 1_002, 1_000));
        assert!(h.renew("x", 1_500, 1_000));
        assert_eq!(h.holders["x"], 2_500);
    }

    #[test]
    fn holders_known_to_be_gone_are_dropped() {
        let mut h = Holders::default();
        h.take("host:1:a-0", 2, 0, 1_000);
        h.take("host:2:b-0", 2, 0, 1_000);
        assert_eq!(h.drop_gone(|id| id.starts_with("host:1:")), 1);
        assert_eq!(h.holders.keys().collect::<Vec<_>>(), vec!["host:2:b-0"]);
    }

    #[test]
    fn a_lowered_limit_grants_nothing_until_enough_places_come_back() {
        let mut h = Holders::default();
        for x in ["a", "b", "c"] {
            h.take(x, 3, 0, 1_000);
        }
        assert!(matches!(h.take("d", 2, 10, 1_000), Take::Full { .. }));
        h.give("a");
        assert!(matches!(h.take("d", 2, 10, 1_000), Take::Full { .. }));
        h.give("b");
        assert!(matches!(h.take("d", 2, 10, 1_000), Take::Granted { .. }));
    }

    #[test]
    fn the_item_is_swept_an_hour_after_its_last_place() {
        let mut h = Holders::default();
        assert_eq!(h.item_expiry_s(5_000), 3_605);
        h.take("a", 1, 10_000, 30_000);
        assert_eq!(h.item_expiry_s(10_000), 40 + 3_600);
    }
}
