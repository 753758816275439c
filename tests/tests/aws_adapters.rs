//! The AWS adapters against moto (`moto_server`), which speaks the real AWS wire protocol.
//! Each test starts its own server. Without moto these tests fail, naming what to install.

use classy_sync::adapters::aws::{
    DynamoStore, EventBridgeBus, RetryPolicy, SecretsManagerStore, SqsQueue,
};
use classy_sync::adapters::conformance::{secrets_conformance, store_conformance};
use classy_sync::ports::{
    Event, EventBus, EventError, Item, JobQueue, OutMessage, QueueError, Received, SecretError,
    SecretStore, SkRange, Store, WriteOp,
};
use classy_sync_tests::moto::MotoServer;
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

const TABLE: &str = "classy-sync-test";

async fn store(moto: &MotoServer) -> DynamoStore {
    let client = moto.dynamodb().await;
    DynamoStore::create_table_for_tests(&client, TABLE)
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

/// The table the SAM template must declare: keys, GSI and TTL attribute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_table_layout_matches_the_template() {
    let moto = MotoServer::start();
    let client = moto.dynamodb().await;
    DynamoStore::create_table_for_tests(&client, TABLE)
        .await
        .expect("create table");
    DynamoStore::create_table_for_tests(&client, TABLE)
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
        Err(classy_sync::ports::StoreError::Unavailable(m)) => {
            assert!(m.contains("GetItem"), "{m}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// SQS
// ---------------------------------------------------------------------------------------------
//
// `conformance::queue_conformance` cannot run unchanged on SQS: it sends per-message delays
// (which FIFO queues refuse) and expects dedup ids to drop duplicates (which standard queues
// cannot do). The tests below check the same rules on the queue type that has each feature.

const VIS: Duration = Duration::from_secs(2);
const PAST_VIS: Duration = Duration::from_secs(3);
const LONG_VIS: Duration = Duration::from_secs(60);
const MAX_RECEIVES: u32 = 3;

async fn queue(moto: &MotoServer, name: &str) -> SqsQueue {
    let client = moto.sqs().await;
    let (url, dlq) = SqsQueue::create_queues_for_tests(&client, name, MAX_RECEIVES, 30)
        .await
        .expect("create queues");
    SqsQueue::new(client, url, Some(dlq)).with_wait_time(Duration::ZERO)
}

async fn receive(q: &SqsQueue, max: usize, vis: Duration) -> Vec<Received> {
    q.receive(max, vis).await.expect("receive")
}

async fn receive_n(q: &SqsQueue, n: usize, vis: Duration) -> Vec<Received> {
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() >= n {
            break;
        }
        got.extend(receive(q, (n - got.len()).min(10), vis).await);
    }
    assert_eq!(got.len(), n, "expected {n} messages");
    got
}

async fn delete_all(q: &SqsQueue, got: &[Received]) {
    for r in got {
        q.delete(&r.receipt).await.expect("delete");
    }
}

fn expect_invalid<T: std::fmt::Debug>(r: Result<T, QueueError>, what: &str) {
    assert!(matches!(r, Err(QueueError::Invalid(_))), "{what}: {r:?}");
}

async fn limits(q: &SqsQueue) {
    let eleven = (0..11).map(|i| OutMessage::new(format!("m{i}"))).collect();
    expect_invalid(q.send_batch(eleven).await, "send_batch of 11");
    expect_invalid(q.receive(0, VIS).await, "receive 0");
    expect_invalid(q.receive(11, VIS).await, "receive 11");
    let late = OutMessage {
        delay: Duration::from_secs(16 * 60),
        ..OutMessage::new("late")
    };
    expect_invalid(q.send_batch(vec![late]).await, "delay over 15 minutes");
    q.send_batch(Vec::new()).await.expect("empty batch");
    assert!(receive(q, 10, VIS).await.is_empty(), "nothing enqueued");
}

/// Receive counts, visibility, fresh receipts, release with and without delay.
async fn visibility_and_release(q: &SqsQueue, ns: &str) {
    let bodies: BTreeSet<String> = (0..3).map(|i| format!("{ns} vis {i}")).collect();
    q.send_batch(bodies.iter().map(OutMessage::new).collect())
        .await
        .expect("send");
    let first = receive_n(q, 3, VIS).await;
    assert_eq!(
        first
            .iter()
            .map(|r| r.body.clone())
            .collect::<BTreeSet<_>>(),
        bodies
    );
    assert!(first.iter().all(|r| r.receive_count == 1), "{first:?}");
    assert!(
        receive(q, 10, VIS).await.is_empty(),
        "hidden while in flight"
    );
    let s = q.stats().await.expect("stats");
    assert_eq!((s.visible, s.in_flight, s.dead), (0, 3, 0), "{s:?}");
    tokio::time::sleep(PAST_VIS).await;
    let second = receive_n(q, 3, LONG_VIS).await;
    for r in &second {
        let before = first.iter().find(|f| f.id == r.id).expect("same messages");
        assert_eq!(r.receive_count, 2);
        assert_ne!(r.receipt, before.receipt, "fresh receipt");
    }
    // Release one now, one with a delay; delete the third.
    q.release(&second[0].receipt, Duration::ZERO)
        .await
        .expect("release now");
    q.release(&second[1].receipt, VIS)
        .await
        .expect("release later");
    delete_all(q, &second[2..]).await;
    let back = receive_n(q, 1, LONG_VIS).await;
    assert_eq!(
        (back[0].id.as_str(), back[0].receive_count),
        (second[0].id.as_str(), 3)
    );
    assert!(receive(q, 10, LONG_VIS).await.is_empty(), "delayed release");
    tokio::time::sleep(PAST_VIS).await;
    let later = receive_n(q, 1, LONG_VIS).await;
    assert_eq!(later[0].id, second[1].id, "visible after the release delay");
    delete_all(q, &back).await;
    delete_all(q, &later).await;
    expect_stale_or_ok(q.delete("no-such-receipt").await);
    tokio::time::sleep(PAST_VIS).await;
    assert!(receive(q, 10, VIS).await.is_empty(), "deleted never return");
}

/// SQS may accept an unknown receipt silently; when it refuses one it is `StaleReceipt`.
fn expect_stale_or_ok(r: Result<(), QueueError>) {
    assert!(
        matches!(r, Ok(()) | Err(QueueError::StaleReceipt(_))),
        "{r:?}"
    );
}

/// A message received `MAX_RECEIVES` times goes to the DLQ (SQS's own redrive policy);
/// `dead_letters` shows it, `redrive` sends it back with a fresh receive count.
async fn dead_letters_and_redrive(q: &SqsQueue, ns: &str) {
    let body = format!("{ns} poison");
    q.send_batch(vec![OutMessage {
        group_id: Some(format!("{ns}-org")),
        ..OutMessage::new(&body)
    }])
    .await
    .expect("send");
    let mut id = String::new();
    for n in 1..=MAX_RECEIVES {
        let r = receive_n(q, 1, LONG_VIS).await.remove(0);
        assert_eq!(r.receive_count, n);
        id = r.id.clone();
        q.release(&r.receipt, Duration::ZERO)
            .await
            .expect("release");
    }
    assert!(
        receive(q, 10, LONG_VIS).await.is_empty(),
        "dead-lettered after {MAX_RECEIVES} receives"
    );
    let dead = q.dead_letters(10).await.expect("dead_letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (dead[0].id.as_str(), dead[0].body.as_str()),
        (id.as_str(), body.as_str())
    );
    assert!(dead[0].receive_count >= MAX_RECEIVES);
    assert_eq!(
        q.dead_letters(10).await.expect("again").len(),
        1,
        "dead_letters only looks: the dead letter stays"
    );
    let s = q.stats().await.expect("stats");
    assert_eq!((s.visible, s.in_flight, s.dead), (0, 0, 1), "{s:?}");
    assert_eq!(s.oldest_age_secs, None);

    let moved = q
        .redrive(&[id.clone(), format!("{ns}-no-such-id")])
        .await
        .expect("redrive");
    assert_eq!(moved, 1);
    let back = receive_n(q, 1, LONG_VIS).await.remove(0);
    assert_eq!((back.body.as_str(), back.receive_count), (body.as_str(), 1));
    delete_all(q, &[back]).await;
    assert!(q.dead_letters(10).await.expect("dead").is_empty());
    assert_eq!(q.redrive(&[id]).await.expect("redrive"), 0);
}

/// Concurrent receivers never get one message twice while it is in flight.
async fn concurrent_receives(q: &SqsQueue, ns: &str) {
    for chunk in (0..30).collect::<Vec<_>>().chunks(10) {
        q.send_batch(
            chunk
                .iter()
                .map(|i| OutMessage::new(format!("{ns} c{i}")))
                .collect(),
        )
        .await
        .expect("send");
    }
    let receivers = (0..4).map(|_| async {
        let mut got = Vec::new();
        let mut empty = 0;
        while empty < 3 {
            let batch = receive(q, 10, LONG_VIS).await;
            if batch.is_empty() {
                empty += 1;
            }
            got.extend(batch);
        }
        got
    });
    let all: Vec<Received> = futures::future::join_all(receivers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let ids: HashSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        all.len(),
        "a message was delivered twice at once"
    );
    assert_eq!(all.len(), 30, "every message delivered");
    delete_all(q, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_fifo_queue_rules() {
    let moto = MotoServer::start();
    let q = queue(&moto, "jobs.fifo").await;
    assert!(q.is_fifo());
    let ns = "fifo";
    limits(&q).await;
    expect_invalid(
        q.send_batch(vec![OutMessage {
            delay: VIS,
            ..OutMessage::new("x")
        }])
        .await,
        "per-message delay on a FIFO queue",
    );
    visibility_and_release(&q, ns).await;

    // Dedup ids: a second message with a live dedup id is dropped, in one batch or later.
    let dedup = |body: &str, id: &str| OutMessage {
        dedup_id: Some(id.to_owned()),
        group_id: Some("org-1".into()),
        ..OutMessage::new(body)
    };
    q.send_batch(vec![
        dedup("d1 first", "sync:1:supporters"),
        dedup("d1 again", "sync:1:supporters"),
        OutMessage::new("plain"),
    ])
    .await
    .expect("send");
    q.send_batch(vec![dedup("d1 later", "sync:1:supporters")])
        .await
        .expect("send");
    let got = receive_n(&q, 2, LONG_VIS).await;
    assert_eq!(
        got.iter().map(|r| r.body.as_str()).collect::<BTreeSet<_>>(),
        BTreeSet::from(["d1 first", "plain"])
    );
    assert!(receive(&q, 10, LONG_VIS).await.is_empty(), "no duplicates");
    delete_all(&q, &got).await;

    // One group is delivered in order, one message in flight at a time per group.
    q.send_batch(
        (0..3)
            .map(|i| dedup(&format!("g{i}"), &format!("g{i}")))
            .collect(),
    )
    .await
    .expect("send");
    for i in 0..3 {
        let r = receive_n(&q, 1, LONG_VIS).await;
        assert_eq!(r[0].body, format!("g{i}"), "FIFO order within a group");
        delete_all(&q, &r).await;
    }

    dead_letters_and_redrive(&q, ns).await;
    concurrent_receives(&q, ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_standard_queue_rules() {
    let moto = MotoServer::start();
    let q = queue(&moto, "jobs").await;
    assert!(!q.is_fifo());
    let ns = "std";
    limits(&q).await;
    visibility_and_release(&q, ns).await;

    // Per-message delay.
    q.send_batch(vec![
        OutMessage {
            delay: VIS,
            ..OutMessage::new("later")
        },
        OutMessage::new("now"),
    ])
    .await
    .expect("send");
    let now = receive_n(&q, 1, LONG_VIS).await;
    assert_eq!(now[0].body, "now");
    assert!(receive(&q, 10, LONG_VIS).await.is_empty(), "delayed");
    tokio::time::sleep(PAST_VIS).await;
    let later = receive_n(&q, 1, LONG_VIS).await;
    assert_eq!(
        (later[0].body.as_str(), later[0].receive_count),
        ("later", 1)
    );
    delete_all(&q, &now).await;
    delete_all(&q, &later).await;

    // Standard queues cannot deduplicate: dedup ids are ignored, both arrive.
    let d = |b: &str| OutMessage {
        dedup_id: Some("same".into()),
        ..OutMessage::new(b)
    };
    q.send_batch(vec![d("one"), d("two")]).await.expect("send");
    let both = receive_n(&q, 2, LONG_VIS).await;
    delete_all(&q, &both).await;

    dead_letters_and_redrive(&q, ns).await;
    concurrent_receives(&q, ns).await;
    let s = q.stats().await.expect("stats");
    assert_eq!((s.visible, s.in_flight, s.dead), (0, 0, 0), "{s:?}");
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
    eb.create_event_bus().name(bus).send().await.expect("bus");
    let url = sqs
        .create_queue()
        .queue_name("events")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attrs")
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("arn");
    eb.put_rule()
        .name("classy-sync-all")
        .event_bus_name(bus)
        .event_pattern(r#"{"source":["classy-sync"]}"#)
        .send()
        .await
        .expect("rule");
    eb.put_targets()
        .rule("classy-sync-all")
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("target");

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
