//! What a function needs, built once per container (warm invocations reuse connections,
//! tokens and the secret cache).

use classy_sync_core::engine::Engine;
use classy_sync_core::ports::{EventBus, JobQueue};
use classy_sync_runtime::aws::AwsRoot;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Services {
    /// The adapters, built once per container.
    pub root: AwsRoot,
    pub engine: Engine,
    pub queue: Arc<dyn JobQueue>,
    pub bus: Arc<dyn EventBus>,
    pub settings: FunctionSettings,
}

impl Services {
    /// The services over `root`, with `engine` built from it (the job queue and the bus are
    /// the root's).
    pub fn new(engine: Engine, root: AwsRoot, settings: FunctionSettings) -> Self {
        Services {
            engine,
            queue: root.job_queue(),
            bus: root.bus.clone(),
            settings,
            root,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FunctionSettings {
    /// A job stops this long before the invocation deadline and continues in a new message.
    pub deadline_margin: Duration,
    /// How long a queued/running marker blocks another dispatch of the same pair.
    pub marker_ttl: Duration,
}

impl Default for FunctionSettings {
    fn default() -> Self {
        FunctionSettings {
            deadline_margin: Duration::from_secs(30),
            marker_ttl: Duration::from_secs(2 * 3600),
        }
    }
}

impl FunctionSettings {
    /// `CLASSY_SYNC_DEADLINE_MARGIN_SECS`, `CLASSY_SYNC_MARKER_TTL_SECS`.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut s = FunctionSettings::default();
        let secs = |name: &str| -> anyhow::Result<Option<Duration>> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => {
                    Ok(Some(Duration::from_secs(v.trim().parse().map_err(
                        |_| anyhow::anyhow!("{name}={v:?} is not a number of seconds"),
                    )?)))
                }
                _ => Ok(None),
            }
        };
        if let Some(d) = secs("CLASSY_SYNC_DEADLINE_MARGIN_SECS")? {
            s.deadline_margin = d;
        }
        if let Some(d) = secs("CLASSY_SYNC_MARKER_TTL_SECS")? {
            s.marker_ttl = d;
        }
        Ok(s)
    }
}

/// The AWS wiring from the composition root: DynamoDB, SQS, Secrets Manager, EventBridge and
/// the Classy client, from the environment the SAM template sets. Called once per container,
/// before the first event.
pub async fn aws_services() -> anyhow::Result<Services> {
    let root = AwsRoot::from_env().await?;
    let client = classy_sync_runtime::classy_client()?;
    Ok(Services::new(
        root.engine(Arc::new(client)),
        root,
        FunctionSettings::from_env()?,
    ))
}
