//! At most N requests in flight per limited thing (a Mailchimp API key), counted across every
//! process and worker that shares a store. A client takes a permit around each request with
//! [`within`]; the store-backed implementation is the engine's `StoreSemaphore` (a port
//! names no engine type). The semaphore's name is a sort key built in `domain::keys` (for a
//! Mailchimp key, `keys::mailchimp_semaphore_sk` of the key's digest: never the key).

use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The semaphore's state could not be read or written; the caller may go on without it.
    #[error("concurrency limit unavailable: {0}")]
    Unavailable(String),
}

/// One place of a semaphore, held until it is given back with
/// [`ConcurrencyLimit::release`] or it expires (a holder that dies loses it then). Dropping
/// a permit without releasing it frees only this process's share of it.
pub struct Permit {
    /// The semaphore.
    pub name: String,
    /// Who holds the place (unique per permit).
    pub holder: String,
    /// Renew at this interval while the request lasts (the place expires after a few).
    pub renew_every: Duration,
    /// Whatever the implementation keeps while the place is held (a local slot).
    guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("name", &self.name)
            .field("holder", &self.holder)
            .field("renew_every", &self.renew_every)
            .finish_non_exhaustive()
    }
}

impl Permit {
    pub fn new(name: impl Into<String>, holder: impl Into<String>, renew_every: Duration) -> Self {
        Permit {
            name: name.into(),
            holder: holder.into(),
            renew_every,
            guard: None,
        }
    }

    /// Keeps `guard` alive as long as the permit.
    pub fn with_guard(mut self, guard: impl std::any::Any + Send + Sync) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }
}

#[async_trait]
pub trait ConcurrencyLimit: Send + Sync {
    /// Waits until fewer than `limit` places of semaphore `name` are held, and takes one.
    async fn acquire(&self, name: &str, limit: u32) -> Result<Permit, LimitError>;

    /// Extends the permit's place; `Ok(false)` when it was lost (it expired, and another may
    /// hold it now).
    async fn renew(&self, permit: &Permit) -> Result<bool, LimitError>;

    /// Gives the place back.
    async fn release(&self, permit: Permit) -> Result<(), LimitError>;
}

/// Gives a permit back when dropped before [`Held::release`] (a cancelled request): in a
/// task, so the place does not wait for its expiry.
struct Held {
    limiter: Arc<dyn ConcurrencyLimit>,
    permit: Option<Permit>,
}

impl Held {
    async fn release(mut self) {
        if let Some(p) = self.permit.take() {
            let name = p.name.clone();
            if let Err(e) = self.limiter.release(p).await {
                tracing::warn!(semaphore = %name, error = %e, "could not give a place back; it expires");
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(p) = self.permit.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let limiter = self.limiter.clone();
            rt.spawn(async move {
                let _ = limiter.release(p).await;
            });
        }
    }
}

/// Runs `request` holding a place of semaphore `name` (at most `limit` at once): takes it,
/// renews it while the request lasts, gives it back. When the semaphore's store is
/// unavailable the request goes ahead without it (logged): the API's own limit still answers
/// with a 429, which the caller retries.
pub async fn within<F: Future>(
    limiter: &Arc<dyn ConcurrencyLimit>,
    name: &str,
    limit: u32,
    request: F,
) -> F::Output {
    let permit = match limiter.acquire(name, limit).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(semaphore = %name, error = %e, "concurrency limit unavailable; going ahead without it");
            return request.await;
        }
    };
    let every = permit.renew_every.max(Duration::from_millis(10));
    let held = Held {
        limiter: limiter.clone(),
        permit: Some(permit),
    };
    let renewals = async {
        loop {
            tokio::time::sleep(every).await;
            if let Some(p) = held.permit.as_ref() {
                match limiter.renew(p).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(semaphore = %name, "a long request lost its place (it expired)")
                    }
                    Err(e) => {
                        tracing::warn!(semaphore = %name, error = %e, "could not renew a place")
                    }
                }
            }
        }
    };
    let out = tokio::select! {
        out = request => out,
        _ = renewals => unreachable!("the renewals never end"),
    };
    held.release().await;
    out
}
