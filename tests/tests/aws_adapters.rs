//! The AWS adapters against moto (`moto_server`), which speaks the real AWS wire protocol.
//! Each test starts its own server. Without moto these tests fail, naming what to install.

use classy_sync_aws::{DynamoStore, EventBridgeBus, RetryPolicy, SecretsManagerStore, SqsQueue};
use classy_sync_core::ports::{
    Event, EventBus, EventError, Item, JobQueue, OutMessage, QueueError, Received, SecretError,
    SecretStore, SkRange, Store, WriteOp,
};
use classy_sync_testkit::conformance::{
    queue_conformance, secrets_conformance, store_conformance, QueueProfile, RealTime,
};
use classy_sync_tests::moto::MotoServer;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const TABLE: &str = "classy-sync-test";

async fn store(moto: &MotoServer) -> DynamoStore {
    let client = moto.dynamodb().await;
    classy_sync_tests::aws_setup::create_table(&client, TABLE)
        .await
        .expect("create table");
    DynamoStore::new(client, TABLE)
}

// ---------------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_passes_the_store_conformance_suite() {
    let moto = MotoServer::start();
    let store = store(&moto).await;
    store_conformance(&store).await;
}

/// The shared Classy request budget on DynamoDB: two budgets (two Lambda containers) on one
/// table lease blocks from one bucket, and a 429 recorded by one blocks the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_holds_the_shared_classy_budget() {
    use classy_sync_core::domain::budget::{Bucket, BudgetSpec};
    use classy_sync_core::domain::keys::{budget_sk, BUDGET_PK};
    use classy_sync_core::engine::budget::StoreBudget;
    use classy_sync_core::ports::{RateBudget, SystemClock};
    use std::sync::Arc;
    let moto = MotoServer::start();
    let store = Arc::new(store(&moto).await);
    // Scaled: 40 calls a 2 s window, blocks of 4 in a bucket of 8, held 100 ms.
    let spec = BudgetSpec {
        per_window: 40,
        window_ms: 2_000,
        capacity: 8,
        block: 4,
        hold_ms: 100,
    };
    let a = Arc::new(StoreBudget::new(store.clone(), Arc::new(SystemClock), spec));
    let b = Arc::new(StoreBudget::new(store.clone(), Arc::new(SystemClock), spec));
    let start = Instant::now();
    let run = Duration::from_secs(3);
    let mut tasks = Vec::new();
    for budget in [a.clone(), b.clone()] {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < run {
                budget.acquire("app-1", 1).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut calls = 0;
    for t in tasks {
        let n = t.await.unwrap();
        assert!(n > 0);
        calls += n;
    }
    let writes = a.store_writes() + b.store_writes();
    let lost = a.stats().lost_races + b.stats().lost_races;
    let won = writes - lost;
    // At most the burst plus the refill over the run and one hold (and one block in flight).
    let most = spec.capacity as f64 + spec.rate_per_ms() * (3_000.0 + 100.0) + 4.0;
    println!("{calls} calls, {writes} store writes ({lost} lost races), at most {most:.0}");
    assert!(calls as f64 <= most, "{calls} calls, at most {most}");
    assert!(calls >= 40, "{calls}");
    // Leases are blocks: each process's first lease is 2 tokens, then blocks of 4. How often
    // two containers race for one bucket depends on the store's latency (moto on a loaded
    // machine is slow), so lost races are bounded apart: fewer than the leases won.
    assert!(won * 3 <= calls + 2, "{won} leases for {calls} calls");
    assert!(lost <= won, "{lost} lost races for {won} leases");
    let item = store
        .get(BUDGET_PK, &budget_sk("app-1"))
        .await
        .unwrap()
        .unwrap();
    assert!(item.version >= 2);
    // A 429 seen by one container empties the bucket for both until the wait ends.
    a.block_for("app-1", Duration::from_millis(700))
        .await
        .unwrap();
    let bucket: Bucket = store
        .get(BUDGET_PK, &budget_sk("app-1"))
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        bucket.blocked_until_ms > 0 && bucket.tokens == 0.0,
        "{bucket:?}"
    );
    tokio::time::sleep(Duration::from_millis(150)).await; // b's held tokens expire
    let started = Instant::now();
    b.acquire("app-1", 1).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

/// The shared Mailchimp concurrency limit on DynamoDB: two semaphores on two clients of one
/// table (two Lambda containers) never hold more places than the limit, a dead holder's
/// place expires, a long request renews its own (the same checks as on SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_holds_the_shared_concurrency_limit() {
    use std::sync::Arc;
    let moto = MotoServer::start();
    let a: Arc<dyn Store> = Arc::new(store(&moto).await);
    let b: Arc<dyn Store> = Arc::new(DynamoStore::new(moto.dynamodb().await, TABLE));
    classy_sync_testkit::semaphore::semaphore_conformance(a, b).await;
}

