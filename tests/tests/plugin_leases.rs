//! One push of a plugin at a time, however long a push takes: the plugin lease is renewed on
//! a timer while the push runs, not only between change sets, so a slow destination does not
//! let the lease lapse and a second worker push the same plugin at once.

use async_trait::async_trait;
use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::Entity;
use classy_sync_core::engine::plugins::PushOptions;
use classy_sync_core::engine::{RunControl, SyncMode};
use classy_sync_core::ports::{
    ChangeSet, Destination, DestinationContext, DestinationHealth, PluginConfig, PluginError,
    PluginRegistry, PluginSpec, PushReport, Wants,
};
use classy_sync_tests::Harness;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Pushes in flight right now, and the most ever at once.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

/// A destination that takes longer over one change set than the lease lasts.
struct Slow;

#[async_trait]
impl Destination for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    async fn prepare(&mut self, _ctx: &DestinationContext) -> Result<(), PluginError> {
        Ok(())
    }
    async fn push(
        &mut self,
        _ctx: &DestinationContext,
        changes: &ChangeSet,
    ) -> Result<PushReport, PluginError> {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        MOST.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(5)).await;
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        Ok(PushReport {
            considered: changes.supporters.len() as u64,
            ..PushReport::default()
        })
    }
    async fn health(&self, _ctx: &DestinationContext) -> Result<DestinationHealth, PluginError> {
        Ok(DestinationHealth::healthy("slow"))
    }
}

fn accept(_: &serde_json::Value) -> Result<(), PluginError> {
    Ok(())
}

fn build(_: &PluginConfig) -> Result<Box<dyn Destination>, PluginError> {
    Ok(Box::new(Slow))
}

static SLOW: &[PluginSpec] = &[PluginSpec {
    name: "slow",
    description: "takes 5 s over each change set",
    wants: Wants {
        supporters: true,
        transactions: false,
        addresses: false,
    },
    needs_secret: false,
    validate: accept,
    build,
}];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_slower_than_its_lease_keeps_the_lease_and_a_second_worker_waits() {
    let h = Harness::start(SandboxConfig {
        seed: 3,
        orgs: 1,
        apps: 1,
        supporters: 50,
        campaigns: 2,
        transactions: 40,
        plans: 4,
        ..SandboxConfig::default()
    })
    .await;
    let org = h.orgs[0];
    h.sync
        .sync_entity(
            org,
            Entity::Supporters,
            SyncMode::Full,
            &RunControl::default(),
        )
        .await
        .unwrap();
    // Two workers (two services over one data directory), leases of 3 s.
    let worker = || {
        let mut p = Harness::plugins_on(h.dir.path());
        p.plugins = PluginRegistry::new(SLOW);
        p.data.options.lease_ttl = Duration::from_secs(3);
        p
    };
    let (first, second) = (worker(), worker());
    first
        .put_plugin_config(
            org,
            PluginConfig {
                plugin: "slow".into(),
                enabled: true,
                settings: serde_json::json!({}),
                secret_name: None,
            },
        )
        .await
        .unwrap();
    let opts = PushOptions::default();
    let running = {
        let (first, opts) = (first.clone(), opts.clone());
        tokio::spawn(async move { first.push_org(org, &opts).await.unwrap() })
    };
    // Past the lease's 3 s, while the first push is still inside its change set.
    tokio::time::sleep(Duration::from_millis(3_800)).await;
    let refused = second.push_org(org, &opts).await.unwrap();
    assert_eq!(refused.len(), 1);
    let err = refused[0].result.as_ref().unwrap_err();
    assert!(err.contains("already running"), "{err}");
    let done = running.await.unwrap();
    assert!(done[0].result.is_ok(), "{:?}", done[0].result);
    assert_eq!(
        MOST.load(Ordering::SeqCst),
        1,
        "two pushes of one plugin at once"
    );
}
