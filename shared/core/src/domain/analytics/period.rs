//! Reporting periods: `30d`, `90d`, `12m`, `ytd`, `2025`, `2025-01-01..2025-03-31`, resolved
//! against a given `now` into a half-open window of Unix seconds.

use crate::domain::Timestamp;
use chrono::{Datelike, Months, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const DAY: i64 = 86_400;

/// What `--period` accepts. The default is the last 30 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    LastDays(u32),
    LastMonths(u32),
    YearToDate,
    Year(i32),
    /// Both dates inclusive.
    Dates(NaiveDate, NaiveDate),
}

impl Default for Period {
    fn default() -> Self {
        Period::LastDays(30)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid period {0:?}: use 30d, 12m, ytd, 2025 or 2025-01-01..2025-03-31")]
pub struct PeriodError(pub String);

impl std::str::FromStr for Period {
    type Err = PeriodError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim().to_ascii_lowercase();
        let err = || PeriodError(raw.to_string());
        let positive = |n: &str| n.parse::<u32>().ok().filter(|n| (1..=36_500).contains(n));
        if s == "ytd" {
            return Ok(Period::YearToDate);
        }
        if let Some((a, b)) = s.split_once("..") {
            let a = NaiveDate::parse_from_str(a.trim(), "%Y-%m-%d").map_err(|_| err())?;
            let b = NaiveDate::parse_from_str(b.trim(), "%Y-%m-%d").map_err(|_| err())?;
            return if a <= b {
                Ok(Period::Dates(a, b))
            } else {
                Err(err())
            };
        }
        if let Some(n) = s.strip_suffix('d') {
            return positive(n).map(Period::LastDays).ok_or_else(err);
        }
        if let Some(n) = s.strip_suffix('m') {
            return positive(n)
                .filter(|n| *n <= 1200)
                .map(Period::LastMonths)
                .ok_or_else(err);
        }
        if s.len() == 4 {
            if let Ok(y) = s.parse::<i32>() {
                if (1900..=9999).contains(&y) {
                    return Ok(Period::Year(y));
                }
            }
        }
        Err(err())
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::LastDays(n) => write!(f, "{n}d"),
            Period::LastMonths(n) => write!(f, "{n}m"),
            Period::YearToDate => f.write_str("ytd"),
            Period::Year(y) => write!(f, "{y}"),
            Period::Dates(a, b) => write!(f, "{a}..{b}"),
        }
    }
}

/// A half-open window `[start, end)` of Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    pub fn len(&self) -> i64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The window of the same length just before this one.
    pub fn previous(&self) -> Window {
        Window {
            start: self.start - self.len(),
            end: self.start,
        }
    }

    /// The `days` days ending where this window ends.
    pub fn last_days(end: i64, days: i64) -> Window {
        Window {
            start: end - days * DAY,
            end,
        }
    }
}

fn midnight(d: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .timestamp()
}

impl Period {
    /// The window this period covers as of `now` (UTC calendar).
    pub fn resolve(&self, now: Timestamp) -> Window {
        let end = now.unix();
        match *self {
            Period::LastDays(n) => Window::last_days(end, n as i64),
            Period::LastMonths(n) => Window {
                start: now
                    .0
                    .checked_sub_months(Months::new(n))
                    .map_or(i64::MIN / 4, |d| d.timestamp()),
                end,
            },
            Period::YearToDate => Window {
                start: midnight(NaiveDate::from_ymd_opt(now.0.year(), 1, 1).expect("jan 1")),
                end,
            },
            Period::Year(y) => Window {
                start: midnight(NaiveDate::from_ymd_opt(y, 1, 1).expect("jan 1")),
                end: midnight(NaiveDate::from_ymd_opt(y + 1, 1, 1).expect("jan 1")),
            },
            Period::Dates(a, b) => Window {
                start: midnight(a),
                end: midnight(b) + DAY,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-06-15T12:00:00Z").unwrap()
    }

    #[test]
    fn parses_every_documented_form() {
        assert_eq!("30d".parse(), Ok(Period::LastDays(30)));
        assert_eq!("12M".parse(), Ok(Period::LastMonths(12)));
        assert_eq!("ytd".parse(), Ok(Period::YearToDate));
        assert_eq!("2025".parse(), Ok(Period::Year(2025)));
        let p: Period = "2025-01-01..2025-03-31".parse().unwrap();
        assert_eq!(p.to_string(), "2025-01-01..2025-03-31");
        for bad in ["", "0d", "d", "x", "2025-03-01..2025-01-01", "20255", "-5d"] {
            let e = bad.parse::<Period>().unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn resolves_against_now() {
        let w = Period::LastDays(30).resolve(now());
        assert_eq!(w.len(), 30 * DAY);
        assert_eq!(w.end, now().unix());
        let y = Period::Year(2025).resolve(now());
        assert_eq!(y.start, Timestamp::parse("2025-01-01").unwrap().unix());
        assert_eq!(y.end, Timestamp::parse("2026-01-01").unwrap().unix());
        let ytd = Period::YearToDate.resolve(now());
        assert_eq!(ytd.start, Timestamp::parse("2026-01-01").unwrap().unix());
        let m = Period::LastMonths(12).resolve(now());
        assert_eq!(
            m.start,
            Timestamp::parse("2025-06-15T12:00:00Z").unwrap().unix()
        );
        let d = "2025-01-01..2025-01-01"
            .parse::<Period>()
            .unwrap()
            .resolve(now());
        assert_eq!(d.len(), DAY);
        assert_eq!(d.previous().end, d.start);
    }
}
