//! The local adapters: the conformance suites, then what is specific to files on one machine.

use chrono::{TimeZone, Utc};
use classy_sync_core::ports::{
    Clock, Condition, Item, JobQueue, ManualClock, OutMessage, SecretError, SecretStore, SkRange,
    Store, StoreError, SystemClock, WriteOp,
};
use classy_sync_local::{LocalQueue, QueueOptions, SecretsFile, SqliteStore};
use classy_sync_testkit::conformance::{
    queue_conformance, secrets_conformance, store_conformance, QueueProfile,
};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
    ))
}

const JUNK: &[u8] = b"this is not a database, just some junk bytes\n\x00\x01\x02 and more";

// ----- conformance ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_file_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    store_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_in_memory_passes_conformance() {
    store_conformance(&SqliteStore::in_memory().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_queue_file_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let queue = LocalQueue::open(
        dir.path().join("queue.db"),
        QueueOptions { max_receives: 3 },
        clock.clone(),
    )
    .unwrap();
    queue_conformance(
        &queue,
        &*clock,
        QueueProfile {
            max_receives: 3,
            exact: true,
            per_message_delay: true,
            dedup: true,
        },
    )
    .await;
}

#[tokio::test]
async fn local_queue_in_memory_with_default_options_passes_conformance() {
    let clock = manual_clock();
    let queue = LocalQueue::in_memory(QueueOptions::default(), clock.clone()).unwrap();
    assert_eq!(queue.options().max_receives, 5);
    queue_conformance(
        &queue,
        &*clock,
        QueueProfile {
            max_receives: 5,
            exact: true,
            per_message_delay: true,
            dedup: true,
        },
    )
    .await;
}

#[tokio::test]
async fn secrets_file_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretsFile::open(dir.path().join("secrets.json")).unwrap();
    secrets_conformance(&secrets).await;
}

// ----- SqliteStore ----------------------------------------------------------------------------

#[test]
fn store_refuses_a_junk_file_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    std::fs::write(&path, JUNK).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(
        msg.contains(&path.display().to_string()),
        "names the path: {msg}"
    );
    assert!(msg.contains("file is not a database"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), JUNK, "junk unchanged");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no -wal or -shm files created next to it");
}

#[test]
fn store_refuses_a_short_junk_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    std::fs::write(&path, b"{}").unwrap();
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"{}");
}

#[test]
fn store_refuses_a_queue_file_and_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let qpath = dir.path().join("queue.db");
    drop(LocalQueue::open(&qpath, QueueOptions::default(), Arc::new(SystemClock)).unwrap());
    let err = SqliteStore::open(&qpath).unwrap_err().to_string();
    assert!(err.contains("not a classy-sync store file"), "{err}");

    let spath = dir.path().join("store.db");
    drop(SqliteStore::open(&spath).unwrap());
    let conn = rusqlite::Connection::open(&spath).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&spath).unwrap_err().to_string();
    assert!(err.contains("schema version 99"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_file_is_durable_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/store.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.path(), Some(path.as_path()));
        store
            .put(
                Item::new("ORG#1", "META", "{}").with_version(1),
                Condition::NotExists,
            )
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.get("ORG#1", "META").await.unwrap(),
        Some(Item::new("ORG#1", "META", "{}").with_version(1))
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_store_handles_on_one_file_take_a_lease_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    for round in 0..20i64 {
        let now = 1000 + round * 100;
        let take = |s: Arc<SqliteStore>, who: &'static str| {
            tokio::spawn(async move {
                s.put(
                    Item::new("ORG#1", "LEASE#supporters", who).with_expiry(now + 50),
                    Condition::NotExistsOrExpired { now },
                )
                .await
            })
        };
        let (ra, rb) = (take(a.clone(), "a"), take(b.clone(), "b"));
        let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
        assert!(
            ra.is_ok() ^ rb.is_ok(),
            "round {round}: exactly one handle takes the lease: {ra:?} {rb:?}"
        );
        let holder = a.get("ORG#1", "LEASE#supporters").await.unwrap().unwrap();
        assert_eq!(holder.data, if ra.is_ok() { "a" } else { "b" });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_purges_expired_items() {
    let store = SqliteStore::in_memory().unwrap();
    store
        .batch_write(vec![
            WriteOp::Put(Item::new("P", "old", "x").with_expiry(10)),
            WriteOp::Put(Item::new("P", "new", "x").with_expiry(1000)),
            WriteOp::Put(Item::new("P", "forever", "x")),
        ])
        .await
        .unwrap();
    assert_eq!(store.purge_expired(500).await.unwrap(), 1);
    let page = store.query("P", &SkRange::All, None, 10).await.unwrap();
    let sks: Vec<_> = page.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, ["forever", "new"]);
}

