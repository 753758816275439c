//! The destination side of the health monitor: every enabled plugin of an organization is
//! prepared and asked for its health (each plugin decides how; Mailchimp pings and reads the
//! list), and the compliance refusals plugins report are counted per hour for the
//! compliance-spike alert.

use super::health::checks::compliance_counter_sk;
use super::health::{DestinationHealth, DestinationProbe};
use super::plugins::PluginService;
use super::{Datastore, EngineError};
use crate::domain::keys::org_pk;
use crate::domain::OrgId;
use crate::ports::store::{Condition, Item};
use crate::ports::PluginConfig;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Hourly counters are kept this long (the check reads the last two hours).
const COUNTER_TTL_SECS: i64 = 7 * 24 * 3600;

/// Probes an organization's enabled destination plugins.
pub struct PluginProbe(pub PluginService);

#[async_trait]
impl DestinationProbe for PluginProbe {
    async fn probe(&self, org: OrgId) -> Vec<DestinationHealth> {
        let configs = match self.0.plugin_configs(org).await {
            Ok(c) => c,
            Err(e) => {
                return vec![DestinationHealth::unhealthy(format!(
                    "cannot read plugin configuration: {e}"
                ))
                .named("plugins", 0)]
            }
        };
        let mut out = Vec::new();
        for config in configs.into_iter().filter(|c| c.enabled) {
            out.push(probe_one(&self.0, org, config).await);
        }
        out
    }
}

async fn probe_one(plugins: &PluginService, org: OrgId, config: PluginConfig) -> DestinationHealth {
    let started = Instant::now();
    let name = config.plugin.clone();
    let result = async {
        let spec = plugins.plugins.find(&config.plugin)?;
        let ctx = plugins.destination_context(org, config.clone(), true);
        let mut plugin = (spec.build)(&config)?;
        let health = match plugin.prepare(&ctx).await {
            Ok(()) => plugin.health(&ctx).await,
            Err(e) => Err(e),
        };
        let _ = plugin.shutdown().await;
        health
    }
    .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(h) => h,
        Err(e) => DestinationHealth::unhealthy(e.to_string()),
    }
    .named(name, latency_ms)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    count: u64,
}

impl Datastore {
    /// Adds `n` destination compliance refusals to the organization's counter of this hour
    /// (optimistic concurrency; a lost race is retried).
    pub async fn count_compliance_refusals(&self, org: OrgId, n: u64) -> Result<(), EngineError> {
        if n == 0 {
            return Ok(());
        }
        let now = self.clock.unix();
        let (pk, sk) = (org_pk(org), compliance_counter_sk(now));
        for _ in 0..5 {
            let current = self.store.get(&pk, &sk).await?;
            let (count, condition, version) = match &current {
                Some(item) => (
                    item.parse::<Counter>()?.count,
                    Condition::VersionIs(item.version),
                    item.version + 1,
                ),
                None => (0, Condition::NotExists, 1),
            };
            let item = Item::json(&pk, &sk, &Counter { count: count + n })
                .with_version(version)
                .with_expiry(now + COUNTER_TTL_SECS);
            match self.store.put(item, condition).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Invalid(format!(
            "organization {org}: the compliance counter stayed contended"
        )))
    }
}