/// The table the SAM template must declare: keys, GSI and TTL attribute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_table_layout_matches_the_template() {
    let moto = MotoServer::start();
    let client = moto.dynamodb().await;
    classy_sync_tests::aws_setup::create_table(&client, TABLE)
        .await
        .expect("create table");
    classy_sync_tests::aws_setup::create_table(&client, TABLE)
        .await
        .expect("creating an existing table again is fine");
    let t = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    let keys: Vec<(String, String)> = t
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("pk".to_owned(), "HASH".to_owned()),
            ("sk".to_owned(), "RANGE".to_owned())
        ]
    );
    let gsi = &t.global_secondary_indexes()[0];
    assert_eq!(gsi.index_name(), Some("gsi1"));
    let gsi_keys: Vec<&str> = gsi
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    assert_eq!(gsi_keys, vec!["gsi1", "sk"]);
    assert_eq!(
        gsi.projection()
            .and_then(|p| p.projection_type())
            .map(|p| p.as_str()),
        Some("ALL")
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .expect("ttl");
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expires_at")
    );
}

/// Not asserted: how fast batch_write goes against moto (a Python server on this machine,
/// so it says more about moto than DynamoDB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_batch_write_throughput() {
    let moto = MotoServer::start();
    let store = store(&moto).await;
    let ops: Vec<WriteOp> = (0..300)
        .map(|i| {
            WriteOp::Put(Item::new(
                "ORG#1",
                format!("SUPPORTER#{i:05}"),
                format!("{{\"id\":{i},\"pad\":\"{}\"}}", "x".repeat(400)),
            ))
        })
        .collect();
    let started = Instant::now();
    store.batch_write(ops).await.expect("batch_write");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "batch_write of 300 items against moto: {:.2} s, {:.0} items/s",
        secs,
        300.0 / secs
    );
    let page = store
        .query("ORG#1", &SkRange::prefix("SUPPORTER#"), None, 1000)
        .await
        .expect("query");
    assert_eq!(page.items.len(), 300);
}

