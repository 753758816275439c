//! The data-quality pass: every stored record of the chosen organizations through the pure
//! rules, duplicate keys through the external sorter (memory stays bounded however many
//! supporters there are), and a score per organization. Read-only: findings come with
//! suggested fixes, nothing is changed.

use super::sorter::ExternalSorter;
use super::{Datastore, EngineError};
use crate::domain::keys::{self, org_pk};
use crate::domain::quality::duplicates::{
    duplicate_keys, keys_from_parts, DuplicateGroup, DuplicateKind, Grouped, Grouper,
};
use crate::domain::quality::rules::{
    check_campaign, check_plan, check_supporter, check_transaction, email_is_valid, CampaignRef,
    Finding, Rule,
};
use crate::domain::quality::score::{QualityScore, ScoreBuilder};
use crate::domain::{Campaign, Entity, OrgId, RecurringPlan, Supporter, Transaction};
use crate::ports::store::{for_each_page, Item, SkRange};
use crate::ports::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgQuality {
    pub org_id: OrgId,
    pub score: QualityScore,
    /// Findings per rule, exact.
    pub counts: BTreeMap<Rule, u64>,
    /// At most `limit` findings per rule.
    pub findings: Vec<Finding>,
    /// Duplicate groups within this organization (at most `limit` per kind).
    pub duplicate_groups: Vec<DuplicateGroup>,
    pub duplicate_groups_total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub as_of: i64,
    pub orgs: Vec<OrgQuality>,
    /// The same email in two or more of the organizations checked (at most `limit`); listed
    /// for information, it costs no points (one person may support several nonprofits).
    pub cross_org_duplicates: Vec<DuplicateGroup>,
    pub cross_org_duplicates_total: u64,
}

struct OrgPass {
    builder: ScoreBuilder,
    counts: BTreeMap<Rule, u64>,
    /// Findings listed per rule.
    shown: BTreeMap<Rule, u64>,
    findings: Vec<Finding>,
    groups: Vec<DuplicateGroup>,
    groups_total: u64,
    limit: usize,
}

impl OrgPass {
    fn new(limit: usize) -> Self {
        OrgPass {
            builder: ScoreBuilder::default(),
            counts: BTreeMap::new(),
            shown: BTreeMap::new(),
            findings: Vec::new(),
            groups: Vec::new(),
            groups_total: 0,
            limit,
        }
    }

    fn add(&mut self, found: Vec<Finding>) {
        for f in found {
            *self.counts.entry(f.rule).or_default() += 1;
            self.builder.flagged(f.rule, 1);
            self.show(f);
        }
    }

    /// Lists a finding already counted, while its rule has fewer than `limit` listed. Fed
    /// the records in check order, this lists the first `limit` findings of each rule.
    fn show(&mut self, f: Finding) {
        let n = self.shown.entry(f.rule).or_default();
        if (*n as usize) < self.limit {
            *n += 1;
            self.findings.push(f);
        }
    }

    /// Counts one record's broken rules (each at most once per record); true when one of
    /// them still has findings to list, so the record's findings are wanted in full.
    fn tally(&mut self, rules: &[Rule]) -> bool {
        let mut wanted = false;
        for r in rules {
            let n = self.counts.entry(*r).or_default();
            wanted |= (*n as usize) < self.limit;
            *n += 1;
            self.builder.flagged(*r, 1);
        }
        wanted
    }

    fn group(&mut self, g: DuplicateGroup) {
        let rule = match g.kind {
            DuplicateKind::Email => Rule::DuplicateEmail,
            DuplicateKind::NamePostal => Rule::LikelyDuplicate,
        };
        let extra = g.members.len() as u64 - 1;
        *self.counts.entry(rule).or_default() += extra;
        self.builder.flagged(rule, extra);
        self.groups_total += 1;
        let shown = self.groups.iter().filter(|x| x.kind == g.kind).count();
        if shown < self.limit {
            self.groups.push(g);
        }
    }
}

fn campaign_ref(campaigns: &HashMap<u64, Option<String>>, id: Option<u64>) -> CampaignRef<'_> {
    match id {
        None => CampaignRef::NotLinked,
        Some(c) => match campaigns.get(&c) {
            None => CampaignRef::Unknown,
            Some(cur) => CampaignRef::Known {
                currency: cur.as_deref(),
            },
        },
    }
}

fn sort_err(e: std::io::Error) -> EngineError {
    StoreError::Unavailable(format!("sorting duplicate keys: {e}")).into()
}

