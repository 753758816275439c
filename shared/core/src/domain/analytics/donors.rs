//! Donor figures for one window, folded one supporter at a time from that supporter's
//! successful gifts: totals, lifecycle (new, returning, reactivated, lapsed, lost), retention,
//! value tiers, trends, gifts per day, RFM prospects and overdue regular givers. Only gifts
//! before the window's end count, so a past period reads as it was then.

use super::period::{Window, DAY};
use super::rfm::{Rfm, PROSPECT_MIN_TOTAL};
use super::trends::{Figures, Trends};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

pub const YEAR: i64 = 365 * DAY;

/// One successful gift as the analytics see it (amounts in cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gift {
    pub date: i64,
    pub gross: i64,
    pub net: i64,
    pub campaign: Option<u64>,
}

/// Lifetime-giving thresholds (cents) of the value tiers; a donor is in the first tier whose
/// threshold their lifetime gross reaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierThresholds {
    pub tiers: Vec<(String, i64)>,
}

impl Default for TierThresholds {
    fn default() -> Self {
        TierThresholds {
            tiers: vec![
                ("major".into(), 100_000),
                ("mid".into(), 25_000),
                ("small".into(), 0),
            ],
        }
    }
}

impl TierThresholds {
    /// From descending dollar thresholds, e.g. `[1000.0, 250.0]` gives major/mid/small.
    pub fn from_dollars(thresholds: &[f64]) -> Result<Self, String> {
        let names = ["major", "mid", "regular", "small"];
        if thresholds.is_empty() || thresholds.len() > 3 {
            return Err("give one to three tier thresholds, highest first".into());
        }
        let cents: Vec<i64> = thresholds
            .iter()
            .map(|d| (d * 100.0).round() as i64)
            .collect();
        if cents.iter().any(|c| *c <= 0) || cents.windows(2).any(|w| w[0] <= w[1]) {
            return Err("tier thresholds must be positive and strictly descending".into());
        }
        let mut tiers: Vec<(String, i64)> = cents
            .iter()
            .enumerate()
            .map(|(i, c)| (names[i].to_string(), *c))
            .collect();
        tiers.push(("small".into(), 0));
        Ok(TierThresholds { tiers })
    }

