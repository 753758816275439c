//! Plain data and pure rules: no I/O anywhere below this module.

pub mod aggregates;
pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod budget;
pub mod changes;
pub mod entities;
pub mod entity;
pub mod health;
pub mod keys;
pub mod lenient;
pub mod organization;
pub mod quality;
pub mod quarantine;
pub mod report;
pub mod schedule;
pub mod segments;
pub mod semaphore;
pub mod severity;
pub mod template;
pub mod tenant_rows;
pub mod timestamp;
pub mod usage;
pub mod webhook;

pub use entities::{Campaign, RecurringPlan, Supporter, Transaction};
pub use entity::Entity;
pub use organization::{OrgId, OrgStatus, Organization};
pub use severity::Severity;
pub use timestamp::Timestamp;
