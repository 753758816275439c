//! The single-table key schema: every partition key, sort-key prefix and key builder, and
//! the secondary (GSI) key. Nothing else in classy-sync formats a key; the table in
//! docs/architecture.md is checked against [`KINDS`] by a test.
//!
//! Ids are zero-padded to 20 digits so that sort-key order is numeric order: range queries
//! and merge joins rely on it. Every prefix that code scans is listed in [`SCANS`] with the
//! kinds it may read; a test builds a sample key of every kind and proves that no scan reads
//! a kind it does not expect.

use super::{Entity, OrgId};

// ---------- partitions ----------

/// An organization's partition: its records, indexes, aggregates, sync and plugin state.
pub fn org_pk(org: OrgId) -> String {
    format!("ORG#{org}")
}

/// Partition that lists every organization (one META copy per organization).
pub const ORGS_PK: &str = "ORGS";
/// Alert states, silences and history (all organizations).
pub const ALERTS_PK: &str = "ALERTS";
/// The latest health report, its history and write probes.
pub const HEALTH_PK: &str = "HEALTH";
/// Report definitions and sent markers.
pub const REPORTS_PK: &str = "REPORTS";
/// Notification channels and delivery records.
pub const NOTIFY_PK: &str = "NOTIFY";
/// Stored tenant templates (the built-in ones are code, not items).
pub const TEMPLATES_PK: &str = "TEMPLATES";
/// The audit trail: its head and its hash-chained entries.
pub const AUDIT_PK: &str = "AUDIT";
/// The shared Classy request budgets: one token bucket per application.
pub const BUDGET_PK: &str = "BUDGET";
/// Shared concurrency limits: one counting semaphore per limited thing (a Mailchimp API key).
pub const SEMAPHORE_PK: &str = "SEMAPHORE";

pub fn pad(id: u64) -> String {
    format!("{id:020}")
}

/// Parses the id back out of a record's (or an index entry's) sort key: its last segment.
pub fn id_from_sk(sk: &str) -> Option<u64> {
    sk.rsplit('#').next()?.parse().ok()
}

/// The upper bound of a `Between` range covering every key that starts with `prefix`
/// (`~` sorts after every character keys use).
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}~")
}

// ---------- organization list ----------

/// An organization's entry in [`ORGS_PK`].
pub const ORG_LIST_PREFIX: &str = "ORG#";

pub fn org_list_sk(org: OrgId) -> String {
    format!("{ORG_LIST_PREFIX}{}", pad(org))
}

/// A purge of the organization is under way (its secret names, for a resumed run).
pub fn purge_marker_sk(org: OrgId) -> String {
    format!("PURGE#{}", pad(org))
}

// ---------- one organization ----------

pub const META_SK: &str = "META";

/// Sort-key prefix of an entity's records, as Classy names them.
pub fn record_prefix(entity: Entity) -> &'static str {
    match entity {
        Entity::Supporters => "SUPPORTER#",
        Entity::Campaigns => "CAMPAIGN#",
        Entity::Transactions => "TXN#",
        Entity::RecurringPlans => "PLAN#",
    }
}

