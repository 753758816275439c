//! The AWS root: one SDK configuration per cold start, every client built from it once.

use crate::RootError;
use classy_sync_aws::{
    sdk_config, AwsSettings, DynamoStore, EventBridgeBus, EventBridgeConnector,
    SecretsManagerStore, SesMailer, SqsQueue,
};
use classy_sync_core::engine::{Engine, EngineOptions};
use classy_sync_core::ports::{
    ClassySource, Clock, EventBus, JobQueue, SecretStore, Store, SystemClock,
};
use classy_sync_notify::NotificationService;
use std::sync::Arc;

/// What a function (or the CLI with `--backend aws`) runs on: the table, Secrets Manager,
/// the sync queue, the classy-sync bus and SES, from the `CLASSY_SYNC_*` environment the SAM
/// template sets.
#[derive(Clone)]
pub struct AwsRoot {
    pub sdk: aws_config::SdkConfig,
    pub settings: AwsSettings,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    pub queue: Arc<SqsQueue>,
    pub bus: Arc<dyn EventBus>,
}

impl AwsRoot {
    pub async fn from_env() -> Result<Self, RootError> {
        let settings = AwsSettings::from_env().map_err(|e| RootError::Settings(e.to_string()))?;
        Ok(Self::from_sdk(sdk_config().await, settings))
    }

    /// The root over an SDK configuration and settings already at hand (an endpoint such as
    /// moto's in tests, or a caller that configured the SDK itself).
    pub fn from_sdk(sdk: aws_config::SdkConfig, settings: AwsSettings) -> Self {
        AwsRoot {
            store: Arc::new(DynamoStore::from_settings(&sdk, &settings)),
            secrets: Arc::new(SecretsManagerStore::from_settings(&sdk, &settings)),
            clock: Arc::new(SystemClock),
            queue: Arc::new(SqsQueue::from_settings(&sdk, &settings)),
            bus: Arc::new(EventBridgeBus::from_settings(&sdk, &settings)),
            settings,
            sdk,
        }
    }

    pub fn job_queue(&self) -> Arc<dyn JobQueue> {
        self.queue.clone()
    }

    /// The engine over Classy `source`. Containers are not processes on one host: a lease
    /// simply expires (no local liveness check).
    pub fn engine(&self, source: Arc<dyn ClassySource>) -> Engine {
        crate::engine(
            self.store.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            source,
            Arc::new(EventBridgeConnector::new(&self.sdk)),
            EngineOptions::default(),
        )
    }

    /// The notification service, email through SES v2.
    pub fn notifier(&self) -> Result<NotificationService, RootError> {
        crate::notifier(
            self.store.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            Some(Arc::new(SesMailer::new(&self.sdk))),
        )
    }
}
