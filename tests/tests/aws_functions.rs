//! The Lambda handlers end to end on the real AWS wire protocol (moto_server) with the
//! sandbox as Classy: schedule → dispatch → SQS → sync-worker → DynamoDB equals the truth;
//! duplicate deliveries and concurrent workers; a job that always fails reaches the DLQ and
//! emits SyncFailed; a deadline produces a continuation; secrets stay per organization; a
//! large full sync is worked in slices by several worker invocations at once.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use classy_sandbox::{RunningSandbox, SandboxConfig};
use classy_sync_aws::{AwsSettings, SecretsManagerStore, SqsQueue};
use classy_sync_classy::ClassyClient;
use classy_sync_core::domain::Entity;
use classy_sync_core::ports::{JobQueue, SecretError, SecretStore};
use classy_sync_functions::services::FunctionSettings;
use classy_sync_functions::{dispatch, worker, Services};
use classy_sync_runtime::aws::AwsRoot;
use classy_sync_tests::moto::{drain_json, MotoServer};
use classy_sync_tests::{assert_same_records, test_client_config};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const VISIBILITY: Duration = Duration::from_secs(2);
const MAX_RECEIVES: u32 = 3;

/// Records which secrets were read, around the real Secrets Manager adapter.
struct Recording {
    inner: SecretsManagerStore,
    reads: Mutex<Vec<String>>,
}

#[async_trait]
impl SecretStore for Recording {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        self.reads.lock().unwrap().push(name.to_string());
        self.inner.get(name).await
    }
    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError> {
        self.inner.put(name, value).await
    }
    async fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.inner.delete(name).await
    }
}

struct Stack {
    _moto: MotoServer,
    sandbox: RunningSandbox,
    services: Services,
    queue: Arc<SqsQueue>,
    secrets: Arc<Recording>,
    sqs: aws_sdk_sqs::Client,
    events_url: String,
    orgs: Vec<u64>,
}

async fn stack(sandbox: SandboxConfig) -> Stack {
    stack_on(sandbox, "sync").await
}

/// The stack with the sync queue named `queue` (`….fifo`: a FIFO queue).
async fn stack_on(sandbox: SandboxConfig, queue: &str) -> Stack {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let table = "classy-sync-test";
    classy_sync_tests::aws_setup::create_table(&moto.dynamodb().await, table)
        .await
        .unwrap();
    let sqs = moto.sqs().await;
    let (queue_url, dlq_url) = classy_sync_tests::aws_setup::create_queues(
        &sqs,
        queue,
        MAX_RECEIVES,
        VISIBILITY.as_secs() as u32,
    )
    .await
    .unwrap();
    // Events go to a bus whose rule forwards classy-sync events to a queue we can read.
    let events_url = moto.bus_into_queue("classy-sync-test", "events").await;

    let settings = AwsSettings {
        table: table.into(),
        queue_url,
        dlq_url: Some(dlq_url),
        event_bus: "classy-sync-test".into(),
        secret_prefix: "classy-sync/".into(),
        secret_ttl: Duration::from_secs(300),
    };
    let sandbox = classy_sandbox::start(sandbox).await.unwrap();
    let client = ClassyClient::new(test_client_config(&sandbox)).unwrap();
    let secrets = Arc::new(Recording {
        inner: SecretsManagerStore::from_settings(&sdk, &settings),
        reads: Mutex::default(),
    });
    let queue = Arc::new(SqsQueue::from_settings(&sdk, &settings).with_wait_time(Duration::ZERO));
    let mut root = AwsRoot::from_sdk(sdk.clone(), settings.clone());
    root.secrets = secrets.clone();
    root.queue = queue.clone();
    let data = root.data();
    let mut orgs = Vec::new();
    for app in sandbox.apps() {
        for org in &app.organizations {
            let org = *org as u64;
            data.add_org(
                root.secrets.as_ref(),
                org,
                &format!("Org {org}"),
                &app.client_id,
                SecretString::from(app.client_secret.clone()),
            )
            .await
            .unwrap();
            orgs.push(org);
        }
    }
    let services = Services::new(
        root,
        FunctionSettings {
            deadline_margin: Duration::from_secs(30),
            marker_ttl: Duration::from_secs(3600),
            ..FunctionSettings::default()
        },
    )
    .with_classy(Arc::new(client));
    Stack {
        _moto: moto,
        sandbox,
        services,
        queue,
        secrets,
        sqs,
        events_url,
        orgs,
    }
}