    pub fn tier_of(&self, lifetime_gross: i64) -> usize {
        self.tiers
            .iter()
            .position(|(_, t)| lifetime_gross >= *t)
            .unwrap_or(self.tiers.len().saturating_sub(1))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsConfig {
    pub tiers: TierThresholds,
    /// Length of the prospect and at-risk lists.
    pub top: usize,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            tiers: TierThresholds::default(),
            top: 10,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DonorTotals {
    pub gross_cents: i64,
    pub net_cents: i64,
    /// Gross minus net: processing fees and anything else Classy kept.
    pub fees_cents: i64,
    pub gifts: u64,
    pub donors: u64,
    pub average_gift_cents: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub new: u64,
    pub returning: u64,
    pub reactivated: u64,
    /// Last gift 12–24 months before the window's end.
    pub lapsed: u64,
    /// Last gift more than 24 months before the window's end.
    pub lost: u64,
    pub previous_period_donors: u64,
    pub retained: u64,
    /// `retained / previous_period_donors`, when the previous period had donors.
    pub retention_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierCount {
    pub tier: String,
    pub min_lifetime_gross_cents: i64,
    pub donors: u64,
    pub lifetime_gross_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prospect {
    pub supporter_id: u64,
    pub name: Option<String>,
    pub rfm: Rfm,
    pub rfm_total: u8,
    pub lifetime_gross_cents: i64,
    pub gifts: u64,
    pub largest_gift_cents: i64,
    pub last_gift_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskReason {
    /// A recurring plan of theirs is failing or failed recently.
    PlanFailing,
    /// Gave at least three times, and the time since the last gift is over twice their
    /// usual interval (and over 30 days), but under a year.
    Overdue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtRisk {
    pub supporter_id: u64,
    pub name: Option<String>,
    pub reasons: Vec<RiskReason>,
    pub lifetime_gross_cents: i64,
    pub gifts: u64,
    pub last_gift_at: Option<i64>,
    pub days_since_last_gift: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPoint {
    /// Midnight UTC of the day, Unix seconds.
    pub day: i64,
    pub gifts: u64,
    pub gross_cents: i64,
}

/// Everything the donor pass yields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DonorReport {
    pub window: Window,
    pub totals: DonorTotals,
    pub lifecycle: Lifecycle,
    pub tiers: Vec<TierCount>,
    pub trends: Trends,
    pub gifts_per_day: Vec<DayPoint>,
    pub top_prospects: Vec<Prospect>,
    pub prospects_total: u64,
    pub at_risk: Vec<AtRisk>,
    pub at_risk_total: u64,
    /// Gross and gifts in the window per campaign id.
    pub campaign_gross_in_window: HashMap<u64, (i64, u64)>,
}

/// Ordering key of the bounded prospect list: best first.
type ProspectKey = (u8, i64, Reverse<u64>);
type RiskKey = (i64, Reverse<u64>);

pub struct DonorFold {
    window: Window,
    previous: Window,
    config: AnalyticsConfig,
    failing_plans: HashSet<u64>,
    totals: DonorTotals,
    lifecycle: Lifecycle,
    tiers: Vec<TierCount>,
    week: (Figures, Figures),
    month: (Figures, Figures),
    days: BTreeMap<i64, (u64, i64)>,
    campaigns: HashMap<u64, (i64, u64)>,
    prospects: BinaryHeap<Reverse<(ProspectKey, u64)>>,
    prospect_rows: HashMap<u64, Prospect>,
    prospects_total: u64,
    risks: BinaryHeap<Reverse<(RiskKey, u64)>>,
    risk_rows: HashMap<u64, AtRisk>,
    at_risk_total: u64,
    seen_failing: HashSet<u64>,
    scratch: Vec<Gift>,
}

fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY) * DAY
}

impl DonorFold {
    /// `failing_plans`: supporters with a failing (or recently failed) recurring plan.
    pub fn new(window: Window, config: AnalyticsConfig, failing_plans: HashSet<u64>) -> Self {
        let tiers = config
            .tiers
            .tiers
            .iter()
            .map(|(name, min)| TierCount {
                tier: name.clone(),
                min_lifetime_gross_cents: *min,
                donors: 0,
                lifetime_gross_cents: 0,
            })
            .collect();
        DonorFold {
            window,
            previous: window.previous(),
            config,
            failing_plans,
            totals: DonorTotals::default(),
            lifecycle: Lifecycle::default(),
            tiers,
            week: Default::default(),
            month: Default::default(),
            days: BTreeMap::new(),
            campaigns: HashMap::new(),
            prospects: BinaryHeap::new(),
            prospect_rows: HashMap::new(),
            prospects_total: 0,
            risks: BinaryHeap::new(),
            risk_rows: HashMap::new(),
            at_risk_total: 0,
            seen_failing: HashSet::new(),
            scratch: Vec::new(),
        }
    }

    /// Feeds one supporter's successful gifts (any order). Each supporter exactly once.
    pub fn supporter(&mut self, id: u64, gifts: &[Gift]) {
        let end = self.window.end;
        let mut g = std::mem::take(&mut self.scratch);
        g.clear();
        g.extend(gifts.iter().filter(|x| x.date < end));
        g.sort_by_key(|x| x.date);
        self.fold(id, &g);
        self.scratch = g;
    }

    fn fold(&mut self, id: u64, gifts: &[Gift]) {
        let w = self.window;
        let end = w.end;
        let failing = self.failing_plans.contains(&id);
        let Some(last) = gifts.last() else {
            if failing {
                self.seen_failing.insert(id);
                self.risk(id, vec![RiskReason::PlanFailing], 0, 0, None, 0);
            }
            return;
        };
        let first = gifts[0].date;
        let lifetime: i64 = gifts.iter().map(|x| x.gross).sum();
        let largest = gifts.iter().map(|x| x.gross).max().unwrap_or(0);
        let count = gifts.len() as u64;

        let in_window = gifts.iter().filter(|x| w.contains(x.date));
        let mut gave = false;
        for x in in_window {
            gave = true;
            self.totals.gross_cents += x.gross;
            self.totals.net_cents += x.net;
            self.totals.gifts += 1;
            let d = self.days.entry(day_of(x.date)).or_default();
            d.0 += 1;
            d.1 += x.gross;
            if let Some(c) = x.campaign {
                let e = self.campaigns.entry(c).or_default();
                e.0 += x.gross;
                e.1 += 1;
            }
        }
        if gave {
            self.totals.donors += 1;
            if first >= w.start {
                self.lifecycle.new += 1;
            } else {
                let year_before = Window {
                    start: w.start - YEAR,
                    end: w.start,
                };
                if gifts.iter().any(|x| year_before.contains(x.date)) {
                    self.lifecycle.returning += 1;
                } else {
                    self.lifecycle.reactivated += 1;
                }
            }
        }
        let since = end - last.date;
        if since >= 2 * YEAR {
            self.lifecycle.lost += 1;
        } else if since >= YEAR {
            self.lifecycle.lapsed += 1;
        }
        if gifts.iter().any(|x| self.previous.contains(x.date)) {
            self.lifecycle.previous_period_donors += 1;
            if gave {
                self.lifecycle.retained += 1;
            }
        }
        let t = self.config.tiers.tier_of(lifetime);
        self.tiers[t].donors += 1;
        self.tiers[t].lifetime_gross_cents += lifetime;

        for (days, pair) in [(7, &mut self.week), (30, &mut self.month)] {
            let cur = Window::last_days(end, days);
            pair.0.add(gifts.iter().filter(|x| cur.contains(x.date)));
            pair.1
                .add(gifts.iter().filter(|x| cur.previous().contains(x.date)));
        }

        let rfm = Rfm::of(end, last.date, count, lifetime);
        if rfm.total() >= PROSPECT_MIN_TOTAL {
            self.prospects_total += 1;
            let key = (rfm.total(), lifetime, Reverse(id));
            if self.offer_prospect(key, id) {
                self.prospect_rows.insert(
                    id,
                    Prospect {
                        supporter_id: id,
                        name: None,
                        rfm,
                        rfm_total: rfm.total(),
                        lifetime_gross_cents: lifetime,
                        gifts: count,
                        largest_gift_cents: largest,
                        last_gift_at: last.date,
                    },
                );
            }
        }

        let mut reasons = Vec::new();
        if failing {
            self.seen_failing.insert(id);
            reasons.push(RiskReason::PlanFailing);
        }
        if is_overdue(gifts, end) {
            reasons.push(RiskReason::Overdue);
        }
        if !reasons.is_empty() {
            self.risk(id, reasons, lifetime, count, Some(last.date), end);
        }
    }

    fn offer_prospect(&mut self, key: ProspectKey, id: u64) -> bool {
        self.prospects.push(Reverse((key, id)));
        if self.prospects.len() > self.config.top {
            let Reverse((_, out)) = self.prospects.pop().expect("non-empty");
            self.prospect_rows.remove(&out);
            return out != id;
        }
        true
    }

    fn risk(
        &mut self,
        id: u64,
        reasons: Vec<RiskReason>,
        lifetime: i64,
        gifts: u64,
        last: Option<i64>,
        end: i64,
    ) {
        self.at_risk_total += 1;
        self.risks.push(Reverse(((lifetime, Reverse(id)), id)));
        self.risk_rows.insert(
            id,
            AtRisk {
                supporter_id: id,
                name: None,
                reasons,
                lifetime_gross_cents: lifetime,
                gifts,
                last_gift_at: last,
                days_since_last_gift: last.map(|l| (end - l) / DAY),
            },
        );
        if self.risks.len() > self.config.top {
            let Reverse((_, out)) = self.risks.pop().expect("non-empty");
            self.risk_rows.remove(&out);
        }
    }

    pub fn finish(mut self) -> DonorReport {
        // Supporters with a failing plan but no gifts (never fed) are at risk too.
        let unseen: Vec<u64> = {
            let mut v: Vec<u64> = self
                .failing_plans
                .difference(&self.seen_failing)
                .copied()
                .collect();
            v.sort_unstable();
            v
        };
        for id in unseen {
            self.risk(
                id,
                vec![RiskReason::PlanFailing],
                0,
                0,
                None,
                self.window.end,
            );
        }
        let t = &mut self.totals;
        t.fees_cents = t.gross_cents - t.net_cents;
        t.average_gift_cents = if t.gifts > 0 {
            (t.gross_cents as f64 / t.gifts as f64).round() as i64
        } else {
            0
        };
        let l = &mut self.lifecycle;
        l.retention_rate = (l.previous_period_donors > 0)
            .then(|| l.retained as f64 / l.previous_period_donors as f64);
        let mut gifts_per_day = Vec::new();
        let mut day = day_of(self.window.start);
        while day < self.window.end && !self.window.is_empty() {
            let (gifts, gross_cents) = self.days.get(&day).copied().unwrap_or_default();
            gifts_per_day.push(DayPoint {
                day,
                gifts,
                gross_cents,
            });
            day += DAY;
        }
        let mut top_prospects: Vec<Prospect> = self.prospect_rows.into_values().collect();
        top_prospects.sort_by_key(|p| {
            (
                Reverse(p.rfm_total),
                Reverse(p.lifetime_gross_cents),
                p.supporter_id,
            )
        });
        let mut at_risk: Vec<AtRisk> = self.risk_rows.into_values().collect();
        at_risk.sort_by_key(|r| (Reverse(r.lifetime_gross_cents), r.supporter_id));
        DonorReport {
            window: self.window,
            totals: self.totals,
            lifecycle: self.lifecycle,
            tiers: self.tiers,
            trends: Trends::from_pairs(self.week, self.month),
            gifts_per_day,
            top_prospects,
            prospects_total: self.prospects_total,
            at_risk,
            at_risk_total: self.at_risk_total,
            campaign_gross_in_window: self.campaigns,
        }
    }
}

/// A regular giver (three or more gifts) whose silence is over twice their mean interval and
/// over 30 days, but under a year (after that they count as lapsed).
pub fn is_overdue(sorted_gifts: &[Gift], as_of: i64) -> bool {
    if sorted_gifts.len() < 3 {
        return false;
    }
    let first = sorted_gifts[0].date;
    let last = sorted_gifts[sorted_gifts.len() - 1].date;
    let interval = (last - first) / (sorted_gifts.len() as i64 - 1);
    let since = as_of - last;
    since > 2 * interval && since > 30 * DAY && since < YEAR
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_750_000_000;

    fn g(days_ago: i64, dollars: i64) -> Gift {
        Gift {
            date: T0 - days_ago * DAY,
            gross: dollars * 100,
            net: dollars * 90,
            campaign: Some(1),
        }
    }

    fn report(donors: &[(u64, Vec<Gift>)], failing: &[u64]) -> DonorReport {
        let w = Window::last_days(T0, 30);
        let mut f = DonorFold::new(
            w,
            AnalyticsConfig::default(),
            failing.iter().copied().collect(),
        );
        for (id, gifts) in donors {
            f.supporter(*id, gifts);
        }
        f.finish()
    }

    #[test]
    fn lifecycle_classes_follow_the_definitions() {
        let r = report(
            &[
                (1, vec![g(5, 10)]),             // new
                (2, vec![g(5, 10), g(100, 10)]), // returning
                (3, vec![g(5, 10), g(500, 10)]), // reactivated
                (4, vec![g(400, 10)]),           // lapsed
                (5, vec![g(800, 10)]),           // lost
                (6, vec![g(40, 10), g(10, 5)]),  // retained from the previous 30 days
                (7, vec![g(45, 10)]),            // not retained
                (8, vec![g(-3, 10)]),            // after the window: ignored
            ],
            &[],
        );
        let l = &r.lifecycle;
        assert_eq!((l.new, l.returning, l.reactivated), (1, 2, 1));
        assert_eq!((l.lapsed, l.lost), (1, 1));
        assert_eq!((l.previous_period_donors, l.retained), (2, 1));
        assert_eq!(l.retention_rate, Some(0.5));
        assert_eq!(r.totals.gifts, 4);
        assert_eq!(r.totals.donors, 4);
        assert_eq!(r.totals.gross_cents, 3500);
        assert_eq!(r.totals.fees_cents, 350);
        // 30 × 24 h ending mid-day touch 31 calendar days.
        assert_eq!(r.gifts_per_day.len(), 31);
        assert_eq!(r.gifts_per_day.iter().map(|d| d.gifts).sum::<u64>(), 4);
    }

    #[test]
    fn prospects_and_risks_are_bounded_and_ordered() {
        let mut donors = Vec::new();
        for id in 1..=30u64 {
            donors.push((
                id,
                (0..12).map(|k| g(k * 20 + 1, 500 + id as i64)).collect(),
            ));
        }
        donors.push((99, vec![g(200, 10), g(230, 10), g(260, 10)])); // overdue
        let r = report(&donors, &[77]);
        assert_eq!(r.top_prospects.len(), 10);
        assert_eq!(r.prospects_total, 30);
        assert_eq!(r.top_prospects[0].supporter_id, 30);
        assert_eq!(r.at_risk_total, 2);
        let ids: Vec<u64> = r.at_risk.iter().map(|a| a.supporter_id).collect();
        assert_eq!(ids, vec![99, 77]);
        assert_eq!(r.at_risk[1].reasons, vec![RiskReason::PlanFailing]);
    }

    #[test]
    fn tiers_from_dollars_validate() {
        let t = TierThresholds::from_dollars(&[1000.0, 250.0]).unwrap();
        assert_eq!(t.tier_of(100_000), 0);
        assert_eq!(t.tier_of(99_999), 1);
        assert_eq!(t.tier_of(0), 2);
        assert!(TierThresholds::from_dollars(&[250.0, 1000.0]).is_err());
        assert!(TierThresholds::from_dollars(&[]).is_err());
    }
}