/// The sync writes ~300 items per page and must sustain ≥ 25,000 records/s. Printed with
/// `--nocapture`; timing is not asserted (shared CI machines).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_throughput() {
    const BATCHES: usize = 100;
    const PER_BATCH: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    let pad = "x".repeat(330);
    let make = |batch: usize, gen: u32| -> Vec<WriteOp> {
        (0..PER_BATCH)
            .map(|i| {
                let n = batch * PER_BATCH + i;
                let data = format!(
                    "{{\"id\":{n},\"gen\":{gen},\"email\":\"donor{n}@example.org\",\"pad\":\"{pad}\"}}"
                );
                WriteOp::Put(
                    Item::new("ORG#42", format!("SUPPORTER#{n:09}"), data).with_version(1),
                )
            })
            .collect()
    };
    let item_bytes = match &make(0, 1)[0] {
        WriteOp::Put(i) => i.pk.len() + i.sk.len() + i.data.len(),
        WriteOp::Delete { .. } => unreachable!(),
    };
    for (label, gen) in [("insert", 1), ("overwrite", 2)] {
        let batches: Vec<_> = (0..BATCHES).map(|b| make(b, gen)).collect();
        let start = Instant::now();
        for ops in batches {
            store.batch_write(ops).await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let total = (BATCHES * PER_BATCH) as f64;
        println!(
            "batch_write {label}: {BATCHES} batches x {PER_BATCH} items of ~{item_bytes} bytes \
             in {secs:.3}s = {:.0} items/s",
            total / secs
        );
    }
    let page = store
        .query("ORG#42", &SkRange::prefix("SUPPORTER#"), None, 10)
        .await
        .unwrap();
    assert!(page.items[0].data.contains("\"gen\":2"));
}

// ----- LocalQueue -----------------------------------------------------------------------------

#[test]
fn queue_refuses_a_junk_file_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    std::fs::write(&path, JUNK).unwrap();
    let err = LocalQueue::open(&path, QueueOptions::default(), Arc::new(SystemClock))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("file is not a database"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), JUNK);
}

#[test]
fn queue_refuses_zero_max_receives() {
    let r = LocalQueue::in_memory(QueueOptions { max_receives: 0 }, Arc::new(SystemClock));
    assert!(r.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_messages_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let clock = manual_clock();
    {
        let q = LocalQueue::open(&path, QueueOptions::default(), clock.clone()).unwrap();
        q.send_batch(vec![OutMessage::new("job-1"), OutMessage::new("job-2")])
            .await
            .unwrap();
        let r = q.receive(1, Duration::from_secs(30)).await.unwrap();
        assert_eq!(r[0].body, "job-1");
    }
    let q = LocalQueue::open(&path, QueueOptions::default(), clock.clone()).unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.visible, s.in_flight), (1, 1), "{s:?}");
    clock.advance(chrono::Duration::seconds(31));
    let r = q.receive(10, Duration::from_secs(30)).await.unwrap();
    let bodies: HashSet<_> = r.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, HashSet::from(["job-1", "job-2"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_queue_handles_on_one_file_deliver_each_message_once() {
    const N: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let a = Arc::new(LocalQueue::open(&path, QueueOptions::default(), clock.clone()).unwrap());
    let b = Arc::new(LocalQueue::open(&path, QueueOptions::default(), clock).unwrap());
    for chunk in (0..N).collect::<Vec<_>>().chunks(10) {
        a.send_batch(
            chunk
                .iter()
                .map(|i| OutMessage::new(format!("m{i}")))
                .collect(),
        )
        .await
        .unwrap();
    }
    let worker = |q: Arc<LocalQueue>| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = q.receive(3, Duration::from_secs(600)).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                for m in batch {
                    q.delete(&m.receipt).await.unwrap();
                    got.push(m.body);
                }
            }
        })
    };
    let handles = [
        worker(a.clone()),
        worker(b.clone()),
        worker(a.clone()),
        worker(b),
    ];
    let mut all = Vec::new();
    let mut per_worker = Vec::new();
    for h in handles {
        let got = h.await.unwrap();
        per_worker.push(got.len());
        all.extend(got);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a message was delivered twice");
    assert_eq!(
        all.len(),
        N,
        "every message delivered; per worker {per_worker:?}"
    );
    println!("two handles, four workers: messages per worker {per_worker:?}");
    assert_eq!(a.stats().await.unwrap(), Default::default());
}

