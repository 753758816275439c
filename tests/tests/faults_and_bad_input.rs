//! Faults and bad input: injected 429/5xx/dropped connections/slow answers/token revocation
//! converge to exact truth through retries alone; malformed pages, wrong credentials and
//! unknown organizations fail clearly and store nothing half-way.

use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::Entity;
use classy_sync_core::engine::{EngineError, RunControl, SyncMode, SyncOutcome};
use classy_sync_core::ports::{JobQueue, OutMessage, QueueError, QueueStats, Received};
use classy_sync_local::local_queue::{LocalQueue, QueueOptions};
use classy_sync_tests::Harness;
use secrecy::SecretString;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn config() -> SandboxConfig {
    SandboxConfig {
        seed: 11,
        orgs: 1,
        apps: 1,
        supporters: 1500,
        campaigns: 6,
        transactions: 2500,
        plans: 80,
        ..SandboxConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_faults_converge_to_exact_truth_within_bounded_calls() {
    let h = Harness::start(config()).await;
    let org = h.orgs[0];
    h.put(
        "/faults",
        json!({"seed": 99, "rate_limit_rate": 0.02, "error_500_rate": 0.02, "error_503_rate": 0.02,
               "drop_rate": 0.02, "slow_rate": 0.01, "slow_ms": 300, "revoke_token_rate": 0.01, "retry_after_secs": 1}),
    )
    .await;
    h.reset_counters().await;
    let reports: Vec<_> = h
        .sync
        .sync_org(org, SyncMode::Auto, &RunControl::default())
        .await;
    let mut pages = 0;
    for r in reports {
        let r = r.unwrap();
        assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
        pages += r.pages;
    }
    let c = h.counters().await;
    let calls = c["total"].as_u64().unwrap();
    // Each page plus its probability of a retry; tokens after revocations. Generous but finite.
    assert!(
        calls <= pages * 13 / 10 + 20,
        "{calls} calls for {pages} pages: {c}"
    );
    assert!(
        c["by_status"]["429"].as_u64().unwrap_or(0) > 0,
        "faults were injected: {c}"
    );
    h.put("/faults", json!({"seed": 1})).await;
    for e in Entity::ALL {
        h.assert_matches_truth(org, e).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistently_malformed_pages_fail_clearly_and_store_nothing() {
    let h = Harness::start(config()).await;
    let org = h.orgs[0];
    let script: Vec<_> = (0..40).map(|_| json!({"malformed": true})).collect();
    h.post("/faults/script", json!({ "next": script })).await;
    let r = h
        .sync
        .sync_entity(
            org,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, SyncOutcome::Failed);
    let err = r.error.unwrap();
    assert!(
        err.contains("could not be read") || err.contains("unavailable"),
        "{err}"
    );
    assert!(
        h.stored(org, Entity::Supporters).await.is_empty(),
        "nothing stored from a malformed page"
    );
    let (cursor, _) = h.data.load_cursor(org, Entity::Supporters).await.unwrap();
    assert!(
        cursor.committed.is_none(),
        "a failed run never advances the cursor"
    );
    assert_eq!(
        h.data
            .load_failures(org, Entity::Supporters)
            .await
            .unwrap()
            .consecutive_failures,
        1
    );

    let client = reqwest::Client::new();
    client
        .delete(h.admin("/faults/script"))
        .send()
        .await
        .unwrap();
    let r = h
        .sync
        .sync_entity(
            org,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
    h.assert_matches_truth(org, Entity::Supporters).await;
    assert_eq!(
        h.data
            .load_failures(org, Entity::Supporters)
            .await
            .unwrap()
            .consecutive_failures,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirky_records_are_read_tolerantly() {
    let h = Harness::start(config()).await;
    let org = h.orgs[0];
    h.put(
        "/quirks",
        json!({"string_amounts": true, "missing_emails": true}),
    )
    .await;
    for r in h
        .sync
        .sync_org(org, SyncMode::Auto, &RunControl::default())
        .await
    {
        assert_eq!(r.unwrap().outcome, SyncOutcome::Succeeded);
    }
    // Amounts served as strings are stored as the same numbers.
    for e in [
        Entity::Campaigns,
        Entity::Transactions,
        Entity::RecurringPlans,
    ] {
        h.assert_matches_truth(org, e).await;
    }
    // The admin truth keeps every email; the API left some out, and those are stored empty.
    let stored = h.stored(org, Entity::Supporters).await;
    let missing: Vec<u64> = stored
        .iter()
        .filter(|r| r["email_address"].is_null())
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert!(!missing.is_empty(), "some supporters came without an email");
    let truth: Vec<_> = h
        .truth(org, Entity::Supporters)
        .await
        .into_iter()
        .map(|mut t| {
            if missing.contains(&t["id"].as_u64().unwrap()) {
                t["email_address"] = serde_json::Value::Null;
            }
            t
        })
        .collect();
    classy_sync_tests::assert_same_records(Entity::Supporters, &truth, &stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_without_revealing_the_secret() {
    let h = Harness::start(config()).await;
    let app = &h.sandbox.apps()[0];
    let bogus = "definitely-not-the-secret-123";
    h.add_org(
        424242,
        "Wrong secret",
        &app.client_id,
        SecretString::from(bogus.to_string()),
    )
    .await
    .unwrap();
    let r = h
        .sync
        .sync_entity(
            424242,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, SyncOutcome::Failed);
    let err = r.error.unwrap();
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        !err.contains(bogus),
        "the secret leaked into the error: {err}"
    );
    assert!(
        !err.contains(&app.client_secret),
        "a secret leaked into the error: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_foreign_organizations_are_refused() {
    let h = Harness::start(SandboxConfig {
        orgs: 2,
        apps: 2,
        ..config()
    })
    .await;
    let r = h
        .sync
        .sync_entity(
            999_999,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await;
    assert!(matches!(r, Err(EngineError::UnknownOrg(999_999))), "{r:?}");
    // An organization onboarded with another application's credentials: 403, not retried.
    let apps = h.sandbox.apps();
    let foreign = apps[1].organizations[0] as u64;
    let dir = tempfile::tempdir().unwrap();
    let sync = Harness::sync_on(dir.path(), &h.client);
    sync.data
        .add_org(
            sync.secrets.as_ref(),
            foreign,
            "Foreign",
            &apps[0].client_id,
            SecretString::from(apps[0].client_secret.clone()),
        )
        .await
        .unwrap();
    let r = sync
        .sync_entity(
            foreign,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, SyncOutcome::Failed);
    assert!(
        r.error.as_deref().unwrap_or("").contains("forbids"),
        "{r:?}"
    );
    assert!(r.api_calls <= 3, "not retried: {r:?}");
}

/// A queue that refuses chosen messages of its first batches, as SQS answers a
/// `SendMessageBatch` per entry (a partial failure cannot be provoked on moto, so this
/// wrapper around the real local queue stands in for SQS's per-entry answer).
struct RefusingQueue {
    inner: Arc<dyn JobQueue>,
    /// Per batch call, in order: `None` refuses the whole batch, `Some(positions)` those.
    script: std::sync::Mutex<std::collections::VecDeque<Option<Vec<usize>>>>,
}

#[async_trait::async_trait]
impl JobQueue for RefusingQueue {
    async fn send_batch(&self, messages: Vec<OutMessage>) -> Result<(), QueueError> {
        let step = self.script.lock().unwrap().pop_front();
        match step {
            None => self.inner.send_batch(messages).await,
            Some(None) => Err(QueueError::Unavailable(
                "the whole batch was refused".into(),
            )),
            Some(Some(refused)) => {
                let kept: Vec<OutMessage> = messages
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !refused.contains(i))
                    .map(|(_, m)| m)
                    .collect();
                self.inner.send_batch(kept).await?;
                Err(QueueError::Partial {
                    failed: refused,
                    message: "InternalError: try again".into(),
                })
            }
        }
    }
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        self.inner.receive(max, visibility).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(receipt).await
    }
    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        self.inner.release(receipt, delay).await
    }
    async fn stats(&self) -> Result<QueueStats, QueueError> {
        self.inner.stats().await
    }
    async fn dead_letters(&self, limit: usize) -> Result<Vec<Received>, QueueError> {
        self.inner.dead_letters(limit).await
    }
    async fn redrive(&self, ids: &[String]) -> Result<usize, QueueError> {
        self.inner.redrive(ids).await
    }
}

/// A partly refused `SendMessageBatch` used to leave `QUEUED` markers with nothing enqueued
/// (the pairs blocked for the marker's two hours) and skip the batches after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_refused_batch_leaves_no_marker_without_a_message() {
    let h = Harness::start(SandboxConfig {
        orgs: 25,
        supporters: 5,
        campaigns: 1,
        transactions: 5,
        plans: 1,
        ..config()
    })
    .await;
    let local: Arc<dyn JobQueue> = Arc::new(
        LocalQueue::open(
            h.dir.path().join("queue.db"),
            QueueOptions::default(),
            h.data.clock.clone(),
        )
        .unwrap(),
    );
    // 25 due organizations: batches of 10, 10 and 5. The first batch is refused whole, the
    // second loses positions 3 and 7, the third goes through.
    let queue = RefusingQueue {
        inner: local.clone(),
        script: std::sync::Mutex::new([None, Some(vec![3, 7])].into_iter().collect()),
    };
    let ttl = Duration::from_secs(7200);
    let report = h
        .data
        .dispatch(Entity::Supporters, &queue, ttl)
        .await
        .unwrap();
    assert_eq!(report.enqueued.len(), 13, "{report:?}");
    assert_eq!(report.not_enqueued.len(), 12, "{report:?}");
    assert!(report.queue_error.is_some());
    assert_eq!(local.stats().await.unwrap().visible, 13);

    // The refused pairs carry no marker: the next dispatch sends exactly those.
    let again = h
        .data
        .dispatch(Entity::Supporters, &queue, ttl)
        .await
        .unwrap();
    let mut retried = again.enqueued.clone();
    retried.sort_unstable();
    let mut refused = report.not_enqueued.clone();
    refused.sort_unstable();
    assert_eq!(retried, refused, "{again:?}");
    let mut queued = again.already_queued.clone();
    queued.sort_unstable();
    let mut sent = report.enqueued.clone();
    sent.sort_unstable();
    assert_eq!(queued, sent);
    assert_eq!(local.stats().await.unwrap().visible, 25);
}
