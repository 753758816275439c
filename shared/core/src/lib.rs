//! classy-sync's core: keeps nonprofits' Classy (GoFundMe Pro) data in their own store.
//!
//! Layers, one way down, held by Cargo: [`domain`] (pure data and rules) → [`ports`] (the
//! traits the engine needs) → [`engine`] (sync, plugins, health, alerts and reports, written
//! once against the ports). This crate depends on no SDK, database, HTTP or mail crate; the
//! adapters (`classy-sync-aws`, `classy-sync-local`), the Classy client
//! (`classy-sync-classy`), the destinations and the notifications are crates of their own.
//! [`channels`] is the stored configuration of notification channels and [`signing`] the
//! HMAC signature of outgoing webhooks (both pure).

pub mod channels;
pub mod domain;
pub mod engine;
pub mod ports;
pub mod retry;
pub mod signing;
