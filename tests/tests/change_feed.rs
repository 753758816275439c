//! The change-feed destination over a real socket: a local axum receiver verifies every
//! delivery's signature with `signing::verify`, records what arrived, and can refuse (500)
//! or accept-then-fail to simulate lost acknowledgements. The sandbox org is synced, then
//! pushed: every supporter and transaction arrives exactly once; touched records (and only
//! those) arrive after the next sync; a push with nothing new sends nothing; a crash between
//! the receiver's ack and our record re-sends only that batch, with the same delivery id;
//! a webhook resolving to a private/loopback address is refused without the development
//! allowance.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::{Entity, OrgId};
use classy_sync_core::engine::plugins::{PluginRun, PushOptions};
use classy_sync_core::engine::{RunControl, SyncMode, SyncOutcome};
use classy_sync_core::ports::destination::plugin_secret_name;
use classy_sync_core::ports::PluginConfig;
use classy_sync_core::signing::{verify, DELIVERY_HEADER, SIGNATURE_HEADER};
use classy_sync_destinations::change_feed::settings::WebhookCredential;
use classy_sync_tests::Harness;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

const SIGNING_SECRET: &str = "whsec_0123456789abcdef";

#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    events: Vec<Value>,
}

/// What the receiver does with the next requests, in order; then it accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Accept,
    /// 500 before looking at the body: nothing was received.
    Refuse,
    /// Records the delivery, then answers 500: the ack is lost.
    AcceptThenFail,
}

