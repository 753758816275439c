//! Destination plugins: where classy-sync sends what changed (Mailchimp, a change feed, ...).
//!
//! Lifecycle, driven by `engine::plugins`:
//! 1. `validate` (the registry's [`PluginSpec::validate`]) checks the settings
//!    when they are configured and again before every run;
//! 2. `build` makes the plugin from its configuration, then [`Destination::prepare`] loads
//!    credentials and readies the destination (e.g. creates missing fields, once);
//! 3. [`Destination::push`] is called with bounded [`ChangeSet`]s (memory stays flat) until
//!    the changes are exhausted, then [`Destination::finish`] sends what the plugin held back
//!    to fill its batches across change sets; the engine advances the plugin's cursor only
//!    after all of it succeeded, so a killed run is simply pushed again (pushes are
//!    idempotent);
//! 4. [`Destination::health`] answers whether the destination is reachable and usable;
//! 5. [`Destination::shutdown`] releases what `prepare` opened.
//!
//! A plugin's failure is its own: the engine records it per organization×plugin and never
//! lets it fail a sync or another plugin.

use crate::domain::aggregates::SupporterAggregates;
use crate::domain::{OrgId, Supporter, Transaction};
use crate::ports::{
    Clock, ConcurrencyLimit, EventBusConnector, SecretError, SecretStore, Store, StoreError,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One organization's configuration of one plugin (stored as `PLUGIN#<name>#CONFIG`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginConfig {
    pub plugin: String,
    pub enabled: bool,
    /// Plugin-specific settings, checked by the plugin's `validate`.
    #[serde(default)]
    pub settings: serde_json::Value,
    /// Name of the plugin's credential in the secret store, when it needs one.
    #[serde(default)]
    pub secret_name: Option<String>,
}

/// `classy-sync/<org>/<plugin>`: where a plugin's credential lives.
pub fn plugin_secret_name(org: OrgId, plugin: &str) -> String {
    format!("classy-sync/{org}/{plugin}")
}

/// Checks that a plugin's `secret_name` belongs to `org`: `classy-sync/<org>/<name>` with one
/// segment of 1-64 letters, digits, `-` or `_`, and not the organization's Classy credential
/// (`classy`). A configuration naming another organization's secret (or anything else) is
/// refused: the plugin would otherwise send that credential to its destination.
pub fn check_plugin_secret_name(org: OrgId, name: &str) -> Result<(), String> {
    let prefix = format!("classy-sync/{org}/");
    let rest = name.strip_prefix(&prefix).ok_or_else(|| {
        format!("secret_name must be in the organization's namespace {prefix}<name>")
    })?;
    let ok = !rest.is_empty()
        && rest.len() <= 64
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && rest != "classy"
        && rest != "webhook";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "secret_name must be {prefix}<name> (letters, digits, '-', '_'; not the Classy credential)"
        ))
    }
}

/// The secret store a plugin of `org` sees: only names that pass
/// [`check_plugin_secret_name`] for that organization; anything else is refused without
/// reaching the store.
pub struct OrgScopedSecrets {
    org: OrgId,
    inner: Arc<dyn SecretStore>,
}

impl OrgScopedSecrets {
    pub fn new(org: OrgId, inner: Arc<dyn SecretStore>) -> Self {
        OrgScopedSecrets { org, inner }
    }

    fn check(&self, name: &str) -> Result<(), SecretError> {
        check_plugin_secret_name(self.org, name).map_err(|why| {
            SecretError::Unavailable(format!(
                "secret {name} refused for organization {}: {why}",
                self.org
            ))
        })
    }
}

#[async_trait]
impl SecretStore for OrgScopedSecrets {
    async fn get(&self, name: &str) -> Result<secrecy::SecretString, SecretError> {
        self.check(name)?;
        self.inner.get(name).await
    }

    async fn put(&self, name: &str, value: secrecy::SecretString) -> Result<(), SecretError> {
        self.check(name)?;
        self.inner.put(name, value).await
    }

    async fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.check(name)?;
        self.inner.delete(name).await
    }
}