impl Datastore {
    /// Checks every record of `orgs` as of `now` (Unix seconds). `limit`: findings and
    /// groups listed per rule and organization (counts and scores are always exact). Reads
    /// an organization's quality facts (`ROLLUP#Q#…`) while they are current, else its
    /// records; the report is the same either way.
    pub async fn quality_report(
        &self,
        orgs: &[OrgId],
        now: i64,
        limit: usize,
    ) -> Result<QualityReport, EngineError> {
        self.quality_report_from(orgs, now, limit, true).await
    }

    /// [`Self::quality_report`] from the records themselves, whatever the facts' state (what
    /// the facts must reproduce).
    pub async fn quality_report_from_records(
        &self,
        orgs: &[OrgId],
        now: i64,
        limit: usize,
    ) -> Result<QualityReport, EngineError> {
        self.quality_report_from(orgs, now, limit, false).await
    }

    async fn quality_report_from(
        &self,
        orgs: &[OrgId],
        now: i64,
        limit: usize,
        facts: bool,
    ) -> Result<QualityReport, EngineError> {
        let mut sorter = ExternalSorter::new(self.options.sort_chunk);
        let mut passes: HashMap<OrgId, OrgPass> = HashMap::new();
        for &org in orgs {
            self.get_org(org).await?;
            let mut pass = OrgPass::new(limit);
            if facts && self.quality_rollup_current(org).await? {
                self.check_org_facts(org, now, &mut pass, &mut sorter)
                    .await?;
            } else {
                self.check_org(org, now, &mut pass, &mut sorter).await?;
            }
            passes.insert(org, pass);
        }
        let mut cross = Vec::new();
        let mut cross_total = 0u64;
        let mut grouper = Grouper::default();
        let mut take = |done: Grouped, passes: &mut HashMap<OrgId, OrgPass>| {
            for g in done.within_org {
                if let Some(p) = passes.get_mut(&g.members[0].0) {
                    p.group(g);
                }
            }
            if let Some(c) = done.cross_org {
                cross_total += 1;
                if cross.len() < limit {
                    cross.push(c);
                }
            }
        };
        for pair in sorter.finish().map_err(sort_err)? {
            let (key, email) = pair.map_err(sort_err)?;
            if let Some(done) = grouper.offer(&key, email) {
                take(done, &mut passes);
            }
        }
        if let Some(done) = grouper.flush() {
            take(done, &mut passes);
        }
        let orgs = orgs
            .iter()
            .filter_map(|o| passes.remove(o).map(|p| (*o, p)))
            .map(|(org_id, p)| OrgQuality {
                org_id,
                score: p.builder.finish(),
                counts: p.counts,
                findings: p.findings,
                duplicate_groups: p.groups,
                duplicate_groups_total: p.groups_total,
            })
            .collect();
        Ok(QualityReport {
            as_of: now,
            orgs,
            cross_org_duplicates: cross,
            cross_org_duplicates_total: cross_total,
        })
    }

    /// Checks the campaigns (few: read as they are); returns their currencies by id.
    async fn check_campaigns(
        &self,
        org: OrgId,
        now: i64,
        pass: &mut OrgPass,
    ) -> Result<HashMap<u64, Option<String>>, EngineError> {
        let mut campaigns: HashMap<u64, Option<String>> = HashMap::new();
        let mut n = 0;
        let range = SkRange::prefix(Entity::Campaigns.sk_prefix());
        let page = self.options.scan_page;
        for_each_page(self.store.as_ref(), &org_pk(org), &range, page, |items| {
            for i in &items {
                let c: Campaign = i.parse()?;
                n += 1;
                pass.add(check_campaign(org, &c, now));
                campaigns.insert(c.id, c.currency_code.clone());
            }
            Ok(())
        })
        .await?;
        pass.builder.checked(Entity::Campaigns, n);
        Ok(campaigns)
    }

