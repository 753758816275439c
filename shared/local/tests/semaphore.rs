//! The shared concurrency limit (`StoreSemaphore`) on SQLite: two stores opened on one file
//! are two processes sharing a data directory.

use classy_sync_core::ports::Store;
use classy_sync_local::SqliteStore;
use classy_sync_testkit::semaphore::semaphore_conformance;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_data_directory_share_one_semaphore() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    semaphore_conformance(a, b).await;
}

/// A local process killed while it holds places (SIGKILL: no release) gives them all back at once
/// to a process on the same host, not after their expiry; a live holder keeps its places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_local_holders_places_come_back_at_once() {
    use classy_sync_core::domain::keys::mailchimp_semaphore_sk;
    use classy_sync_core::engine::semaphore::{SemaphoreSpec, StoreSemaphore};
    use classy_sync_core::ports::{ConcurrencyLimit, SystemClock};
    use classy_sync_local::ProcLiveness;
    use std::time::{Duration, Instant};
    if !cfg!(target_os = "linux") || ProcLiveness::new().host().is_empty() {
        return;
    }
    use classy_sync_core::ports::HolderLiveness;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let spec = SemaphoreSpec {
        ttl: Duration::from_secs(60),
        ..SemaphoreSpec::default()
    };
    let open = || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&path).unwrap()) };
    let name = mailchimp_semaphore_sk("00000000000000dd");
    // The other process: its places are recorded under its own pid.
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let theirs = StoreSemaphore::with_spec(open(), Arc::new(SystemClock), spec)
        .with_liveness(Arc::new(ProcLiveness::new()))
        .with_pid(child.id());
    for _ in 0..2 {
        drop(theirs.acquire(&name, 2).await.unwrap());
    }
    let ours = StoreSemaphore::with_spec(open(), Arc::new(SystemClock), spec)
        .with_liveness(Arc::new(ProcLiveness::new()));
    // While it lives, its places are its own.
    let waited = tokio::time::timeout(Duration::from_millis(300), ours.acquire(&name, 2)).await;
    assert!(waited.is_err(), "took a live holder's place");
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    let p = ours.acquire(&name, 2).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?} for a dead holder's place (its expiry is 60 s)",
        started.elapsed()
    );
    ours.release(p).await.unwrap();
    assert_eq!(
        ours.held(&name).await.unwrap(),
        0,
        "both dead places were dropped"
    );
}
