//! Test support shared by the adapter crates and the end-to-end tests: the behavioural
//! [`conformance`] suites every adapter of a port must pass. A dev-dependency only: nothing
//! here is linked into a function or the CLI.

pub mod conformance;
pub mod semaphore;
