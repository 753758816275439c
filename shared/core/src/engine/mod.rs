//! The sync engine, written once against the ports: organizations, leases, cursors, the
//! pager, idempotent page writes, aggregates, run records, export, status and the local
//! scheduler.

pub mod addresses;
pub mod aggregator;
pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod budget;
pub mod context;
pub mod credentials;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod export;
pub mod fep;
pub mod health;
pub mod jobs;
pub mod lease;
pub mod orgs;
pub mod pager;
pub mod plugin_health;
pub mod plugin_jobs;
pub mod plugins;
pub mod quality;
pub mod quality_rollup;
pub mod quarantine;
pub mod recovery;
pub mod reports;
pub mod rollup;
pub mod runs;
pub mod scheduler;
pub mod semaphore;
pub mod slices;
pub mod sorter;
pub mod state;
pub mod status;
pub mod sync;
pub mod templates;
pub mod tenants;
pub mod usage;
pub mod webhooks;
pub mod writer;

pub use context::{Datastore, EngineOptions};
pub use error::EngineError;
pub use plugins::PluginService;
pub use reports::{ReportDefinitions, ReportService};
pub use sync::{RunControl, StopSignal, SyncMode, SyncOutcome, SyncReport, SyncService};
