//! The shared Classy request budget on the [`Store`] port: one token bucket per application
//! (`BUDGET` / `APP#<client id>`), updated with conditional writes (`VersionIs`), from which
//! each process leases small blocks of tokens — one store write per block, so about one
//! write per ten API calls at Classy's budget (a process that spends slowly leases only what
//! it spends in a hold, so it does not waste the rest). Within a process, the tasks of one application
//! take turns in the order they asked (a fair queue: one organization's sync cannot starve
//! another's in the same process). See docs/classy-budget.md.

use crate::domain::budget::{Bucket, BudgetSpec, Take};
use crate::domain::keys::{budget_sk, BUDGET_PK};
use crate::ports::store::{Condition, Item, Store, StoreError};
use crate::ports::{BudgetError, Clock, RateBudget};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tokens this process leased and has not spent yet, and how fast it spends them.
#[derive(Default)]
struct Held {
    tokens: u32,
    until_ms: i64,
    /// When the last block was leased (0: never) and what was spent since.
    leased_at_ms: i64,
    spent_since_lease: u32,
    /// When the last lease's tokens ran out (0: they did not; they expired).
    spent_out_ms: i64,
}

impl Held {
    /// How many tokens to lease: what this process spends in a hold at its recent pace, plus
    /// one, at most a block (the first time, one more than it needs). A slow process (one sync waiting on slow pages) leases few, so it
    /// does not drop most of a block when the hold ends and starve the others.
    fn want(&self, spec: &BudgetSpec, now_ms: i64, missing: u32) -> u32 {
        let pace = if self.leased_at_ms == 0 {
            // Pace unknown: a process that makes one call (a small entity) leaves at most
            // one token unspent; a fast one leases a block from its second lease on.
            missing + 1
        } else {
            // The pace while it had tokens: a process that ran out and then waited for the
            // bucket is fast, whatever the wait.
            let until = if self.spent_out_ms >= self.leased_at_ms {
                self.spent_out_ms
            } else {
                now_ms
            };
            let elapsed = (until - self.leased_at_ms).max(1) as f64;
            let per_hold = self.spent_since_lease as f64 * spec.hold_ms as f64 / elapsed;
            per_hold.ceil().min(spec.block as f64) as u32 + 1
        };
        pace.clamp(missing, spec.block.max(missing))
    }
}

#[derive(Default)]
struct Slot {
    /// Tasks of one application wait here in arrival order (tokio's mutex is FIFO).
    turn: tokio::sync::Mutex<()>,
    held: Mutex<Held>,
}

pub struct StoreBudget {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    spec: BudgetSpec,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    writes: AtomicU64,
    stats: Counters,
}

/// What this process did with the budget (see [`StoreBudget::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Tokens granted by the bucket.
    pub leased: u64,
    /// Tokens spent on calls.
    pub spent: u64,
    /// Leased tokens dropped unspent (their hold ended, or a 429 / a low Remaining).
    pub dropped: u64,
    /// Time tasks slept because the bucket was short, in milliseconds (random extra included).
    pub slept_ms: u64,
    /// Pauses written because `X-RateLimit-Remaining` was low.
    pub remaining_pauses: u64,
    /// Conditional writes lost to another process's write (each was sent again).
    pub lost_races: u64,
}

#[derive(Default)]
struct Counters {
    leased: AtomicU64,
    spent: AtomicU64,
    dropped: AtomicU64,
    slept_ms: AtomicU64,
    remaining_pauses: AtomicU64,
    lost_races: AtomicU64,
}

impl std::fmt::Debug for StoreBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBudget")
            .field("spec", &self.spec)
            .field("store_writes", &self.store_writes())
            .finish_non_exhaustive()
    }
}

fn unavailable(e: StoreError) -> BudgetError {
    BudgetError::Unavailable(e.to_string())
}