#[derive(Default)]
struct Receiver {
    deliveries: Mutex<Vec<Delivery>>,
    script: Mutex<Vec<Answer>>,
    bad_signatures: Mutex<u32>,
    requests: Mutex<u32>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    *r.requests.lock().unwrap() += 1;
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    if verify(SIGNING_SECRET.as_bytes(), sig, &body, now, 300).is_err() {
        *r.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let next = {
        let mut s = r.script.lock().unwrap();
        (!s.is_empty()).then(|| s.remove(0))
    };
    if next == Some(Answer::Refuse) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    let id = headers
        .get(DELIVERY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_string();
    assert_eq!(
        v["delivery"],
        json!(id),
        "body and header name one delivery"
    );
    r.deliveries.lock().unwrap().push(Delivery {
        id,
        events: v["events"].as_array().unwrap().clone(),
    });
    match next {
        Some(Answer::AcceptThenFail) => StatusCode::INTERNAL_SERVER_ERROR,
        Some(Answer::Accept) | Some(Answer::Refuse) | None => StatusCode::NO_CONTENT,
    }
}

impl Receiver {
    async fn start() -> (Arc<Receiver>, String) {
        let r = Arc::new(Receiver::default());
        let app = Router::new()
            .route("/hooks/classy", post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (
            r,
            format!("http://127.0.0.1:{port}/hooks/classy?token=s3cr3t-path"),
        )
    }

    fn script(&self, answers: &[Answer]) {
        *self.script.lock().unwrap() = answers.to_vec();
    }

    /// Deliveries since the last call.
    fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.deliveries.lock().unwrap())
    }
}

fn sandbox() -> SandboxConfig {
    SandboxConfig {
        seed: 7,
        orgs: 1,
        apps: 1,
        supporters: 180,
        campaigns: 4,
        transactions: 320,
        plans: 30,
        ..SandboxConfig::default()
    }
}

async fn sync(h: &Harness, org: OrgId, mode: SyncMode) {
    for r in h.sync.sync_org(org, mode, &RunControl::default()).await {
        let r = r.unwrap();
        assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
    }
}

async fn configure(h: &Harness, org: OrgId, url: &str, settings: Value) {
    let name = plugin_secret_name(org, "change-feed");
    h.root
        .secrets
        .put(&name, WebhookCredential::to_secret(url, SIGNING_SECRET))
        .await
        .unwrap();
    h.plugins
        .put_plugin_config(
            org,
            PluginConfig {
                plugin: "change-feed".into(),
                enabled: true,
                settings,
                secret_name: Some(name),
            },
        )
        .await
        .unwrap();
}

async fn push(h: &Harness, org: OrgId) -> PluginRun {
    let mut runs = h
        .plugins
        .push_org(
            org,
            &PushOptions {
                plugin: Some("change-feed".into()),
                ..PushOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    runs.remove(0)
}

/// (type, entity id) of every event, and every event id, with how often each arrived.
fn tally(deliveries: &[Delivery]) -> (BTreeMap<(String, u64), u32>, BTreeMap<String, u32>) {
    let mut records = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for d in deliveries {
        for e in &d.events {
            let key = (
                e["type"].as_str().unwrap().to_string(),
                e["entity_id"].as_u64().unwrap(),
            );
            *records.entry(key).or_insert(0) += 1;
            *ids.entry(e["id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    (records, ids)
}

async fn truth_ids(h: &Harness, org: OrgId, entity: Entity) -> BTreeSet<u64> {
    h.truth(org, entity)
        .await
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhook_sends_each_change_once_and_resumes_after_failures() {
    // The receiver is http on loopback: a development setting, needing the switch.
    std::env::set_var(classy_sync_http::ENV_ALLOW_DEV_URLS, "1");
    let h = Harness::start(sandbox()).await;
    let org = h.orgs[0];
    let (rx, url) = Receiver::start().await;
    configure(
        &h,
        org,
        &url,
        json!({"target": "webhook", "allow_http_loopback": true, "batch_size": 40}),
    )
    .await;
    sync(&h, org, SyncMode::Full).await;

    // 1. The receiver is down for the first request: the run fails, nothing is recorded.
    rx.script(&[Answer::Refuse]);
    let failed = push(&h, org).await;
    assert!(failed.failed(), "{failed:?}");
    let err = failed.result.unwrap_err();
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(
        !err.contains("s3cr3t-path") && !err.contains(SIGNING_SECRET),
        "{err}"
    );
    assert!(rx.take().is_empty());

    // 2. Then it accepts: every supporter and every transaction arrives, exactly once.
    let run = push(&h, org).await;
    let report = run.result.expect("push succeeds");
    let first = rx.take();
    let (records, ids) = tally(&first);
    let supporters = truth_ids(&h, org, Entity::Supporters).await;
    let transactions = truth_ids(&h, org, Entity::Transactions).await;
    let want: BTreeSet<(String, u64)> = supporters
        .iter()
        .map(|id| ("SupporterChanged".to_string(), *id))
        .chain(
            transactions
                .iter()
                .map(|id| ("TransactionChanged".to_string(), *id)),
        )
        .collect();
    assert_eq!(records.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(records.values().all(|n| *n == 1), "a record arrived twice");
    assert!(ids.values().all(|n| *n == 1));
    assert_eq!(report.sent as usize, want.len());
    assert!(first.iter().all(|d| d.events.len() <= 40));
    let delivery_ids: BTreeSet<&String> = first.iter().map(|d| &d.id).collect();
    assert_eq!(delivery_ids.len(), first.len(), "delivery ids are unique");
    // The supporter event carries the record and its giving aggregates.
    let s = first
        .iter()
        .flat_map(|d| &d.events)
        .find(|e| e["type"] == "SupporterChanged")
        .unwrap();
    assert!(s["data"]["supporter"]["id"].is_u64() && s["data"]["aggregates"].is_object());
    assert_eq!(s["org_id"], json!(org));

    // 3. Nothing changed: nothing is sent.
    let again = push(&h, org).await.result.unwrap();
    assert_eq!(again.sent, 0, "{again:?}");
    assert!(rx.take().is_empty());

    // 4. Touch a few records, sync, push: exactly those arrive.
    let touched_s: Vec<u64> = supporters.iter().copied().step_by(37).take(4).collect();
    let touched_t: Vec<u64> = transactions.iter().copied().step_by(71).take(3).collect();
    h.post(
        &format!("/orgs/{org}/supporters/touch"),
        json!({"ids": touched_s}),
    )
    .await;
    h.post(
        &format!("/orgs/{org}/transactions/touch"),
        json!({"ids": touched_t}),
    )
    .await;
    h.patch(
        org,
        Entity::Supporters,
        touched_s[0],
        json!({"first_name": "Changed"}),
    )
    .await;
    sync(&h, org, SyncMode::Incremental).await;
    push(&h, org).await.result.unwrap();
    let (records, _) = tally(&rx.take());
    let want: BTreeSet<(String, u64)> = touched_s
        .iter()
        .map(|id| ("SupporterChanged".to_string(), *id))
        .chain(
            touched_t
                .iter()
                .map(|id| ("TransactionChanged".to_string(), *id)),
        )
        .collect();
    assert_eq!(records.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(records.values().all(|n| *n == 1));
    assert!(push(&h, org).await.result.unwrap().sent == 0);
    assert!(rx.take().is_empty());
    assert_eq!(*rx.bad_signatures.lock().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_resends_only_that_batch_with_the_same_delivery_id() {
    // The receiver is http on loopback: a development setting, needing the switch.
    std::env::set_var(classy_sync_http::ENV_ALLOW_DEV_URLS, "1");
    let h = Harness::start(sandbox()).await;
    let org = h.orgs[0];
    let (rx, url) = Receiver::start().await;
    configure(
        &h,
        org,
        &url,
        json!({"target": "webhook", "allow_http_loopback": true, "batch_size": 25}),
    )
    .await;
    sync(&h, org, SyncMode::Full).await;

    // First run: batches 1-2 are acknowledged; the receiver takes batch 3 but its ack is
    // lost (as when we die between its 2xx and our record): the run fails.
    rx.script(&[Answer::Accept, Answer::Accept, Answer::AcceptThenFail]);
    let first_run = push(&h, org).await;
    assert!(first_run.failed(), "{first_run:?}");
    let mut first = rx.take();
    assert_eq!(first.len(), 3);
    let lost = vec![first.pop().unwrap()];
    let lost_id = lost[0].id.clone();
    let lost_events: BTreeSet<String> = lost[0]
        .events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();

    // Second run: the lost batch goes first, byte-identical, same delivery id; a refused
    // request mid-run stops it; the third run completes.
    rx.script(&[Answer::Accept, Answer::Accept, Answer::Refuse]);
    let second = push(&h, org).await;
    assert!(second.failed());
    let third = push(&h, org).await;
    third.result.unwrap();
    let rest = rx.take();
    assert_eq!(
        rest[0].id, lost_id,
        "the in-flight batch is re-sent first, same id"
    );
    let resent: BTreeSet<String> = rest[0]
        .events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(resent, lost_events);

    // Receivers dedup on the delivery id: then every change arrived exactly once.
    let mut all = first;
    all.extend(lost);
    all.extend(rest);
    let mut seen = BTreeSet::new();
    let deduped: Vec<Delivery> = all
        .into_iter()
        .filter(|d| seen.insert(d.id.clone()))
        .collect();
    let (records, ids) = tally(&deduped);
    assert!(ids.values().all(|n| *n == 1), "a change arrived twice");
    let n_supporters = truth_ids(&h, org, Entity::Supporters).await.len();
    let n_transactions = truth_ids(&h, org, Entity::Transactions).await.len();
    assert_eq!(
        records.len(),
        n_supporters + n_transactions,
        "no change lost"
    );
    assert!(push(&h, org).await.result.unwrap().sent == 0);
    assert!(rx.take().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_private_or_loopback_addresses_are_refused() {
    let h = Harness::start(SandboxConfig {
        supporters: 10,
        transactions: 10,
        plans: 2,
        campaigns: 1,
        ..sandbox()
    })
    .await;
    let org = h.orgs[0];
    let (rx, url) = Receiver::start().await;
    sync(&h, org, SyncMode::Full).await;
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    for (target, class) in [
        // `localhost` resolves (DNS) to a loopback address.
        (
            format!("https://localhost:{port}/hooks/classy?token=s3cr3t-path"),
            "loopback",
        ),
        (
            "https://10.20.30.40/hooks/classy?token=s3cr3t-path".to_string(),
            "private",
        ),
        (
            "https://169.254.169.254/latest/meta-data?token=s3cr3t-path".to_string(),
            "link-local",
        ),
        // Plain http is refused without the development allowance.
        (url.clone(), "http"),
    ] {
        configure(&h, org, &target, json!({"target": "webhook"})).await;
        let run = push(&h, org).await;
        let err = run.result.expect_err("refused");
        assert!(err.contains(class), "{target}: {err}");
        assert!(!err.contains("s3cr3t-path"), "the URL is a secret: {err}");
    }
    assert_eq!(
        *rx.requests.lock().unwrap(),
        0,
        "nothing reached the receiver"
    );
}