pub fn record_sk(entity: Entity, id: u64) -> String {
    format!("{}{}", record_prefix(entity), pad(id))
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

/// A change arrived (webhook or request) while a sync of the pair held its lease: one
/// follow-up job is queued; the next run of the pair clears it when it takes the lease.
pub fn rerun_sk(entity: Entity) -> String {
    format!("RERUN#{}", entity.name())
}

/// A webhook delivery seen (by its `svix-id`), kept a day so a redelivery is not enqueued twice.
pub fn webhook_delivery_sk(svix_id: &str) -> String {
    format!("WEBHOOK#{svix_id}")
}

/// A record Classy sent that does not decode, kept raw until a later version of it does.
pub fn quarantine_prefix(entity: Entity) -> String {
    format!("QUARANTINE#{}#", entity.name())
}

pub fn quarantine_sk(entity: Entity, id: &str) -> String {
    format!("{}{id}", quarantine_prefix(entity))
}

/// One id slice of a sliced full sync: its range and where its walk stands.
pub fn slice_prefix(entity: Entity) -> String {
    format!("SLICE#{}#", entity.name())
}

pub fn slice_sk(entity: Entity, index: u32) -> String {
    format!("{}{index:04}", slice_prefix(entity))
}

/// One worker per slice of a sliced full sync worked by several workers (the sync-worker
/// on AWS): the lease of one slice.
pub fn slice_lease_sk(entity: Entity, index: u32) -> String {
    format!("SLICELEASE#{}#{index:04}", entity.name())
}

pub fn fail_sk(entity: Entity) -> String {
    format!("FAIL#{}", entity.name())
}

/// Run records sort by start time within an entity.
pub fn run_sk(entity: Entity, started_unix_ms: i64, run_id: &str) -> String {
    format!("{}{started_unix_ms:015}#{run_id}", run_prefix(entity))
}

pub fn run_prefix(entity: Entity) -> String {
    format!("RUN#{}#", entity.name())
}

/// An operation record (plugin push, report send, Classy health check, webhook delivery:
/// `OP#<operation>#<start ms>#<id>`), sorted by start time within an operation.
pub fn op_sk(operation: &str, started_unix_ms: i64, id: &str) -> String {
    format!("{}#{id}", op_sk_from(operation, started_unix_ms))
}

pub fn op_prefix(operation: &str) -> String {
    format!("OP#{operation}#")
}

/// First operation record sort key at or after `at_ms`.
pub fn op_sk_from(operation: &str, at_ms: i64) -> String {
    format!("{}{:015}", op_prefix(operation), at_ms.max(0))
}

/// First run record sort key at or after `at_ms`.
pub fn run_sk_from(entity: Entity, at_ms: i64) -> String {
    format!("{}{:015}", run_prefix(entity), at_ms.max(0))
}

pub fn last_run_sk(entity: Entity) -> String {
    format!("LASTRUN#{}", entity.name())
}

pub const SUPPORTER_AGG_PREFIX: &str = "SUPAGG#";
pub const CAMPAIGN_AGG_PREFIX: &str = "CAMPAGG#";

/// Computed giving aggregates of one supporter.
pub fn supporter_agg_sk(supporter: u64) -> String {
    format!("{SUPPORTER_AGG_PREFIX}{}", pad(supporter))
}

/// Computed totals of one campaign.
pub fn campaign_agg_sk(campaign: u64) -> String {
    format!("{CAMPAIGN_AGG_PREFIX}{}", pad(campaign))
}

/// Index of supporters' gifts and plans: `SIDX#<supporter>#T#<txn>` / `...#P#<plan>`.
pub const SUPPORTER_INDEX_PREFIX: &str = "SIDX#";
/// Index of campaigns' gifts, ordered by supporter so donors count in one pass.
pub const CAMPAIGN_INDEX_PREFIX: &str = "CIDX#";

pub fn supporter_index_prefix(supporter: u64) -> String {
    format!("{SUPPORTER_INDEX_PREFIX}{}#", pad(supporter))
}

/// What tells a supporter index entry of a gift from one of a plan.
pub const SUPPORTER_GIFT_MARK: &str = "#T#";
pub const SUPPORTER_PLAN_MARK: &str = "#P#";

pub fn supporter_gift_sk(supporter: u64, txn: u64) -> String {
    format!(
        "{SUPPORTER_INDEX_PREFIX}{}{SUPPORTER_GIFT_MARK}{}",
        pad(supporter),
        pad(txn)
    )
}

pub fn supporter_plan_sk(supporter: u64, plan: u64) -> String {
    format!(
        "{SUPPORTER_INDEX_PREFIX}{}{SUPPORTER_PLAN_MARK}{}",
        pad(supporter),
        pad(plan)
    )
}

pub fn campaign_index_prefix(campaign: u64) -> String {
    format!("{CAMPAIGN_INDEX_PREFIX}{}#", pad(campaign))
}

pub fn campaign_gift_sk(campaign: u64, supporter: u64, txn: u64) -> String {
    format!(
        "{CAMPAIGN_INDEX_PREFIX}{}#{}#{}",
        pad(campaign),
        pad(supporter),
        pad(txn)
    )
}

/// Every dirty marker (supporter, campaign and whole-entity).
pub const DIRTY_PREFIX: &str = "DIRTY#";
pub const DIRTY_SUPPORTER_PREFIX: &str = "DIRTY#S#";
pub const DIRTY_CAMPAIGN_PREFIX: &str = "DIRTY#C#";

/// Marks a supporter or campaign whose aggregates must be recomputed.
pub fn dirty_supporter_sk(supporter: u64) -> String {
    format!("{DIRTY_SUPPORTER_PREFIX}{}", pad(supporter))
}

pub fn dirty_campaign_sk(campaign: u64) -> String {
    format!("{DIRTY_CAMPAIGN_PREFIX}{}", pad(campaign))
}

/// Marks that the index entries and aggregates fed by `entity` must be rebuilt from its
/// stored records (after a full sync, which writes records only).
pub fn dirty_all_sk(entity: Entity) -> String {
    format!("{DIRTY_PREFIX}ALL#{}", entity.name())
}

/// Per-organization rollups (see `domain::analytics::rollup`): `ROLLUP#D#<bucket>` packs the
/// successful gifts of a bucket of donors; `ROLLUP#READY` says the rollups were built once
/// and are kept current since (readers also require that no dirty marker is pending).
pub const ROLLUP_PREFIX: &str = "ROLLUP#";
pub const DONOR_ROLLUP_PREFIX: &str = "ROLLUP#D#";
pub const ROLLUP_READY_SK: &str = "ROLLUP#READY";

pub fn donor_rollup_sk(bucket: u64) -> String {
    format!("{DONOR_ROLLUP_PREFIX}{}", pad(bucket))
}

/// Quality facts (see `domain::quality::facts`) of a bucket of one entity's records:
/// `ROLLUP#Q#<entity>#<bucket>`; `ROLLUP#QD#<entity>#<bucket>` marks a bucket to recompute,
/// `ROLLUP#QALL#<entity>` the whole entity (after a full sync), `ROLLUP#QREADY#<entity>`
/// says the entity's facts were built.
pub const QUALITY_ROLLUP_PREFIX: &str = "ROLLUP#Q#";
pub const QUALITY_DIRTY_PREFIX: &str = "ROLLUP#QD#";

pub fn quality_rollup_prefix(entity: Entity) -> String {
    format!("{QUALITY_ROLLUP_PREFIX}{}#", entity.name())
}

pub fn quality_rollup_sk(entity: Entity, bucket: u64) -> String {
    format!("{}{}", quality_rollup_prefix(entity), pad(bucket))
}

pub fn quality_dirty_prefix(entity: Entity) -> String {
    format!("{QUALITY_DIRTY_PREFIX}{}#", entity.name())
}

pub fn quality_dirty_sk(entity: Entity, bucket: u64) -> String {
    format!("{}{}", quality_dirty_prefix(entity), pad(bucket))
}

pub fn quality_all_sk(entity: Entity) -> String {
    format!("ROLLUP#QALL#{}", entity.name())
}

pub fn quality_ready_sk(entity: Entity) -> String {
    format!("ROLLUP#QREADY#{}", entity.name())
}

/// The change log: `CHG#<unix ms>#<entity>#<id>`.
pub const CHANGE_PREFIX: &str = "CHG#";

pub fn change_sk(at_ms: i64, entity: Entity, id: u64) -> String {
    format!(
        "{CHANGE_PREFIX}{:015}#{}#{}",
        at_ms.max(0),
        entity.name(),
        pad(id)
    )
}

/// First change sort key at or after `at_ms`.
pub fn change_sk_from(at_ms: i64) -> String {
    format!("{CHANGE_PREFIX}{:015}", at_ms.max(0))
}

/// When the organization's Classy credentials were last seen working or refused.
pub const CREDENTIAL_SK: &str = "CREDENTIAL#classy";

/// The organization's alert routing (extra channels for its alerts, set by a template).
pub const ALERT_ROUTE_SK: &str = "ALERTROUTE";

/// An hourly counter (`{"count": n}`) named `name`, in the hour holding `hour_unix`.
pub fn counter_sk(name: &str, hour_unix: i64) -> String {
    let t = chrono::DateTime::from_timestamp(hour_unix - hour_unix.rem_euclid(3600), 0)
        .unwrap_or_default();
    format!("COUNTER#{name}#{}", t.format("%Y%m%d%H"))
}

// ---------- destination plugins (per organization) ----------

/// The keys of one plugin all start `PLUGIN#<name>#`; plugin names are registry names
/// (lower case letters and `-`), so no plugin's keys start with another's.
fn plugin_key(plugin: &str, rest: &str) -> String {
    format!("PLUGIN#{plugin}#{rest}")
}

pub fn plugin_config_sk(plugin: &str) -> String {
    plugin_key(plugin, "CONFIG")
}

pub fn plugin_state_sk(plugin: &str) -> String {
    plugin_key(plugin, "STATE")
}

pub fn plugin_lease_sk(plugin: &str) -> String {
    plugin_key(plugin, "LEASE")
}

/// A push job for this organization×plugin is queued or running.
pub fn plugin_queued_sk(plugin: &str) -> String {
    plugin_key(plugin, "QUEUED")
}

/// A plugin's own item `PLUGIN#<name>#<what>` (one per organization×plugin).
pub fn plugin_item_sk(plugin: &str, what: &str) -> String {
    plugin_key(plugin, what)
}

/// The prefix of a plugin's own family of items, `PLUGIN#<name>#<family>#`.
pub fn plugin_family_prefix(plugin: &str, family: &str) -> String {
    plugin_key(plugin, &format!("{family}#"))
}

// ---------- alerts, health, reports, notifications ----------

pub const ALERT_STATE_PREFIX: &str = "STATE#";
pub const SILENCE_PREFIX: &str = "SILENCE#";
pub const ALERT_HISTORY_PREFIX: &str = "HIST#";

pub fn alert_state_sk(fingerprint: &str) -> String {
    format!("{ALERT_STATE_PREFIX}{fingerprint}")
}

pub fn silence_sk(id: &str) -> String {
    format!("{SILENCE_PREFIX}{id}")
}

pub fn alert_history_from(at_unix: i64) -> String {
    format!("{ALERT_HISTORY_PREFIX}{at_unix:015}")
}

pub fn alert_history_sk(at_unix: i64, fingerprint: &str, what: &str) -> String {
    format!("{}#{fingerprint}#{what}", alert_history_from(at_unix))
}

/// The latest health report.
pub const HEALTH_LAST_SK: &str = "LAST";
pub const HEALTH_HISTORY_PREFIX: &str = "H#";
pub const HEALTH_PROBE_PREFIX: &str = "PROBE#";

pub fn health_history_sk(at_ms: i64) -> String {
    format!("{HEALTH_HISTORY_PREFIX}{at_ms:015}")
}

pub const HEALTH_RESULTS_PREFIX: &str = "R#";

/// One part of the results of the report recorded at `at_ms` (the latest report's results,
/// read by the alert function; `LAST` names the parts).
pub fn health_results_sk(at_ms: i64, part: u32) -> String {
    format!("{HEALTH_RESULTS_PREFIX}{at_ms:015}#{part:04}")
}

/// The parts of the results recorded at `at_ms`.
pub fn health_results_prefix(at_ms: i64) -> String {
    format!("{HEALTH_RESULTS_PREFIX}{at_ms:015}#")
}

/// A short-lived item the store health check writes, reads back and deletes.
pub fn health_probe_sk(token: &str) -> String {
    format!("{HEALTH_PROBE_PREFIX}{token}")
}

pub const REPORT_DEF_PREFIX: &str = "REPORT#";
pub const REPORT_SENT_PREFIX: &str = "SENT#";

pub fn report_def_sk(id: &str) -> String {
    format!("{REPORT_DEF_PREFIX}{id}")
}

/// One occurrence of a report went out.
pub fn report_sent_sk(id: &str, occurrence: i64) -> String {
    format!("{REPORT_SENT_PREFIX}{id}#{occurrence:012}")
}

pub const CHANNEL_PREFIX: &str = "CHANNEL#";
pub const DELIVERY_PREFIX: &str = "DELIVERY#";

pub fn channel_sk(name: &str) -> String {
    format!("{CHANNEL_PREFIX}{name}")
}

pub fn delivery_sk(channel: &str, message_id: &str) -> String {
    format!("{DELIVERY_PREFIX}{channel}#{message_id}")
}

// ---------- audit trail ----------

/// The last entry's sequence number and hash (versioned: appenders take turns on it).
pub const AUDIT_HEAD_SK: &str = "HEAD";
pub const AUDIT_ENTRY_PREFIX: &str = "ENTRY#";

/// One entry, its sequence number zero-padded to 15 digits (key order is sequence order).
pub fn audit_entry_sk(seq: u64) -> String {
    format!("{AUDIT_ENTRY_PREFIX}{seq:015}")
}

// ---------- Classy request budgets ----------

/// The token bucket of one Classy application (its client id), shared by every process.
pub fn budget_sk(client_id: &str) -> String {
    format!("APP#{client_id}")
}

// ---------- shared concurrency limits ----------

/// The semaphore of one Mailchimp API key, named by its digest (the first 16 hex digits of
/// the SHA-256 of the key): the key itself is never stored.
pub fn mailchimp_semaphore_sk(key_digest: &str) -> String {
    format!("MAILCHIMP#{key_digest}")
}

// ---------- tenant templates ----------

pub const TEMPLATE_PREFIX: &str = "TEMPLATE#";

pub fn template_sk(name: &str) -> String {
    format!("{TEMPLATE_PREFIX}{name}")
}

// ---------- secondary key ----------

/// `EMAIL#<hex of the first 16 bytes of sha256(trimmed, lower-cased address)>` on a
/// supporter: finds one person across organizations without the address in the key.
pub fn email_gsi(sha256: &[u8]) -> String {
    format!("EMAIL#{}", hex::encode(&sha256[..16]))
}

// ---------- the catalogue ----------

/// One kind of item: where it lives and what its sort key looks like.
#[derive(Debug, Clone, Copy)]
pub struct KeyKind {
    pub name: &'static str,
    /// The partition key, as documented (`ORG#<id>`, `ALERTS`, ...).
    pub pk: &'static str,
    /// The sort key, as documented.
    pub sk: &'static str,
}

/// Every kind of item the table holds, as docs/architecture.md lists them.
pub const KINDS: &[KeyKind] = &[
    kind("organization list", "ORGS", "ORG#<id>"),
    kind("purge marker", "ORGS", "PURGE#<id>"),
    kind("organization", "ORG#<id>", "META"),
    kind("supporter", "ORG#<id>", "SUPPORTER#<id>"),
    kind("campaign", "ORG#<id>", "CAMPAIGN#<id>"),
    kind("transaction", "ORG#<id>", "TXN#<id>"),
    kind("recurring plan", "ORG#<id>", "PLAN#<id>"),
    kind("supporter aggregates", "ORG#<id>", "SUPAGG#<supporter>"),
    kind("campaign aggregates", "ORG#<id>", "CAMPAGG#<campaign>"),
    kind(
        "supporter index",
        "ORG#<id>",
        "SIDX#<supporter>#T#<txn> / SIDX#<supporter>#P#<plan>",
    ),
    kind(
        "campaign index",
        "ORG#<id>",
        "CIDX#<campaign>#<supporter>#<txn>",
    ),
    kind(
        "dirty marker",
        "ORG#<id>",
        "DIRTY#S#<id> / DIRTY#C#<id> / DIRTY#ALL#<entity>",
    ),
    kind("donor rollup", "ORG#<id>", "ROLLUP#D#<bucket>"),
    kind("rollup ready marker", "ORG#<id>", "ROLLUP#READY"),
    kind("quality rollup", "ORG#<id>", "ROLLUP#Q#<entity>#<bucket>"),
    kind(
        "quality rollup marker",
        "ORG#<id>",
        "ROLLUP#QD#<entity>#<bucket> / ROLLUP#QALL#<entity> / ROLLUP#QREADY#<entity>",
    ),
    kind("cursor", "ORG#<id>", "CURSOR#<entity>"),
    kind("lease", "ORG#<id>", "LEASE#<entity>"),
    kind("queued marker", "ORG#<id>", "QUEUED#<entity>"),
    kind("follow-up marker", "ORG#<id>", "RERUN#<entity>"),
    kind("webhook delivery", "ORG#<id>", "WEBHOOK#<svix-id>"),
    kind("failure streak", "ORG#<id>", "FAIL#<entity>"),
    kind("quarantined record", "ORG#<id>", "QUARANTINE#<entity>#<id>"),
    kind("full sync slice", "ORG#<id>", "SLICE#<entity>#<index>"),
    kind("slice lease", "ORG#<id>", "SLICELEASE#<entity>#<index>"),
    kind("run", "ORG#<id>", "RUN#<entity>#<start ms>#<run>"),
    kind("last run", "ORG#<id>", "LASTRUN#<entity>"),
    kind("operation", "ORG#<id>", "OP#<operation>#<start ms>#<id>"),
    kind("change", "ORG#<id>", "CHG#<unix ms>#<entity>#<id>"),
    kind("credential", "ORG#<id>", "CREDENTIAL#classy"),
    kind("alert routing", "ORG#<id>", "ALERTROUTE"),
    kind("counter", "ORG#<id>", "COUNTER#<name>#<YYYYMMDDHH>"),
    kind("plugin config", "ORG#<id>", "PLUGIN#<name>#CONFIG"),
    kind("plugin state", "ORG#<id>", "PLUGIN#<name>#STATE"),
    kind("plugin lease", "ORG#<id>", "PLUGIN#<name>#LEASE"),
    kind("plugin queued marker", "ORG#<id>", "PLUGIN#<name>#QUEUED"),
    kind("plugin item", "ORG#<id>", "PLUGIN#<name>#<what>"),
    kind("plugin family", "ORG#<id>", "PLUGIN#<name>#<family>#<key>"),
    kind("alert state", "ALERTS", "STATE#<fingerprint>"),
    kind("silence", "ALERTS", "SILENCE#<id>"),
    kind(
        "alert history",
        "ALERTS",
        "HIST#<unix s>#<fingerprint>#<what>",
    ),
    kind("health report", "HEALTH", "LAST"),
    kind("health history", "HEALTH", "H#<unix ms>"),
    kind("health probe", "HEALTH", "PROBE#<token>"),
    kind("health results", "HEALTH", "R#<unix ms>#<part>"),
    kind("report definition", "REPORTS", "REPORT#<id>"),
    kind("report sent", "REPORTS", "SENT#<id>#<occurrence>"),
    kind("channel", "NOTIFY", "CHANNEL#<name>"),
    kind("delivery", "NOTIFY", "DELIVERY#<channel>#<message id>"),
    kind("template", "TEMPLATES", "TEMPLATE#<name>"),
    kind("audit head", "AUDIT", "HEAD"),
    kind("audit entry", "AUDIT", "ENTRY#<seq>"),
    kind("request budget", "BUDGET", "APP#<client id>"),
    kind(
        "concurrency semaphore",
        "SEMAPHORE",
        "MAILCHIMP#<key digest>",
    ),
];

const fn kind(name: &'static str, pk: &'static str, sk: &'static str) -> KeyKind {
    KeyKind { name, pk, sk }
}

/// How far a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Pages until the store says there is no more.
    ToTheEnd,
    /// Stops early on purpose; the reason says why that is complete.
    Bounded(&'static str),
}

/// One prefix that code scans, and the kinds it is meant to read.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    pub pk: &'static str,
    /// The prefix, with `<...>` for a variable part (as in [`KINDS`]).
    pub prefix: &'static str,
    pub reads: &'static [&'static str],
    pub extent: Extent,
}

