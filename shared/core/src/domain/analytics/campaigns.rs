//! Campaign figures from a campaign record and its lifetime totals: raised, donors, gifts,
//! average gift, percent of goal, daily velocity, projected total at the end date, rank.

use super::period::DAY;
use crate::domain::aggregates::{to_cents, CampaignTotals};
use crate::domain::Campaign;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignStats {
    pub campaign_id: u64,
    pub name: Option<String>,
    pub status: Option<String>,
    pub goal_cents: Option<i64>,
    pub raised_gross_cents: i64,
    pub raised_net_cents: i64,
    pub donors: u64,
    pub gifts: u64,
    pub average_gift_cents: i64,
    /// Raised gross over goal, in percent; none without a positive goal.
    pub percent_of_goal: Option<f64>,
    /// Raised gross per day since the start (at least one day), up to now or the end date.
    pub daily_velocity_cents: i64,
    /// At the end date, if the velocity holds; none without an end date.
    pub projected_total_cents: Option<i64>,
    /// Gross and gifts in the requested window.
    pub window_gross_cents: i64,
    pub window_gifts: u64,
    /// 1 = raised the most (lifetime gross); ties by id.
    pub rank: u32,
}

pub fn campaign_stats(c: &Campaign, t: &CampaignTotals, now: i64) -> CampaignStats {
    let raised = to_cents(t.total_raised_gross);
    let goal = c.goal.map(to_cents);
    let start = c.started_at.or(c.created_at).map(|s| s.unix());
    let end = c.ended_at.map(|e| e.unix());
    let until = end.map_or(now, |e| e.min(now));
    let days = start.map_or(1, |s| ((until - s) / DAY).max(1));
    let velocity = raised / days;
    let projected = end.map(|e| {
        if e > now {
            raised + velocity * ((e - now) / DAY)
        } else {
            raised
        }
    });
    CampaignStats {
        campaign_id: c.id,
        name: c.name.clone(),
        status: c.status.clone(),
        goal_cents: goal,
        raised_gross_cents: raised,
        raised_net_cents: to_cents(t.total_raised_net),
        donors: t.donor_count,
        gifts: t.gift_count,
        average_gift_cents: if t.gift_count > 0 {
            (raised as f64 / t.gift_count as f64).round() as i64
        } else {
            0
        },
        percent_of_goal: goal
            .filter(|g| *g > 0)
            .map(|g| (raised as f64 / g as f64 * 1000.0).round() / 10.0),
        daily_velocity_cents: velocity,
        projected_total_cents: projected,
        window_gross_cents: 0,
        window_gifts: 0,
        rank: 0,
    }
}

/// Sorts by lifetime gross (highest first, ties by id) and numbers the ranks.
pub fn rank(stats: &mut [CampaignStats]) {
    stats.sort_by_key(|s| (std::cmp::Reverse(s.raised_gross_cents), s.campaign_id));
    for (i, s) in stats.iter_mut().enumerate() {
        s.rank = i as u32 + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velocity_and_projection() {
        let c: Campaign = serde_json::from_value(serde_json::json!({"id": 1, "goal": 10000,
            "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-31T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z"}))
        .unwrap();
        let t = CampaignTotals {
            total_raised_gross: 1000.0,
            total_raised_net: 900.0,
            gift_count: 4,
            donor_count: 3,
        };
        let now = crate::domain::Timestamp::parse("2026-01-11T00:00:00Z")
            .unwrap()
            .unix();
        let s = campaign_stats(&c, &t, now);
        assert_eq!(s.daily_velocity_cents, 10_000);
        assert_eq!(s.projected_total_cents, Some(100_000 + 20 * 10_000));
        assert_eq!(s.percent_of_goal, Some(10.0));
        assert_eq!(s.average_gift_cents, 25_000);
        let after = campaign_stats(&c, &t, now + 100 * DAY);
        assert_eq!(after.projected_total_cents, Some(100_000));
        assert_eq!(after.daily_velocity_cents, 100_000 / 30);
    }
}
