//! Synthetic Classy data: typed records, deterministic generation and the in-memory store.

pub mod generate;
pub mod model;
pub mod names;
pub mod record;
pub mod store;
pub mod time;
