//! The sync engine, written once against the ports: organizations, leases, cursors, the
//! pager, idempotent page writes, aggregates, run records, export, status and the local
//! scheduler.

pub mod aggregator;
pub mod context;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod export;
pub mod jobs;
pub mod lease;
pub mod orgs;
pub mod pager;
pub mod plugin_jobs;
pub mod plugins;
pub mod runs;
pub mod scheduler;
pub mod sorter;
pub mod state;
pub mod status;
pub mod sync;
pub mod writer;

pub use context::{Engine, EngineOptions};
pub use error::EngineError;
pub use sync::{RunControl, StopSignal, SyncMode, SyncOutcome, SyncReport};
