//! Implementations of the ports.
//!
//! Local (embedded) adapters: [`SqliteStore`] (the store on a SQLite file), [`LocalQueue`]
//! (a durable SQS-like queue on its own SQLite file) and [`SecretsFile`] (a 0600 JSON file).
//! [`conformance`] holds the behavioural suites every adapter of a port must pass.

pub mod aws;
pub mod conformance;
pub mod event_log;
pub mod local_queue;
pub mod secrets_file;
pub mod sqlite_store;
mod sqlite_util;

pub use local_queue::{LocalQueue, QueueOptions};
pub use secrets_file::SecretsFile;
pub use sqlite_store::SqliteStore;
