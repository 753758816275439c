//! Runs destination plugins for an organization: configuration (`PLUGIN#<name>#CONFIG`),
//! a lease per organization×plugin, change sets read from the change log since the plugin's
//! cursor (or every supporter, in a reconcile), and the plugin's state (`PLUGIN#<name>#STATE`:
//! cursor, last success, last error and failure streak). A plugin's failure is recorded on
//! its own state and never fails a sync or another plugin.

use super::lease::LeaseHolder;
use super::lease::{holder_is_gone, lease_holder};
use super::{Datastore, EngineError};
use crate::domain::aggregates::SupporterAggregates;
use crate::domain::changes::{change_sk_from, parse_change, CHANGE_PREFIX, CHANGE_RETENTION_SECS};
use crate::domain::keys::{self, org_pk};
use crate::domain::schedule::failure_backoff;
use crate::domain::usage::{push_mailchimp_calls, Operation};
use crate::domain::{Entity, OrgId, Supporter, Transaction};
use crate::ports::store::{for_each_page, Condition, Item, SkRange};
use crate::ports::{
    ChangeSet, ConcurrencyLimit, Destination, DestinationContext, EventBusConnector, ExpiryOnly,
    HolderLiveness, PluginConfig, PluginError, PluginRegistry, PluginSpec, PushReport, SecretStore,
    SupporterView,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Supporters per change set handed to a plugin (memory stays bounded by this).
pub const PUSH_CHUNK: usize = 5000;
/// Change entries are re-read this far behind the cursor: concurrent writers commit out of
/// order, and pushes are idempotent, so reading a little twice costs nothing.
pub const CHANGE_OVERLAP_MS: i64 = 5 * 60 * 1000;
/// A full reconcile (time moves segments without data changes) at least this often.
pub const RECONCILE_EVERY_SECS: i64 = 24 * 3600;
/// Plugins run at least this often from the scheduler (besides after every sync).
pub const PUSH_EVERY_SECS: i64 = 3600;

pub use crate::domain::keys::{plugin_config_sk as config_sk, plugin_state_sk as state_sk};
use crate::domain::keys::{plugin_lease_sk as lease_sk, prefix_end, DIRTY_PREFIX};

/// Per organization×plugin bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginState {
    /// Change entries from here (minus the overlap) are still to be pushed.
    pub cursor_ms: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_reconcile_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    /// Summary of the last successful run (without a diff).
    pub last_report: Option<PushReport>,
}

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Only this plugin (else every enabled one).
    pub plugin: Option<String>,
    pub dry_run: bool,
    /// Compare every supporter, not only the changed ones.
    pub full: bool,
}

/// The outcome of one plugin for one organization.
#[derive(Debug, Clone)]
pub struct PluginRun {
    pub org: OrgId,
    pub plugin: String,
    pub reconcile: bool,
    pub result: Result<PushReport, String>,
}

impl PluginRun {
    pub fn failed(&self) -> bool {
        self.result.is_err()
    }
}

/// Runs an organization's destination plugins: their configuration and state in the store,
/// their credentials in the secret store, the plugins themselves from the registry.
#[derive(Clone)]
pub struct PluginService {
    pub data: Datastore,
    pub secrets: Arc<dyn SecretStore>,
    /// The destination plugins this deployment knows.
    pub plugins: PluginRegistry,
    /// Opens the event buses destination plugins target.
    pub buses: Option<Arc<dyn EventBusConnector>>,
    /// Whether a plugin lease's holder is gone; by default leases simply expire.
    pub liveness: Arc<dyn HolderLiveness>,
    /// Shared concurrency limits handed to the plugins (none: each client limits itself).
    pub concurrency: Option<Arc<dyn ConcurrencyLimit>>,
}

impl PluginService {
    pub fn new(data: Datastore, secrets: Arc<dyn SecretStore>, plugins: PluginRegistry) -> Self {
        PluginService {
            data,
            secrets,
            plugins,
            buses: None,
            liveness: Arc::new(ExpiryOnly),
            concurrency: None,
        }
    }

    pub fn with_buses(mut self, buses: Arc<dyn EventBusConnector>) -> Self {
        self.buses = Some(buses);
        self
    }

    pub fn with_liveness(mut self, liveness: Arc<dyn HolderLiveness>) -> Self {
        self.liveness = liveness;
        self
    }