// ----- SecretsFile ----------------------------------------------------------------------------

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn secrets_file_is_created_private_and_stays_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf/secrets.json");
    let secrets = SecretsFile::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    secrets
        .put("classy-sync/1/classy", SecretString::from("v".to_string()))
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600, "rewritten file keeps mode 0600");
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn secrets_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    std::fs::write(&path, r#"{"a": "b"}"#).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = SecretsFile::open(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("0644") && err.contains("chmod 600"), "{err}");

    // Loosened after opening: `get` refuses too.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secrets = SecretsFile::open(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = secrets.get("a").await.unwrap_err().to_string();
    assert!(err.contains("0640"), "{err}");
}

#[tokio::test]
async fn secrets_file_with_bad_json_is_refused_without_leaking_or_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let text = "{\n  \"classy\": \"hunter2-very-secret\"\n  \"mailchimp\": 12345\n}\n";
    std::fs::write(&path, text).unwrap();
    restrict(&path);
    let err = SecretsFile::open(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SecretError::Corrupt(_)), "{err:?}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("line 3"), "names the line: {msg}");
    assert!(!msg.contains("hunter2"), "no values in errors: {msg}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "file untouched"
    );

    // A value of the wrong type: serde would quote it; we must not.
    std::fs::write(&path, "{\"a\": \"x\", \"b\": 987654321}").unwrap();
    let msg = SecretsFile::open(&path).unwrap_err().to_string();
    assert!(!msg.contains("987654321"), "{msg}");
}

#[cfg(unix)]
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(not(unix))]
fn restrict(_path: &Path) {}

#[tokio::test]
async fn secrets_file_sees_other_writers_and_hides_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let reader = SecretsFile::open(&path).unwrap();
    let writer = SecretsFile::open(&path).unwrap();
    writer
        .put(
            "classy-sync/7/classy",
            SecretString::from("tok-abc-123".to_string()),
        )
        .await
        .unwrap();
    let v = reader.get("classy-sync/7/classy").await.unwrap();
    assert_eq!(v.expose_secret(), "tok-abc-123", "re-read on get");
    assert!(!format!("{reader:?} {v:?}").contains("tok-abc-123"));
    assert_eq!(reader.names().await.unwrap(), ["classy-sync/7/classy"]);

    // Concurrent writers through different handles lose nothing.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let h = if i % 2 == 0 {
                reader.clone()
            } else {
                SecretsFile::open(&path).unwrap()
            };
            tokio::spawn(async move {
                h.put(&format!("k{i}"), SecretString::from(format!("v{i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(reader.names().await.unwrap().len(), 17);
}

/// The variant SQS will run: real time, sleeps instead of clock jumps (~15 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: sleeps in real time; run with --ignored"]
async fn local_queue_passes_conformance_in_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let queue = LocalQueue::open(
        dir.path().join("queue.db"),
        QueueOptions { max_receives: 3 },
        Arc::new(SystemClock),
    )
    .unwrap();
    queue_conformance(
        &queue,
        &classy_sync_testkit::conformance::RealTime,
        QueueProfile {
            max_receives: 3,
            exact: true,
            per_message_delay: true,
            dedup: true,
        },
    )
    .await;
}
