//! The AWS root: one SDK configuration per cold start, every client built from it once.

use crate::RootError;
use classy_sync_aws::{
    sdk_config, AwsSettings, DynamoStore, EventBridgeBus, EventBridgeConnector,
    SecretsManagerStore, SesMailer, SqsQueue,
};
use classy_sync_core::engine::health::HealthMonitor;
use classy_sync_core::engine::plugin_health::PluginProbe;
use classy_sync_core::engine::{
    Datastore, PluginService, ReportDefinitions, ReportService, SyncService,
};
use classy_sync_core::ports::{
    ClassySource, Clock, ConcurrencyLimit, EventBus, ExpiryOnly, JobQueue, SecretStore, Store,
    SystemClock,
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
    /// Shared concurrency limits in the table (every container of the stack).
    pub concurrency: Arc<dyn ConcurrencyLimit>,
}

impl AwsRoot {
    pub async fn from_env() -> Result<Self, RootError> {
        let settings = AwsSettings::from_env().map_err(|e| RootError::Settings(e.to_string()))?;
        Ok(Self::from_sdk(sdk_config().await, settings))
    }

    /// The root over an SDK configuration and settings already at hand (an endpoint such as
    /// moto's in tests, or a caller that configured the SDK itself).
    pub fn from_sdk(sdk: aws_config::SdkConfig, settings: AwsSettings) -> Self {
        let store: Arc<dyn Store> = Arc::new(DynamoStore::from_settings(&sdk, &settings));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        AwsRoot {
            concurrency: crate::concurrency(store.clone(), clock.clone(), Arc::new(ExpiryOnly)),
            store,
            secrets: Arc::new(SecretsManagerStore::from_settings(&sdk, &settings)),
            clock,
            queue: Arc::new(SqsQueue::from_settings(&sdk, &settings)),
            bus: Arc::new(EventBridgeBus::from_settings(&sdk, &settings)),
            settings,
            sdk,
        }
    }

    pub fn job_queue(&self) -> Arc<dyn JobQueue> {
        self.queue.clone()
    }

    /// The store and the clock.
    /// The Classy client from `CLASSY_*` read through `var`, its request budget per
    /// application shared by every container through the table's `BUDGET` items.
    pub fn classy_from(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<classy_sync_classy::ClassyClient, RootError> {
        crate::classy_client_sharing(var, self.store.clone(), self.clock.clone())
    }

    pub fn data(&self) -> Datastore {
        Datastore::new(self.store.clone(), self.clock.clone())
    }

    /// Syncs over Classy `source`. Containers are not processes on one host: a lease simply
    /// expires (no local liveness check).
    pub fn sync(&self, source: Arc<dyn ClassySource>) -> SyncService {
        SyncService::new(self.data(), source, self.secrets.clone())
    }

    /// The destination plugins; customer event buses are opened with this SDK config.
    pub fn plugins(&self) -> PluginService {
        crate::plugin_service(
            self.data(),
            self.secrets.clone(),
            Arc::new(EventBridgeConnector::new(&self.sdk)),
            Arc::new(ExpiryOnly),
            self.concurrency.clone(),
        )
    }

    /// The health monitor over Classy `source`, with the sync queue and every destination.
    pub fn health(&self, source: Arc<dyn ClassySource>) -> HealthMonitor {
        HealthMonitor::new(self.data(), self.secrets.clone(), source)
            .with_queue(self.job_queue())
            .with_destinations(Arc::new(PluginProbe(self.plugins())))
    }

    /// The alert function's monitor: the store, the queue and the recorded sync state, no
    /// Classy and no destination (their results come from the recorded report, see
    /// `HealthMonitor::run_with_recorded`).
    pub fn health_without_classy(&self) -> HealthMonitor {
        HealthMonitor::without_classy(self.data(), self.secrets.clone())
            .with_queue(self.job_queue())
    }

    pub fn report_definitions(&self) -> ReportDefinitions {
        ReportDefinitions::new(self.data(), self.secrets.clone())
    }

    /// Reports, sent through the notification service.
    pub fn reports(&self) -> Result<ReportService, RootError> {
        self.reports_from(|n| std::env::var(n).ok())
    }

    /// [`AwsRoot::reports`], the notification settings read through `var`.
    pub fn reports_from(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<ReportService, RootError> {
        Ok(ReportService::new(
            self.data(),
            Arc::new(self.notifier_from(var)?),
        ))
    }

    /// The notification service, email through SES v2.
    pub fn notifier(&self) -> Result<NotificationService, RootError> {
        self.notifier_from(|n| std::env::var(n).ok())
    }

    /// [`AwsRoot::notifier`], its settings (`CLASSY_SYNC_EMAIL_FROM`, ...) read through `var`.
    pub fn notifier_from(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<NotificationService, RootError> {
        crate::notifier(
            self.store.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            Some(Arc::new(SesMailer::new(&self.sdk))),
            var,
        )
    }
}
