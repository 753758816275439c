//! One request budget per Classy application, shared by every process that calls Classy for
//! it. The Classy client asks it before every request; the store-backed implementation is
//! the engine's `StoreBudget` (a port names no engine type).

use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The budget's state could not be read or written; the caller may go on without it.
    #[error("request budget unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait RateBudget: Send + Sync {
    /// Waits until `n` calls for application `app` (its client id) may go out, and counts them.
    async fn acquire(&self, app: &str, n: u32) -> Result<(), BudgetError>;

    /// The API refused a call and said to wait `wait` (a 429's `retry_after`): no process
    /// spends any of `app`'s budget until then.
    async fn block_for(&self, app: &str, wait: Duration) -> Result<(), BudgetError>;

    /// The API said only `remaining` calls are left in its current window: a process holding
    /// tokens drops them when that is fewer than it holds, so it asks the shared bucket again.
    async fn remaining(&self, app: &str, remaining: u32);
}
