//! The shared concurrency limit (the engine's `StoreSemaphore`) over any store: the same
//! checks on SQLite (two processes on one file) and DynamoDB (two containers on one table).

use classy_sync_core::domain::keys::mailchimp_semaphore_sk;
use classy_sync_core::engine::semaphore::{SemaphoreSpec, StoreSemaphore};
use classy_sync_core::ports::{within, ConcurrencyLimit, Store, SystemClock};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn semaphore(store: Arc<dyn Store>, ttl_ms: u64) -> Arc<StoreSemaphore> {
    Arc::new(StoreSemaphore::with_spec(
        store,
        Arc::new(SystemClock),
        SemaphoreSpec {
            ttl: Duration::from_millis(ttl_ms),
            poll_min: Duration::from_millis(5),
            poll_max: Duration::from_millis(100),
        },
    ))
}

/// `a` and `b` reach one state (two processes, two containers). Checks: four tasks in each
/// never hold more than the limit at once and all get through, then no place is left held;
/// a place taken by a holder that died comes back when it expires; a request longer than
/// the expiry keeps its place (renewed); a release frees a place at once.
pub async fn semaphore_conformance(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    const LIMIT: u32 = 3;
    let name = mailchimp_semaphore_sk("00000000000000aa");
    let sems = [semaphore(a.clone(), 2_000), semaphore(b.clone(), 2_000)];
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for sem in &sems {
        for _ in 0..4 {
            let limiter: Arc<dyn ConcurrencyLimit> = sem.clone();
            let (name, now, peak, done) = (name.clone(), now.clone(), peak.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..8 {
                    within(&limiter, &name, LIMIT, async {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(40)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("pusher task");
    }
    let peak = peak.load(Ordering::SeqCst);
    assert_eq!(done.load(Ordering::SeqCst), 64);
    assert!(peak <= LIMIT as usize, "{peak} in flight, limit {LIMIT}");
    assert!(peak >= 2, "the tasks overlapped: peak {peak}");
    assert_eq!(
        sems[0].held(&name).await.unwrap(),
        0,
        "every place came back"
    );
    let writes = sems[0].store_writes() + sems[1].store_writes();
    println!("64 requests from 8 tasks in 2 processes, limit {LIMIT}: peak {peak} in flight, {writes} store writes");
    // One write to take and one to give back per request, plus lost races.
    assert!((128..512).contains(&writes), "{writes} writes");

    // A holder that dies (its permits dropped, never released) keeps its places until they
    // expire; then another process takes one.
    let dead_name = mailchimp_semaphore_sk("00000000000000bb");
    let dead = semaphore(a.clone(), 600);
    for _ in 0..2 {
        drop(dead.acquire(&dead_name, 2).await.unwrap());
    }
    assert_eq!(dead.held(&dead_name).await.unwrap(), 2);
    let other = semaphore(b.clone(), 600);
    let started = Instant::now();
    let p = other.acquire(&dead_name, 2).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "waited {waited:?} for a dead holder's place"
    );
    other.release(p).await.unwrap();

    // A request longer than the expiry renews its place: the other process waits for it.
    let long_name = mailchimp_semaphore_sk("00000000000000cc");
    let (x, y) = (semaphore(a.clone(), 300), semaphore(b, 300));
    let limiter: Arc<dyn ConcurrencyLimit> = x.clone();
    let long = tokio::spawn({
        let long_name = long_name.clone();
        async move {
            within(&limiter, &long_name, 1, async {
                tokio::time::sleep(Duration::from_millis(1_000)).await;
                Instant::now()
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let p = y.acquire(&long_name, 1).await.unwrap();
    let got = Instant::now();
    let long_done = long.await.unwrap();
    assert!(
        got >= long_done,
        "the long request lost its place to another"
    );
    // A release frees the place at once.
    y.release(p).await.unwrap();
    let started = Instant::now();
    let p = x.acquire(&long_name, 1).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    x.release(p).await.unwrap();
    assert_eq!(x.held(&long_name).await.unwrap(), 0);

    // A request cancelled while it holds a place gives it back at once (from a task), not
    // when it expires.
    let slow = semaphore(a, 10_000);
    let limiter: Arc<dyn ConcurrencyLimit> = slow.clone();
    let cancelled = tokio::spawn({
        let long_name = long_name.clone();
        async move {
            within(&limiter, &long_name, 1, async {
                tokio::time::sleep(Duration::from_secs(30)).await
            })
            .await
        }
    });
    let started = Instant::now();
    while slow.held(&long_name).await.unwrap() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never took the place"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancelled.abort();
    let started = Instant::now();
    while slow.held(&long_name).await.unwrap() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a cancelled request kept its place"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