const fn scan(
    pk: &'static str,
    prefix: &'static str,
    reads: &'static [&'static str],
    extent: Extent,
) -> Scan {
    Scan {
        pk,
        prefix,
        reads,
        extent,
    }
}

/// Every prefix scan in classy-sync.
pub const SCANS: &[Scan] = &[
    scan("ORGS", "ORG#", &["organization list"], Extent::ToTheEnd),
    scan("ORG#<id>", "SUPPORTER#", &["supporter"], Extent::ToTheEnd),
    scan("ORG#<id>", "CAMPAIGN#", &["campaign"], Extent::ToTheEnd),
    scan("ORG#<id>", "TXN#", &["transaction"], Extent::ToTheEnd),
    scan("ORG#<id>", "PLAN#", &["recurring plan"], Extent::ToTheEnd),
    scan(
        "ORG#<id>",
        "SUPAGG#",
        &["supporter aggregates"],
        Extent::ToTheEnd,
    ),
    scan(
        "ORG#<id>",
        "CAMPAGG#",
        &["campaign aggregates"],
        Extent::ToTheEnd,
    ),
    scan("ORG#<id>", "SIDX#", &["supporter index"], Extent::ToTheEnd),
    scan(
        "ORG#<id>",
        "SIDX#<supporter>#",
        &["supporter index"],
        Extent::ToTheEnd,
    ),
    scan("ORG#<id>", "CIDX#", &["campaign index"], Extent::ToTheEnd),
    scan(
        "ORG#<id>",
        "CIDX#<campaign>#",
        &["campaign index"],
        Extent::ToTheEnd,
    ),
    scan("ORG#<id>", "ROLLUP#D#", &["donor rollup"], Extent::ToTheEnd),
    scan(
        "ORG#<id>",
        "ROLLUP#Q#<entity>#",
        &["quality rollup"],
        Extent::ToTheEnd,
    ),
    scan(
        "ORG#<id>",
        "ROLLUP#QD#<entity>#",
        &["quality rollup marker"],
        Extent::ToTheEnd,
    ),
    scan(
        "ORG#<id>",
        "ROLLUP#QD#",
        &["quality rollup marker"],
        Extent::Bounded("asks only whether any bucket is marked (limit 1)"),
    ),
    scan("ORG#<id>", "DIRTY#S#", &["dirty marker"], Extent::ToTheEnd),
    scan("ORG#<id>", "DIRTY#C#", &["dirty marker"], Extent::ToTheEnd),
    scan(
        "ORG#<id>",
        "DIRTY#",
        &["dirty marker"],
        Extent::Bounded("asks only whether any marker exists (limit 1)"),
    ),
    scan("ORG#<id>", "RUN#<entity>#", &["run"], Extent::ToTheEnd),
    scan(
        "ORG#<id>",
        "OP#<operation>#",
        &["operation"],
        Extent::ToTheEnd,
    ),
    scan(
        "ORG#<id>",
        "QUARANTINE#<entity>#",
        &["quarantined record"],
        Extent::ToTheEnd,
    ),
    scan(
        "ORG#<id>",
        "SLICE#<entity>#",
        &["full sync slice"],
        Extent::ToTheEnd,
    ),
    scan("ORG#<id>", "CHG#", &["change"], Extent::ToTheEnd),
    scan("ALERTS", "STATE#", &["alert state"], Extent::ToTheEnd),
    scan("ALERTS", "SILENCE#", &["silence"], Extent::ToTheEnd),
    scan("ALERTS", "HIST#", &["alert history"], Extent::ToTheEnd),
    scan("HEALTH", "H#", &["health history"], Extent::ToTheEnd),
    scan(
        "HEALTH",
        "R#<unix ms>#",
        &["health results"],
        Extent::ToTheEnd,
    ),
    scan(
        "REPORTS",
        "REPORT#",
        &["report definition"],
        Extent::ToTheEnd,
    ),
    scan("NOTIFY", "CHANNEL#", &["channel"], Extent::ToTheEnd),
    scan("NOTIFY", "DELIVERY#", &["delivery"], Extent::ToTheEnd),
    scan("TEMPLATES", "TEMPLATE#", &["template"], Extent::ToTheEnd),
    scan("AUDIT", "ENTRY#", &["audit entry"], Extent::ToTheEnd),
];