/// What a plugin may use while it runs. Its own state goes under `PLUGIN#<name>#` in the
/// organization's partition.
#[derive(Clone)]
pub struct DestinationContext {
    pub org: OrgId,
    pub config: PluginConfig,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    /// Opens the event buses a plugin targets (none: such targets fail to prepare).
    pub buses: Option<Arc<dyn EventBusConnector>>,
    /// Shared concurrency limits (a Mailchimp key's requests in flight across every process
    /// sharing the store); none: each client limits only itself.
    pub concurrency: Option<Arc<dyn ConcurrencyLimit>>,
    /// Compute and report what would change; write nothing anywhere.
    pub dry_run: bool,
}

/// A supporter as a destination sees it: the record and its giving aggregates (defaults
/// when the supporter has never given).
#[derive(Debug, Clone, PartialEq)]
pub struct SupporterView {
    pub supporter: Supporter,
    pub aggregates: SupporterAggregates,
    /// In a reconcile of a plugin that asks for it ([`Wants::addresses`]): another supporter
    /// with the same email address (case-insensitive) was updated more recently, so a
    /// destination keyed by address should leave this one out.
    pub superseded: bool,
}

/// A bounded set of changes for one organization.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    pub org: OrgId,
    /// Supporters whose record or giving aggregates changed (or, in a reconcile, every
    /// supporter), in id order.
    pub supporters: Vec<SupporterView>,
    /// Transactions created or changed since the plugin's last push (only loaded for
    /// plugins that ask for them).
    pub transactions: Vec<Transaction>,
    /// This set is part of a full reconcile: the destination should compare every
    /// supporter with what it holds (time-driven segments move without data changes).
    pub reconcile: bool,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.supporters.is_empty() && self.transactions.is_empty()
    }
}

/// What one push (or a whole run, summed) did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushReport {
    /// Records looked at.
    pub considered: u64,
    /// Records the destination was asked to change.
    pub sent: u64,
    /// Records that already matched the destination.
    pub unchanged: u64,
    /// Records the destination refused (reported, not fatal).
    pub failed: u64,
    /// Plugin-specific counts (e.g. created, updated, unsubscribed, compliance_skipped,
    /// tags_removed, api_calls).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// The first few per-record failure reasons.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Dry runs: one line per change that would be made.
    #[serde(default)]
    pub diff: Vec<String>,
}

/// How many failure reasons and diff lines a report keeps.
pub const REPORT_ERRORS_KEPT: usize = 10;
pub const REPORT_DIFF_KEPT: usize = 100_000;

impl PushReport {
    pub fn count(&mut self, name: &str, n: u64) {
        if n > 0 {
            *self.counts.entry(name.to_string()).or_default() += n;
        }
    }

    pub fn get(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    pub fn error(&mut self, reason: String) {
        self.failed += 1;
        if self.errors.len() < REPORT_ERRORS_KEPT {
            self.errors.push(reason);
        }
    }

    pub fn add(&mut self, o: PushReport) {
        self.considered += o.considered;
        self.sent += o.sent;
        self.unchanged += o.unchanged;
        self.failed += o.failed;
        for (k, v) in o.counts {
            self.count(&k, v);
        }
        for e in o.errors {
            if self.errors.len() < REPORT_ERRORS_KEPT {
                self.errors.push(e);
            }
        }
        let room = REPORT_DIFF_KEPT.saturating_sub(self.diff.len());
        self.diff.extend(o.diff.into_iter().take(room));
    }
}

/// A destination's health: a plugin reports `healthy` or `unhealthy` with a detail; the
/// health check completes it with the plugin's name and how long the probe took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationHealth {
    pub name: String,
    pub ok: bool,
    pub latency_ms: u64,
    /// What was checked, or why it failed; never a secret.
    pub detail: String,
}

impl DestinationHealth {
    pub fn healthy(detail: impl Into<String>) -> Self {
        DestinationHealth {
            name: String::new(),
            ok: true,
            latency_ms: 0,
            detail: detail.into(),
        }
    }

    pub fn unhealthy(detail: impl Into<String>) -> Self {
        DestinationHealth {
            ok: false,
            ..Self::healthy(detail)
        }
    }

