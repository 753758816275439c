//! Single-table keys (see docs/architecture.md). Ids are zero-padded so that sort-key order
//! is numeric order: range queries and merge joins rely on it.

use super::{Entity, OrgId};

pub fn org_pk(org: OrgId) -> String {
    format!("ORG#{org}")
}

/// Partition that lists every organization (one META pointer per organization).
pub const ORGS_PK: &str = "ORGS";

pub const META_SK: &str = "META";

pub fn pad(id: u64) -> String {
    format!("{id:020}")
}

pub fn record_sk(entity: Entity, id: u64) -> String {
    format!("{}{}", entity.sk_prefix(), pad(id))
}

/// Parses the id back out of a record's sort key.
pub fn id_from_sk(sk: &str) -> Option<u64> {
    sk.rsplit('#').next()?.parse().ok()
}

pub fn cursor_sk(entity: Entity) -> String {
    format!("CURSOR#{}", entity.name())
}

pub fn lease_sk(entity: Entity) -> String {
    format!("LEASE#{}", entity.name())
}

/// A job for this organization×entity is queued or running (dispatch sets it, the worker
/// clears it when the job ends; it expires on its own if a worker dies).
pub fn queued_sk(entity: Entity) -> String {
    format!("QUEUED#{}", entity.name())
}

pub fn fail_sk(entity: Entity) -> String {
    format!("FAIL#{}", entity.name())
}

/// Run records sort by start time within an entity.
pub fn run_sk(entity: Entity, started_unix_ms: i64, run_id: &str) -> String {
    format!("RUN#{}#{started_unix_ms:015}#{run_id}", entity.name())
}

pub fn run_prefix(entity: Entity) -> String {
    format!("RUN#{}#", entity.name())
}

/// Computed giving aggregates of one supporter.
pub fn supporter_agg_sk(supporter: u64) -> String {
    format!("SUPAGG#{}", pad(supporter))
}

/// Computed totals of one campaign.
pub fn campaign_agg_sk(campaign: u64) -> String {
    format!("CAMPAGG#{}", pad(campaign))
}

/// Index of a supporter's gifts and plans: `SIDX#<supporter>#T#<txn>` / `...#P#<plan>`.
pub fn supporter_index_prefix(supporter: u64) -> String {
    format!("SIDX#{}#", pad(supporter))
}

pub fn supporter_gift_sk(supporter: u64, txn: u64) -> String {
    format!("SIDX#{}#T#{}", pad(supporter), pad(txn))
}

pub fn supporter_plan_sk(supporter: u64, plan: u64) -> String {
    format!("SIDX#{}#P#{}", pad(supporter), pad(plan))
}

/// Index of a campaign's gifts, ordered by supporter so donors count in one pass.
pub fn campaign_index_prefix(campaign: u64) -> String {
    format!("CIDX#{}#", pad(campaign))
}

pub fn campaign_gift_sk(campaign: u64, supporter: u64, txn: u64) -> String {
    format!("CIDX#{}#{}#{}", pad(campaign), pad(supporter), pad(txn))
}

/// Marks a supporter or campaign whose aggregates must be recomputed.
pub fn dirty_supporter_sk(supporter: u64) -> String {
    format!("DIRTY#S#{}", pad(supporter))
}

pub fn dirty_campaign_sk(campaign: u64) -> String {
    format!("DIRTY#C#{}", pad(campaign))
}

/// Marks that the index entries and aggregates fed by `entity` must be rebuilt from its
/// stored records (after a full sync, which writes records only).
pub fn dirty_all_sk(entity: Entity) -> String {
    format!("DIRTY#ALL#{}", entity.name())
}