    /// The same pass from the quality facts: rules and duplicate keys from the facts, and
    /// the full findings of the few records that still have some to list, read at the end
    /// and checked in the same order.
    async fn check_org_facts(
        &self,
        org: OrgId,
        now: i64,
        pass: &mut OrgPass,
        sorter: &mut ExternalSorter,
    ) -> Result<(), EngineError> {
        let campaigns = self.check_campaigns(org, now, pass).await?;
        let mut supporters: Vec<u64> = Vec::new();
        let mut wanted: Vec<(Entity, u64)> = Vec::new();
        let mut io: Option<std::io::Error> = None;
        self.for_each_facts(org, Entity::Supporters, |f| {
            supporters.push(f.id);
            if pass.tally(&f.rules_at(now, |_| true, &campaigns)) {
                wanted.push((Entity::Supporters, f.id));
            }
            for (k, v) in keys_from_parts(org, f.id, f.email, &f.name) {
                if let Err(e) = sorter.push(k, v) {
                    io.get_or_insert(e);
                }
            }
            Ok(())
        })
        .await?;
        if let Some(e) = io {
            return Err(sort_err(e));
        }
        pass.builder
            .checked(Entity::Supporters, supporters.len() as u64);
        let known = |id: u64| supporters.binary_search(&id).is_ok();
        for entity in [Entity::Transactions, Entity::RecurringPlans] {
            let mut n = 0;
            self.for_each_facts(org, entity, |f| {
                n += 1;
                if pass.tally(&f.rules_at(now, known, &campaigns)) {
                    wanted.push((entity, f.id));
                }
                Ok(())
            })
            .await?;
            pass.builder.checked(entity, n);
        }

        let known = |id: Option<u64>| id.map(|s| supporters.binary_search(&s).is_ok());
        let campaign = |id: Option<u64>| campaign_ref(&campaigns, id);
        let pk = org_pk(org);
        for chunk in wanted.chunks(100) {
            let sks: Vec<String> = chunk
                .iter()
                .map(|(e, id)| keys::record_sk(*e, *id))
                .collect();
            let items: HashMap<String, Item> = self
                .store
                .batch_get(&pk, &sks)
                .await?
                .into_iter()
                .map(|i| (i.sk.clone(), i))
                .collect();
            for ((entity, _), sk) in chunk.iter().zip(&sks) {
                // Gone since the facts were read: nothing to list for it.
                let Some(i) = items.get(sk) else { continue };
                let found = match entity {
                    Entity::Supporters => check_supporter(org, &i.parse::<Supporter>()?, now),
                    Entity::Transactions => {
                        let t: Transaction = i.parse()?;
                        check_transaction(
                            org,
                            &t,
                            known(t.supporter_id),
                            campaign(t.campaign_id),
                            now,
                        )
                    }
                    _ => {
                        let p: RecurringPlan = i.parse()?;
                        check_plan(org, &p, known(p.supporter_id), campaign(p.campaign_id), now)
                    }
                };
                for f in found {
                    pass.show(f);
                }
            }
        }
        Ok(())
    }

    async fn check_org(
        &self,
        org: OrgId,
        now: i64,
        pass: &mut OrgPass,
        sorter: &mut ExternalSorter,
    ) -> Result<(), EngineError> {
        let pk = org_pk(org);
        let store = self.store.as_ref();
        let page = self.options.scan_page;
        let prefix = |e: Entity| SkRange::prefix(e.sk_prefix());
        let campaigns = self.check_campaigns(org, now, pass).await?;

        // Supporter ids arrive in key (= numeric) order: a sorted list, 8 bytes each.
        let mut supporters: Vec<u64> = Vec::new();
        let mut io: Option<std::io::Error> = None;
        for_each_page(store, &pk, &prefix(Entity::Supporters), page, |items| {
            for i in &items {
                let s: Supporter = i.parse()?;
                supporters.push(s.id);
                let found = check_supporter(org, &s, now);
                let valid = s.email_address.as_deref().is_some_and(email_is_valid);
                pass.add(found);
                for (k, v) in duplicate_keys(org, &s, valid) {
                    if let Err(e) = sorter.push(k, v) {
                        io.get_or_insert(e);
                    }
                }
            }
            Ok(())
        })
        .await?;
        if let Some(e) = io {
            return Err(sort_err(e));
        }
        pass.builder
            .checked(Entity::Supporters, supporters.len() as u64);

        let known = |id: Option<u64>| id.map(|s| supporters.binary_search(&s).is_ok());
        let campaign = |id: Option<u64>| campaign_ref(&campaigns, id);
        let mut n = 0;
        for_each_page(store, &pk, &prefix(Entity::Transactions), page, |items| {
            for i in &items {
                let t: Transaction = i.parse()?;
                n += 1;
                let found =
                    check_transaction(org, &t, known(t.supporter_id), campaign(t.campaign_id), now);
                pass.add(found);
            }
            Ok(())
        })
        .await?;
        pass.builder.checked(Entity::Transactions, n);

        let mut n = 0;
        for_each_page(store, &pk, &prefix(Entity::RecurringPlans), page, |items| {
            for i in &items {
                let p: RecurringPlan = i.parse()?;
                n += 1;
                pass.add(check_plan(
                    org,
                    &p,
                    known(p.supporter_id),
                    campaign(p.campaign_id),
                    now,
                ));
            }
            Ok(())
        })
        .await?;
        pass.builder.checked(Entity::RecurringPlans, n);
        Ok(())
    }
}