    /// Plugins limit their requests in flight through `limit`, shared by every process on
    /// the same store (the roots pass the engine's `StoreSemaphore`).
    pub fn with_concurrency(mut self, limit: Arc<dyn ConcurrencyLimit>) -> Self {
        self.concurrency = Some(limit);
        self
    }
}

impl PluginService {
    /// What a destination plugin of `org` runs with: this engine's store, secrets, clock and
    /// event buses.
    pub fn destination_context(
        &self,
        org: OrgId,
        config: PluginConfig,
        dry_run: bool,
    ) -> DestinationContext {
        DestinationContext {
            org,
            config,
            store: self.data.store.clone(),
            // A plugin reads only its organization's secrets, whatever its secret_name says.
            secrets: Arc::new(crate::ports::destination::OrgScopedSecrets::new(
                org,
                self.secrets.clone(),
            )),
            clock: self.data.clock.clone(),
            buses: self.buses.clone(),
            concurrency: self.concurrency.clone(),
            dry_run,
        }
    }

    /// The configuration of every known plugin the organization has, by plugin name. Read
    /// key by key from the registry: plugins keep their own items under `PLUGIN#<name>#`
    /// (the change feed one per delivered record), so a scan of `PLUGIN#` would have to page
    /// through all of them first.
    pub async fn plugin_configs(&self, org: OrgId) -> Result<Vec<PluginConfig>, EngineError> {
        let sks: Vec<String> = self.plugins.names().map(config_sk).collect();
        if sks.is_empty() {
            return Ok(Vec::new());
        }
        let mut items = self.data.store.batch_get(&org_pk(org), &sks).await?;
        items.sort_by(|a, b| a.sk.cmp(&b.sk));
        items
            .iter()
            .map(|i| Ok(i.parse::<PluginConfig>()?))
            .collect()
    }

    pub async fn plugin_config(
        &self,
        org: OrgId,
        plugin: &str,
    ) -> Result<Option<PluginConfig>, EngineError> {
        match self
            .data
            .store
            .get(&org_pk(org), &config_sk(plugin))
            .await?
        {
            Some(i) => Ok(Some(i.parse()?)),
            None => Ok(None),
        }
    }

    /// Stores a plugin's configuration after the plugin validated it.
    pub async fn put_plugin_config(
        &self,
        org: OrgId,
        config: PluginConfig,
    ) -> Result<(), EngineError> {
        self.data.get_org(org).await?;
        let spec = self
            .plugins
            .find(&config.plugin)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        (spec.validate)(&config.settings).map_err(|e| EngineError::Invalid(e.to_string()))?;
        if let Some(name) = &config.secret_name {
            crate::ports::destination::check_plugin_secret_name(org, name)
                .map_err(EngineError::Invalid)?;
        }
        let config = PluginConfig {
            plugin: spec.name.to_string(),
            ..config
        };
        // Different settings (another list, other rules): the next push reconciles in full.
        if self
            .plugin_config(org, spec.name)
            .await?
            .is_some_and(|old| old.settings != config.settings)
        {
            self.data
                .store
                .delete(&org_pk(org), &state_sk(spec.name), Condition::Always)
                .await?;
        }
        self.data
            .store
            .put(
                Item::json(org_pk(org), config_sk(spec.name), &config),
                Condition::Always,
            )
            .await?;
        Ok(())
    }

    /// Removes a plugin's configuration and state (its per-member records stay, so adding
    /// it back does not resend everything). Returns whether it was configured.
    pub async fn remove_plugin_config(
        &self,
        org: OrgId,
        plugin: &str,
    ) -> Result<bool, EngineError> {
        let pk = org_pk(org);
        let existed = self
            .data
            .store
            .get(&pk, &config_sk(plugin))
            .await?
            .is_some();
        self.data
            .store
            .delete(&pk, &config_sk(plugin), Condition::Always)
            .await?;
        self.data
            .store
            .delete(&pk, &state_sk(plugin), Condition::Always)
            .await?;
        Ok(existed)
    }

    pub async fn plugin_state(&self, org: OrgId, plugin: &str) -> Result<PluginState, EngineError> {
        match self.data.store.get(&org_pk(org), &state_sk(plugin)).await? {
            Some(i) => Ok(i.parse()?),
            None => Ok(PluginState::default()),
        }
    }

