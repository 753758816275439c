//! What a function needs, built once per container (warm invocations reuse connections,
//! tokens and the secret cache).

use classy_sync::engine::Engine;
use classy_sync::ports::{EventBus, JobQueue};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Services {
    pub engine: Engine,
    pub queue: Arc<dyn JobQueue>,
    pub bus: Arc<dyn EventBus>,
    pub settings: FunctionSettings,
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

/// The AWS wiring: DynamoDB, SQS, Secrets Manager, EventBridge and the Classy client, from
/// the environment the SAM template sets. Called once per container, before the first event.
pub async fn aws_services() -> anyhow::Result<Services> {
    use classy_sync::adapters::aws::{
        sdk_config, AwsSettings, DynamoStore, EventBridgeBus, SecretsManagerStore, SqsQueue,
    };
    use classy_sync::classy::{ClassyClient, ClassyConfig};
    use classy_sync::engine::EngineOptions;
    use classy_sync::ports::SystemClock;

    let settings = AwsSettings::from_env()?;
    let sdk = sdk_config().await;
    let client = ClassyClient::new(ClassyConfig::from_env()?)?;
    let engine = Engine::new(
        Arc::new(DynamoStore::from_settings(&sdk, &settings)),
        Arc::new(client),
        Arc::new(SecretsManagerStore::from_settings(&sdk, &settings)),
        Arc::new(SystemClock),
    )
    // Containers are not processes on one host: a lease simply expires.
    .with_options(EngineOptions {
        local_liveness: false,
        ..EngineOptions::default()
    });
    Ok(Services {
        engine,
        queue: Arc::new(SqsQueue::from_settings(&sdk, &settings)),
        bus: Arc::new(EventBridgeBus::from_settings(&sdk, &settings)),
        settings: FunctionSettings::from_env()?,
    })
}
