//! The Lambda functions' logic, kept out of the binaries so tests can drive it directly:
//! each binary builds its AWS clients once per container and hands events to these
//! handlers.

pub mod alert;
pub mod dispatch;
pub mod events;
pub mod health_check;
pub mod logging;
pub mod metrics;
pub mod plugin_dispatch;
pub mod plugin_worker;
pub mod report;
pub mod roots;
pub mod services;
pub mod webhook;
pub mod wiring;
pub mod worker;

pub use services::Services;
