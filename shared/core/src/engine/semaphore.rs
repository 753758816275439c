//! Shared concurrency limits on the [`Store`] port: one counting semaphore per limited thing
//! (`SEMAPHORE` / `MAILCHIMP#<key digest>`), its holders and their expiries in one item,
//! changed with conditional writes (`VersionIs`): one write to take a place, one to give it
//! back, one per renewal of a long request. A place whose holder died expires (after
//! [`SemaphoreSpec::ttl`]), or is taken back at once when the holder was a local process
//! known to have ended ([`HolderLiveness`]: holder ids carry the host and the process id). In front of the store, a local semaphore per name lets at most
//! `limit` tasks of this process ask the store at once; the others wait in line here, not
//! against the store. See docs/plugins.md (Mailchimp concurrency).

use crate::domain::keys::SEMAPHORE_PK;
use crate::domain::semaphore::{Holders, Take};
use crate::ports::store::{Condition, Item, Store, StoreError};
use crate::ports::{Clock, ConcurrencyLimit, ExpiryOnly, HolderLiveness, LimitError, Permit};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How places are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemaphoreSpec {
    /// A place not renewed for this long is free again (a dead holder's comes back then); a
    /// request renews its place every third of it.
    pub ttl: Duration,
    /// The first wait when every place is held; it doubles up to `poll_max`.
    pub poll_min: Duration,
    pub poll_max: Duration,
}

impl Default for SemaphoreSpec {
    fn default() -> Self {
        SemaphoreSpec {
            ttl: Duration::from_secs(30),
            poll_min: Duration::from_millis(20),
            poll_max: Duration::from_millis(500),
        }
    }
}

pub struct StoreSemaphore {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    spec: SemaphoreSpec,
    /// This instance's part of every holder id.
    instance: String,
    /// Whether another holder's process has ended; the host and process id recorded.
    liveness: Arc<dyn HolderLiveness>,
    host: String,
    pid: u32,
    seq: AtomicU64,
    /// Per name: the limit it was made for and the local line.
    locals: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
    writes: AtomicU64,
}

impl std::fmt::Debug for StoreSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSemaphore")
            .field("spec", &self.spec)
            .field("instance", &self.instance)
            .field("store_writes", &self.store_writes())
            .finish_non_exhaustive()
    }
}

fn unavailable(e: StoreError) -> LimitError {
    LimitError::Unavailable(e.to_string())
}

