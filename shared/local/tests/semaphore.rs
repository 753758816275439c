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
