//! Recomputes the aggregates the API lacks from the slim index entries: a supporter's giving
//! from `SIDX#<supporter>#…`, a campaign's totals from `CIDX#<campaign>#…`. Work comes from
//! dirty markers; after a full sync one `DIRTY#ALL` marker asks for a single streaming pass
//! over both indexes instead of a million small queries. Recomputing is idempotent, so a
//! crash anywhere only means the work is done again.

use super::{Engine, EngineError};
use crate::domain::aggregates::{CampaignFold, GiftRef, PlanRef, SupporterFold};
use crate::domain::keys::{self, org_pk, DIRTY_ALL_SK};
use crate::domain::OrgId;
use crate::ports::store::{for_each_page, Condition, Item, SkRange, WriteOp};
use std::collections::HashMap;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AggregateReport {
    pub supporters_recomputed: u64,
    pub campaigns_recomputed: u64,
    pub written: u64,
}

/// Aggregates written per batch during a streaming pass.
const FLUSH_EVERY: usize = 500;

fn id_segment(sk: &str, index: usize) -> Option<u64> {
    sk.split('#').nth(index)?.parse().ok()
}

fn fold_supporter_entry(fold: &mut SupporterFold, item: &Item) -> Result<(), EngineError> {
    if item.sk.contains("#T#") {
        fold.gift(&item.parse::<GiftRef>()?);
    } else if item.sk.contains("#P#") {
        fold.plan(&item.parse::<PlanRef>()?);
    }
    Ok(())
}

impl Engine {
    /// Brings every aggregate marked dirty up to date.
    pub async fn refresh_aggregates(&self, org: OrgId) -> Result<AggregateReport, EngineError> {
        let pk = org_pk(org);
        let mut report = AggregateReport::default();
        if let Some(all) = self.store.get(&pk, DIRTY_ALL_SK).await? {
            self.recompute_all(org, &mut report).await?;
            match self
                .store
                .delete(&pk, DIRTY_ALL_SK, Condition::VersionIs(all.version))
                .await
            {
                Err(e) if !e.is_condition_failed() => return Err(e.into()),
                _ => {}
            }
        }
        self.recompute_marked(org, "DIRTY#S#", true, &mut report)
            .await?;
        self.recompute_marked(org, "DIRTY#C#", false, &mut report)
            .await?;
        Ok(report)
    }

    /// Asks for every aggregate of the organization to be recomputed.
    pub async fn mark_all_dirty(&self, org: OrgId) -> Result<(), EngineError> {
        let m = super::writer::marker(&org_pk(org), DIRTY_ALL_SK.to_string());
        self.store.put(m, Condition::Always).await?;
        Ok(())
    }

    async fn recompute_marked(
        &self,
        org: OrgId,
        prefix: &str,
        supporters: bool,
        report: &mut AggregateReport,
    ) -> Result<(), EngineError> {
        let pk = org_pk(org);
        let range = SkRange::prefix(prefix);
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .query(&pk, &range, after.as_deref(), FLUSH_EVERY)
                .await?;
            let mut computed = Vec::with_capacity(page.items.len());
            for m in &page.items {
                let Some(id) = id_segment(&m.sk, 2) else {
                    continue;
                };
                let item = if supporters {
                    report.supporters_recomputed += 1;
                    Item::json(
                        &pk,
                        keys::supporter_agg_sk(id),
                        &self.supporter_fold(org, id).await?.finish(),
                    )
                } else {
                    report.campaigns_recomputed += 1;
                    Item::json(
                        &pk,
                        keys::campaign_agg_sk(id),
                        &self.campaign_fold(org, id).await?.finish(),
                    )
                };
                computed.push(item);
            }
            report.written += self.put_changed(&pk, computed).await?;
            for m in &page.items {
                match self
                    .store
                    .delete(&pk, &m.sk, Condition::VersionIs(m.version))
                    .await
                {
                    // Marked again meanwhile: the next pass recomputes it.
                    Err(e) if !e.is_condition_failed() => return Err(e.into()),
                    _ => {}
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(()),
            }
        }
    }