    async fn save_plugin_state(
        &self,
        org: OrgId,
        plugin: &str,
        state: &PluginState,
    ) -> Result<(), EngineError> {
        self.data
            .store
            .put(
                Item::json(org_pk(org), state_sk(plugin), state),
                Condition::Always,
            )
            .await?;
        Ok(())
    }

    /// Runs the organization's enabled plugins (or the one named), each isolated from the
    /// others. Errors here concern reading the configuration only.
    pub async fn push_org(
        &self,
        org: OrgId,
        opts: &PushOptions,
    ) -> Result<Vec<PluginRun>, EngineError> {
        self.data.get_org(org).await?;
        let mut configs = self.plugin_configs(org).await?;
        if let Some(name) = &opts.plugin {
            let spec = self
                .plugins
                .find(name)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            configs.retain(|c| c.plugin == spec.name);
            if configs.is_empty() {
                return Err(EngineError::Invalid(format!(
                    "plugin {} is not configured for organization {org} (see `classy-sync org plugin add`)",
                    spec.name
                )));
            }
        } else {
            configs.retain(|c| c.enabled);
        }
        let mut runs = Vec::with_capacity(configs.len());
        for config in configs {
            runs.push(self.run_plugin(org, config, opts).await);
        }
        Ok(runs)
    }

    /// Plugins due by the clock: never pushed, an hour since the last success, a reconcile
    /// due; a failing plugin waits out its backoff.
    pub async fn due_pushes(&self) -> Result<Vec<(OrgId, String)>, EngineError> {
        let now = self.data.clock.unix();
        let mut due = Vec::new();
        for org in self.data.list_orgs().await? {
            if !org.is_enabled() {
                continue;
            }
            for c in self.plugin_configs(org.id).await? {
                if !c.enabled {
                    continue;
                }
                let s = self.plugin_state(org.id, &c.plugin).await?;
                if s.consecutive_failures > 0 {
                    let wait = failure_backoff(s.consecutive_failures).as_secs() as i64;
                    if now < s.last_attempt_at.unwrap_or(0) + wait {
                        continue;
                    }
                    due.push((org.id, c.plugin));
                    continue;
                }
                let stale = s.last_success_at.is_none_or(|t| now - t >= PUSH_EVERY_SECS);
                let reconcile = s
                    .last_reconcile_at
                    .is_none_or(|t| now - t >= RECONCILE_EVERY_SECS);
                if stale || reconcile {
                    due.push((org.id, c.plugin));
                }
            }
        }
        Ok(due)
    }

    async fn run_plugin(&self, org: OrgId, config: PluginConfig, opts: &PushOptions) -> PluginRun {
        let name = config.plugin.clone();
        let mut state = match self.plugin_state(org, &name).await {
            Ok(s) => s,
            Err(e) => {
                return PluginRun {
                    org,
                    plugin: name,
                    reconcile: false,
                    result: Err(e.to_string()),
                }
            }
        };
        let now = self.data.clock.unix();
        let started_at_ms = self.data.clock.now().timestamp_millis();
        let t0 = std::time::Instant::now();
        let reconcile = opts.full
            || state.cursor_ms.is_none()
            || state
                .last_reconcile_at
                .is_none_or(|t| now - t >= RECONCILE_EVERY_SECS)
            || state
                .cursor_ms
                .is_some_and(|c| now - c / 1000 >= CHANGE_RETENTION_SECS - 24 * 3600);
        let mut destination_calls = Some(0);
        let result = self
            .push_plugin(
                org,
                &config,
                &state,
                reconcile,
                opts.dry_run,
                &mut destination_calls,
            )
            .await;
        if !opts.dry_run
            && !matches!(&result, Err(PluginError::Destination { plugin, .. }) if plugin == "lease")
        {
            state.last_attempt_at = Some(now);
            match &result {
                Ok((report, cursor)) => {
                    state.cursor_ms = *cursor;
                    state.last_success_at = Some(now);
                    if reconcile {
                        state.last_reconcile_at = Some(now);
                    }
                    state.last_error = None;
                    state.consecutive_failures = 0;
                    state.last_report = Some(PushReport {
                        diff: Vec::new(),
                        ..report.clone()
                    });
                }
                Err(e) => {
                    state.last_error = Some(e.to_string());
                    state.consecutive_failures += 1;
                }
            }
            if let Err(e) = self.save_plugin_state(org, &name, &state).await {
                tracing::warn!(org, plugin = %name, error = %e, "could not save plugin state");
            }
            // Fresh compliance refusals feed the health check's compliance-spike alert.
            if let Ok((report, _)) = &result {
                let refused = report
                    .counts
                    .get("compliance_skipped")
                    .copied()
                    .unwrap_or(0);
                if let Err(e) = self.data.count_compliance_refusals(org, refused).await {
                    tracing::warn!(org, plugin = %name, error = %e, "could not count compliance refusals");
                }
            }
            // Usage analytics: one operation record per organization×plugin push.
            let mut op = self
                .data
                .new_op(org, Operation::Push, name.clone(), started_at_ms);
            op.duration_ms = t0.elapsed().as_millis() as u64;
            op.records = result.as_ref().ok().map(|(r, _)| r.sent);
            op.classy_calls = Some(0);
            op.destination_calls = destination_calls;
            op.mailchimp_calls = push_mailchimp_calls(&name, destination_calls);
            op.error = result.as_ref().err().map(|e| e.to_string());
            self.data.record_op_logged(&op).await;
        }
        PluginRun {
            org,
            plugin: name,
            reconcile,
            result: result.map(|(r, _)| r).map_err(|e| e.to_string()),
        }
    }

