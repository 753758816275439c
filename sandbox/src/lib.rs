//! Classy (GoFundMe Pro) API 2.0 sandbox, with a Mailchimp Marketing API 3.0 stand-in under
//! `/3.0` (see [`mailchimp`]): a local HTTP server with deterministic synthetic
//! data, fault injection and an admin API. Written from the API spec alone (it shares no code
//! with the client) so a misreading on one side cannot hide behind the same one on the other.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sandbox = classy_sandbox::start(classy_sandbox::SandboxConfig::default()).await?;
//! let app = &sandbox.apps()[0];
//! println!("{} {} {:?}", sandbox.api_base_url(), app.client_id, app.organizations);
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

// Handlers bail out early with ready-made axum `Response`s; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod api;
pub mod config;
pub mod counters;
pub mod data;
pub mod faults;
pub mod mailchimp;
pub mod webhooks;

pub use config::{FaultConfig, Quirks, SandboxConfig};
pub use data::store::AppInfo;

use anyhow::Context;
use api::{AppState, Shared};
use data::generate::{generate_org, Counts, ORG_ID_BASE};
use data::model::mix;
use data::store::Store;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// OAuth clients: deterministic ids and secrets; organizations assigned round-robin.
pub fn make_apps(seed: u64, apps: usize, orgs: usize) -> Vec<AppInfo> {
    let apps = apps.max(1);
    (0..apps)
        .map(|a| AppInfo {
            client_id: format!("sandbox-client-{}", a + 1),
            client_secret: format!(
                "sbx-secret-{}-{:016x}",
                a + 1,
                mix(seed ^ mix(0x5ec2e7 + a as u64))
            ),
            organizations: (0..orgs)
                .filter(|o| o % apps == a)
                .map(|o| ORG_ID_BASE + 1 + o as i64)
                .collect(),
        })
        .collect()
}

/// Generates every organization (in parallel across orgs) and builds the store.
pub fn build_store(config: &SandboxConfig) -> Store {
    let counts = Counts {
        supporters: config.supporters,
        campaigns: config.campaigns,
        transactions: config.transactions,
        plans: config.plans,
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(config.orgs.max(1));
    let mut data: Vec<(usize, data::generate::OrgData)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let counts = &counts;
                s.spawn(move || {
                    (0..config.orgs)
                        .filter(|o| o % threads == t)
                        .map(|o| (o, generate_org(config.seed, o, counts)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("generator thread"))
            .collect()
    });
    data.sort_by_key(|(o, _)| *o);
    Store::new(
        data.into_iter().map(|(_, d)| d).collect(),
        make_apps(config.seed, config.apps, config.orgs),
    )
}

/// A sandbox serving in the background of the current tokio runtime.
pub struct RunningSandbox {
    addr: SocketAddr,
    state: Shared,
    mailchimp: mailchimp::McShared,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl RunningSandbox {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/2.0`
    pub fn api_base_url(&self) -> String {
        format!("{}/2.0", self.base_url())
    }

    /// `http://127.0.0.1:PORT/oauth2/auth`
    pub fn auth_url(&self) -> String {
        format!("{}/oauth2/auth", self.base_url())
    }

    pub fn apps(&self) -> Vec<AppInfo> {
        self.state.store.apps.clone()
    }

    /// `http://127.0.0.1:PORT/3.0`: the Mailchimp Marketing API stand-in.
    pub fn mailchimp_api_base_url(&self) -> String {
        format!("{}/3.0", self.base_url())
    }

    /// The Mailchimp API key accepted from the start.
    pub fn mailchimp_api_key(&self) -> String {
        self.mailchimp.api_key.clone()
    }

    /// The audience that exists from the start.
    pub fn mailchimp_list_id(&self) -> &'static str {
        mailchimp::DEFAULT_LIST_ID
    }

    /// Mailchimp state, for in-process tests that want to bypass HTTP.
    pub fn mailchimp(&self) -> &mailchimp::McShared {
        &self.mailchimp
    }

    /// Shared state, for in-process tests that want to bypass HTTP.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops accepting connections and waits (up to 5 s) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.handle)
            .await
            .is_err()
        {
            self.handle.abort();
        }
    }
}

/// Generates the data, binds `config.bind` and serves in the background.
pub async fn start(config: SandboxConfig) -> anyhow::Result<RunningSandbox> {
    let cfg = config.clone();
    let started = std::time::Instant::now();
    let store = tokio::task::spawn_blocking(move || build_store(&cfg))
        .await
        .context("data generation panicked")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        orgs = config.orgs,
        "sandbox data generated"
    );
    let state = Arc::new(AppState {
        store,
        tokens: api::auth::Tokens::new(config.token_lifetime_secs),
        faults: faults::Faults::new(config.faults.clone()),
        limiter: faults::RateLimiter::new(config.rate_limit_per_minute, config.rate_limit_window),
        latency_ms: std::sync::atomic::AtomicU64::new(config.latency_ms),
        counters: counters::Counters::default(),
        quirks: RwLock::new(config.quirks),
        regenerated_secrets: RwLock::new(Default::default()),
        webhooks: webhooks::Webhooks::new(),
    });
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    let mailchimp = Arc::new(mailchimp::MailchimpState::new(&config.mailchimp_api_key));
    let app = api::router(state.clone())
        .merge(admin::router(state.clone()))
        .merge(mailchimp::router(mailchimp.clone()));
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, "sandbox listening");
    Ok(RunningSandbox {
        addr,
        state,
        mailchimp,
        shutdown: Some(tx),
        handle,
    })
}
