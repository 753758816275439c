//! One supporter's journey: every gift (any status) and plan in date order, the segment each
//! successful gift put them in, and where they stand now.

use super::donors::{Gift, TierThresholds, YEAR};
use super::rfm::Rfm;
use crate::domain::aggregates::to_cents;
use crate::domain::{RecurringPlan, Transaction};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JourneyGift {
    pub transaction_id: u64,
    pub date: i64,
    pub status: Option<String>,
    pub gross_cents: i64,
    pub campaign_id: Option<u64>,
    pub recurring_plan_id: Option<u64>,
    /// For successful gifts: new, returning or reactivated at that moment.
    pub segment: Option<String>,
    pub lifetime_gross_cents_after: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JourneyPlan {
    pub plan_id: u64,
    pub status: Option<String>,
    pub amount_cents: i64,
    pub frequency: Option<String>,
    pub started_at: Option<i64>,
    pub canceled_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    pub supporter_id: u64,
    pub name: Option<String>,
    pub gifts: Vec<JourneyGift>,
    pub plans: Vec<JourneyPlan>,
    /// active (gave within 12 months), lapsed (12–24), lost (over 24) or never_gave.
    pub status_now: String,
    pub tier: Option<String>,
    pub rfm: Option<Rfm>,
    pub lifetime_gross_cents: i64,
}

pub fn journey(
    supporter_id: u64,
    name: Option<String>,
    mut txns: Vec<Transaction>,
    plans: &[RecurringPlan],
    tiers: &TierThresholds,
    now: i64,
) -> Journey {
    txns.sort_by_key(|t| (t.gift_date(), t.id));
    let mut lifetime = 0;
    let mut last_success: Option<i64> = None;
    let mut count = 0u64;
    let mut gifts = Vec::with_capacity(txns.len());
    for t in txns.iter().filter(|t| t.gift_date().unix() < now) {
        let date = t.gift_date().unix();
        let gross = to_cents(t.total_gross_amount.unwrap_or(0.0));
        let segment = t.is_successful().then(|| {
            let s = match last_success {
                None => "new",
                Some(prev) if date - prev <= YEAR => "returning",
                Some(_) => "reactivated",
            };
            lifetime += gross;
            count += 1;
            last_success = Some(date);
            s.to_string()
        });
        gifts.push(JourneyGift {
            transaction_id: t.id,
            date,
            status: t.status.clone(),
            gross_cents: gross,
            campaign_id: t.campaign_id,
            recurring_plan_id: t.recurring_donation_plan_id,
            segment,
            lifetime_gross_cents_after: lifetime,
        });
    }
    let status_now = match last_success {
        None => "never_gave",
        Some(l) if now - l < YEAR => "active",
        Some(l) if now - l < 2 * YEAR => "lapsed",
        Some(_) => "lost",
    };
    let mut plan_rows: Vec<JourneyPlan> = plans
        .iter()
        .map(|p| JourneyPlan {
            plan_id: p.id,
            status: p.status.clone(),
            amount_cents: to_cents(p.donation_amount.unwrap_or(0.0)),
            frequency: p.frequency.clone(),
            started_at: p.started_at.or(p.created_at).map(|t| t.unix()),
            canceled_at: p.canceled_at.map(|t| t.unix()),
        })
        .collect();
    plan_rows.sort_by_key(|p| (p.started_at, p.plan_id));
    Journey {
        supporter_id,
        name,
        gifts,
        plans: plan_rows,
        status_now: status_now.to_string(),
        tier: last_success.map(|_| tiers.tiers[tiers.tier_of(lifetime)].0.clone()),
        rfm: last_success.map(|l| Rfm::of(now, l, count, lifetime)),
        lifetime_gross_cents: lifetime,
    }
}

/// The successful gifts of a journey, as the donor fold takes them.
pub fn successful(txns: &[Transaction]) -> Vec<Gift> {
    txns.iter()
        .filter(|t| t.is_successful())
        .map(|t| Gift {
            date: t.gift_date().unix(),
            gross: to_cents(t.total_gross_amount.unwrap_or(0.0)),
            net: to_cents(t.donation_net_amount.unwrap_or(0.0)),
            campaign: t.campaign_id,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(id: u64, date: &str, status: &str, gross: f64) -> Transaction {
        serde_json::from_value(serde_json::json!({"id": id, "purchased_at": date,
            "status": status, "total_gross_amount": gross, "updated_at": date}))
        .unwrap()
    }

    #[test]
    fn segments_over_time() {
        let now = crate::domain::Timestamp::parse("2026-06-01")
            .unwrap()
            .unix();
        let j = journey(
            1,
            None,
            vec![
                txn(3, "2025-12-01", "success", 30.0),
                txn(1, "2023-01-01", "success", 10.0),
                txn(2, "2023-02-01", "refunded", 99.0),
                txn(4, "2023-03-01", "success", 20.0),
            ],
            &[],
            &TierThresholds::default(),
            now,
        );
        let segs: Vec<Option<&str>> = j.gifts.iter().map(|g| g.segment.as_deref()).collect();
        assert_eq!(
            segs,
            vec![Some("new"), None, Some("returning"), Some("reactivated")]
        );
        assert_eq!(j.lifetime_gross_cents, 6000);
        assert_eq!(j.status_now, "active");
        assert_eq!(j.tier.as_deref(), Some("small"));
    }
}