    /// One plugin run; returns the summed report and the new cursor.
    async fn push_plugin(
        &self,
        org: OrgId,
        config: &PluginConfig,
        state: &PluginState,
        reconcile: bool,
        dry_run: bool,
        destination_calls: &mut Option<u64>,
    ) -> Result<(PushReport, Option<i64>), PluginError> {
        let spec = self.plugins.find(&config.plugin)?;
        (spec.validate)(&config.settings)?;
        let start_ms = self.data.clock.now().timestamp_millis();
        let pk = org_pk(org);
        // Aggregates not yet recomputed: the entries read now may be pushed with stale giving
        // data, so the cursor stays put and they are read again next time.
        let pending = !self
            .data
            .store
            .query(&pk, &SkRange::prefix(DIRTY_PREFIX), None, 1)
            .await?
            .items
            .is_empty();
        let mut lease = if dry_run {
            None
        } else {
            Some(self.take_plugin_lease(org, spec.name).await?)
        };
        let ctx = self.destination_context(org, config.clone(), dry_run);
        let mut plugin = (spec.build)(config)?;
        let work = async {
            plugin.prepare(&ctx).await?;
            self.feed(&ctx, spec, plugin.as_mut(), state, reconcile)
                .await
        };
        // The lease is renewed on a timer, not between change sets: one change set can take
        // longer than the lease (a slow destination), and a lapsed lease lets a second worker
        // push the same plugin. A lost lease stops the push.
        let outcome: Result<PushReport, PluginError> = tokio::select! {
            r = work => r,
            Err(e) = self.keep_plugin_lease(org, spec.name, &mut lease) => Err(e),
        };
        *destination_calls = plugin.calls_made();
        let _ = plugin.shutdown().await;
        if let Some(l) = lease {
            let _ = self
                .data
                .store
                .delete(&pk, &lease_sk(spec.name), Condition::VersionIs(l))
                .await;
        }
        let report = outcome?;
        let cursor = if pending {
            state.cursor_ms
        } else {
            Some(start_ms)
        };
        Ok((report, cursor))
    }

