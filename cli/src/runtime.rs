//! Where the CLI's engine runs: on embedded parts under the data directory (SQLite store,
//! durable queue, secrets file), or against a deployed AWS stack (DynamoDB, SQS, Secrets
//! Manager). The Classy client is configured from the environment either way.

use crate::cli::Backend;
use anyhow::{bail, Context, Result};
use classy_sync::adapters::aws::{
    sdk_config, AwsSettings, DynamoStore, SecretsManagerStore, SqsQueue,
};
use classy_sync::adapters::local_queue::{LocalQueue, QueueOptions};
use classy_sync::adapters::secrets_file::SecretsFile;
use classy_sync::adapters::sqlite_store::SqliteStore;
use classy_sync::classy::{ClassyClient, ClassyConfig};
use classy_sync::engine::{Engine, EngineOptions};
use classy_sync::ports::{Clock, JobQueue, SystemClock};
use std::path::{Path, PathBuf};
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

pub struct Local {
    pub engine: Engine,
    pub client: ClassyClient,
    pub backend: Backend,
    data_dir: PathBuf,
    aws_queue: Option<Arc<SqsQueue>>,
}

fn ensure_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict data dir {}", dir.display()))?;
        }
    } else if !dir.is_dir() {
        bail!("data dir {} is not a directory", dir.display());
    }
    Ok(())
}

pub async fn open(target: &Target) -> Result<Local> {
    let client = ClassyClient::new(ClassyConfig::from_env()?)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match target.backend {
        Backend::Local => {
            let dir = &target.data_dir;
            ensure_dir(dir)?;
            let store = SqliteStore::open(dir.join("store.db"))?;
            let secrets = SecretsFile::open(dir.join("secrets.json"))?;
            let engine = Engine::new(
                Arc::new(store),
                Arc::new(client.clone()),
                Arc::new(secrets),
                clock,
            );
            Ok(Local {
                engine,
                client,
                backend: target.backend,
                data_dir: dir.clone(),
                aws_queue: None,
            })
        }
        Backend::Aws => {
            let settings = AwsSettings::from_env()?;
            let sdk = sdk_config().await;
            let engine = Engine::new(
                Arc::new(DynamoStore::from_settings(&sdk, &settings)),
                Arc::new(client.clone()),
                Arc::new(SecretsManagerStore::from_settings(&sdk, &settings)),
                clock,
            )
            .with_options(EngineOptions {
                local_liveness: false,
                ..EngineOptions::default()
            });
            let queue = Arc::new(SqsQueue::from_settings(&sdk, &settings));
            Ok(Local {
                engine,
                client,
                backend: target.backend,
                data_dir: target.data_dir.clone(),
                aws_queue: Some(queue),
            })
        }
    }
}

/// The job queue: the durable local queue, or the stack's SQS queue.
pub fn open_queue(local: &Local) -> Result<Arc<dyn JobQueue>> {
    match &local.aws_queue {
        Some(q) => Ok(q.clone()),
        None => Ok(Arc::new(LocalQueue::open(
            local.data_dir.join("queue.db"),
            QueueOptions::default(),
            local.engine.clock.clone(),
        )?)),
    }
}

/// Where alerts go from the CLI. Until the notification service (branch `notify`) is merged
/// this is the console channel: each message printed once to standard error. The integrator
/// replaces the body of this function with the configured `NotificationService`.
pub fn notifier(_local: &Local) -> Arc<dyn classy_sync::ports::Notifier> {
    Arc::new(ConsoleNotifier)
}

/// Destination health (Mailchimp `/ping` and list access) comes from the destination
/// plugins (branch `plugins`); none are plugged in yet.
pub fn destination_probe(
    _local: &Local,
) -> Option<Arc<dyn classy_sync::engine::health::DestinationProbe>> {
    None
}

struct ConsoleNotifier;

#[async_trait::async_trait]
impl classy_sync::ports::Notifier for ConsoleNotifier {
    async fn notify(
        &self,
        message: &classy_sync::ports::Message,
        channels: &[String],
    ) -> Result<Vec<classy_sync::ports::DeliveryReport>, classy_sync::ports::NotifyError> {
        eprintln!("== {} ==\n{}", message.subject, message.text.trim_end());
        Ok(channels
            .iter()
            .map(|c| classy_sync::ports::DeliveryReport {
                message_id: message.id.clone(),
                channel: c.clone(),
                status: classy_sync::ports::DeliveryStatus::Sent,
                attempts: 1,
                error: None,
            })
            .collect())
    }
}