/// Errors of an unreachable DynamoDB are `Unavailable` and name the operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_errors_name_the_operation() {
    let moto = MotoServer::start();
    let client = moto.dynamodb().await;
    let store = DynamoStore::new(client, "no-such-table");
    match store.get("P", "S").await {
        Err(classy_sync_core::ports::StoreError::Unavailable(m)) => {
            assert!(m.contains("GetItem"), "{m}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// SQS
// ---------------------------------------------------------------------------------------------
//
// Both queue types run `conformance::queue_conformance` unchanged; their profiles say what
// each can do: standard queues take per-message delays but cannot deduplicate, FIFO queues
// deduplicate but refuse per-message delays. SQS is not exact (approximate counts, old
// receipts not always refused, a 5-minute dedup window), so `exact` is false. The tests
// below the suite check what it does not: FIFO order within a group, and the counts
// `stats` reads, which moto reports exactly.

const LONG_VIS: Duration = Duration::from_secs(60);
const MAX_RECEIVES: u32 = 3;

async fn queue(moto: &MotoServer, name: &str) -> SqsQueue {
    let client = moto.sqs().await;
    let (url, dlq) = classy_sync_tests::aws_setup::create_queues(&client, name, MAX_RECEIVES, 30)
        .await
        .expect("create queues");
    SqsQueue::new(client, url, Some(dlq)).with_wait_time(Duration::ZERO)
}

async fn receive_n(q: &SqsQueue, n: usize, vis: Duration) -> Vec<Received> {
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() >= n {
            break;
        }
        got.extend(
            q.receive((n - got.len()).min(10), vis)
                .await
                .expect("receive"),
        );
    }
    assert_eq!(got.len(), n, "expected {n} messages");
    got
}

async fn delete_all(q: &SqsQueue, got: &[Received]) {
    for r in got {
        q.delete(&r.receipt).await.expect("delete");
    }
}

async fn assert_stats(q: &SqsQueue, want: (u64, u64, u64), what: &str) {
    let s = q.stats().await.expect("stats");
    assert_eq!((s.visible, s.in_flight, s.dead), want, "{what}: {s:?}");
}

/// `stats` maps SQS's counts (moto's are exact; real SQS's approximate): in flight, dead,
/// and no oldest age while only dead letters remain. `dead_letters` only looks.
async fn stats_and_dead_letters(q: &SqsQueue, ns: &str) {
    assert_stats(q, (0, 0, 0), "after the conformance suite").await;
    q.send_batch(vec![OutMessage {
        group_id: Some(format!("{ns}-org")),
        ..OutMessage::new(format!("{ns} poison"))
    }])
    .await
    .expect("send");
    for n in 1..=MAX_RECEIVES {
        let r = receive_n(q, 1, LONG_VIS).await.remove(0);
        if n == 1 {
            assert_stats(q, (0, 1, 0), "one message in flight").await;
        }
        q.release(&r.receipt, Duration::ZERO)
            .await
            .expect("release");
    }
    assert!(q.receive(10, LONG_VIS).await.expect("receive").is_empty());
    let dead = q.dead_letters(10).await.expect("dead_letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        q.dead_letters(10).await.expect("again").len(),
        1,
        "dead_letters only looks: the dead letter stays"
    );
    let s = q.stats().await.expect("stats");
    assert_eq!((s.visible, s.in_flight, s.dead), (0, 0, 1), "{s:?}");
    assert_eq!(
        s.oldest_age_secs, None,
        "dead letters are not live messages"
    );
    assert_eq!(q.redrive(&[dead[0].id.clone()]).await.expect("redrive"), 1);
    let back = receive_n(q, 1, LONG_VIS).await;
    delete_all(q, &back).await;
    assert_stats(q, (0, 0, 0), "after redrive and delete").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_standard_queue_passes_the_queue_conformance_suite() {
    let moto = MotoServer::start();
    let q = queue(&moto, "jobs").await;
    assert!(!q.is_fifo());
    let started = Instant::now();
    queue_conformance(
        &q,
        &RealTime,
        QueueProfile {
            max_receives: MAX_RECEIVES,
            exact: false,
            per_message_delay: true,
            dedup: false,
        },
    )
    .await;
    println!(
        "queue_conformance on a standard SQS queue: {:?}",
        started.elapsed()
    );
    stats_and_dead_letters(&q, "std").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_fifo_queue_passes_the_queue_conformance_suite() {
    let moto = MotoServer::start();
    let q = queue(&moto, "jobs.fifo").await;
    assert!(q.is_fifo());
    let started = Instant::now();
    queue_conformance(
        &q,
        &RealTime,
        QueueProfile {
            max_receives: MAX_RECEIVES,
            exact: false,
            per_message_delay: false,
            dedup: true,
        },
    )
    .await;
    println!(
        "queue_conformance on a FIFO SQS queue: {:?}",
        started.elapsed()
    );
    stats_and_dead_letters(&q, "fifo").await;
}

/// One message group is delivered in order, one message in flight at a time per group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_fifo_queue_keeps_order_within_a_group() {
    let moto = MotoServer::start();
    let q = queue(&moto, "jobs.fifo").await;
    q.send_batch(
        (0..3)
            .map(|i| OutMessage {
                dedup_id: Some(format!("g{i}")),
                group_id: Some("org-1".into()),
                ..OutMessage::new(format!("g{i}"))
            })
            .collect(),
    )
    .await
    .expect("send");
    for i in 0..3 {
        let r = receive_n(&q, 1, LONG_VIS).await;
        assert_eq!(r[0].body, format!("g{i}"), "FIFO order within a group");
        assert!(
            q.receive(10, LONG_VIS).await.expect("receive").is_empty(),
            "one message of a group in flight at a time"
        );
        delete_all(&q, &r).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_failures_are_reported() {
    let moto = MotoServer::start();
    let client = moto.sqs().await;
    let q = SqsQueue::new(
        client,
        format!("{}/123456789012/no-such-queue", moto.endpoint()),
        None,
    );
    match q.send_batch(vec![OutMessage::new("x")]).await {
        Err(QueueError::Unavailable(m)) => assert!(m.contains("SendMessageBatch"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(q.dead_letters(10).await.expect("no DLQ").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_manager_passes_the_secrets_conformance_suite() {
    let moto = MotoServer::start();
    let store = SecretsManagerStore::new(moto.secrets_manager().await, Duration::from_secs(300));
    secrets_conformance(&store).await;
    // Deleted secrets can be created again at once (onboarding after offboarding).
    let name = "classy-sync/42/classy";
    store
        .put(name, SecretString::from("v1".to_owned()))
        .await
        .expect("put");
    store.delete(name).await.expect("delete");
    store
        .put(name, SecretString::from("v2".to_owned()))
        .await
        .expect("put after delete");
    assert_eq!(store.get(name).await.expect("get").expose_secret(), "v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_cache_honours_its_ttl() {
    let moto = MotoServer::start();
    let ttl = Duration::from_secs(2);
    let reader = SecretsManagerStore::new(moto.secrets_manager().await, ttl);
    let writer = SecretsManagerStore::new(moto.secrets_manager().await, ttl);
    let name = "classy-sync/7/classy";
    async fn put(s: &SecretsManagerStore, v: &str) {
        s.put("classy-sync/7/classy", SecretString::from(v.to_owned()))
            .await
            .expect("put")
    }
    put(&writer, "one").await;
    assert_eq!(reader.get(name).await.unwrap().expose_secret(), "one");
    put(&writer, "two").await;
    assert_eq!(
        reader.get(name).await.unwrap().expose_secret(),
        "one",
        "another container's change shows only after the TTL"
    );
    put(&reader, "three").await;
    assert_eq!(
        reader.get(name).await.unwrap().expose_secret(),
        "three",
        "a put through this instance updates its cache"
    );
    put(&writer, "four").await;
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(
        reader.get(name).await.unwrap().expose_secret(),
        "four",
        "the cache expires"
    );
    writer.delete(name).await.expect("delete");
    assert!(reader.get(name).await.is_ok(), "cached until the TTL");
    reader
        .delete(name)
        .await
        .expect_err("already deleted elsewhere");
    assert!(
        matches!(reader.get(name).await, Err(SecretError::NotFound(_))),
        "a delete through this instance drops its cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_never_appear_in_errors() {
    let moto = MotoServer::start();
    let client = moto.secrets_manager().await;
    let store = SecretsManagerStore::new(client.clone(), Duration::ZERO);
    let value = "hunter2-SUPER-secret-value";
    // A secret someone scheduled for deletion (with a recovery window) is gone for `get`.
    // (Real Secrets Manager also refuses PutSecretValue on it; moto accepts it.)
    let name = "classy-sync/9/classy";
    client
        .create_secret()
        .name(name)
        .secret_string("old")
        .send()
        .await
        .expect("create");
    client
        .delete_secret()
        .secret_id(name)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("schedule deletion");
    match store.get(name).await {
        Err(e @ SecretError::NotFound(_)) => assert!(e.to_string().contains(name)),
        other => panic!("a secret scheduled for deletion: expected NotFound, got {other:?}"),
    }
    match store.delete(name).await {
        Err(SecretError::NotFound(_)) => {}
        other => panic!("deleting it again: expected NotFound, got {other:?}"),
    }
    // An unreachable service.
    drop(moto);
    let err = store
        .put("classy-sync/1/classy", SecretString::from(value.to_owned()))
        .await
        .expect_err("server gone");
    assert!(matches!(err, SecretError::Unavailable(_)), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(value), "value leaked: {text}");
        assert!(text.contains("CreateSecret"), "{text}");
    }
    let err = store
        .get("classy-sync/1/classy")
        .await
        .expect_err("server gone");
    assert!(matches!(err, SecretError::Unavailable(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// EventBridge
// ---------------------------------------------------------------------------------------------

/// Events published on a bus reach an SQS queue through a rule on `source: classy-sync`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_events_reach_an_sqs_target() {
    let moto = MotoServer::start();
    let eb = moto.eventbridge().await;
    let sqs = moto.sqs().await;
    let bus = "classy-sync-events";
    let url = moto.bus_into_queue(bus, "events").await;

    let publisher = EventBridgeBus::new(eb, bus);
    let time = chrono::DateTime::parse_from_rfc3339("2025-04-20T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let events: Vec<Event> = (0..12)
        .map(|i| Event {
            detail_type: if i % 2 == 0 {
                "SyncCompleted"
            } else {
                "SyncFailed"
            }
            .into(),
            detail: serde_json::json!({"org": i, "entity": "supporters"}),
            time,
        })
        .collect();
    publisher.publish(events).await.expect("publish 12 events");
    publisher.publish(Vec::new()).await.expect("publish none");

    let mut bodies = Vec::new();
    for _ in 0..20 {
        if bodies.len() >= 12 {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        bodies.extend(
            out.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
    }
    assert_eq!(bodies.len(), 12, "every event delivered: {bodies:?}");
    let mut orgs = BTreeSet::new();
    for b in &bodies {
        let v: serde_json::Value = serde_json::from_str(b).expect("event JSON");
        assert_eq!(v["source"], "classy-sync", "{v}");
        let org = v["detail"]["org"].as_i64().expect("detail.org");
        let want = if org % 2 == 0 {
            "SyncCompleted"
        } else {
            "SyncFailed"
        };
        assert_eq!(v["detail-type"], want, "{v}");
        assert_eq!(v["detail"]["entity"], "supporters");
        // EventBridge writes the entry's Time as ISO 8601; moto passes on the epoch seconds
        // the SDK sent.
        assert!(
            v["time"] == "2025-04-20T12:00:00Z" || v["time"].as_f64() == Some(1_745_150_400.0),
            "the event's own time: {v}"
        );
        orgs.insert(org);
    }
    assert_eq!(orgs, (0..12).collect::<BTreeSet<_>>());

    // A batch with one entry EventBridge refuses: only that one is sent again, and it is
    // reported; the accepted one is delivered once.
    let publisher = publisher.with_retry(RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    });
    let refused = Event {
        detail_type: String::new(),
        detail: serde_json::json!({"org": 99}),
        time,
    };
    let accepted = Event {
        detail_type: "SyncCompleted".into(),
        detail: serde_json::json!({"org": 100}),
        time,
    };
    match publisher.publish(vec![refused, accepted]).await {
        Err(EventError::Rejected {
            failed,
            total,
            reason,
        }) => {
            assert_eq!((failed, total), (1, 2));
            assert!(reason.contains("after 3 attempts"), "{reason}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    let mut delivered = Vec::new();
    for _ in 0..3 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        delivered.extend(
            out.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
    }
    assert_eq!(
        delivered.len(),
        1,
        "accepted entry delivered once: {delivered:?}"
    );
    assert!(delivered[0].contains("100"), "{delivered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_refusals_are_reported() {
    let moto = MotoServer::start();
    let publisher =
        EventBridgeBus::new(moto.eventbridge().await, "no-such-bus").with_retry(RetryPolicy {
            attempts: 2,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        });
    let ev = Event {
        detail_type: "SyncCompleted".into(),
        detail: serde_json::json!({}),
        time: chrono::Utc::now(),
    };
    match publisher.publish(vec![ev]).await {
        Err(EventError::Rejected { failed, total, .. }) => assert_eq!((failed, total), (1, 1)),
        Err(EventError::Unavailable(m)) => assert!(m.contains("PutEvents"), "{m}"),
        Ok(()) => panic!("publishing to a missing bus succeeded"),
    }
}
