//! The Classy API 2.0 client.
//!
//! [`ClassyClient`] implements [`classy_sync_core::ports::ClassySource`] over HTTP: OAuth2
//! client-credentials tokens cached per application, a request budget per
//! application (shared by every process through the store with [`ClassyClient::with_budget`],
//! else a limiter in this process), retries with jittered exponential backoff, and exactly-once encoding of
//! filter expressions. Create one client per process and clone it freely.

mod auth;
mod client;
pub mod config;
mod envelope;
mod limiter;
mod retry;
mod url;

/// The deployment switch that lets `http://` Classy URLs through (the sandbox only).
pub use classy_sync_http::ENV_ALLOW_DEV_URLS;
pub use client::ClassyClient;
pub use config::ClassyConfig;
