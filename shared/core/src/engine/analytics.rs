//! Feeds the pure analytics folds from the store, one query page at a time: the donor rollup
//! (`ROLLUP#D#…`, many donors per item) or, while it is not current, the supporter gift
//! index (`SIDX#…`, grouped by supporter) for donor figures, plan records for recurring
//! giving, campaign records with their totals (`CAMPAGG#…`) for campaigns. Memory holds one
//! page, one supporter's gifts and the bounded top lists.

use super::{Datastore, EngineError};
use crate::domain::aggregates::CampaignTotals;
use crate::domain::analytics::campaigns::{campaign_stats, rank, CampaignStats};
use crate::domain::analytics::journey::{journey, Journey};
use crate::domain::analytics::recurring::{is_failing, Recurring, RecurringFold};
use crate::domain::analytics::{
    AnalyticsConfig, DonorFold, DonorReport, Gift, OrgSummary, Period, PeriodInfo, Window,
};
use crate::domain::keys::{self, org_pk};
use crate::domain::{Campaign, Entity, OrgId, RecurringPlan, Supporter, Timestamp, Transaction};
use crate::ports::store::{for_each_page, SkRange};
use crate::ports::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

fn segment(sk: &str, i: usize) -> Option<u64> {
    sk.split('#').nth(i)?.parse().ok()
}

