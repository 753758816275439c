//! The embedded (local) adapters of the ports: [`SqliteStore`] (the store on a SQLite file),
//! [`LocalQueue`] (a durable SQS-like queue on its own SQLite file), [`SecretsFile`] (a 0600
//! JSON file), [`event_log::EventLog`] (the event bus as a JSON-lines file) and
//! [`SmtpMailer`] (email over SMTP). They pass the same conformance suites as the AWS
//! adapters (`classy-sync-testkit`).

pub mod event_log;
pub mod liveness;
pub mod local_queue;
pub mod secrets_file;
pub mod smtp;
pub mod sqlite_store;
mod sqlite_util;

pub use liveness::ProcLiveness;
pub use local_queue::{LocalQueue, QueueOptions};
pub use secrets_file::SecretsFile;
pub use smtp::{SmtpMailer, ENV_SMTP_URL};
pub use sqlite_store::SqliteStore;