    /// The same report, for destination `name`, probed in `latency_ms`.
    pub fn named(self, name: impl Into<String>, latency_ms: u64) -> Self {
        DestinationHealth {
            name: name.into(),
            latency_ms,
            ..self
        }
    }

    /// Why the destination is not healthy.
    pub fn problem(&self) -> Option<&str> {
        (!self.ok).then_some(self.detail.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("unknown plugin {0:?} (known: {1})")]
    Unknown(String, String),
    #[error("invalid {plugin} configuration: {message}")]
    Config { plugin: String, message: String },
    #[error("{plugin} credential: {message}")]
    Credentials { plugin: String, message: String },
    #[error("{plugin}: {message}")]
    Destination { plugin: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl PluginError {
    pub fn config(plugin: &str, message: impl Into<String>) -> Self {
        PluginError::Config {
            plugin: plugin.to_string(),
            message: message.into(),
        }
    }

    pub fn destination(plugin: &str, message: impl Into<String>) -> Self {
        PluginError::Destination {
            plugin: plugin.to_string(),
            message: message.into(),
        }
    }
}

/// What a plugin needs loaded into its change sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wants {
    pub supporters: bool,
    pub transactions: bool,
    /// Mark supporters whose address a more recently updated supporter shares (in a
    /// reconcile), so one address is settled once, before anything is sent.
    pub addresses: bool,
}

#[async_trait]
pub trait Destination: Send + Sync {
    /// The registry name (`mailchimp`).
    fn name(&self) -> &'static str;

    /// Loads credentials and readies the destination. Called once per run, before any push.
    async fn prepare(&mut self, ctx: &DestinationContext) -> Result<(), PluginError>;

    /// Sends one bounded set of changes (it may hold some back for [`Destination::finish`]).
    /// Per-record refusals go into the report; an `Err` means the run failed (the cursor
    /// stays where it was).
    async fn push(
        &mut self,
        ctx: &DestinationContext,
        changes: &ChangeSet,
    ) -> Result<PushReport, PluginError>;

    /// Sends whatever the pushes held back; called once after the last change set.
    async fn finish(&mut self, _ctx: &DestinationContext) -> Result<PushReport, PluginError> {
        Ok(PushReport::default())
    }

    /// Whether the destination answers and accepts the credential.
    async fn health(&self, ctx: &DestinationContext) -> Result<DestinationHealth, PluginError>;

    /// Releases what `prepare` opened.
    async fn shutdown(&mut self) -> Result<(), PluginError> {
        Ok(())
    }

    /// HTTP requests this plugin sent to its destination since it was built (one run:
    /// `prepare`, every push and `finish`, retries included), when it counts them; the usage
    /// analytics record it per push.
    fn calls_made(&self) -> Option<u64> {
        None
    }
}

/// How the engine finds, checks and builds one kind of destination.
pub struct PluginSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// What its change sets must carry.
    pub wants: Wants,
    /// Whether it needs a credential in the secret store (`classy-sync/<org>/<name>`).
    pub needs_secret: bool,
    /// Checks the plugin-specific settings; the error names the bad field.
    pub validate: fn(&serde_json::Value) -> Result<(), PluginError>,
    /// Makes the plugin from a validated configuration (no I/O; `prepare` does that).
    pub build: fn(&PluginConfig) -> Result<Box<dyn Destination>, PluginError>,
}

/// The destinations a deployment knows: handed to the engine by the composition root (the
/// destinations crate holds the list), so the engine never names a concrete plugin.
#[derive(Clone, Copy, Default)]
pub struct PluginRegistry {
    specs: &'static [PluginSpec],
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl PluginRegistry {
    pub const fn new(specs: &'static [PluginSpec]) -> Self {
        PluginRegistry { specs }
    }

    pub fn specs(&self) -> &'static [PluginSpec] {
        self.specs
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        self.specs.iter().map(|s| s.name)
    }

    /// The plugin called `name` (case and surrounding space ignored); the error lists the
    /// known names.
    pub fn find(&self, name: &str) -> Result<&'static PluginSpec, PluginError> {
        self.specs
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                PluginError::Unknown(
                    name.to_string(),
                    self.names().collect::<Vec<_>>().join(", "),
                )
            })
    }
}
