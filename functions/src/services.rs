//! What a function needs, built once per container (warm invocations reuse connections,
//! tokens and the secret cache).

use crate::wiring::Env;
use anyhow::Context;
use classy_sync_aws::AwsSettings;
use classy_sync_core::engine::health::HealthMonitor;
use classy_sync_core::engine::{Datastore, PluginService, SyncService};
use classy_sync_core::ports::{ClassySource, EventBus, JobQueue};
use classy_sync_runtime::aws::AwsRoot;
use std::sync::Arc;
use std::time::Duration;

/// The adapters a function runs on, and the services it builds from them. Classy is
/// configured only in the functions that call it (sync-worker, health-check): dispatch, the
/// plugin functions, alert and report run without any `CLASSY_*` setting.
#[derive(Clone)]
pub struct Services {
    /// The adapters, built once per container.
    pub root: AwsRoot,
    /// The store and the clock.
    pub data: Datastore,
    pub queue: Arc<dyn JobQueue>,
    pub bus: Arc<dyn EventBus>,
    pub settings: FunctionSettings,
    classy: Option<Arc<dyn ClassySource>>,
}

impl Services {
    /// The services over `root` (the job queue and the bus are the root's), without Classy.
    pub fn new(root: AwsRoot, settings: FunctionSettings) -> Self {
        Services {
            data: root.data(),
            queue: root.job_queue(),
            bus: root.bus.clone(),
            settings,
            root,
            classy: None,
        }
    }

    /// Adds the Classy source, for the functions that sync or check Classy.
    pub fn with_classy(mut self, source: Arc<dyn ClassySource>) -> Self {
        self.classy = Some(source);
        self
    }

    fn classy(&self) -> anyhow::Result<Arc<dyn ClassySource>> {
        self.classy
            .clone()
            .context("this function was built without a Classy client")
    }

    /// Syncs from Classy (needs [`Services::with_classy`]).
    /// Its engine options are [`Services::data`]'s.
    pub fn sync(&self) -> anyhow::Result<SyncService> {
        let mut sync = self.root.sync(self.classy()?);
        sync.data.options = self.data.options.clone();
        Ok(sync)
    }

    /// The health monitor (needs [`Services::with_classy`]: it checks Classy too).
    pub fn health(&self) -> anyhow::Result<HealthMonitor> {
        Ok(self.root.health(self.classy()?))
    }

    /// The destination plugins.
    pub fn plugins(&self) -> PluginService {
        self.root.plugins()
    }
}

#[derive(Debug, Clone)]
pub struct FunctionSettings {
    /// A job stops this long before the invocation deadline and continues in a new message.
    pub deadline_margin: Duration,
    /// How long a queued/running marker blocks another dispatch of the same pair.
    pub marker_ttl: Duration,
    /// The EMF lines' dimension sets (per organization only when opted in).
    pub metric_dimensions: crate::metrics::MetricDimensions,
}

impl Default for FunctionSettings {
    fn default() -> Self {
        FunctionSettings {
            deadline_margin: Duration::from_secs(30),
            marker_ttl: Duration::from_secs(2 * 3600),
            metric_dimensions: crate::metrics::MetricDimensions::default(),
        }
    }
}

pub const ENV_DEADLINE_MARGIN_SECS: &str = "CLASSY_SYNC_DEADLINE_MARGIN_SECS";
pub const ENV_MARKER_TTL_SECS: &str = "CLASSY_SYNC_MARKER_TTL_SECS";

impl FunctionSettings {
    /// `CLASSY_SYNC_DEADLINE_MARGIN_SECS`, `CLASSY_SYNC_MARKER_TTL_SECS`,
    /// `CLASSY_SYNC_METRICS_PER_ORGANIZATION`, read through `var` (the function's declared
    /// environment).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut s = FunctionSettings::default();
        let secs = |name: &str| -> anyhow::Result<Option<Duration>> {
            match var(name) {
                Some(v) if !v.trim().is_empty() => {
                    Ok(Some(Duration::from_secs(v.trim().parse().map_err(
                        |_| anyhow::anyhow!("{name}={v:?} is not a number of seconds"),
                    )?)))
                }
                _ => Ok(None),
            }
        };
        if let Some(d) = secs(ENV_DEADLINE_MARGIN_SECS)? {
            s.deadline_margin = d;
        }
        if let Some(d) = secs(ENV_MARKER_TTL_SECS)? {
            s.marker_ttl = d;
        }
        s.metric_dimensions = crate::metrics::MetricDimensions::from_lookup(&var)?;
        Ok(s)
    }
}

/// The AWS services of a function, its settings read through its declared environment
/// (see [`crate::roots`]), over the SDK configuration `sdk` (Lambda's; moto's in tests).
pub fn aws_services(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<Services> {
    let settings = AwsSettings::from_lookup(env.lookup())?;
    let root = AwsRoot::from_sdk(sdk, settings);
    Ok(Services::new(
        root,
        FunctionSettings::from_lookup(env.lookup())?,
    ))
}

/// [`aws_services`] plus the Classy client from `CLASSY_*`, for the functions that call
/// Classy.
pub fn aws_services_with_classy(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<Services> {
    let settings = AwsSettings::from_lookup(env.lookup())?;
    let root = AwsRoot::from_sdk(sdk, settings);
    // The application's budget is shared by every container, through the table.
    let client = root.classy_from(env.lookup())?;
    Ok(
        Services::new(root, FunctionSettings::from_lookup(env.lookup())?)
            .with_classy(Arc::new(client)),
    )
}