    /// Hands the plugin its change sets, chunk by chunk, then lets it finish.
    async fn feed(
        &self,
        ctx: &DestinationContext,
        spec: &PluginSpec,
        plugin: &mut dyn Destination,
        state: &PluginState,
        reconcile: bool,
    ) -> Result<PushReport, PluginError> {
        let org = ctx.org;
        let mut total = PushReport::default();
        let (changed_supporters, changed_txns) = match state.cursor_ms {
            Some(c) => self.read_changes(org, c - CHANGE_OVERLAP_MS).await?,
            None => (BTreeSet::new(), BTreeSet::new()),
        };
        if spec.wants.supporters {
            if reconcile {
                let superseded = if spec.wants.addresses {
                    self.data.superseded_supporters(org).await?
                } else {
                    HashSet::new()
                };
                let mut after: Option<String> = None;
                let mut buffer: Vec<Supporter> = Vec::new();
                loop {
                    let page = self
                        .data
                        .store
                        .query(
                            &org_pk(org),
                            &SkRange::prefix(Entity::Supporters.sk_prefix()),
                            after.as_deref(),
                            self.data.options.scan_page,
                        )
                        .await?;
                    for item in &page.items {
                        buffer.push(item.parse()?);
                    }
                    let done = page.next.is_none();
                    after = page.next;
                    if buffer.len() >= PUSH_CHUNK || (done && !buffer.is_empty()) {
                        let set = self
                            .supporter_set(org, std::mem::take(&mut buffer), Some(&superseded))
                            .await?;
                        total.add(plugin.push(ctx, &set).await?);
                    }
                    if done {
                        break;
                    }
                }
            } else {
                let ids: Vec<u64> = changed_supporters.into_iter().collect();
                for chunk in ids.chunks(PUSH_CHUNK) {
                    let supporters: Vec<Supporter> =
                        self.records(org, Entity::Supporters, chunk).await?;
                    let set = self.supporter_set(org, supporters, None).await?;
                    total.add(plugin.push(ctx, &set).await?);
                }
            }
        }
        if spec.wants.transactions && reconcile {
            // A reconcile hands over every transaction (the change log may not reach back to
            // the first push); the destination skips what it already sent.
            let mut after: Option<String> = None;
            loop {
                let page = self
                    .data
                    .store
                    .query(
                        &org_pk(org),
                        &SkRange::prefix(Entity::Transactions.sk_prefix()),
                        after.as_deref(),
                        self.data.options.scan_page.min(PUSH_CHUNK),
                    )
                    .await?;
                let mut transactions: Vec<Transaction> = Vec::with_capacity(page.items.len());
                for item in &page.items {
                    transactions.push(item.parse()?);
                }
                if !transactions.is_empty() {
                    let set = ChangeSet {
                        org,
                        supporters: Vec::new(),
                        transactions,
                        reconcile,
                    };
                    total.add(plugin.push(ctx, &set).await?);
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        } else if spec.wants.transactions {
            let ids: Vec<u64> = changed_txns.into_iter().collect();
            for chunk in ids.chunks(PUSH_CHUNK) {
                let transactions: Vec<Transaction> =
                    self.records(org, Entity::Transactions, chunk).await?;
                let set = ChangeSet {
                    org,
                    supporters: Vec::new(),
                    transactions,
                    reconcile,
                };
                total.add(plugin.push(ctx, &set).await?);
            }
        }
        total.add(plugin.finish(ctx).await?);
        Ok(total)
    }

    /// Supporters and transactions named by change entries at or after `from_ms`.
    pub async fn read_changes(
        &self,
        org: OrgId,
        from_ms: i64,
    ) -> Result<(BTreeSet<u64>, BTreeSet<u64>), PluginError> {
        let mut supporters = BTreeSet::new();
        let mut txns = BTreeSet::new();
        let range = SkRange::Between(change_sk_from(from_ms), prefix_end(CHANGE_PREFIX));
        for_each_page(
            self.data.store.as_ref(),
            &org_pk(org),
            &range,
            self.data.options.scan_page,
            |items| {
                for item in &items {
                    let Some(c) = parse_change(org, &item.sk, &item.data) else {
                        continue;
                    };
                    match c.entity {
                        Entity::Supporters => {
                            supporters.insert(c.id);
                        }
                        Entity::Transactions => {
                            txns.insert(c.id);
                            supporters.extend(c.note.supporters);
                        }
                        Entity::RecurringPlans => supporters.extend(c.note.supporters),
                        Entity::Campaigns => {}
                    }
                }
                Ok(())
            },
        )
        .await?;
        Ok((supporters, txns))
    }

    /// The stored records of `entity` with these ids, in id order (missing ones left out).
    async fn records<T: serde::de::DeserializeOwned>(
        &self,
        org: OrgId,
        entity: Entity,
        ids: &[u64],
    ) -> Result<Vec<T>, PluginError> {
        let sks: Vec<String> = ids.iter().map(|id| keys::record_sk(entity, *id)).collect();
        let mut items = self.data.store.batch_get(&org_pk(org), &sks).await?;
        // Keys hold zero-padded ids: key order is id order.
        items.sort_by(|a, b| a.sk.cmp(&b.sk));
        Ok(items.iter().map(|i| i.parse()).collect::<Result<_, _>>()?)
    }

    /// Supporters with their aggregates (defaults for those who never gave). A reconcile
    /// passes the superseded supporters (empty unless the plugin asked for them).
    async fn supporter_set(
        &self,
        org: OrgId,
        supporters: Vec<Supporter>,
        superseded: Option<&HashSet<u64>>,
    ) -> Result<ChangeSet, PluginError> {
        let sks: Vec<String> = supporters
            .iter()
            .map(|s| keys::supporter_agg_sk(s.id))
            .collect();
        let mut aggs: HashMap<u64, SupporterAggregates> = HashMap::with_capacity(sks.len());
        for item in self.data.store.batch_get(&org_pk(org), &sks).await? {
            if let Some(id) = keys::id_from_sk(&item.sk) {
                aggs.insert(id, item.parse()?);
            }
        }
        Ok(ChangeSet {
            org,
            supporters: supporters
                .into_iter()
                .map(|s| SupporterView {
                    aggregates: aggs.remove(&s.id).unwrap_or_default(),
                    superseded: superseded.is_some_and(|set| set.contains(&s.id)),
                    supporter: s,
                })
                .collect(),
            transactions: Vec::new(),
            reconcile: superseded.is_some(),
        })
    }

    /// Plugin leases last as long as sync leases (renewed every third of that while a push
    /// runs).
    fn plugin_lease_ttl(&self) -> i64 {
        self.data.options.lease_ttl.as_secs().max(1) as i64
    }

    async fn take_plugin_lease(&self, org: OrgId, plugin: &str) -> Result<u64, PluginError> {
        let pk = org_pk(org);
        let sk = lease_sk(plugin);
        let now = self.data.clock.unix();
        let existing = self.data.store.get(&pk, &sk).await?;
        let (cond, version) = match &existing {
            None => (Condition::NotExists, 1),
            Some(i) => {
                let dead = i
                    .parse::<LeaseHolder>()
                    .is_ok_and(|h| holder_is_gone(self.liveness.as_ref(), &h));
                if i.expires_at.is_some_and(|e| e < now) || dead {
                    (Condition::VersionIs(i.version), i.version + 1)
                } else {
                    return Err(PluginError::destination(
                        "lease",
                        format!("{plugin} is already running for organization {org}"),
                    ));
                }
            }
        };
        let holder = lease_holder(
            self.liveness.as_ref(),
            format!("push-{}", uuid::Uuid::new_v4()),
        );
        let item = Item::json(&pk, &sk, &holder)
            .with_version(version)
            .with_expiry(now + self.plugin_lease_ttl());
        match self.data.store.put(item, cond).await {
            Ok(()) => Ok(version),
            Err(e) if e.is_condition_failed() => Err(PluginError::destination(
                "lease",
                format!("{plugin} is already running for organization {org}"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Renews the lease every third of its time to live until it is lost (the error) or the
    /// future is dropped (the push ended).
    async fn keep_plugin_lease(
        &self,
        org: OrgId,
        plugin: &str,
        lease: &mut Option<u64>,
    ) -> Result<std::convert::Infallible, PluginError> {
        let every = Duration::from_secs((self.plugin_lease_ttl() as u64 / 3).max(1));
        loop {
            tokio::time::sleep(every).await;
            self.renew_plugin_lease(org, plugin, lease).await?;
        }
    }

    async fn renew_plugin_lease(
        &self,
        org: OrgId,
        plugin: &str,
        lease: &mut Option<u64>,
    ) -> Result<(), PluginError> {
        let Some(v) = *lease else { return Ok(()) };
        let pk = org_pk(org);
        let sk = lease_sk(plugin);
        let Some(item) = self.data.store.get(&pk, &sk).await? else {
            return Err(PluginError::destination("lease", "lost the plugin lease"));
        };
        if item.version != v {
            return Err(PluginError::destination("lease", "lost the plugin lease"));
        }
        let renewed = Item {
            version: v + 1,
            expires_at: Some(self.data.clock.unix() + self.plugin_lease_ttl()),
            ..item
        };
        self.data
            .store
            .put(renewed, Condition::VersionIs(v))
            .await
            .map_err(|e| {
                if e.is_condition_failed() {
                    PluginError::destination("lease", "lost the plugin lease")
                } else {
                    e.into()
                }
            })?;
        *lease = Some(v + 1);
        Ok(())
    }
}
