//! Where the CLI's engine runs: on embedded parts under the data directory (SQLite store,
//! durable queue, secrets file), or against a deployed AWS stack (DynamoDB, SQS, Secrets
//! Manager). Both come from the composition roots in `classy-sync-runtime`; the Classy client
//! is configured from the environment either way.

use crate::cli::Backend;
use anyhow::Result;
use classy_sync_classy::ClassyClient;
use classy_sync_core::engine::Engine;
use classy_sync_core::ports::JobQueue;
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

impl Root {
    pub async fn open(target: &Target) -> Result<Root> {
        Ok(match target.backend {
            Backend::Local => Root::Local(LocalRoot::open(&target.data_dir)?),
            Backend::Aws => Root::Aws(Box::new(AwsRoot::from_env().await?)),
        })
    }

    /// The notification service: email by SMTP (`CLASSY_SYNC_SMTP_URL`) locally and by SES
    /// v2 on `--backend aws`. Needs no Classy configuration.
    pub fn notifier(&self) -> Result<NotificationService> {
        Ok(match self {
            Root::Local(r) => r.notifier()?,
            Root::Aws(r) => r.notifier()?,
        })
    }
}

pub struct Local {
    pub engine: Engine,
    pub client: ClassyClient,
    pub backend: Backend,
    pub root: Root,
}

pub async fn open(target: &Target) -> Result<Local> {
    let client = classy_sync_runtime::classy_client()?;
    let root = Root::open(target).await?;
    let source = Arc::new(client.clone());
    let engine = match &root {
        Root::Local(r) => r.engine(source),
        Root::Aws(r) => r.engine(source),
    };
    Ok(Local {
        engine,
        client,
        backend: target.backend,
        root,
    })
}

/// The job queue: the durable local queue, or the stack's SQS queue.
pub fn open_queue(local: &Local) -> Result<Arc<dyn JobQueue>> {
    Ok(match &local.root {
        Root::Local(r) => r.job_queue()?,
        Root::Aws(r) => r.job_queue(),
    })
}

/// Destination health (Mailchimp `/ping` and list access) of every enabled plugin.
pub fn destination_probe(
    local: &Local,
) -> Option<Arc<dyn classy_sync_core::engine::health::DestinationProbe>> {
    Some(Arc::new(
        classy_sync_core::engine::plugin_health::PluginProbe(local.engine.clone()),
    ))
}

/// The notification service of a target, without opening the engine or configuring Classy.
pub async fn notifier(target: &Target) -> Result<Arc<NotificationService>> {
    Ok(Arc::new(Root::open(target).await?.notifier()?))
}
