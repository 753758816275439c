//! RFM scores (recency, frequency, monetary; each 1–5) with fixed, documented cut-offs, so a
//! donor's score never depends on who else is in the store and can be computed in one pass.

use super::period::DAY;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rfm {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

impl Rfm {
    /// `days_since_last`: whole days from the last gift to the as-of time.
    pub fn score(days_since_last: i64, gifts: u64, lifetime_gross_cents: i64) -> Rfm {
        let recency = match days_since_last {
            d if d <= 90 => 5,
            d if d <= 180 => 4,
            d if d <= 365 => 3,
            d if d <= 730 => 2,
            _ => 1,
        };
        let frequency = match gifts {
            g if g >= 10 => 5,
            g if g >= 5 => 4,
            g if g >= 3 => 3,
            2 => 2,
            _ => 1,
        };
        let monetary = match lifetime_gross_cents {
            m if m >= 500_000 => 5,
            m if m >= 100_000 => 4,
            m if m >= 25_000 => 3,
            m if m >= 5_000 => 2,
            _ => 1,
        };
        Rfm {
            recency,
            frequency,
            monetary,
        }
    }

    pub fn of(as_of: i64, last_gift: i64, gifts: u64, lifetime_gross_cents: i64) -> Rfm {
        Rfm::score(
            (as_of - last_gift).max(0) / DAY,
            gifts,
            lifetime_gross_cents,
        )
    }

    pub fn total(&self) -> u8 {
        self.recency + self.frequency + self.monetary
    }
}

/// A donor is a major-gift prospect from this RFM total up.
pub const PROSPECT_MIN_TOTAL: u8 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_offs_are_inclusive_at_the_boundaries() {
        assert_eq!(Rfm::score(90, 10, 500_000).total(), 15);
        assert_eq!(Rfm::score(91, 9, 499_999).total(), 12);
        assert_eq!(Rfm::score(731, 1, 4_999).total(), 3);
        assert_eq!(
            Rfm::score(365, 2, 5_000),
            Rfm {
                recency: 3,
                frequency: 2,
                monetary: 2
            }
        );
    }
}
