//! Values the Classy API lacks, computed from the slim index entries the sync keeps:
//! per-supporter giving aggregates and per-campaign totals. Money is summed in integer cents
//! so totals never drift. Amounts are Classy's normalized (organization currency) figures.

use super::{RecurringPlan, Timestamp, Transaction};
use serde::{Deserialize, Serialize};

pub fn to_cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

pub fn from_cents(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// One gift as the supporter and campaign indexes keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GiftRef {
    pub txn: u64,
    pub supporter: Option<u64>,
    pub campaign: Option<u64>,
    pub success: bool,
    pub gross_cents: i64,
    pub net_cents: i64,
    pub date: Timestamp,
    /// Classy's status of an unsuccessful gift (`refunded`, `cb_lost`, ...); absent for a
    /// successful one (and in entries written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl GiftRef {
    pub fn of(t: &Transaction) -> Self {
        GiftRef {
            txn: t.id,
            supporter: t.supporter_id,
            campaign: t.campaign_id,
            success: t.is_successful(),
            gross_cents: to_cents(t.total_gross_amount.unwrap_or(0.0)),
            net_cents: to_cents(t.donation_net_amount.unwrap_or(0.0)),
            date: t.gift_date(),
            status: (!t.is_successful()).then(|| t.status.clone()).flatten(),
        }
    }
}

/// One recurring plan as the supporter index keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRef {
    pub plan: u64,
    pub active: bool,
}

impl PlanRef {
    pub fn of(p: &RecurringPlan) -> Self {
        PlanRef {
            plan: p.id,
            active: p.is_active(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SupporterAggregates {
    pub lifetime_gross_amount: f64,
    pub lifetime_net_amount: f64,
    pub gift_count: u64,
    pub first_gift_at: Option<Timestamp>,
    pub last_gift_at: Option<Timestamp>,
    pub largest_gift_amount: Option<f64>,
    pub has_active_recurring_plan: bool,
}

/// Folds a supporter's gifts and plans, in any order, into [`SupporterAggregates`].
#[derive(Debug, Default)]
pub struct SupporterFold {
    gross: i64,
    net: i64,
    count: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    largest: Option<i64>,
    active_plan: bool,
}

impl SupporterFold {
    pub fn gift(&mut self, g: &GiftRef) {
        if !g.success {
            return;
        }
        self.gross += g.gross_cents;
        self.net += g.net_cents;
        self.count += 1;
        self.first = Some(self.first.map_or(g.date, |f| f.min(g.date)));
        self.last = Some(self.last.map_or(g.date, |l| l.max(g.date)));
        self.largest = Some(self.largest.map_or(g.gross_cents, |m| m.max(g.gross_cents)));
    }

    pub fn plan(&mut self, p: &PlanRef) {
        self.active_plan |= p.active;
    }

    pub fn finish(self) -> SupporterAggregates {
        SupporterAggregates {
            lifetime_gross_amount: from_cents(self.gross),
            lifetime_net_amount: from_cents(self.net),
            gift_count: self.count,
            first_gift_at: self.first,
            last_gift_at: self.last,
            largest_gift_amount: self.largest.map(from_cents),
            has_active_recurring_plan: self.active_plan,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignTotals {
    pub total_raised_gross: f64,
    pub total_raised_net: f64,
    pub gift_count: u64,
    pub donor_count: u64,
}

/// Folds a campaign's gifts, sorted by supporter (the index order), into [`CampaignTotals`].
#[derive(Debug, Default)]
pub struct CampaignFold {
    gross: i64,
    net: i64,
    gifts: u64,
    donors: u64,
    last_donor: Option<u64>,
}

impl CampaignFold {
    /// Gifts must arrive grouped by supporter, as the `CIDX#` index yields them.
    pub fn gift(&mut self, g: &GiftRef) {
        if !g.success {
            return;
        }
        self.gross += g.gross_cents;
        self.net += g.net_cents;
        self.gifts += 1;
        // Anonymous gifts (no supporter) each count as their own donor.
        if g.supporter.is_none() || g.supporter != self.last_donor {
            self.donors += 1;
            self.last_donor = g.supporter;
        }
    }

    pub fn finish(self) -> CampaignTotals {
        CampaignTotals {
            total_raised_gross: from_cents(self.gross),
            total_raised_net: from_cents(self.net),
            gift_count: self.gifts,
            donor_count: self.donors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gift(txn: u64, sup: u64, ok: bool, gross: f64, day: i64) -> GiftRef {
        GiftRef {
            txn,
            supporter: Some(sup),
            campaign: Some(1),
            success: ok,
            gross_cents: to_cents(gross),
            net_cents: to_cents(gross * 0.9),
            date: Timestamp::from_unix(day * 86_400),
            status: None,
        }
    }

    #[test]
    fn gift_refs_keep_the_status_of_unsuccessful_gifts_only() {
        let txn = |status: &str| -> Transaction {
            serde_json::from_value(serde_json::json!({"id": 1, "supporter_id": 2,
                "status": status, "total_gross_amount": 5, "updated_at": "2026-01-01T00:00:00Z"}))
            .unwrap()
        };
        let ok = serde_json::to_string(&GiftRef::of(&txn("success"))).unwrap();
        assert!(!ok.contains("status"), "{ok}");
        let r = GiftRef::of(&txn("cb_lost"));
        assert_eq!(r.status.as_deref(), Some("cb_lost"));
        let back: GiftRef = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let old: GiftRef = serde_json::from_str(&ok).unwrap();
        assert_eq!(old.status, None);
    }

    #[test]
    fn only_successful_gifts_count() {
        let mut f = SupporterFold::default();
        f.gift(&gift(1, 1, true, 10.10, 5));
        f.gift(&gift(2, 1, false, 500.0, 1));
        f.gift(&gift(3, 1, true, 20.20, 3));
        f.plan(&PlanRef {
            plan: 9,
            active: true,
        });
        let a = f.finish();
        assert_eq!(a.gift_count, 2);
        assert_eq!(a.lifetime_gross_amount, 30.30);
        assert_eq!(a.largest_gift_amount, Some(20.20));
        assert_eq!(a.first_gift_at, Some(Timestamp::from_unix(3 * 86_400)));
        assert_eq!(a.last_gift_at, Some(Timestamp::from_unix(5 * 86_400)));
        assert!(a.has_active_recurring_plan);
    }

    #[test]
    fn campaign_counts_distinct_donors_in_index_order() {
        let mut f = CampaignFold::default();
        for g in [
            gift(1, 1, true, 5.0, 1),
            gift(2, 1, true, 5.0, 2),
            gift(3, 2, false, 5.0, 1),
            gift(4, 3, true, 1.0, 1),
        ] {
            f.gift(&g);
        }
        let t = f.finish();
        assert_eq!((t.gift_count, t.donor_count), (3, 2));
        assert_eq!(t.total_raised_gross, 11.0);
    }
}
