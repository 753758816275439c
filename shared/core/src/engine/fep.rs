//! Feeds the FEP fold from the store: one pass over the supporter gift index (`SIDX#…`,
//! grouped by supporter, in supporter order), reading the supporter record of each LYBUNT or
//! SYBUNT donor through a forward cursor over the supporter records (same order, so dense
//! lookups read consecutive pages and sparse ones one short page each), then one pass over
//! the plans. Memory holds a page of each, one supporter's gifts and the bounded lists.

use super::{Datastore, EngineError};
use crate::domain::aggregates::GiftRef;
use crate::domain::analytics::fep::{
    comparison_windows, FepFold, FepGift, FepOptions, FepReport, GiftStatus, PlanFold,
};
use crate::domain::analytics::Period;
use crate::domain::keys::{self, org_pk};
use crate::domain::{Entity, OrgId, RecurringPlan, Supporter, Timestamp};
use crate::ports::store::{for_each_page, Item, SkRange, Store};
use crate::ports::StoreError;

/// Supporter records read per lookup that misses the page in hand.
const SEEK_PAGE: usize = 100;

/// Reads supporter records for ascending ids, a page at a time.
struct SupporterSeek<'a> {
    store: &'a dyn Store,
    pk: &'a str,
    range: SkRange,
    /// Items in hand, in id order, and the highest id they settle (`u64::MAX` at the end).
    page: Vec<(u64, Item)>,
    covered_to: Option<u64>,
}

impl<'a> SupporterSeek<'a> {
    fn new(store: &'a dyn Store, pk: &'a str) -> Self {
        SupporterSeek {
            store,
            pk,
            range: SkRange::prefix(Entity::Supporters.sk_prefix()),
            page: Vec::new(),
            covered_to: None,
        }
    }

    /// The supporter record of `id`, if stored. Ids must come in ascending order.
    async fn get(&mut self, id: u64) -> Result<Option<Supporter>, StoreError> {
        if self.covered_to.is_none_or(|c| c < id) {
            let after = id
                .checked_sub(1)
                .map(|prev| keys::record_sk(Entity::Supporters, prev));
            let p = self
                .store
                .query(self.pk, &self.range, after.as_deref(), SEEK_PAGE)
                .await?;
            self.page = p
                .items
                .into_iter()
                .filter_map(|i| keys::id_from_sk(&i.sk).map(|k| (k, i)))
                .collect();
            self.covered_to = Some(match (&p.next, self.page.last()) {
                (Some(_), Some((last, _))) => *last,
                _ => u64::MAX,
            });
        }
        match self.page.binary_search_by_key(&id, |(k, _)| *k) {
            Ok(i) => Ok(Some(self.page[i].1.parse()?)),
            Err(_) => Ok(None),
        }
    }
}

impl Datastore {
    /// The FEP figures of `org` for `period` as of `now` (see `domain::analytics::fep`).
    pub async fn fep_report(
        &self,
        org: OrgId,
        period: &Period,
        now: Timestamp,
        options: &FepOptions,
    ) -> Result<FepReport, EngineError> {
        self.get_org(org).await?;
        let (previous, current) = comparison_windows(period, now);
        let pk = org_pk(org);
        let store = self.store.as_ref();
        let mut fold = FepFold::new(previous, current, options.clone());
        let mut people = SupporterSeek::new(store, &pk);
        let range = SkRange::prefix(keys::SUPPORTER_INDEX_PREFIX);
        let mut after: Option<String> = None;
        let mut who: Option<u64> = None;
        let mut gifts: Vec<FepGift> = Vec::new();
        loop {
            let page = store
                .query(&pk, &range, after.as_deref(), self.options.scan_page)
                .await?;
            for i in &page.items {
                let Some(sup) = i.sk.split('#').nth(1).and_then(|s| s.parse().ok()) else {
                    continue;
                };
                if who != Some(sup) {
                    if let Some(prev) = who {
                        feed(&mut fold, &mut people, prev, &gifts).await?;
                    }
                    gifts.clear();
                    who = Some(sup);
                }
                if i.sk.contains(keys::SUPPORTER_GIFT_MARK) {
                    let g: GiftRef = serde_json::from_str(&i.data)
                        .map_err(|e| StoreError::Corrupt(format!("index entry {}: {e}", i.sk)))?;
                    gifts.push(FepGift {
                        date: g.date.unix(),
                        gross: g.gross_cents,
                        status: GiftStatus::of(g.success, g.status.as_deref()),
                    });
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        if let Some(prev) = who {
            feed(&mut fold, &mut people, prev, &gifts).await?;
        }
        let (retention, gain_loss, lapsed, refunds, gift_figures, bands) = fold.finish();

        let mut plans = PlanFold::new(current);
        for_each_page(
            store,
            &pk,
            &SkRange::prefix(Entity::RecurringPlans.sk_prefix()),
            self.options.scan_page,
            |items| {
                for i in &items {
                    plans.plan(&i.parse::<RecurringPlan>()?);
                }
                Ok(())
            },
        )
        .await?;
        Ok(FepReport {
            org_id: org,
            as_of: now.unix(),
            period: period.to_string(),
            previous,
            current,
            retention,
            gain_loss,
            lapsed,
            recurring: plans.finish(),
            refunds,
            gifts: gift_figures,
            bands,
        })
    }
}

/// One supporter into the fold; a LYBUNT or SYBUNT donor's record is read for consent and name.
async fn feed(
    fold: &mut FepFold,
    people: &mut SupporterSeek<'_>,
    id: u64,
    gifts: &[FepGift],
) -> Result<(), StoreError> {
    if let Some(lapse) = fold.supporter(gifts) {
        let s = people.get(id).await?;
        let consent = s.as_ref().is_some_and(Supporter::mailchimp_consent);
        let name = s.as_ref().and_then(super::analytics::display_name);
        fold.lapsed(id, lapse, consent, name);
    }
    Ok(())
}