impl StoreBudget {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, spec: BudgetSpec) -> Self {
        StoreBudget {
            store,
            clock,
            spec,
            slots: Mutex::new(HashMap::new()),
            writes: AtomicU64::new(0),
            stats: Counters::default(),
        }
    }

    /// Tokens leased, spent and dropped by this process, time slept for the bucket, pauses
    /// for a low `X-RateLimit-Remaining` (also logged at debug level as they change).
    pub fn stats(&self) -> BudgetStats {
        let c = &self.stats;
        BudgetStats {
            leased: c.leased.load(Ordering::Relaxed),
            spent: c.spent.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            slept_ms: c.slept_ms.load(Ordering::Relaxed),
            remaining_pauses: c.remaining_pauses.load(Ordering::Relaxed),
            lost_races: c.lost_races.load(Ordering::Relaxed),
        }
    }

    fn log_stats(&self, app: &str, event: &'static str) {
        let s = self.stats();
        tracing::debug!(
            app,
            event,
            leased = s.leased,
            spent = s.spent,
            dropped = s.dropped,
            slept_ms = s.slept_ms,
            remaining_pauses = s.remaining_pauses,
            lost_races = s.lost_races,
            store_writes = self.store_writes(),
            "classy budget"
        );
    }

    fn count_dropped(&self, n: u32) {
        self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn spec(&self) -> &BudgetSpec {
        &self.spec
    }

    /// Conditional writes this process sent to the store (won or lost).
    pub fn store_writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn slot(&self, app: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(app.to_string()).or_default().clone()
    }

    /// Reads the bucket, changes it with `f`, writes it back if `f` says so; again on a lost race.
    async fn update<T>(
        &self,
        app: &str,
        mut f: impl FnMut(&mut Bucket, i64) -> (T, bool),
    ) -> Result<T, BudgetError> {
        let sk = budget_sk(app);
        loop {
            let now = self.now_ms();
            let existing = self.store.get(BUDGET_PK, &sk).await.map_err(unavailable)?;
            let (mut bucket, cond, version) = match &existing {
                None => (Bucket::full(&self.spec, now), Condition::NotExists, 1),
                Some(item) => (
                    // A bucket that does not parse is replaced by a full one.
                    item.parse::<Bucket>()
                        .unwrap_or_else(|_| Bucket::full(&self.spec, now)),
                    Condition::VersionIs(item.version),
                    item.version + 1,
                ),
            };
            let (out, write) = f(&mut bucket, now);
            if !write {
                return Ok(out);
            }
            self.writes.fetch_add(1, Ordering::Relaxed);
            let item = Item::json(BUDGET_PK, &sk, &bucket).with_version(version);
            match self.store.put(item, cond).await {
                Ok(()) => return Ok(out),
                Err(e) if e.is_condition_failed() => {
                    self.stats.lost_races.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
    }

    fn drop_held(&self, app: &str) {
        let slot = self.slot(app);
        let mut held = slot.held.lock().unwrap_or_else(|e| e.into_inner());
        self.count_dropped(held.tokens);
        held.tokens = 0;
    }
}

#[async_trait]
impl RateBudget for StoreBudget {
    async fn acquire(&self, app: &str, n: u32) -> Result<(), BudgetError> {
        let n = n.clamp(1, self.spec.capacity.max(1));
        let slot = self.slot(app);
        let _turn = slot.turn.lock().await;
        loop {
            let want = {
                let mut held = slot.held.lock().unwrap_or_else(|e| e.into_inner());
                if held.until_ms < self.now_ms() && held.tokens > 0 {
                    // Kept too long: spending them now could overrun a window.
                    self.count_dropped(held.tokens);
                    held.tokens = 0;
                }
                if held.tokens >= n {
                    held.tokens -= n;
                    self.stats.spent.fetch_add(n as u64, Ordering::Relaxed);
                    held.spent_since_lease += n;
                    if held.tokens == 0 {
                        held.spent_out_ms = self.now_ms();
                    }
                    return Ok(());
                }
                held.want(&self.spec, self.now_ms(), n - held.tokens)
            };
            let spec = self.spec;
            let take = self
                .update(app, |b, now| {
                    let t = b.take(&spec, want, now);
                    (t, matches!(t, Take::Granted(_)))
                })
                .await?;
            match take {
                Take::Granted(k) => {
                    let mut held = slot.held.lock().unwrap_or_else(|e| e.into_inner());
                    let now = self.now_ms();
                    held.tokens += k;
                    self.stats.leased.fetch_add(k as u64, Ordering::Relaxed);
                    held.until_ms = now + spec.hold_ms as i64;
                    held.leased_at_ms = now;
                    held.spent_since_lease = 0;
                    held.spent_out_ms = 0;
                    drop(held);
                    self.log_stats(app, "leased");
                }
                // A random extra of up to half the wait: processes that found the bucket
                // empty at once do not all come back at once and race for one block.
                Take::WaitMs(ms) => {
                    let ms = ms + fastrand::u64(0..=ms / 2);
                    self.stats.slept_ms.fetch_add(ms, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    self.log_stats(app, "slept");
                }
            }
        }
    }

    async fn block_for(&self, app: &str, wait: Duration) -> Result<(), BudgetError> {
        self.drop_held(app);
        let spec = self.spec;
        let wait_ms = wait.as_millis().min(i64::MAX as u128) as i64;
        self.update(app, |b, now| {
            let until = now.saturating_add(wait_ms);
            let write = until > b.blocked_until_ms || b.tokens > 0.0;
            b.block_until(&spec, until, now);
            ((), write)
        })
        .await
    }

    async fn remaining(&self, app: &str, remaining: u32) {
        if remaining >= self.spec.block {
            return;
        }
        // The server counts fewer calls left than our bucket allows (its window is not ours,
        // or another client spends the same application): pause everyone for a hold.
        let pause = Duration::from_millis(self.spec.hold_ms);
        self.stats.remaining_pauses.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.block_for(app, pause).await {
            tracing::warn!(app, error = %e, "could not record a low X-RateLimit-Remaining");
        }
        self.log_stats(app, "remaining");
    }
}
