//! classy-sync: keeps nonprofits' Classy (GoFundMe Pro) data in their own store.
//!
//! Layers, one way down: [`domain`] (pure data and rules) → [`ports`] (traits the engine
//! needs) → [`engine`] (sync written once against the ports) → [`adapters`] (SQLite, local
//! queue, secrets file; AWS later) and [`classy`] (the Classy API client).

pub mod adapters;
pub mod classy;
pub mod domain;
pub mod engine;
pub mod mailchimp;
pub mod notify;
pub mod plugins;
pub mod ports;
pub mod signing;
