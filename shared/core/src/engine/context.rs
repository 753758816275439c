//! The engine and the ports it runs on. One `Engine` per process, shared by every job.

use crate::ports::{
    ClassySource, Clock, EventBusConnector, ExpiryOnly, HolderLiveness, PluginRegistry,
    SecretStore, Store,
};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Records per Classy page (the API's maximum is 100).
    pub per_page: u32,
    /// How long a lease lasts without renewal; renewed on every page.
    pub lease_ttl: Duration,
    /// How long run records are kept.
    pub run_retention: Duration,
    /// Pages fetched ahead of the writer (memory stays bounded by this).
    pub prefetch_pages: usize,
    /// Items per store query page when scanning.
    pub scan_page: usize,
    /// Index entries held in memory while a full sync's indexes are rebuilt in key order
    /// (about 200 bytes each, in one reused buffer); more are spilled to temporary files.
    pub sort_chunk: usize,
    /// Consecutive failures after which an organization×entity is disabled until
    /// `failures reset` (or a successful manual sync).
    pub max_consecutive_failures: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            per_page: 100,
            lease_ttl: Duration::from_secs(120),
            run_retention: Duration::from_secs(90 * 24 * 3600),
            prefetch_pages: 4,
            scan_page: 1000,
            sort_chunk: 100_000,
            max_consecutive_failures: 5,
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub source: Arc<dyn ClassySource>,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    /// The destination plugins this deployment knows (none unless the composition root
    /// hands them over).
    pub plugins: PluginRegistry,
    /// Opens the event buses destination plugins target.
    pub buses: Option<Arc<dyn EventBusConnector>>,
    /// Whether a lease's holder is gone (its lease taken over at once); by default leases
    /// simply expire.
    pub liveness: Arc<dyn HolderLiveness>,
    pub options: EngineOptions,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        source: Arc<dyn ClassySource>,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Engine {
            store,
            source,
            secrets,
            clock,
            plugins: PluginRegistry::default(),
            buses: None,
            liveness: Arc::new(ExpiryOnly),
            options: EngineOptions::default(),
        }
    }

    pub fn with_plugins(mut self, plugins: PluginRegistry) -> Self {
        self.plugins = plugins;
        self
    }

    pub fn with_buses(mut self, buses: Arc<dyn EventBusConnector>) -> Self {
        self.buses = Some(buses);
        self
    }

    pub fn with_liveness(mut self, liveness: Arc<dyn HolderLiveness>) -> Self {
        self.liveness = liveness;
        self
    }

    pub fn with_options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }
}