/// A sample key of every kind, built by the builders above (several per kind where the
/// variable parts matter: every entity, both registry plugins, their item families).
pub fn samples() -> Vec<(&'static str, String, String)> {
    let org = org_pk(7);
    let mut out: Vec<(&'static str, String, String)> = Vec::new();
    let mut add = |name: &'static str, pk: &str, sk: String| out.push((name, pk.to_owned(), sk));
    add("organization list", ORGS_PK, org_list_sk(7));
    add("purge marker", ORGS_PK, purge_marker_sk(7));
    add("organization", &org, META_SK.to_owned());
    for e in Entity::ALL {
        let record = match e {
            Entity::Supporters => "supporter",
            Entity::Campaigns => "campaign",
            Entity::Transactions => "transaction",
            Entity::RecurringPlans => "recurring plan",
        };
        add(record, &org, record_sk(e, 12));
        add("cursor", &org, cursor_sk(e));
        add("lease", &org, lease_sk(e));
        add("queued marker", &org, queued_sk(e));
        add("follow-up marker", &org, rerun_sk(e));
        add("failure streak", &org, fail_sk(e));
        add("quarantined record", &org, quarantine_sk(e, "12"));
        add("full sync slice", &org, slice_sk(e, 3));
        add("slice lease", &org, slice_lease_sk(e, 3));
        add("run", &org, run_sk(e, 1_700_000_000_000, "r1"));
        add("last run", &org, last_run_sk(e));
        add("change", &org, change_sk(1_700_000_000_000, e, 12));
        add("dirty marker", &org, dirty_all_sk(e));
        add("quality rollup", &org, quality_rollup_sk(e, 3));
        add("quality rollup marker", &org, quality_dirty_sk(e, 3));
        add("quality rollup marker", &org, quality_all_sk(e));
        add("quality rollup marker", &org, quality_ready_sk(e));
    }
    add("supporter aggregates", &org, supporter_agg_sk(12));
    add("campaign aggregates", &org, campaign_agg_sk(12));
    add("supporter index", &org, supporter_gift_sk(12, 34));
    add("supporter index", &org, supporter_plan_sk(12, 34));
    add("campaign index", &org, campaign_gift_sk(12, 34, 56));
    add("dirty marker", &org, dirty_supporter_sk(12));
    add("dirty marker", &org, dirty_campaign_sk(12));
    add("donor rollup", &org, donor_rollup_sk(3));
    add("rollup ready marker", &org, ROLLUP_READY_SK.to_owned());
    add("credential", &org, CREDENTIAL_SK.to_owned());
    for op in ["push", "report", "health", "webhook"] {
        add("operation", &org, op_sk(op, 1_700_000_000_000, "o1"));
    }
    add("alert routing", &org, ALERT_ROUTE_SK.to_owned());
    add(
        "webhook delivery",
        &org,
        webhook_delivery_sk("msg_p5jXN8AQM9LWM0D4loKWxJek"),
    );
    add(
        "counter",
        &org,
        counter_sk("destination-compliance", 1_700_000_000),
    );
    for p in ["mailchimp", "change-feed"] {
        add("plugin config", &org, plugin_config_sk(p));
        add("plugin state", &org, plugin_state_sk(p));
        add("plugin lease", &org, plugin_lease_sk(p));
        add("plugin queued marker", &org, plugin_queued_sk(p));
    }
    add("plugin item", &org, plugin_item_sk("mailchimp", "FIELDS"));
    add(
        "plugin item",
        &org,
        plugin_item_sk("change-feed", "PENDING"),
    );
    add(
        "plugin family",
        &org,
        format!("{}l1#abc", plugin_family_prefix("mailchimp", "M")),
    );
    add(
        "plugin family",
        &org,
        format!("{}S#12", plugin_family_prefix("change-feed", "SENT")),
    );
    add("alert state", ALERTS_PK, alert_state_sk("fp"));
    add("silence", ALERTS_PK, silence_sk("s1"));
    add(
        "alert history",
        ALERTS_PK,
        alert_history_sk(1_700_000_000, "fp", "m1"),
    );
    add("health report", HEALTH_PK, HEALTH_LAST_SK.to_owned());
    add(
        "health history",
        HEALTH_PK,
        health_history_sk(1_700_000_000_000),
    );
    add("health probe", HEALTH_PK, health_probe_sk("t1"));
    add(
        "health results",
        HEALTH_PK,
        health_results_sk(1_700_000_000_000, 0),
    );
    add("report definition", REPORTS_PK, report_def_sk("weekly"));
    add(
        "report sent",
        REPORTS_PK,
        report_sent_sk("weekly", 1_700_000_000),
    );
    add("channel", NOTIFY_PK, channel_sk("board"));
    add("delivery", NOTIFY_PK, delivery_sk("board", "m1"));
    add("template", TEMPLATES_PK, template_sk("high-volume"));
    add("audit head", AUDIT_PK, AUDIT_HEAD_SK.to_owned());
    add("audit entry", AUDIT_PK, audit_entry_sk(42));
    add("request budget", BUDGET_PK, budget_sk("app-client-1"));
    add(
        "concurrency semaphore",
        SEMAPHORE_PK,
        mailchimp_semaphore_sk("0123456789abcdef"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The documented partition of a sample's concrete partition key.
    fn pk_pattern(pk: &str) -> &str {
        if pk.starts_with("ORG#") {
            "ORG#<id>"
        } else {
            match pk {
                ORGS_PK => "ORGS",
                ALERTS_PK => "ALERTS",
                HEALTH_PK => "HEALTH",
                REPORTS_PK => "REPORTS",
                NOTIFY_PK => "NOTIFY",
                TEMPLATES_PK => "TEMPLATES",
                AUDIT_PK => "AUDIT",
                BUDGET_PK => "BUDGET",
                SEMAPHORE_PK => "SEMAPHORE",
                other => panic!("undocumented partition {other}"),
            }
        }
    }

    /// Whether a documented prefix (with `<...>` variable parts) matches a concrete key.
    fn prefix_matches(prefix: &str, sk: &str) -> bool {
        let mut rest = sk;
        let mut pattern = prefix;
        while let Some(open) = pattern.find('<') {
            let literal = &pattern[..open];
            let Some(r) = rest.strip_prefix(literal) else {
                return false;
            };
            let close = pattern[open..].find('>').expect("closed <...>") + open;
            pattern = &pattern[close + 1..];
            // A variable part is one `#`-free segment.
            let seg_end = r.find('#').unwrap_or(r.len());
            rest = &r[seg_end..];
        }
        rest.starts_with(pattern)
    }

    #[test]
    fn every_kind_has_samples_and_every_sample_a_documented_kind() {
        let samples = samples();
        let kinds: BTreeSet<&str> = KINDS.iter().map(|k| k.name).collect();
        let sampled: BTreeSet<&str> = samples.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(kinds, sampled);
        for (name, pk, _) in &samples {
            let kind = KINDS.iter().find(|k| k.name == *name).unwrap();
            assert_eq!(pk_pattern(pk), kind.pk, "{name}");
        }
    }

    #[test]
    fn no_scan_reads_a_kind_it_does_not_expect() {
        let samples = samples();
        for s in SCANS {
            for r in s.reads {
                assert!(KINDS.iter().any(|k| k.name == *r), "{r} is not a kind");
            }
            let mut read_any = false;
            for (name, pk, sk) in &samples {
                if pk_pattern(pk) != s.pk || !prefix_matches(s.prefix, sk) {
                    continue;
                }
                read_any = true;
                assert!(
                    s.reads.contains(name),
                    "the scan of {} {} also reads {name} ({sk})",
                    s.pk,
                    s.prefix
                );
            }
            assert!(read_any, "the scan of {} {} reads nothing", s.pk, s.prefix);
        }
    }

    #[test]
    fn no_plugin_scan_exists_and_plugin_keys_stay_apart() {
        // Configs are read one by one per registry plugin: a scan of `PLUGIN#` would page
        // through every plugin's own items first (the change feed keeps one per record).
        assert!(SCANS.iter().all(|s| !s.prefix.starts_with("PLUGIN#")));
        let a = plugin_family_prefix("change-feed", "SENT");
        assert!(!plugin_config_sk("mailchimp").starts_with(&a));
        assert!(!a.starts_with(&plugin_config_sk("change-feed")));
    }

    #[test]
    fn padded_ids_sort_numerically_and_parse_back() {
        assert!(record_sk(Entity::Supporters, 9) < record_sk(Entity::Supporters, 10));
        assert_eq!(id_from_sk(&record_sk(Entity::Transactions, 42)), Some(42));
        assert_eq!(id_from_sk(&supporter_gift_sk(1, 77)), Some(77));
        assert!(change_sk_from(5) <= change_sk(5, Entity::Supporters, 1));
        assert!(change_sk(5, Entity::Supporters, 1) < prefix_end(CHANGE_PREFIX));
    }

    #[test]
    fn counters_are_hourly() {
        assert_eq!(
            counter_sk("x", 1_700_000_000),
            counter_sk("x", 1_700_000_000 - 1_700_000_000 % 3600)
        );
        assert!(counter_sk("x", 0).ends_with("#1970010100"));
    }
}
