//! The local root: everything under one data directory (mode 0700): `store.db` (SQLite),
//! `queue.db` (the durable queue), `secrets.json` (0600), `events.jsonl` (the event log).

use crate::RootError;
use classy_sync_aws::EventBridgeConnector;
use classy_sync_core::engine::health::HealthMonitor;
use classy_sync_core::engine::plugin_health::PluginProbe;
use classy_sync_core::engine::{
    Datastore, PluginService, ReportDefinitions, ReportService, SyncService,
};
use classy_sync_core::ports::{
    ClassySource, Clock, ConcurrencyLimit, JobQueue, MailTransport, SecretStore, Store, SystemClock,
};
use classy_sync_local::{
    LocalQueue, ProcLiveness, QueueOptions, SecretsFile, SmtpMailer, SqliteStore, ENV_SMTP_URL,
};
use classy_sync_notify::NotificationService;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct LocalRoot {
    pub data_dir: PathBuf,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    /// Shared concurrency limits in `store.db` (every process on this data directory).
    pub concurrency: Arc<dyn ConcurrencyLimit>,
}

fn open_err(what: &str, path: &Path, e: impl std::fmt::Display) -> RootError {
    RootError::Open(format!("cannot open {what} {}: {e}", path.display()))
}

/// Creates the data directory (0700) or checks that it is one.
pub fn ensure_data_dir(dir: &Path) -> Result<(), RootError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| open_err("data dir", dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| open_err("data dir", dir, e))?;
        }
    } else if !dir.is_dir() {
        return Err(RootError::Open(format!(
            "data dir {} is not a directory",
            dir.display()
        )));
    }
    Ok(())
}

impl LocalRoot {
    pub fn open(data_dir: &Path) -> Result<Self, RootError> {
        ensure_data_dir(data_dir)?;
        let store_path = data_dir.join("store.db");
        let secrets_path = data_dir.join("secrets.json");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&store_path).map_err(|e| open_err("store", &store_path, e))?,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ok(LocalRoot {
            concurrency: crate::concurrency(
                store.clone(),
                clock.clone(),
                Arc::new(ProcLiveness::new()),
            ),
            store,
            secrets: Arc::new(
                SecretsFile::open(&secrets_path)
                    .map_err(|e| open_err("secrets file", &secrets_path, e))?,
            ),
            clock,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The durable job queue (`queue.db`).
    pub fn job_queue(&self) -> Result<Arc<dyn JobQueue>, RootError> {
        let path = self.data_dir.join("queue.db");
        Ok(Arc::new(
            LocalQueue::open(&path, QueueOptions::default(), self.clock.clone())
                .map_err(|e| open_err("queue", &path, e))?,
        ))
    }

    /// The Classy client from `CLASSY_*`, its request budget per application shared by every
    /// process on this data directory (the store's `BUDGET` items).
    pub fn classy(&self) -> Result<classy_sync_classy::ClassyClient, RootError> {
        self.classy_from(|n| std::env::var(n).ok())
    }

    /// [`LocalRoot::classy`], reading the `CLASSY_*` variables through `var`.
    pub fn classy_from(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<classy_sync_classy::ClassyClient, RootError> {
        crate::classy_client_sharing(var, self.store.clone(), self.clock.clone())
    }

    /// The store and the clock.
    pub fn data(&self) -> Datastore {
        Datastore::new(self.store.clone(), self.clock.clone())
    }

    /// Syncs over Classy `source`; a lease whose holder process died on this host can be
    /// taken over at once.
    pub fn sync(&self, source: Arc<dyn ClassySource>) -> SyncService {
        SyncService::new(self.data(), source, self.secrets.clone())
            .with_liveness(Arc::new(ProcLiveness::new()))
    }

    /// The destination plugins (customer event buses opened with the default AWS
    /// configuration on first use).
    pub fn plugins(&self) -> PluginService {
        crate::plugin_service(
            self.data(),
            self.secrets.clone(),
            Arc::new(EventBridgeConnector::from_env_on_first_use()),
            Arc::new(ProcLiveness::new()),
            self.concurrency.clone(),
        )
    }

    /// The health monitor over Classy `source`, with the job queue and every destination.
    pub fn health(&self, source: Arc<dyn ClassySource>) -> Result<HealthMonitor, RootError> {
        Ok(
            HealthMonitor::new(self.data(), self.secrets.clone(), source)
                .with_queue(self.job_queue()?)
                .with_destinations(Arc::new(PluginProbe(self.plugins()))),
        )
    }

    pub fn report_definitions(&self) -> ReportDefinitions {
        ReportDefinitions::new(self.data(), self.secrets.clone())
    }

    /// Reports, sent through the notification service.
    pub fn reports(&self) -> Result<ReportService, RootError> {
        Ok(ReportService::new(self.data(), Arc::new(self.notifier()?)))
    }

    /// The notification service, email over SMTP when `CLASSY_SYNC_SMTP_URL` is set.
    pub fn notifier(&self) -> Result<NotificationService, RootError> {
        crate::notifier(
            self.store.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            smtp_from_env()?,
            |n| std::env::var(n).ok(),
        )
    }
}

/// SMTP from `CLASSY_SYNC_SMTP_URL`, or none when it is unset.
pub fn smtp_from_env() -> Result<Option<Arc<dyn MailTransport>>, RootError> {
    match std::env::var(ENV_SMTP_URL) {
        Ok(url) if !url.trim().is_empty() => Ok(Some(Arc::new(
            SmtpMailer::parse(&url).map_err(RootError::Settings)?,
        ))),
        _ => Ok(None),
    }
}
