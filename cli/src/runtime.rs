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

/// Destination health (Mailchimp `/ping` and list access) of every enabled plugin.
pub fn destination_probe(
    local: &Local,
) -> Option<Arc<dyn classy_sync::engine::health::DestinationProbe>> {
    Some(Arc::new(classy_sync::engine::plugin_health::PluginProbe(
        local.engine.clone(),
    )))
}

/// The notification service of this target: channels and delivery records in the target's
/// store, channel secrets in its secret store, email by SMTP (`CLASSY_SYNC_SMTP_URL`) locally
/// and by SES v2 on `--backend aws`. Needs no Classy configuration.
pub async fn notifier(target: &Target) -> Result<Arc<classy_sync::notify::NotificationService>> {
    use classy_sync::notify::{NotificationService, NotifySettings};
    use classy_sync::ports::{SecretStore, Store};
    let settings = NotifySettings::from_env().map_err(anyhow::Error::msg)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (store, secrets, settings): (Arc<dyn Store>, Arc<dyn SecretStore>, _) = match target.backend
    {
        Backend::Local => {
            ensure_dir(&target.data_dir)?;
            (
                Arc::new(SqliteStore::open(target.data_dir.join("store.db"))?),
                Arc::new(SecretsFile::open(target.data_dir.join("secrets.json"))?),
                settings,
            )
        }
        Backend::Aws => {
            let aws = AwsSettings::from_env()?;
            let sdk = sdk_config().await;
            (
                Arc::new(DynamoStore::from_settings(&sdk, &aws)),
                Arc::new(SecretsManagerStore::from_settings(&sdk, &aws)),
                settings.with_ses(&sdk),
            )
        }
    };
    Ok(Arc::new(NotificationService::new(
        store, secrets, clock, settings,
    )))
}

/// The notification service over an already opened engine's store, secrets and clock (one
/// store connection per process; SES on `--backend aws`, SMTP otherwise).
pub async fn engine_notifier(
    engine: &Engine,
    backend: Backend,
) -> Result<classy_sync::notify::NotificationService> {
    use classy_sync::notify::{NotificationService, NotifySettings};
    let mut settings = NotifySettings::from_env().map_err(anyhow::Error::msg)?;
    if backend == Backend::Aws {
        settings = settings.with_ses(&sdk_config().await);
    }
    Ok(NotificationService::new(
        engine.store.clone(),
        engine.secrets.clone(),
        engine.clock.clone(),
        settings,
    ))
}
