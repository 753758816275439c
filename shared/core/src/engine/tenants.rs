//! Operations on many organizations at once: import, bulk update, credential rotation and
//! purge. The callers check every input first; what is written here is undone when a later
//! step fails, so a command either does all of its work or leaves things as they were.
//! A purge cannot be undone: it is made resumable instead (a marker in `ORGS` remembers it).

use super::{Datastore, EngineError};
use crate::channels;
use crate::domain::keys::{
    org_list_sk, org_pk, purge_marker_sk, report_def_sk, ALERTS_PK, ALERT_HISTORY_PREFIX,
    ALERT_STATE_PREFIX, META_SK, ORGS_PK, REPORTS_PK, REPORT_DEF_PREFIX, SILENCE_PREFIX,
};
use crate::domain::organization::{classy_secret_name, webhook_secret_name};
use crate::domain::report::{ReportDefinition, ReportScope};
use crate::domain::{OrgId, Organization};
use crate::ports::store::{parse_all, Condition, Item, SkRange, WriteOp};
use crate::ports::{SecretError, SecretStore};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Organizations written per store transaction (two items each; the limit is 100 items).
const ORGS_PER_TRANSACTION: usize = 50;

/// One organization to write: created when `before` is `None`, else replaced if it is still
/// at the version read.
#[derive(Debug, Clone)]
pub struct OrgWrite {
    pub before: Option<(Organization, u64)>,
    pub after: Organization,
}

/// A secret to set, by name.
pub struct SecretWrite {
    pub name: String,
    pub value: SecretString,
}

/// Why a multi-organization write failed, and whether it was undone.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{cause}; everything this command had written was undone")]
    Undone { cause: EngineError },
    #[error("{cause}; undoing what this command had written also failed ({undo}): run the command again")]
    UndoFailed {
        cause: EngineError,
        undo: EngineError,
    },
}

/// What a successful apply wrote, kept so a later failure of the caller can undo it.
pub struct Applied {
    writes: Vec<OrgWrite>,
    /// Each secret this apply set, with its value before (`None`: it did not exist).
    secrets_before: Vec<(String, Option<SecretString>)>,
    /// Organizations whose writes committed (a prefix of `writes`).
    committed: usize,
}

impl Applied {
    pub fn organizations(&self) -> usize {
        self.committed
    }
}

impl Datastore {
    /// The organizations among `ids` that exist, with their versions (read from the `ORGS`
    /// list, whose copy carries the META item's version).
    pub async fn orgs_with_versions(
        &self,
        ids: &[OrgId],
    ) -> Result<HashMap<OrgId, (Organization, u64)>, EngineError> {
        let mut out = HashMap::new();
        for item in self.orgs_partition_items(ids, org_list_sk).await? {
            let org: Organization = item.parse()?;
            out.insert(org.id, (org, item.version));
        }
        Ok(out)
    }

    /// The organizations among `ids` whose purge was started and not finished.
    pub async fn purges_pending(&self, ids: &[OrgId]) -> Result<HashSet<OrgId>, EngineError> {
        let items = self.orgs_partition_items(ids, purge_marker_sk).await?;
        items
            .iter()
            .map(|i| Ok(i.parse::<PurgeMarker>()?.org))
            .collect()
    }

