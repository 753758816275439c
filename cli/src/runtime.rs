//! The local runtime: the engine on embedded parts under the data directory (SQLite store,
//! durable queue, secrets file) and the Classy client configured from the environment.

use anyhow::{Context, Result};
use classy_sync::adapters::local_queue::{LocalQueue, QueueOptions};
use classy_sync::adapters::secrets_file::SecretsFile;
use classy_sync::adapters::sqlite_store::SqliteStore;
use classy_sync::classy::{ClassyClient, ClassyConfig};
use classy_sync::engine::Engine;
use classy_sync::ports::{Clock, SystemClock};
use std::path::Path;
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

pub struct Local {
    pub engine: Engine,
    pub client: ClassyClient,
    pub data_dir: std::path::PathBuf,
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
        anyhow::bail!("data dir {} is not a directory", dir.display());
    }
    Ok(())
}

pub fn open(data_dir: &Path) -> Result<Local> {
    ensure_dir(data_dir)?;
    let store = SqliteStore::open(data_dir.join("store.db"))?;
    let secrets = SecretsFile::open(data_dir.join("secrets.json"))?;
    let config = ClassyConfig::from_env()?;
    let client = ClassyClient::new(config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Engine::new(
        Arc::new(store),
        Arc::new(client.clone()),
        Arc::new(secrets),
        clock,
    );
    Ok(Local {
        engine,
        client,
        data_dir: data_dir.to_path_buf(),
    })
}

pub fn open_queue(local: &Local) -> Result<LocalQueue> {
    Ok(LocalQueue::open(
        local.data_dir.join("queue.db"),
        QueueOptions::default(),
        local.engine.clock.clone(),
    )?)
}