impl StoreSemaphore {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self::with_spec(store, clock, SemaphoreSpec::default())
    }

    pub fn with_spec(store: Arc<dyn Store>, clock: Arc<dyn Clock>, spec: SemaphoreSpec) -> Self {
        StoreSemaphore {
            store,
            clock,
            spec,
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            liveness: Arc::new(ExpiryOnly),
            host: String::new(),
            pid: std::process::id(),
            seq: AtomicU64::new(0),
            locals: Mutex::new(HashMap::new()),
            writes: AtomicU64::new(0),
        }
    }

    /// Places held by a process on this host that has ended are taken back at once, not
    /// at their expiry (a local run killed with SIGKILL).
    pub fn with_liveness(mut self, liveness: Arc<dyn HolderLiveness>) -> Self {
        self.host = liveness.host();
        self.liveness = liveness;
        self
    }

    /// The process id recorded in this instance's places (default: this process; a test
    /// stands in for another).
    pub fn with_pid(mut self, pid: u32) -> Self {
        self.pid = pid;
        self
    }

    /// Whether the process that holds place `holder` (`<host>:<pid>:<instance>-<seq>`) is
    /// known to have ended.
    fn holder_gone(&self, holder: &str) -> bool {
        let mut parts = holder.rsplitn(3, ':');
        let (_, Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        match pid.parse::<u32>() {
            Ok(pid) => !host.is_empty() && self.liveness.is_gone(host, pid),
            Err(_) => false,
        }
    }

    pub fn spec(&self) -> &SemaphoreSpec {
        &self.spec
    }

    /// Conditional writes this instance sent to the store (won or lost).
    pub fn store_writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The places of `name` held now, as the store has them (expired ones left out).
    pub async fn held(&self, name: &str) -> Result<usize, LimitError> {
        let now = self.now_ms();
        Ok(
            match self
                .store
                .get(SEMAPHORE_PK, name)
                .await
                .map_err(unavailable)?
            {
                Some(item) => item.parse::<Holders>().map_or(0, |h| h.live(now)),
                None => 0,
            },
        )
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn ttl_ms(&self) -> i64 {
        self.spec.ttl.as_millis().min(i64::MAX as u128) as i64
    }

    /// The local line of `name`: `limit` slots (a new line when the limit changed).
    fn local(&self, name: &str, limit: u32) -> Arc<Semaphore> {
        let mut locals = self.locals.lock().unwrap_or_else(|e| e.into_inner());
        match locals.get(name) {
            Some((l, s)) if *l == limit => s.clone(),
            _ => {
                let s = Arc::new(Semaphore::new(limit as usize));
                locals.insert(name.to_string(), (limit, s.clone()));
                s
            }
        }
    }

    /// Reads the holders, changes them with `f`, writes them back if `f` says so; again on a
    /// lost race.
    async fn update<T>(
        &self,
        name: &str,
        mut f: impl FnMut(&mut Holders, i64) -> (T, bool),
    ) -> Result<T, LimitError> {
        loop {
            let now = self.now_ms();
            let existing = self
                .store
                .get(SEMAPHORE_PK, name)
                .await
                .map_err(unavailable)?;
            let (mut holders, cond, version) = match &existing {
                None => (Holders::default(), Condition::NotExists, 1),
                Some(item) => (
                    // Holders that do not parse are forgotten (their places expire anyway).
                    item.parse::<Holders>().unwrap_or_default(),
                    Condition::VersionIs(item.version),
                    item.version + 1,
                ),
            };
            let (out, write) = f(&mut holders, now);
            if !write {
                return Ok(out);
            }
            self.writes.fetch_add(1, Ordering::Relaxed);
            let item = Item::json(SEMAPHORE_PK, name, &holders)
                .with_version(version)
                .with_expiry(holders.item_expiry_s(now));
            match self.store.put(item, cond).await {
                Ok(()) => return Ok(out),
                // Lost a race: another holder wrote between our read and write. A short
                // random pause, so that the racers do not collide again at once.
                Err(e) if e.is_condition_failed() => {
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=10))).await;
                    continue;
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
    }
}

#[async_trait]
impl ConcurrencyLimit for StoreSemaphore {
    async fn acquire(&self, name: &str, limit: u32) -> Result<Permit, LimitError> {
        let limit = limit.max(1);
        let local = self
            .local(name, limit)
            .acquire_owned()
            .await
            .expect("local semaphores are never closed");
        let holder = format!(
            "{}:{}:{}-{}",
            self.host,
            self.pid,
            self.instance,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let ttl = self.ttl_ms();
        let mut wait = self.spec.poll_min;
        loop {
            let take = self
                .update(name, |h, now| {
                    if h.live(now) >= limit as usize {
                        h.drop_gone(|id| self.holder_gone(id));
                    }
                    let t = h.take(&holder, limit, now, ttl);
                    (t, matches!(t, Take::Granted { .. }))
                })
                .await?;
            match take {
                Take::Granted { .. } => {
                    return Ok(Permit::new(name, holder, self.spec.ttl / 3).with_guard(local))
                }
                // Every place is held: wait for a release (polled, backing off) or for the
                // first place to expire, whichever is sooner, plus a random extra so that
                // waiters of several processes do not all come back at once.
                Take::Full { next_expiry_ms } => {
                    let until_expiry = (next_expiry_ms - self.now_ms() + 1).max(0) as u64;
                    let ms = (wait.as_millis() as u64).min(until_expiry.max(1));
                    let ms = ms + fastrand::u64(0..=ms / 2);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    wait = (wait * 2).min(self.spec.poll_max);
                }
            }
        }
    }

    async fn renew(&self, permit: &Permit) -> Result<bool, LimitError> {
        let ttl = self.ttl_ms();
        self.update(&permit.name, |h, now| {
            let ok = h.renew(&permit.holder, now, ttl);
            (ok, ok)
        })
        .await
    }

    async fn release(&self, permit: Permit) -> Result<(), LimitError> {
        // The local slot (the permit's guard) is freed when `permit` drops, after the write.
        self.update(&permit.name, |h, _| {
            let had = h.give(&permit.holder);
            ((), had)
        })
        .await
    }
}
