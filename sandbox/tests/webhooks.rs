//! Svix-signed webhooks from the sandbox to a local receiver, over real sockets.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use classy_sandbox::SandboxConfig;
use common::start;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Received>>,
    /// The first this many requests answer 500.
    fail_first: usize,
    /// Every request waits this long before answering.
    delay: Duration,
    seen: AtomicUsize,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    r.got.lock().unwrap().push(Received {
        id: h("svix-id"),
        timestamp: h("svix-timestamp"),
        signature: h("svix-signature"),
        body: body.to_vec(),
    });
    tokio::time::sleep(r.delay).await;
    if r.seen.fetch_add(1, Ordering::SeqCst) < r.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn receiver(r: Arc<Receiver>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(receive)).with_state(r);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

/// The receiver's own check, written from the Svix documentation (not the sandbox's code).
fn verify(r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", r.id, r.timestamp).as_bytes());
    mac.update(&r.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.signature
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn wait_counters(h: &common::Harness, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = h.admin_get("/webhooks").await;
        if done(&v["counters"]) || Instant::now() > deadline {
            return v["counters"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn changes_arrive_signed_and_a_500_is_retried() {
    let h = start(SandboxConfig::default()).await;
    let org = h.org;
    let rx = Arc::new(Receiver {
        fail_first: 1,
        ..Default::default()
    });
    let url = receiver(rx.clone()).await;

    // A bad secret or URL is refused; the answer never carries the secret.
    let (s, _) = h
        .admin_send(
            Method::PUT,
            &format!("/orgs/{org}/webhook"),
            json!({"url": url, "secret": "whsec_***"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .admin_send(
            Method::PUT,
            "/orgs/1/webhook",
            json!({"url": url, "secret": SECRET}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = h
        .admin_send(
            Method::PUT,
            &format!("/orgs/{org}/webhook"),
            json!({"url": url, "secret": SECRET, "retry_delays_ms": [200, 200, 200]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(!v.to_string().contains("MfKQ9r8"), "{v}");
    assert_eq!(
        h.admin_get(&format!("/orgs/{org}/webhook")).await["url"],
        url
    );

    // One change of each kind (campaigns send nothing).
    let (s, txn) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/transactions"),
            json!({"status": "success"}),
        )
        .await;
    assert_eq!(s, 201, "{txn}");
    let sup = h.admin_get(&format!("/orgs/{org}/supporters")).await[0]["id"]
        .as_i64()
        .unwrap();
    let (s, _) = h
        .admin_send(
            Method::PATCH,
            &format!("/orgs/{org}/supporters/{sup}"),
            json!({"first_name": "Ada"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, touched) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/recurring-donation-plans/touch"),
            json!({"count": 2}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/campaigns"),
            json!({"name": "New"}),
        )
        .await;
    assert_eq!(s, 201);

    let c = wait_counters(&h, |c| c["sent"] == 4).await;
    assert_eq!(
        c,
        json!({"events": 4, "attempts": 5, "sent": 4, "retried": 1, "failed": 0, "in_flight": 0})
    );
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 5);
    for r in &got {
        assert!(r.id.starts_with("msg_"), "{r:?}");
        assert!(verify(r), "bad signature on {r:?}");
        let ts: i64 = r.timestamp.parse().unwrap();
        assert!((ts - chrono::Utc::now().timestamp()).abs() < 60);
    }
    // The failed delivery came again with the same id; the four events have distinct ids.
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(got.iter().filter(|r| r.id == got[0].id).count(), 2);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    let mut events: Vec<(String, i64)> = ids
        .iter()
        .map(|id| {
            let r = got.iter().find(|r| r.id == *id).unwrap();
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["data"]["organization_id"], org);
            assert!(v["timestamp"].is_string());
            (
                v["type"].as_str().unwrap().to_string(),
                v["data"]["id"].as_i64().unwrap(),
            )
        })
        .collect();
    events.sort();
    let plans: Vec<i64> = touched["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let mut want = vec![
        ("supporter.updated".to_string(), sup),
        (
            "transaction.created".to_string(),
            txn["id"].as_i64().unwrap(),
        ),
        ("recurring_donation_plan.updated".to_string(), plans[0]),
        ("recurring_donation_plan.updated".to_string(), plans[1]),
    ];
    want.sort();
    assert_eq!(events, want);

    // Removed: changes send nothing more.
    let (s, v) = h
        .admin_send(Method::DELETE, &format!("/orgs/{org}/webhook"), json!({}))
        .await;
    assert_eq!((s, &v["removed"]), (200, &json!(true)));
    h.admin_send(
        Method::PATCH,
        &format!("/orgs/{org}/supporters/{sup}"),
        json!({"first_name": "Grace"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.admin_get("/webhooks").await["counters"]["events"], 4);
    assert_eq!(rx.got.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn slow_or_dead_endpoints_never_block_admin_calls() {
    let h = start(SandboxConfig::default()).await;
    let org = h.org;
    let rx = Arc::new(Receiver {
        delay: Duration::from_secs(3),
        ..Default::default()
    });
    let url = receiver(rx.clone()).await;
    h.admin_send(
        Method::PUT,
        &format!("/orgs/{org}/webhook"),
        json!({"url": url, "secret": SECRET}),
    )
    .await;
    let t = Instant::now();
    let (s, _) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/supporters/touch"),
            json!({"count": 20}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let c = wait_counters(&h, |c| c["sent"] == 20).await;
    assert_eq!(
        (c["sent"].as_u64(), c["retried"].as_u64()),
        (Some(20), Some(0))
    );

    // Nothing listens: three attempts, then given up and counted as failed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/hook")
    };
    h.admin_send(Method::POST, "/webhooks/reset", json!({}))
        .await;
    h.admin_send(
        Method::PUT,
        &format!("/orgs/{org}/webhook"),
        json!({"url": dead, "secret": SECRET, "retry_delays_ms": [50, 50]}),
    )
    .await;
    h.admin_send(
        Method::POST,
        &format!("/orgs/{org}/transactions"),
        json!({}),
    )
    .await;
    let c = wait_counters(&h, |c| c["failed"] == 1).await;
    assert_eq!(
        c,
        json!({"events": 1, "attempts": 3, "sent": 0, "retried": 2, "failed": 1, "in_flight": 0})
    );
}
