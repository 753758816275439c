//! Streams stored records out with Classy's field names and values, supporters joined with
//! their giving aggregates and campaigns with their totals, in id order, page by page.

use super::{Datastore, EngineError};
use crate::domain::aggregates::{CampaignTotals, SupporterAggregates};
use crate::domain::keys::{self, org_pk};
use crate::domain::{Entity, OrgId};
use crate::ports::store::SkRange;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub type Row = Map<String, Value>;

/// Aggregate field names, in the order exports show them.
pub fn computed_fields(entity: Entity) -> Vec<&'static str> {
    match entity {
        Entity::Supporters => vec![
            "lifetime_gross_amount",
            "lifetime_net_amount",
            "gift_count",
            "first_gift_at",
            "last_gift_at",
            "largest_gift_amount",
            "has_active_recurring_plan",
        ],
        Entity::Campaigns => vec![
            "total_raised_gross",
            "total_raised_net",
            "gift_count",
            "donor_count",
        ],
        _ => Vec::new(),
    }
}

fn merge(row: &mut Row, extra: Value) {
    if let Value::Object(m) = extra {
        row.extend(m);
    }
}

impl Datastore {
    /// Calls `sink` once per stored record of `entity`, in id order. Memory holds one page.
    pub async fn export(
        &self,
        org: OrgId,
        entity: Entity,
        mut sink: impl FnMut(Row) -> Result<(), EngineError>,
    ) -> Result<u64, EngineError> {
        self.get_org(org).await?;
        let pk = org_pk(org);
        let range = SkRange::prefix(entity.sk_prefix());
        let mut after: Option<String> = None;
        let mut count = 0;
        loop {
            let page = self
                .store
                .query(&pk, &range, after.as_deref(), self.options.scan_page)
                .await?;
            let agg_sks: Vec<String> = match entity {
                Entity::Supporters | Entity::Campaigns => page
                    .items
                    .iter()
                    .filter_map(|i| keys::id_from_sk(&i.sk))
                    .map(|id| agg_sk(entity, id))
                    .collect(),
                _ => Vec::new(),
            };
            let aggs: HashMap<String, String> = if agg_sks.is_empty() {
                HashMap::new()
            } else {
                self.store
                    .batch_get(&pk, &agg_sks)
                    .await?
                    .into_iter()
                    .map(|i| (i.sk, i.data))
                    .collect()
            };
            for item in &page.items {
                let mut row: Row = item.parse()?;
                let id = keys::id_from_sk(&item.sk).unwrap_or_default();
                match entity {
                    Entity::Supporters => {
                        let a: SupporterAggregates = match aggs.get(&agg_sk(entity, id)) {
                            Some(d) => serde_json::from_str(d).map_err(|e| corrupt(&item.sk, e))?,
                            None => SupporterAggregates::default(),
                        };
                        merge(
                            &mut row,
                            serde_json::to_value(a).expect("aggregates serialize"),
                        );
                    }
                    Entity::Campaigns => {
                        let t: CampaignTotals = match aggs.get(&agg_sk(entity, id)) {
                            Some(d) => serde_json::from_str(d).map_err(|e| corrupt(&item.sk, e))?,
                            None => CampaignTotals::default(),
                        };
                        merge(&mut row, serde_json::to_value(t).expect("totals serialize"));
                    }
                    _ => {}
                }
                sink(row)?;
                count += 1;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(count),
            }
        }
    }
}

fn agg_sk(entity: Entity, id: u64) -> String {
    match entity {
        Entity::Campaigns => keys::campaign_agg_sk(id),
        _ => keys::supporter_agg_sk(id),
    }
}

fn corrupt(sk: &str, e: serde_json::Error) -> EngineError {
    EngineError::Store(crate::ports::StoreError::Corrupt(format!(
        "aggregates of {sk}: {e}"
    )))
}
