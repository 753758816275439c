//! Recurring giving now: active plans, recurring donors and monthly recurring revenue.
//! Plans are current state in the store, so these figures describe today, not a period.

use crate::domain::aggregates::to_cents;
use crate::domain::RecurringPlan;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Payments per month for a Classy plan frequency; `None` when the frequency is unknown.
pub fn per_month(frequency: Option<&str>) -> Option<f64> {
    let f = frequency.unwrap_or("monthly").trim().to_ascii_lowercase();
    Some(match f.as_str() {
        "daily" => 365.0 / 12.0,
        "weekly" => 52.0 / 12.0,
        "bi-weekly" | "biweekly" => 26.0 / 12.0,
        "monthly" => 1.0,
        "quarterly" => 1.0 / 3.0,
        "semi-annually" | "semiannually" => 1.0 / 6.0,
        "yearly" | "annually" => 1.0 / 12.0,
        _ => return None,
    })
}

/// Plans that put their supporter at risk: `failing` now, or `failed` within 90 days.
pub fn is_failing(plan: &RecurringPlan, as_of: i64) -> bool {
    match plan.status.as_deref() {
        Some("failing") => true,
        Some("failed") => as_of - plan.updated_at.unix() <= 90 * super::period::DAY,
        _ => false,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recurring {
    pub active_plans: u64,
    pub recurring_donors: u64,
    /// Sum over active plans of the amount times payments per month, in cents.
    pub mrr_cents: i64,
    /// Active plans whose frequency is unknown (left out of MRR).
    pub unknown_frequency: u64,
}

#[derive(Default)]
pub struct RecurringFold {
    r: Recurring,
    donors: BTreeSet<u64>,
    mrr: f64,
}

impl RecurringFold {
    pub fn plan(&mut self, p: &RecurringPlan) {
        if !p.is_active() {
            return;
        }
        self.r.active_plans += 1;
        if let Some(s) = p.supporter_id {
            self.donors.insert(s);
        }
        match per_month(p.frequency.as_deref()) {
            Some(k) => self.mrr += to_cents(p.donation_amount.unwrap_or(0.0)) as f64 * k,
            None => self.r.unknown_frequency += 1,
        }
    }

    pub fn finish(mut self) -> Recurring {
        self.r.recurring_donors = self.donors.len() as u64;
        self.r.mrr_cents = self.mrr.round() as i64;
        self.r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: u64, sup: u64, amount: f64, freq: &str, status: &str) -> RecurringPlan {
        serde_json::from_value(serde_json::json!({"id": id, "supporter_id": sup,
            "donation_amount": amount, "frequency": freq, "status": status,
            "updated_at": "2026-01-01T00:00:00Z"}))
        .unwrap()
    }

    #[test]
    fn mrr_counts_active_plans_only_per_month() {
        let mut f = RecurringFold::default();
        f.plan(&plan(1, 1, 10.0, "monthly", "active"));
        f.plan(&plan(2, 1, 30.0, "quarterly", "active"));
        f.plan(&plan(3, 2, 120.0, "yearly", "active"));
        f.plan(&plan(4, 3, 50.0, "monthly", "canceled"));
        f.plan(&plan(5, 4, 50.0, "fortnightly-ish", "active"));
        let r = f.finish();
        assert_eq!((r.active_plans, r.recurring_donors), (4, 3));
        assert_eq!(r.mrr_cents, 1000 + 1000 + 1000);
        assert_eq!(r.unknown_frequency, 1);
    }
}