/// Display name of a supporter: first and last name, when stored.
pub fn display_name(s: &Supporter) -> Option<String> {
    let parts: Vec<&str> = [&s.first_name, &s.last_name]
        .into_iter()
        .filter_map(|p| p.as_deref().map(str::trim).filter(|p| !p.is_empty()))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Side-by-side summaries and their sums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgComparison {
    pub summaries: Vec<OrgSummary>,
    pub totals: CrossOrgTotals,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrossOrgTotals {
    pub gross_cents: i64,
    pub net_cents: i64,
    pub fees_cents: i64,
    pub gifts: u64,
    /// Summed per organization: a person giving to two of them counts twice.
    pub donors: u64,
    pub new_donors: u64,
    pub active_plans: u64,
    pub mrr_cents: i64,
}

impl Datastore {
    /// Recurring figures now, and the supporters whose plans are failing.
    pub async fn recurring(
        &self,
        org: OrgId,
        now: i64,
    ) -> Result<(Recurring, HashSet<u64>), EngineError> {
        let mut fold = RecurringFold::default();
        let mut failing = HashSet::new();
        let range = SkRange::prefix(Entity::RecurringPlans.sk_prefix());
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page,
            |items| {
                for i in &items {
                    let p: RecurringPlan = i.parse()?;
                    fold.plan(&p);
                    if is_failing(&p, now) {
                        failing.extend(p.supporter_id);
                    }
                }
                Ok(())
            },
        )
        .await?;
        Ok((fold.finish(), failing))
    }

    /// Donor figures for `window` (gifts before its end): one pass over the donor rollup
    /// when it is current, else over the gift index (the same figures either way).
    pub async fn donor_report(
        &self,
        org: OrgId,
        window: Window,
        config: &AnalyticsConfig,
        failing_plans: HashSet<u64>,
    ) -> Result<DonorReport, EngineError> {
        let rollup = self.donor_rollup_current(org).await?;
        self.donor_report_from(org, window, config, failing_plans, rollup)
            .await
    }

    /// [`Self::donor_report`] from the gift index whatever the rollup's state (what the
    /// rollup must reproduce).
    pub async fn donor_report_from_index(
        &self,
        org: OrgId,
        window: Window,
        config: &AnalyticsConfig,
        failing_plans: HashSet<u64>,
    ) -> Result<DonorReport, EngineError> {
        self.donor_report_from(org, window, config, failing_plans, false)
            .await
    }

    async fn donor_report_from(
        &self,
        org: OrgId,
        window: Window,
        config: &AnalyticsConfig,
        failing_plans: HashSet<u64>,
        rollup: bool,
    ) -> Result<DonorReport, EngineError> {
        let mut fold = DonorFold::new(window, config.clone(), failing_plans);
        let feed = |id: u64, gifts: &[Gift]| fold.supporter(id, gifts);
        if rollup {
            self.for_each_rollup_donor(org, feed).await?;
        } else {
            self.for_each_index_donor(org, feed).await?;
        }
        let mut report = fold.finish();
        let ids: Vec<u64> = report
            .top_prospects
            .iter()
            .map(|p| p.supporter_id)
            .chain(report.at_risk.iter().map(|r| r.supporter_id))
            .collect();
        let names = self.supporter_names(org, &ids).await?;
        for p in &mut report.top_prospects {
            p.name = names.get(&p.supporter_id).cloned();
        }
        for r in &mut report.at_risk {
            r.name = names.get(&r.supporter_id).cloned();
        }
        Ok(report)
    }

    async fn supporter_names(
        &self,
        org: OrgId,
        ids: &[u64],
    ) -> Result<HashMap<u64, String>, EngineError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sks: Vec<String> = ids
            .iter()
            .map(|id| keys::record_sk(Entity::Supporters, *id))
            .collect();
        let mut out = HashMap::new();
        for item in self.store.batch_get(&org_pk(org), &sks).await? {
            let s: Supporter = item.parse()?;
            if let Some(n) = display_name(&s) {
                out.insert(s.id, n);
            }
        }
        Ok(out)
    }

    /// Every campaign with its figures, ranked by lifetime gross; `window_gross` (from the
    /// donor pass) adds each campaign's gross and gifts in the period.
    pub async fn campaign_report(
        &self,
        org: OrgId,
        now: i64,
        window_gross: &HashMap<u64, (i64, u64)>,
    ) -> Result<Vec<CampaignStats>, EngineError> {
        let pk = org_pk(org);
        let range = SkRange::prefix(Entity::Campaigns.sk_prefix());
        let mut after: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let page = self
                .store
                .query(&pk, &range, after.as_deref(), self.options.scan_page)
                .await?;
            let campaigns: Vec<Campaign> = page
                .items
                .iter()
                .map(|i| i.parse())
                .collect::<Result<_, _>>()?;
            let sks: Vec<String> = campaigns
                .iter()
                .map(|c| keys::campaign_agg_sk(c.id))
                .collect();
            let totals: HashMap<String, CampaignTotals> = if sks.is_empty() {
                HashMap::new()
            } else {
                self.store
                    .batch_get(&pk, &sks)
                    .await?
                    .into_iter()
                    .map(|i| Ok((i.sk.clone(), i.parse()?)))
                    .collect::<Result<_, StoreError>>()?
            };
            for c in &campaigns {
                let t = totals
                    .get(&keys::campaign_agg_sk(c.id))
                    .cloned()
                    .unwrap_or_default();
                let mut s = campaign_stats(c, &t, now);
                if let Some((g, n)) = window_gross.get(&c.id) {
                    s.window_gross_cents = *g;
                    s.window_gifts = *n;
                }
                out.push(s);
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        rank(&mut out);
        Ok(out)
    }

    /// One supporter's gifts, plans and segments over time, as of `now`.
    pub async fn donor_journey(
        &self,
        org: OrgId,
        supporter: u64,
        now: i64,
        config: &AnalyticsConfig,
    ) -> Result<Journey, EngineError> {
        self.get_org(org).await?;
        let pk = org_pk(org);
        let range = SkRange::prefix(keys::supporter_index_prefix(supporter));
        let mut txn_sks = Vec::new();
        let mut plan_sks = Vec::new();
        for_each_page(
            self.store.as_ref(),
            &pk,
            &range,
            self.options.scan_page,
            |items| {
                for i in items {
                    let id = segment(&i.sk, 3).unwrap_or_default();
                    if i.sk.contains("#T#") {
                        txn_sks.push(keys::record_sk(Entity::Transactions, id));
                    } else if i.sk.contains("#P#") {
                        plan_sks.push(keys::record_sk(Entity::RecurringPlans, id));
                    }
                }
                Ok(())
            },
        )
        .await?;
        let mut txns: Vec<Transaction> = Vec::with_capacity(txn_sks.len());
        for chunk in txn_sks.chunks(100) {
            for item in self.store.batch_get(&pk, chunk).await? {
                txns.push(item.parse()?);
            }
        }
        let mut plans: Vec<RecurringPlan> = Vec::with_capacity(plan_sks.len());
        for chunk in plan_sks.chunks(100) {
            for item in self.store.batch_get(&pk, chunk).await? {
                plans.push(item.parse()?);
            }
        }
        let sup = self
            .store
            .get(&pk, &keys::record_sk(Entity::Supporters, supporter))
            .await?;
        if sup.is_none() && txns.is_empty() && plans.is_empty() {
            return Err(EngineError::BadRecord {
                org,
                entity: Entity::Supporters,
                id: supporter.to_string(),
                message: "no such supporter, and no gifts or plans point at it".into(),
            });
        }
        let name = match sup {
            Some(i) => display_name(&i.parse::<Supporter>()?),
            None => None,
        };
        Ok(journey(supporter, name, txns, &plans, &config.tiers, now))
    }
}

impl Datastore {
    /// Everything a periodic report shows for `org` over `period`, as of `now`.
    pub async fn summarize(
        &self,
        org: OrgId,
        period: &Period,
        now: Timestamp,
    ) -> Result<OrgSummary, EngineError> {
        self.summarize_with(org, period, now, &AnalyticsConfig::default())
            .await
    }

    pub async fn summarize_with(
        &self,
        org: OrgId,
        period: &Period,
        now: Timestamp,
        config: &AnalyticsConfig,
    ) -> Result<OrgSummary, EngineError> {
        let o = self.get_org(org).await?;
        let window = period.resolve(now);
        let (recurring, failing) = self.recurring(org, window.end).await?;
        let donors = self.donor_report(org, window, config, failing).await?;
        let mut campaigns = self
            .campaign_report(org, window.end, &donors.campaign_gross_in_window)
            .await?;
        campaigns.truncate(config.top);
        let quality = self.quality_report(&[org], now.unix(), 0).await?;
        let score = quality
            .orgs
            .into_iter()
            .next()
            .map(|q| q.score)
            .unwrap_or_default();
        Ok(OrgSummary {
            org_id: org,
            org_name: o.name,
            as_of: now.unix(),
            period: PeriodInfo::new(period.to_string(), window),
            totals: donors.totals,
            lifecycle: donors.lifecycle,
            tiers: donors.tiers,
            recurring,
            top_campaigns: campaigns,
            trends: donors.trends,
            gifts_per_day: donors.gifts_per_day,
            top_prospects: donors.top_prospects,
            prospects_total: donors.prospects_total,
            at_risk: donors.at_risk,
            at_risk_total: donors.at_risk_total,
            quality: score,
        })
    }

    /// Summaries of several organizations side by side, with their sums.
    pub async fn compare(
        &self,
        orgs: &[OrgId],
        period: &Period,
        now: Timestamp,
        config: &AnalyticsConfig,
    ) -> Result<OrgComparison, EngineError> {
        let mut summaries = Vec::with_capacity(orgs.len());
        let mut t = CrossOrgTotals::default();
        for org in orgs {
            let s = self.summarize_with(*org, period, now, config).await?;
            t.gross_cents += s.totals.gross_cents;
            t.net_cents += s.totals.net_cents;
            t.fees_cents += s.totals.fees_cents;
            t.gifts += s.totals.gifts;
            t.donors += s.totals.donors;
            t.new_donors += s.lifecycle.new;
            t.active_plans += s.recurring.active_plans;
            t.mrr_cents += s.recurring.mrr_cents;
            summaries.push(s);
        }
        Ok(OrgComparison {
            summaries,
            totals: t,
        })
    }
}