fn deadline_in(d: Duration) -> SystemTime {
    SystemTime::now() + d
}

/// What the Lambda event source mapping does: receive, invoke, delete what succeeded.
async fn deliver_once(s: &Stack, services: &Services, deadline: SystemTime) -> (usize, usize) {
    let received = s.queue.receive(10, VISIBILITY * 30).await.unwrap();
    if received.is_empty() {
        return (0, 0);
    }
    let mut event = SqsEvent::default();
    for r in &received {
        let mut m = SqsMessage::default();
        m.message_id = Some(r.id.clone());
        m.receipt_handle = Some(r.receipt.clone());
        m.body = Some(r.body.clone());
        m.attributes.insert(
            "ApproximateReceiveCount".into(),
            r.receive_count.to_string(),
        );
        event.records.push(m);
    }
    let response = worker::handle(services, event, deadline).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    for r in &received {
        if failed.contains(&r.id) {
            // Back to the queue after its visibility timeout, as SQS does.
            s.queue.release(&r.receipt, VISIBILITY).await.unwrap();
        } else {
            s.queue.delete(&r.receipt).await.unwrap();
        }
    }
    (received.len(), failed.len())
}

async fn drain(s: &Stack, services: &Services) -> usize {
    let mut handled = 0;
    for _ in 0..200 {
        let (n, _) = deliver_once(s, services, deadline_in(Duration::from_secs(900))).await;
        if n == 0 {
            let stats = s.queue.stats().await.unwrap();
            if stats.visible == 0 && stats.in_flight == 0 {
                return handled;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        handled += n;
    }
    panic!("the queue never drained");
}

async fn truth(sandbox: &RunningSandbox, org: u64, entity: Entity) -> Vec<Value> {
    let url = format!(
        "{}/admin/orgs/{org}/{}",
        sandbox.base_url(),
        entity.api_path()
    );
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn assert_truth(s: &Stack, org: u64) {
    for e in Entity::ALL {
        let mut rows = Vec::new();
        s.services
            .data
            .export(org, e, |r| {
                rows.push(r);
                Ok(())
            })
            .await
            .unwrap();
        assert_same_records(e, &truth(&s.sandbox, org, e).await, &rows);
    }
}

async fn events(s: &Stack) -> Vec<Value> {
    drain_json(&s.sqs, &s.events_url).await
}

fn small() -> SandboxConfig {
    SandboxConfig {
        seed: 21,
        orgs: 2,
        supporters: 400,
        campaigns: 6,
        transactions: 800,
        plans: 60,
        ..SandboxConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_to_dispatch_to_worker_lands_exactly_the_truth_then_an_incremental_round() {
    let s = stack(small()).await;
    for e in Entity::ALL {
        let r = dispatch::handle(&s.services, e).await.unwrap();
        assert_eq!(r["enqueued"].as_array().unwrap().len(), s.orgs.len(), "{r}");
    }
    // Dispatching again while the jobs are queued enqueues nothing.
    let again = dispatch::handle(&s.services, Entity::Supporters)
        .await
        .unwrap();
    assert!(again["enqueued"].as_array().unwrap().is_empty(), "{again}");
    assert_eq!(
        again["already_queued"].as_array().unwrap().len(),
        s.orgs.len()
    );

    assert_eq!(drain(&s, &s.services).await, s.orgs.len() * 4);
    for &org in &s.orgs {
        assert_truth(&s, org).await;
    }
    let completed = events(&s).await;
    assert_eq!(
        completed
            .iter()
            .filter(|e| e["detail-type"] == "SyncCompleted")
            .count(),
        s.orgs.len() * 4
    );
    assert_eq!(completed[0]["source"], "classy-sync");

    // Incremental round: change records, make the schedule due, dispatch, work.
    let org = s.orgs[0];
    let http = reqwest::Client::new();
    http.post(format!(
        "{}/admin/orgs/{org}/supporters/touch",
        s.sandbox.base_url()
    ))
    .json(&json!({"count": 12}))
    .send()
    .await
    .unwrap();
    for e in Entity::ALL {
        s.services
            .data
            .set_org_interval(org, e, Some(1))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = dispatch::handle(&s.services, Entity::Supporters)
        .await
        .unwrap();
    assert_eq!(r["enqueued"], json!([org]));
    drain(&s, &s.services).await;
    let run = s
        .services
        .data
        .last_run(org, Entity::Supporters)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (run.mode.as_str(), run.updated),
        ("incremental", 12),
        "{run:?}"
    );
    assert_truth(&s, org).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_twice_or_to_two_workers_at_once_has_one_effect() {
    let s = stack(SandboxConfig { orgs: 1, ..small() }).await;
    let org = s.orgs[0];
    let body = json!({"org": org, "entity": "transactions", "mode": "auto"}).to_string();
    let mut event = SqsEvent::default();
    let mut m = SqsMessage::default();
    m.message_id = Some("m-1".into());
    m.body = Some(body);
    event.records.push(m);
    // Two workers receive the same message at the same moment.
    let (a, b) = tokio::join!(
        worker::handle(
            &s.services,
            event.clone(),
            deadline_in(Duration::from_secs(900))
        ),
        worker::handle(
            &s.services,
            event.clone(),
            deadline_in(Duration::from_secs(900))
        )
    );
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    let runs = s
        .services
        .data
        .runs(org, Entity::Transactions, 10)
        .await
        .unwrap();
    assert_eq!(
        runs.len(),
        1,
        "exactly one of the two ran; the other saw the lease: {runs:?}"
    );
    // Delivered again later: an incremental run that changes nothing.
    let c = worker::handle(&s.services, event, deadline_in(Duration::from_secs(900))).await;
    assert!(c.batch_item_failures.is_empty());
    let last = s
        .services
        .data
        .last_run(org, Entity::Transactions)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((last.created, last.updated), (0, 0), "{last:?}");
    let mut rows = Vec::new();
    s.services
        .data
        .export(org, Entity::Transactions, |r| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert_same_records(
        Entity::Transactions,
        &truth(&s.sandbox, org, Entity::Transactions).await,
        &rows,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_always_fails_reaches_the_dead_letter_queue_and_emits_sync_failed() {
    let s = stack(SandboxConfig { orgs: 1, ..small() }).await;
    let app = &s.sandbox.apps()[0];
    s.services
        .data
        .add_org(
            s.services.root.secrets.as_ref(),
            777,
            "Broken credentials",
            &app.client_id,
            SecretString::from("not-the-secret".to_string()),
        )
        .await
        .unwrap();
    s.queue
        .send_batch(vec![classy_sync_core::engine::jobs::SyncJob {
            org: 777,
            entity: Entity::Supporters,
            mode: classy_sync_core::engine::SyncMode::Auto,
            requested: false,
            slice: None,
        }
        .to_message()])
        .await
        .unwrap();
    let mut attempts = 0;
    for _ in 0..60 {
        let (n, failed) =
            deliver_once(&s, &s.services, deadline_in(Duration::from_secs(900))).await;
        attempts += failed;
        assert_eq!(n, failed, "the job never succeeds");
        if s.queue.stats().await.unwrap().dead > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        attempts, MAX_RECEIVES as usize,
        "retried up to the redrive limit"
    );
    let dead = s.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains("777"));
    let failed: Vec<Value> = events(&s)
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "SyncFailed")
        .collect();
    assert_eq!(failed.len(), MAX_RECEIVES as usize);
    assert_eq!(failed[0]["detail"]["organization_id"], 777);
    assert!(!failed[0].to_string().contains("not-the-secret"));
    assert_eq!(
        s.services
            .data
            .load_failures(777, Entity::Supporters)
            .await
            .unwrap()
            .consecutive_failures,
        MAX_RECEIVES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_mid_sync_continues_in_a_new_message_and_ends_exact() {
    let s = stack(SandboxConfig {
        orgs: 1,
        supporters: 3000,
        ..small()
    })
    .await;
    let org = s.orgs[0];
    reqwest::Client::new()
        .put(format!("{}/admin/faults", s.sandbox.base_url()))
        .json(&json!({"seed": 4, "slow_rate": 1.0, "slow_ms": 40}))
        .send()
        .await
        .unwrap();
    // Invocations that may run for only about half a second before the margin.
    let mut services = s.services.clone();
    services.settings.deadline_margin = Duration::from_secs(30);
    dispatch::handle(&services, Entity::Supporters)
        .await
        .unwrap();
    let mut continued = 0;
    for _ in 0..200 {
        let (n, failed) =
            deliver_once(&s, &services, deadline_in(Duration::from_millis(30_500))).await;
        assert_eq!(failed, 0);
        if n == 0 {
            break;
        }
        let last = services
            .data
            .last_run(org, Entity::Supporters)
            .await
            .unwrap()
            .unwrap();
        if last.outcome == classy_sync_core::engine::SyncOutcome::Interrupted {
            continued += 1;
        }
    }
    assert!(continued >= 2, "the sync was continued {continued} times");
    let last = services
        .data
        .last_run(org, Entity::Supporters)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        last.outcome,
        classy_sync_core::engine::SyncOutcome::Succeeded
    );
    let mut rows = Vec::new();
    services
        .data
        .export(org, Entity::Supporters, |r| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert_same_records(
        Entity::Supporters,
        &truth(&s.sandbox, org, Entity::Supporters).await,
        &rows,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_reads_only_its_own_organizations_secret() {
    let s = stack(SandboxConfig {
        orgs: 2,
        apps: 2,
        ..small()
    })
    .await;
    let (a, b) = (s.orgs[0], s.orgs[1]);
    // B's credential is gone: B fails, A is unaffected and never touches B's secret.
    s.secrets
        .delete(&format!("classy-sync/{b}/classy"))
        .await
        .unwrap();
    for org in [a, b] {
        s.queue
            .send_batch(vec![classy_sync_core::engine::jobs::SyncJob {
                org,
                entity: Entity::Campaigns,
                mode: classy_sync_core::engine::SyncMode::Auto,
                requested: false,
                slice: None,
            }
            .to_message()])
            .await
            .unwrap();
    }
    s.secrets.reads.lock().unwrap().clear();
    let received = s.queue.receive(10, VISIBILITY * 30).await.unwrap();
    assert_eq!(received.len(), 2);
    for r in received {
        let job = classy_sync_core::engine::jobs::SyncJob::parse(&r.body).unwrap();
        s.secrets.reads.lock().unwrap().clear();
        let mut m = SqsMessage::default();
        m.message_id = Some(r.id.clone());
        m.body = Some(r.body.clone());
        let out = worker::run_message(&s.services, &m, deadline_in(Duration::from_secs(900))).await;
        let reads = s.secrets.reads.lock().unwrap().clone();
        assert!(
            reads
                .iter()
                .all(|n| *n == format!("classy-sync/{}/classy", job.org)),
            "{reads:?}"
        );
        if job.org == a {
            assert_eq!(out, worker::JobResult::Completed);
        } else {
            assert!(
                matches!(out, worker::JobResult::Failed(ref e) if e.contains("not found")),
                "{out:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requested_enqueues_one_organizations_sync_coalesced_and_the_worker_runs_it() {
    let s = stack(small()).await;
    let org = s.orgs[0];
    let r = dispatch::handle_requested(&s.services, org, Some(Entity::Transactions), false)
        .await
        .unwrap();
    assert_eq!(r["entities"]["transactions"], "enqueued", "{r}");
    assert_eq!(r["entities"].as_object().unwrap().len(), 1, "{r}");
    // Asked again while queued: the QUEUED marker absorbs it.
    let again = dispatch::handle_requested(&s.services, org, Some(Entity::Transactions), false)
        .await
        .unwrap();
    assert_eq!(
        again["entities"]["transactions"], "already_queued",
        "{again}"
    );
    // Every entity, full: the three others are enqueued.
    let all = dispatch::handle_requested(&s.services, org, None, true)
        .await
        .unwrap();
    assert_eq!(all["entities"].as_object().unwrap().len(), 4, "{all}");
    assert_eq!(all["entities"]["transactions"], "already_queued", "{all}");
    for e in ["supporters", "campaigns", "recurring-plans"] {
        assert_eq!(all["entities"][e], "enqueued", "{e}: {all}");
    }
    // An unknown organization is answered, nothing enqueued.
    let unknown = dispatch::handle_requested(&s.services, 999_999, None, false)
        .await
        .unwrap();
    assert!(unknown["refused"].is_string(), "{unknown}");

    assert_eq!(drain(&s, &s.services).await, 4);
    assert_truth(&s, org).await;
    // The other organization was not synced.
    for e in Entity::ALL {
        let (cursor, _) = s.services.data.load_cursor(s.orgs[1], e).await.unwrap();
        assert!(cursor.last_success_at.is_none(), "{e}");
    }
}

/// The webhook function's handler on moto: the sample Function URL events, re-signed for
/// now and for a sandbox organization (base64 body), answer 200 and enqueue; the forged one
/// answers 401 and enqueues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_function_verifies_function_url_events_and_enqueues() {
    use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
    use base64::Engine as _;
    use classy_sync_core::domain::organization::webhook_secret_name;
    use classy_sync_core::domain::webhook::sign;
    use classy_sync_core::engine::webhooks::WebhookReceiver;
    let s = stack(small()).await;
    let org = s.orgs[0];
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    s.services
        .root
        .secrets
        .put(
            &webhook_secret_name(org),
            SecretString::from(secret.to_string()),
        )
        .await
        .unwrap();
    let receiver = WebhookReceiver::new(
        s.services.data.clone(),
        s.services.root.secrets.clone(),
        s.services.queue.clone(),
    );
    let sample = |name: &str| -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut signed = sample("webhook-signed.json");
    assert_eq!(signed["isBase64Encoded"], true);
    let body = b64.decode(signed["body"].as_str().unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let id = signed["headers"]["svix-id"].as_str().unwrap().to_owned();
    signed["headers"]["svix-timestamp"] = json!(now.to_string());
    signed["headers"]["svix-signature"] = json!(sign(secret, &id, now, &body).unwrap());
    let path = format!("/webhooks/classy/{org}");
    signed["rawPath"] = json!(path);
    let request: LambdaFunctionUrlRequest = serde_json::from_value(signed.clone()).unwrap();
    let answer = classy_sync_functions::webhook::handle(&receiver, request).await;
    assert_eq!(answer.status_code, 200, "{:?}", answer.body);
    assert!(answer.body.unwrap().contains("transactions"));
    // Delayed by the debounce: in SQS, not yet visible.
    let attrs = s
        .sqs
        .get_queue_attributes()
        .queue_url(&s.services.root.settings.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let delayed = attrs
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        })
        .cloned();
    assert_eq!(delayed.as_deref(), Some("1"));

    let mut forged = sample("webhook-refused.json");
    forged["headers"]["svix-timestamp"] = json!(now.to_string());
    forged["rawPath"] = json!(path);
    let request: LambdaFunctionUrlRequest = serde_json::from_value(forged).unwrap();
    let answer = classy_sync_functions::webhook::handle(&receiver, request).await;
    assert_eq!(answer.status_code, 401, "{:?}", answer.body);
    assert!(!answer.body.unwrap_or_default().contains("whsec_"));

    // The sample as stored is stale (signed once, long ago): refused.
    let request: LambdaFunctionUrlRequest =
        serde_json::from_value(sample("webhook-signed.json")).unwrap();
    let answer = classy_sync_functions::webhook::handle(&receiver, request).await;
    assert_eq!(
        answer.status_code, 404,
        "organization 4021 is not onboarded"
    );
}

/// A large full sync's slices worked by several invocations: the store, the cursor and the
/// markers after it.
mod slices {
    use super::*;
    use classy_sync_core::domain::keys::{
        org_pk, quality_all_sk, quality_ready_sk, queued_sk, slice_prefix,
    };
    use classy_sync_core::ports::SkRange;

    /// 2,500 supporters and 3,200 transactions: 25 and 32 pages of 100, four slices of at
    /// least 5 pages each.
    pub fn large() -> SandboxConfig {
        SandboxConfig {
            seed: 31,
            orgs: 1,
            supporters: 2_500,
            campaigns: 8,
            transactions: 3_200,
            plans: 100,
            ..SandboxConfig::default()
        }
    }

    pub fn sliced(services: &mut Services) {
        services.data.options.full_sync_slices = 4;
        services.data.options.pages_per_slice = 5;
    }

    pub fn event_of(id: &str, body: &str) -> SqsEvent {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        let mut event = SqsEvent::default();
        event.records.push(m);
        event
    }

    /// The sort keys under `prefix` in the organization's partition.
    pub async fn keys(s: &Stack, org: u64, prefix: &str) -> Vec<String> {
        let page = s
            .services
            .data
            .store
            .query(&org_pk(org), &SkRange::prefix(prefix), None, 100)
            .await
            .unwrap();
        page.items.into_iter().map(|i| i.sk).collect()
    }

    /// Exactly the sandbox's records, committed once (one SyncCompleted), no slice item,
    /// no slice lease and no queued marker left.
    pub async fn assert_committed_once(s: &Stack, org: u64, entity: Entity) {
        let mut rows = Vec::new();
        s.services
            .data
            .export(org, entity, |r| {
                rows.push(r);
                Ok(())
            })
            .await
            .unwrap();
        assert_same_records(entity, &truth(&s.sandbox, org, entity).await, &rows);
        let (cursor, _) = s.services.data.load_cursor(org, entity).await.unwrap();
        assert!(cursor.in_progress.is_none(), "{cursor:?}");
        assert!(cursor.committed.is_some() && cursor.last_full_at.is_some());
        let completed: Vec<Value> = events(s)
            .await
            .into_iter()
            .filter(|e| {
                e["detail-type"] == "SyncCompleted" && e["detail"]["entity"] == entity.name()
            })
            .collect();
        assert_eq!(completed.len(), 1, "committed once: {completed:?}");
        assert_eq!(
            keys(s, org, &slice_prefix(entity)).await,
            Vec::<String>::new()
        );
        assert_eq!(keys(s, org, "SLICELEASE#").await, Vec::<String>::new());
        assert_eq!(keys(s, org, &queued_sk(entity)).await, Vec::<String>::new());
        // The quality facts were rebuilt with the commit.
        assert_eq!(
            keys(s, org, &quality_all_sk(entity)).await,
            Vec::<String>::new()
        );
        assert_eq!(keys(s, org, &quality_ready_sk(entity)).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_full_sync_fans_out_into_slice_jobs_with_their_own_groups_and_commits_once() {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    use classy_sync_core::engine::jobs::SyncJob;
    use classy_sync_core::engine::SyncOutcome;
    let mut s = stack_on(slices::large(), "sync.fifo").await;
    slices::sliced(&mut s.services);
    let org = s.orgs[0];
    let queue_url = s.services.root.settings.queue_url.clone();
    for entity in [Entity::Supporters, Entity::Transactions] {
        dispatch::handle(&s.services, entity).await.unwrap();
        // The planning job: it queues the other slices and works the first itself.
        let (n, failed) =
            deliver_once(&s, &s.services, deadline_in(Duration::from_secs(900))).await;
        assert_eq!((n, failed), (1, 0));
        let got = s
            .sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .unwrap();
        let messages = got.messages().to_vec();
        // All three at once from a FIFO queue: their groups differ, so none waits.
        assert_eq!(messages.len(), 3, "{messages:?}");
        let mut groups = Vec::new();
        let mut jobs = Vec::new();
        for m in &messages {
            let job = SyncJob::parse(m.body().unwrap()).unwrap();
            let slice = job.slice.clone().expect("a slice job");
            groups.push(
                m.attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    .cloned()
                    .unwrap(),
            );
            jobs.push((slice.run, slice.index));
        }
        groups.sort();
        groups.dedup();
        assert_eq!(groups.len(), 3, "a group per slice: {groups:?}");
        assert!(!groups.contains(&org.to_string()));
        jobs.sort();
        assert!(jobs.iter().all(|(run, _)| *run == jobs[0].0));
        assert_eq!(
            jobs.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            vec![1, 2, 3],
            "the planner worked slice 0"
        );
        // Three workers at once, in reverse order of receipt; then one of them again.
        let events: Vec<SqsEvent> = messages
            .iter()
            .rev()
            .enumerate()
            .map(|(i, m)| slices::event_of(&format!("s-{i}"), m.body().unwrap()))
            .collect();
        let deadline = deadline_in(Duration::from_secs(900));
        let responses = futures::future::join_all(
            events
                .iter()
                .map(|e| worker::handle(&s.services, e.clone(), deadline)),
        )
        .await;
        assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));
        let again = worker::handle(&s.services, events[1].clone(), deadline).await;
        assert!(again.batch_item_failures.is_empty());
        for m in &messages {
            s.queue.delete(m.receipt_handle().unwrap()).await.unwrap();
        }
        drain(&s, &s.services).await;
        slices::assert_committed_once(&s, org, entity).await;
        let runs = s.services.data.runs(org, entity, 50).await.unwrap();
        let committed: Vec<_> = runs
            .iter()
            .filter(|r| r.outcome == SyncOutcome::Succeeded && r.aggregates_recomputed > 0)
            .collect();
        if entity == Entity::Transactions {
            assert_eq!(committed.len(), 1, "aggregates refreshed once: {runs:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_job_killed_halfway_is_resumed_by_another_worker_from_its_slice_item() {
    use classy_sync_core::domain::keys::slice_prefix;
    use classy_sync_core::engine::slices::SliceState;
    use classy_sync_core::engine::SyncOutcome;
    let mut s = stack(slices::large()).await;
    slices::sliced(&mut s.services);
    s.services.data.options.lease_ttl = Duration::from_secs(3);
    let org = s.orgs[0];
    let entity = Entity::Supporters;
    reqwest::Client::new()
        .put(format!("{}/admin/faults", s.sandbox.base_url()))
        .json(&json!({"seed": 4, "slow_rate": 1.0, "slow_ms": 60}))
        .send()
        .await
        .unwrap();
    dispatch::handle(&s.services, entity).await.unwrap();
    let (n, failed) = deliver_once(&s, &s.services, deadline_in(Duration::from_secs(900))).await;
    assert_eq!((n, failed), (1, 0));
    // One slice job: a worker takes it and dies after it stored some pages.
    let got = s.queue.receive(1, VISIBILITY).await.unwrap();
    assert_eq!(got.len(), 1);
    let job = classy_sync_core::engine::jobs::SyncJob::parse(&got[0].body).unwrap();
    let index = job.slice.clone().unwrap().index;
    let slice_of = |items: Vec<SliceState>| items.into_iter().find(|x| x.index == index).unwrap();
    let read = || async {
        let page = s
            .services
            .data
            .store
            .query(
                &classy_sync_core::domain::keys::org_pk(org),
                &classy_sync_core::ports::SkRange::prefix(slice_prefix(entity)),
                None,
                100,
            )
            .await
            .unwrap();
        slice_of(page.items.iter().map(|i| i.parse().unwrap()).collect())
    };
    let before = read().await;
    let worker_task = {
        let services = s.services.clone();
        let event = slices::event_of(&got[0].id, &got[0].body);
        tokio::spawn(async move {
            worker::handle(&services, event, deadline_in(Duration::from_secs(900))).await
        })
    };
    let mut killed_at = None;
    for _ in 0..500 {
        let now = read().await;
        if now.pages >= 2 {
            worker_task.abort();
            killed_at = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = worker_task.await;
    let killed_at = killed_at.expect("the slice job stored pages");
    assert!(!killed_at.done && killed_at.after_id > before.after_id);
    // While its lease lasts, a pair job that finds the full sync in progress does not queue
    // the slice again (it is being worked, as far as anyone can tell).
    let pair = classy_sync_core::engine::jobs::SyncJob {
        slice: None,
        ..job.clone()
    };
    let requeued = s.services.data.slice_jobs(&pair).await.unwrap().unwrap();
    assert!(
        requeued
            .iter()
            .all(|j| j.slice.as_ref().unwrap().index != index),
        "{requeued:?}"
    );
    // Its message comes back after the visibility timeout; while its lease lasts, the
    // worker that takes it looks again later (a delayed copy); then one resumes the slice
    // where it was.
    for _ in 0..60 {
        drain(&s, &s.services).await;
        let (cursor, _) = s.services.data.load_cursor(org, entity).await.unwrap();
        if cursor.in_progress.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    slices::assert_committed_once(&s, org, entity).await;
    let runs = s.services.data.runs(org, entity, 50).await.unwrap();
    let resumed: Vec<_> = runs
        .iter()
        .filter(|r| r.resumed && r.outcome == SyncOutcome::Succeeded)
        .collect();
    assert_eq!(resumed.len(), 1, "{runs:?}");
    // It read only the rest of its slice (from where the item said, or later), not the
    // slice again.
    let ids: Vec<u64> = truth(&s.sandbox, org, entity)
        .await
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    let in_slice = |after: u64| {
        ids.iter()
            .filter(|&&id| id > after && killed_at.hi.is_none_or(|hi| id <= hi))
            .count() as u64
    };
    assert!(
        resumed[0].fetched <= in_slice(killed_at.after_id)
            && resumed[0].fetched < in_slice(killed_at.lo),
        "{resumed:?} {killed_at:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_slice_job_emits_sync_failed_and_its_retry_finishes_the_full_sync() {
    let mut s = stack(slices::large()).await;
    slices::sliced(&mut s.services);
    let org = s.orgs[0];
    let entity = Entity::Supporters;
    dispatch::handle(&s.services, entity).await.unwrap();
    let (n, failed) = deliver_once(&s, &s.services, deadline_in(Duration::from_secs(900))).await;
    assert_eq!((n, failed), (1, 0));
    // Classy answers pages that do not parse for a while: the slice jobs fail.
    let script: Vec<_> = (0..200).map(|_| json!({"malformed": true})).collect();
    let admin = reqwest::Client::new();
    admin
        .post(format!("{}/admin/faults/script", s.sandbox.base_url()))
        .json(&json!({ "next": script }))
        .send()
        .await
        .unwrap();
    let (n, failed) = deliver_once(&s, &s.services, deadline_in(Duration::from_secs(900))).await;
    assert!(n == 3 && failed >= 1, "{n} slice jobs, {failed} failed");
    let sync_failed: Vec<Value> = events(&s)
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "SyncFailed")
        .collect();
    assert_eq!(sync_failed.len(), failed, "{sync_failed:?}");
    assert_eq!(sync_failed[0]["detail"]["organization_id"], org);
    assert!(
        s.services
            .data
            .load_failures(org, entity)
            .await
            .unwrap()
            .consecutive_failures
            >= 1
    );
    admin
        .delete(format!("{}/admin/faults/script", s.sandbox.base_url()))
        .send()
        .await
        .unwrap();
    // SQS delivers the failed ones again; they finish the full sync.
    for _ in 0..60 {
        drain(&s, &s.services).await;
        let (cursor, _) = s.services.data.load_cursor(org, entity).await.unwrap();
        if cursor.in_progress.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    slices::assert_committed_once(&s, org, entity).await;
    assert_eq!(
        s.services
            .data
            .load_failures(org, entity)
            .await
            .unwrap()
            .consecutive_failures,
        0
    );
}
