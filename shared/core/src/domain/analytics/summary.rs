//! `OrgSummary`: everything a periodic report shows for one organization and period, in one
//! serializable value. Its shape is a contract with the report builders: add fields, never
//! rename or remove them.

use super::campaigns::CampaignStats;
use super::donors::{AtRisk, DayPoint, DonorTotals, Lifecycle, Prospect, TierCount};
use super::period::Window;
use super::recurring::Recurring;
use super::trends::Trends;
use crate::domain::quality::QualityScore;
use crate::domain::OrgId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodInfo {
    /// As given, e.g. `30d`.
    pub label: String,
    /// Unix seconds, half-open `[start, end)`.
    pub start: i64,
    pub end: i64,
}

impl PeriodInfo {
    pub fn new(label: String, w: Window) -> Self {
        PeriodInfo {
            label,
            start: w.start,
            end: w.end,
        }
    }

    pub fn window(&self) -> Window {
        Window {
            start: self.start,
            end: self.end,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub org_id: OrgId,
    pub org_name: String,
    /// The `now` the figures were computed for (Unix seconds).
    pub as_of: i64,
    pub period: PeriodInfo,
    /// Successful gifts in the period (refunded, failed, pending... excluded).
    pub totals: DonorTotals,
    pub lifecycle: Lifecycle,
    pub tiers: Vec<TierCount>,
    /// Current state of recurring plans (not period-bound).
    pub recurring: Recurring,
    /// Best campaigns by lifetime gross (at most the configured `top`).
    pub top_campaigns: Vec<CampaignStats>,
    pub trends: Trends,
    pub gifts_per_day: Vec<DayPoint>,
    pub top_prospects: Vec<Prospect>,
    pub prospects_total: u64,
    pub at_risk: Vec<AtRisk>,
    pub at_risk_total: u64,
    pub quality: QualityScore,
}
