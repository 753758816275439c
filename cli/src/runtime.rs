//! Where a command runs: on embedded parts under the data directory (SQLite store, durable
//! queue, secrets file), or against a deployed AWS stack (DynamoDB, SQS, Secrets Manager).
//! Both come from the composition roots in `classy-sync-runtime`; a command asks the root for
//! the services it uses, and only those that call Classy configure the Classy client (from
//! the environment).

use crate::cli::Backend;
use anyhow::Result;
use classy_sync_classy::ClassyClient;
use classy_sync_core::engine::health::HealthMonitor;
use classy_sync_core::engine::{
    Datastore, PluginService, ReportDefinitions, ReportService, SyncService,
};
use classy_sync_core::ports::{JobQueue, SecretStore};
use classy_sync_notify::NotificationService;
use classy_sync_runtime::aws::AwsRoot;
use classy_sync_runtime::local::LocalRoot;
use std::path::PathBuf;
use std::sync::Arc;

pub fn init_logging(verbose: u8, json: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLASSY_SYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub struct Target {
    pub data_dir: PathBuf,
    pub backend: Backend,
}

/// The root a command runs on.
#[derive(Clone)]
pub enum Root {
    Local(LocalRoot),
    Aws(Box<AwsRoot>),
}

/// Opens the target's root (no Classy configuration needed).
pub async fn open(target: &Target) -> Result<Root> {
    Ok(match target.backend {
        Backend::Local => Root::Local(LocalRoot::open(&target.data_dir)?),
        Backend::Aws => Root::Aws(Box::new(AwsRoot::from_env().await?)),
    })
}

/// The Classy API client from `CLASSY_*`.
pub fn classy() -> Result<ClassyClient> {
    Ok(classy_sync_runtime::classy_client()?)
}

impl Root {
    pub fn backend(&self) -> Backend {
        match self {
            Root::Local(_) => Backend::Local,
            Root::Aws(_) => Backend::Aws,
        }
    }

    /// The store and the clock.
    pub fn data(&self) -> Datastore {
        match self {
            Root::Local(r) => r.data(),
            Root::Aws(r) => r.data(),
        }
    }

    pub fn secrets(&self) -> Arc<dyn SecretStore> {
        match self {
            Root::Local(r) => r.secrets.clone(),
            Root::Aws(r) => r.secrets.clone(),
        }
    }

    /// The Classy client from `CLASSY_*`, its budget per application shared through the
    /// root's store by every process.
    pub fn classy(&self) -> Result<ClassyClient> {
        Ok(match self {
            Root::Local(r) => r.classy()?,
            Root::Aws(r) => r.classy_from(|n| std::env::var(n).ok())?,
        })
    }

    /// Syncs from Classy (configures the Classy client, and the full sync's slices from
    /// `CLASSY_SYNC_FULL_SYNC_SLICES`).
    pub fn sync(&self) -> Result<SyncService> {
        let options = classy_sync_runtime::engine_options_from(|n| std::env::var(n).ok())?;
        let source = Arc::new(self.classy()?);
        let mut sync = match self {
            Root::Local(r) => r.sync(source),
            Root::Aws(r) => r.sync(source),
        };
        sync.data.options = options;
        Ok(sync)
    }

    /// The destination plugins.
    pub fn plugins(&self) -> PluginService {
        match self {
            Root::Local(r) => r.plugins(),
            Root::Aws(r) => r.plugins(),
        }
    }

    /// Every health check, Classy and the destinations included (configures the Classy
    /// client).
    pub fn health(&self) -> Result<HealthMonitor> {
        let source = Arc::new(self.classy()?);
        Ok(match self {
            Root::Local(r) => r.health(source)?,
            Root::Aws(r) => r.health(source),
        })
    }

    pub fn report_definitions(&self) -> ReportDefinitions {
        match self {
            Root::Local(r) => r.report_definitions(),
            Root::Aws(r) => r.report_definitions(),
        }
    }

    /// Reports, sent through the notification service.
    pub fn reports(&self) -> Result<ReportService> {
        Ok(match self {
            Root::Local(r) => r.reports()?,
            Root::Aws(r) => r.reports()?,
        })
    }

    /// The notification service: email by SMTP (`CLASSY_SYNC_SMTP_URL`) locally and by SES
    /// v2 on `--backend aws`.
    pub fn notifier(&self) -> Result<NotificationService> {
        Ok(match self {
            Root::Local(r) => r.notifier()?,
            Root::Aws(r) => r.notifier()?,
        })
    }

    /// The job queue: the durable local queue, or the stack's SQS queue.
    pub fn job_queue(&self) -> Result<Arc<dyn JobQueue>> {
        Ok(match self {
            Root::Local(r) => r.job_queue()?,
            Root::Aws(r) => r.job_queue(),
        })
    }
}