    /// The `ORGS` items of `ids` under the key `sk`, read in batches of 100 keys.
    async fn orgs_partition_items(
        &self,
        ids: &[OrgId],
        sk: fn(OrgId) -> String,
    ) -> Result<Vec<Item>, EngineError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(100) {
            let sks: Vec<String> = chunk.iter().map(|id| sk(*id)).collect();
            out.extend(self.store.batch_get(ORGS_PK, &sks).await?);
        }
        Ok(out)
    }

    /// Sets the secrets, then writes the organizations; on any failure undoes both and says
    /// so. `progress` is told how many organizations are written so far.
    pub async fn apply_org_writes(
        &self,
        secrets: &dyn SecretStore,
        writes: Vec<OrgWrite>,
        new_secrets: Vec<SecretWrite>,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Applied, ApplyError> {
        let mut applied = Applied {
            writes,
            secrets_before: Vec::new(),
            committed: 0,
        };
        let result = self
            .apply_inner(secrets, &mut applied, new_secrets, progress)
            .await;
        match result {
            Ok(()) => Ok(applied),
            Err(cause) => Err(match self.undo(secrets, applied).await {
                Ok(()) => ApplyError::Undone { cause },
                Err(undo) => ApplyError::UndoFailed { cause, undo },
            }),
        }
    }

    async fn apply_inner(
        &self,
        secrets: &dyn SecretStore,
        applied: &mut Applied,
        new_secrets: Vec<SecretWrite>,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<(), EngineError> {
        // The values before, for the undo: only organizations that existed can have one.
        let existing: HashMap<String, ()> = applied
            .writes
            .iter()
            .filter(|w| w.before.is_some())
            .map(|w| (classy_secret_name(w.after.id), ()))
            .collect();
        for s in &new_secrets {
            let before = if existing.contains_key(&s.name) {
                match secrets.get_fresh(&s.name).await {
                    Ok(v) => Some(v),
                    Err(SecretError::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            applied.secrets_before.push((s.name.clone(), before));
        }
        secrets
            .put_many(new_secrets.into_iter().map(|s| (s.name, s.value)).collect())
            .await?;
        let mut done = 0;
        for chunk in applied.writes.chunks(ORGS_PER_TRANSACTION) {
            let mut ops = Vec::with_capacity(chunk.len() * 2);
            for w in chunk {
                let (cond, version) = match &w.before {
                    None => (Condition::NotExists, 1),
                    Some((_, v)) => (Condition::VersionIs(*v), v + 1),
                };
                let meta = Item::json(org_pk(w.after.id), META_SK, &w.after).with_version(version);
                let pointer =
                    Item::json(ORGS_PK, org_list_sk(w.after.id), &w.after).with_version(version);
                ops.push((WriteOp::Put(meta), cond));
                ops.push((WriteOp::Put(pointer), Condition::Always));
            }
            self.store.transact(ops).await.map_err(|e| {
                if e.is_condition_failed() {
                    EngineError::Invalid(format!(
                        "an organization among {} changed or appeared while this command ran",
                        describe_ids(chunk.iter().map(|w| w.after.id))
                    ))
                } else {
                    e.into()
                }
            })?;
            done += chunk.len();
            applied.committed = done;
            progress(done);
        }
        Ok(())
    }

    /// Undoes an apply: the organizations as they were (created ones deleted), then the
    /// secrets as they were.
    pub async fn undo(
        &self,
        secrets: &dyn SecretStore,
        applied: Applied,
    ) -> Result<(), EngineError> {
        let mut ops = Vec::new();
        for w in &applied.writes[..applied.committed] {
            let id = w.after.id;
            match &w.before {
                None => {
                    ops.push(WriteOp::Delete {
                        pk: org_pk(id),
                        sk: META_SK.into(),
                    });
                    ops.push(WriteOp::Delete {
                        pk: ORGS_PK.into(),
                        sk: org_list_sk(id),
                    });
                }
                Some((org, v)) => {
                    // A newer version than the one written, so readers never go backwards.
                    let version = v + 2;
                    ops.push(WriteOp::Put(
                        Item::json(org_pk(id), META_SK, org).with_version(version),
                    ));
                    ops.push(WriteOp::Put(
                        Item::json(ORGS_PK, org_list_sk(id), org).with_version(version),
                    ));
                }
            }
        }
        for chunk in ops.chunks(100) {
            self.store.batch_write(chunk.to_vec()).await?;
        }
        let mut restore = Vec::new();
        let mut delete = Vec::new();
        for (name, before) in applied.secrets_before {
            match before {
                Some(v) => restore.push((name, v)),
                None => delete.push(name),
            }
        }
        secrets.put_many(restore).await?;
        secrets.delete_many(delete).await?;
        Ok(())
    }

    /// How many items of each kind the organization holds, by the first segment of their
    /// sort keys (what `org remove --purge --dry-run` shows).
    pub async fn org_item_counts(&self, id: OrgId) -> Result<BTreeMap<String, u64>, EngineError> {
        let mut counts = BTreeMap::new();
        crate::ports::store::for_each_page(
            self.store.as_ref(),
            &org_pk(id),
            &SkRange::All,
            5000,
            |items| {
                for i in items {
                    *counts.entry(item_kind(&i.sk).to_string()).or_default() += 1;
                }
                Ok(())
            },
        )
        .await?;
        Ok(counts)
    }

    /// Deletes every item and secret of an organization. Resumable: the first run leaves a
    /// marker in `ORGS` with the secret names, which only the last step removes, so running
    /// it again after a crash finishes the work. `more_secrets` are the names of the
    /// organization's plugin secrets (the caller knows the plugins).
    pub async fn purge_org(
        &self,
        secrets: &dyn SecretStore,
        id: OrgId,
        more_secrets: Vec<String>,
    ) -> Result<PurgeReport, EngineError> {
        let started = std::time::Instant::now();
        let marker = match self.store.get(ORGS_PK, &purge_marker_sk(id)).await? {
            Some(item) => item.parse::<PurgeMarker>()?,
            None => {
                let meta = self.store.get(&org_pk(id), META_SK).await?;
                let leftovers = self
                    .store
                    .query(&org_pk(id), &SkRange::All, None, 1)
                    .await?;
                let pointer = self.store.get(ORGS_PK, &org_list_sk(id)).await?;
                if meta.is_none() && leftovers.items.is_empty() && pointer.is_none() {
                    return Err(EngineError::UnknownOrg(id));
                }
                let mut names = vec![classy_secret_name(id), webhook_secret_name(id)];
                for n in more_secrets {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                let marker = PurgeMarker {
                    org: id,
                    started_at: self.clock.now().to_rfc3339(),
                    secrets: names,
                };
                self.store
                    .put(
                        Item::json(ORGS_PK, purge_marker_sk(id), &marker),
                        Condition::Always,
                    )
                    .await?;
                // Disabled first: schedules and webhooks stop reaching it while it goes.
                if meta.is_some() {
                    self.set_org_status(id, crate::domain::OrgStatus::Disabled)
                        .await?;
                }
                marker
            }
        };
        secrets.delete_many(marker.secrets.clone()).await?;
        let alerts = self.delete_org_alerts(id).await?;
        let reports = self.delete_org_reports(secrets, id).await?;
        let items = self.store.delete_range(&org_pk(id), &SkRange::All).await?;
        self.store
            .delete(ORGS_PK, &org_list_sk(id), Condition::Always)
            .await?;
        self.store
            .delete(ORGS_PK, &purge_marker_sk(id), Condition::Always)
            .await?;
        Ok(PurgeReport {
            org: id,
            items,
            secrets: marker.secrets.len(),
            alerts,
            reports,
            resumed_from: None,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Whether a purge of the organization was started and not finished.
    pub async fn purge_pending(&self, id: OrgId) -> Result<bool, EngineError> {
        Ok(self
            .store
            .get(ORGS_PK, &purge_marker_sk(id))
            .await?
            .is_some())
    }

    /// Alert states, history and silences of the organization.
    async fn delete_org_alerts(&self, id: OrgId) -> Result<u64, EngineError> {
        let mut doomed = Vec::new();
        let silence_matcher = format!("org {id}");
        for prefix in [ALERT_STATE_PREFIX, ALERT_HISTORY_PREFIX, SILENCE_PREFIX] {
            crate::ports::store::for_each_page(
                self.store.as_ref(),
                ALERTS_PK,
                &SkRange::prefix(prefix),
                1000,
                |items| {
                    for i in items {
                        let v: serde_json::Value = i.parse()?;
                        let mine = v.get("org").and_then(|o| o.as_u64()) == Some(id)
                            || v.get("matcher").and_then(|m| m.as_str())
                                == Some(silence_matcher.as_str());
                        if mine {
                            doomed.push(WriteOp::Delete { pk: i.pk, sk: i.sk });
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        }
        let n = doomed.len() as u64;
        for chunk in doomed.chunks(100) {
            self.store.batch_write(chunk.to_vec()).await?;
        }
        Ok(n)
    }

    /// Report definitions scoped to the organization, with the email channels they own
    /// (their sent markers stay: small, and harmless without the definition).
    async fn delete_org_reports(
        &self,
        secrets: &dyn SecretStore,
        id: OrgId,
    ) -> Result<u64, EngineError> {
        let defs: Vec<ReportDefinition> = parse_all(
            self.store.as_ref(),
            REPORTS_PK,
            &SkRange::prefix(REPORT_DEF_PREFIX),
            500,
        )
        .await?;
        let mut n = 0;
        for def in defs.iter().filter(|d| d.scope == ReportScope::Org(id)) {
            if let Some(name) = def.email_channel() {
                match channels::remove_channel(self.store.as_ref(), secrets, &name).await {
                    Ok(()) | Err(channels::ChannelError::NotFound(_)) => {}
                    Err(e) => return Err(EngineError::Invalid(e.to_string())),
                }
            }
            self.store
                .delete(REPORTS_PK, &report_def_sk(&def.id), Condition::Always)
                .await?;
            n += 1;
        }
        Ok(n)
    }
}

/// Remembers a purge in progress: the secrets it deletes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PurgeMarker {
    org: OrgId,
    started_at: String,
    secrets: Vec<String>,
}

/// What a purge deleted.
#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    pub org: OrgId,
    /// Items of the organization's partition.
    pub items: u64,
    /// Secret names deleted (those that did not exist count too).
    pub secrets: usize,
    pub alerts: u64,
    pub reports: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<String>,
    pub seconds: f64,
}

/// The kind of an organization item, by the first segment of its sort key.
pub fn item_kind(sk: &str) -> &'static str {
    match sk.split('#').next().unwrap_or(sk) {
        "META" => "organization",
        "SUPPORTER" => "supporters",
        "CAMPAIGN" => "campaigns",
        "TXN" => "transactions",
        "PLAN" => "recurring plans",
        "SUPAGG" | "CAMPAGG" => "aggregates",
        "SIDX" | "CIDX" => "indexes",
        "DIRTY" => "dirty markers",
        "ROLLUP" => "rollups",
        "CURSOR" => "cursors",
        "LEASE" | "QUEUED" | "RERUN" => "leases and queue markers",
        "RUN" | "LASTRUN" => "runs",
        "FAIL" => "failure streaks",
        "QUARANTINE" => "quarantined records",
        "CHG" => "change log",
        "CREDENTIAL" => "credential records",
        "COUNTER" => "counters",
        "PLUGIN" => "plugin state",
        "WEBHOOK" => "webhook deliveries",
        _ => "other",
    }
}

fn describe_ids(ids: impl Iterator<Item = OrgId>) -> String {
    let v: Vec<String> = ids.map(|i| i.to_string()).collect();
    match v.len() {
        0..=5 => v.join(", "),
        n => format!("{} … ({n} organizations)", v[..5].join(", ")),
    }
}