    async fn supporter_fold(
        &self,
        org: OrgId,
        supporter: u64,
    ) -> Result<SupporterFold, EngineError> {
        let mut fold = SupporterFold::default();
        let range = SkRange::prefix(keys::supporter_index_prefix(supporter));
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page,
            |items| {
                items
                    .iter()
                    .try_for_each(|i| fold_supporter_entry(&mut fold, i).map_err(store_err))
            },
        )
        .await?;
        Ok(fold)
    }

    async fn campaign_fold(&self, org: OrgId, campaign: u64) -> Result<CampaignFold, EngineError> {
        let mut fold = CampaignFold::default();
        let range = SkRange::prefix(keys::campaign_index_prefix(campaign));
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &range,
            self.options.scan_page,
            |items| {
                for i in &items {
                    fold.gift(&i.parse::<GiftRef>()?);
                }
                Ok(())
            },
        )
        .await?;
        Ok(fold)
    }

    /// One streaming pass over each index, grouped by supporter and by campaign.
    async fn recompute_all(
        &self,
        org: OrgId,
        report: &mut AggregateReport,
    ) -> Result<(), EngineError> {
        let pk = org_pk(org);
        // Supporters.
        let mut pending: Vec<Item> = Vec::new();
        let mut current: Option<(u64, SupporterFold)> = None;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .query(
                    &pk,
                    &SkRange::prefix("SIDX#"),
                    after.as_deref(),
                    self.options.scan_page,
                )
                .await?;
            for item in &page.items {
                let Some(sid) = id_segment(&item.sk, 1) else {
                    continue;
                };
                if current.as_ref().is_some_and(|(id, _)| *id != sid) {
                    let (id, fold) = current.take().expect("checked");
                    pending.push(Item::json(&pk, keys::supporter_agg_sk(id), &fold.finish()));
                    report.supporters_recomputed += 1;
                }
                let (_, fold) = current.get_or_insert_with(|| (sid, SupporterFold::default()));
                fold_supporter_entry(fold, item)?;
            }
            if pending.len() >= FLUSH_EVERY {
                report.written += self.put_changed(&pk, std::mem::take(&mut pending)).await?;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        if let Some((id, fold)) = current.take() {
            pending.push(Item::json(&pk, keys::supporter_agg_sk(id), &fold.finish()));
            report.supporters_recomputed += 1;
        }
        report.written += self.put_changed(&pk, std::mem::take(&mut pending)).await?;

        // Campaigns.
        let mut current: Option<(u64, CampaignFold)> = None;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .query(
                    &pk,
                    &SkRange::prefix("CIDX#"),
                    after.as_deref(),
                    self.options.scan_page,
                )
                .await?;
            for item in &page.items {
                let Some(cid) = id_segment(&item.sk, 1) else {
                    continue;
                };
                if current.as_ref().is_some_and(|(id, _)| *id != cid) {
                    let (id, fold) = current.take().expect("checked");
                    pending.push(Item::json(&pk, keys::campaign_agg_sk(id), &fold.finish()));
                    report.campaigns_recomputed += 1;
                }
                let (_, fold) = current.get_or_insert_with(|| (cid, CampaignFold::default()));
                fold.gift(&item.parse::<GiftRef>()?);
            }
            if pending.len() >= FLUSH_EVERY {
                report.written += self.put_changed(&pk, std::mem::take(&mut pending)).await?;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        if let Some((id, fold)) = current.take() {
            pending.push(Item::json(&pk, keys::campaign_agg_sk(id), &fold.finish()));
            report.campaigns_recomputed += 1;
        }
        report.written += self.put_changed(&pk, pending).await?;
        Ok(())
    }

    /// Writes the items whose stored body differs; returns how many were written.
    async fn put_changed(&self, pk: &str, items: Vec<Item>) -> Result<u64, EngineError> {
        if items.is_empty() {
            return Ok(0);
        }
        let sks: Vec<String> = items.iter().map(|i| i.sk.clone()).collect();
        let stored: HashMap<String, String> = self
            .store
            .batch_get(pk, &sks)
            .await?
            .into_iter()
            .map(|i| (i.sk, i.data))
            .collect();
        let ops: Vec<WriteOp> = items
            .into_iter()
            .filter(|i| stored.get(&i.sk) != Some(&i.data))
            .map(WriteOp::Put)
            .collect();
        let n = ops.len() as u64;
        if n > 0 {
            self.store.batch_write(ops).await?;
        }
        Ok(n)
    }
}

fn store_err(e: EngineError) -> crate::ports::StoreError {
    match e {
        EngineError::Store(s) => s,
        other => crate::ports::StoreError::Corrupt(other.to_string()),
    }
}
