//! Week over week (last 7 days against the 7 before) and month over month (last 30 days
//! against the 30 before) for gross, net, gifts and donors, with a direction.

use super::donors::Gift;
use serde::{Deserialize, Serialize};

/// Key figures of one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub gross_cents: i64,
    pub net_cents: i64,
    pub gifts: u64,
    pub donors: u64,
}

impl Figures {
    /// Adds one supporter's gifts that fall in the window.
    pub fn add<'a>(&mut self, gifts: impl Iterator<Item = &'a Gift>) {
        let mut any = false;
        for g in gifts {
            any = true;
            self.gross_cents += g.gross;
            self.net_cents += g.net;
            self.gifts += 1;
        }
        if any {
            self.donors += 1;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Flat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    pub figure: String,
    pub current: i64,
    pub previous: i64,
    /// Percent change; none when the previous value is zero.
    pub change_pct: Option<f64>,
    pub direction: Direction,
}

impl Trend {
    pub fn of(figure: &str, current: i64, previous: i64) -> Trend {
        Trend {
            figure: figure.to_string(),
            current,
            previous,
            change_pct: (previous != 0)
                .then(|| ((current - previous) as f64 / previous as f64 * 1000.0).round() / 10.0),
            direction: match current.cmp(&previous) {
                std::cmp::Ordering::Greater => Direction::Up,
                std::cmp::Ordering::Less => Direction::Down,
                std::cmp::Ordering::Equal => Direction::Flat,
            },
        }
    }

    pub fn list(current: &Figures, previous: &Figures) -> Vec<Trend> {
        vec![
            Trend::of("gross_cents", current.gross_cents, previous.gross_cents),
            Trend::of("net_cents", current.net_cents, previous.net_cents),
            Trend::of("gifts", current.gifts as i64, previous.gifts as i64),
            Trend::of("donors", current.donors as i64, previous.donors as i64),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trends {
    pub week_over_week: Vec<Trend>,
    pub month_over_month: Vec<Trend>,
}

impl Trends {
    pub fn from_pairs(week: (Figures, Figures), month: (Figures, Figures)) -> Trends {
        Trends {
            week_over_week: Trend::list(&week.0, &week.1),
            month_over_month: Trend::list(&month.0, &month.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_and_change() {
        let t = Trend::of("gifts", 15, 10);
        assert_eq!((t.direction, t.change_pct), (Direction::Up, Some(50.0)));
        assert_eq!(Trend::of("gifts", 0, 0).change_pct, None);
        assert_eq!(Trend::of("gifts", 3, 4).direction, Direction::Down);
        assert_eq!(Trend::of("gifts", 4, 4).direction, Direction::Flat);
    }
}
