//! The store and clock every service shares, and the engine's options.

use crate::ports::{Clock, Store};
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
    /// How long audit entries are kept (`expires_at`; DynamoDB's TTL deletes them on AWS).
    pub audit_retention: Duration,
    /// Id slices a large full sync is split into, walked at once (1: one walker).
    pub full_sync_slices: u32,
    /// Pages each slice should have at least: a full sync needing fewer than two slices'
    /// worth of pages stays one walker.
    pub pages_per_slice: u64,
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
            audit_retention: Duration::from_secs(
                crate::domain::audit::DEFAULT_RETENTION_DAYS * 24 * 3600,
            ),
            full_sync_slices: 4,
            pages_per_slice: 50,
        }
    }
}

/// The store and the clock, with the engine's options: what every service reads and writes
/// through, and all that the store-only operations (organizations, cursors, runs,
/// aggregates, analytics, export, health history, …) need.
#[derive(Clone)]
pub struct Datastore {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub options: EngineOptions,
}

impl Datastore {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Datastore {
            store,
            clock,
            options: EngineOptions::default(),
        }
    }

    pub fn with_options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }
}
