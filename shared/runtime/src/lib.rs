//! The composition roots: one per backend, shared by the Lambda functions and the CLI.
//!
//! Each root opens its adapters once (per process or per Lambda cold start) and hands out
//! the services over them, each with only the ports it uses: the [`Datastore`] (store and
//! clock), sync (plus Classy and the secrets), plugins (plus the secrets, the destination
//! registry and the event buses), reports and alerts (plus the notification service), the
//! health monitor (plus Classy). Classy is configured only for what calls it. Nothing else in
//! classy-sync builds an adapter, a service or the notification service.
//!
//! - [`aws`] (feature `aws`): DynamoDB, SQS, Secrets Manager, EventBridge and SES.
//! - [`local`] (feature `local`): the SQLite store, the durable local queue, the secrets file,
//!   the event log and SMTP.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "local")]
pub mod local;

use classy_sync_classy::{ClassyClient, ClassyConfig};
use classy_sync_core::domain::budget::BudgetSpec;
use classy_sync_core::engine::budget::StoreBudget;
use classy_sync_core::engine::semaphore::StoreSemaphore;
use classy_sync_core::engine::{Datastore, PluginService};
use classy_sync_core::ports::{
    Clock, ConcurrencyLimit, EventBusConnector, HolderLiveness, MailTransport, SecretStore, Store,
};
use classy_sync_notify::{NotificationService, NotifySettings};
use std::sync::Arc;

/// Why a root could not be built: a missing or bad setting (named), or an adapter that
/// could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{0}")]
    Settings(String),
    #[error("{0}")]
    Open(String),
}

/// Id slices a large full sync is split into, walked at once (`1`: one walker).
pub const ENV_FULL_SYNC_SLICES: &str = "CLASSY_SYNC_FULL_SYNC_SLICES";

/// The engine's options, with `CLASSY_SYNC_FULL_SYNC_SLICES` read through `var` (a value that
/// is not a number from 1 to 64 is refused).
pub fn engine_options_from(
    var: impl Fn(&str) -> Option<String>,
) -> Result<classy_sync_core::engine::context::EngineOptions, RootError> {
    let mut options = classy_sync_core::engine::context::EngineOptions::default();
    if let Some(v) = var(ENV_FULL_SYNC_SLICES).filter(|v| !v.trim().is_empty()) {
        options.full_sync_slices = v
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| {
                RootError::Settings(format!(
                    "{ENV_FULL_SYNC_SLICES} must be a number from 1 to 64, not {v:?}"
                ))
            })?;
    }
    Ok(options)
}

/// The Classy API client from `CLASSY_*` (base URLs, rate limit, retries).
pub fn classy_client() -> Result<ClassyClient, RootError> {
    classy_client_from(|n| std::env::var(n).ok())
}

/// [`classy_client`], reading the `CLASSY_*` variables through `var` (a Lambda function's
/// declared environment, see `classy_sync_functions::wiring`).
pub fn classy_client_from(var: impl Fn(&str) -> Option<String>) -> Result<ClassyClient, RootError> {
    let config = ClassyConfig::from_lookup(var).map_err(|e| RootError::Settings(e.to_string()))?;
    ClassyClient::new(config).map_err(|e| RootError::Open(e.to_string()))
}

/// [`classy_client_from`] spending each application's request budget through `store`, shared
/// by every process on that store (`CLASSY_RATE_LIMIT_PER_MINUTE` is the application's whole
/// budget; `0`: no limit). See docs/classy-budget.md.
pub fn classy_client_sharing(
    var: impl Fn(&str) -> Option<String>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> Result<ClassyClient, RootError> {
    let config = ClassyConfig::from_lookup(var).map_err(|e| RootError::Settings(e.to_string()))?;
    if config.requests_per_minute == 0 {
        return ClassyClient::new(config).map_err(|e| RootError::Open(e.to_string()));
    }
    let spec = BudgetSpec::per_minute(config.requests_per_minute);
    let budget = Arc::new(StoreBudget::new(store, clock, spec));
    ClassyClient::with_budget(config, budget).map_err(|e| RootError::Open(e.to_string()))
}

/// The shared concurrency limits on `store` (a Mailchimp key's requests in flight, counted
/// across every process and worker on that store), one per root so that this process's
/// waiters queue locally; places of a process `liveness` knows has ended come back at once.
/// See docs/plugins.md (Mailchimp concurrency).
pub(crate) fn concurrency(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    liveness: Arc<dyn HolderLiveness>,
) -> Arc<dyn ConcurrencyLimit> {
    Arc::new(StoreSemaphore::new(store, clock).with_liveness(liveness))
}

/// The plugin service with every destination plugin this build knows.
pub(crate) fn plugin_service(
    data: Datastore,
    secrets: Arc<dyn SecretStore>,
    buses: Arc<dyn EventBusConnector>,
    liveness: Arc<dyn HolderLiveness>,
    concurrency: Arc<dyn ConcurrencyLimit>,
) -> PluginService {
    PluginService::new(data, secrets, classy_sync_destinations::registry())
        .with_buses(buses)
        .with_liveness(liveness)
        .with_concurrency(concurrency)
}

/// The notification service over a backend's store and secrets, email through `mail`
/// (`CLASSY_SYNC_EMAIL_FROM` and `CLASSY_SYNC_NOTIFY_ALLOW` read through `var`).
pub(crate) fn notifier(
    store: Arc<dyn Store>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    mail: Option<Arc<dyn MailTransport>>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<NotificationService, RootError> {
    let mut settings = NotifySettings::from_lookup(var).map_err(RootError::Settings)?;
    if let Some(mail) = mail {
        settings = settings.with_email(mail);
    }
    Ok(NotificationService::new(store, secrets, clock, settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(value: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |n| {
            (n == ENV_FULL_SYNC_SLICES)
                .then(|| value.map(str::to_string))
                .flatten()
        }
    }

    #[test]
    fn full_sync_slices_come_from_the_environment() {
        assert_eq!(
            engine_options_from(lookup(None)).unwrap().full_sync_slices,
            4
        );
        assert_eq!(
            engine_options_from(lookup(Some("1")))
                .unwrap()
                .full_sync_slices,
            1
        );
        assert_eq!(
            engine_options_from(lookup(Some(" 8 ")))
                .unwrap()
                .full_sync_slices,
            8
        );
        for bad in ["0", "65", "four", "-1"] {
            let e = engine_options_from(lookup(Some(bad)))
                .unwrap_err()
                .to_string();
            assert!(e.contains(ENV_FULL_SYNC_SLICES), "{bad}: {e}");
        }
    }
}
