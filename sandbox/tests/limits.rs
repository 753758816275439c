//! Classy's and Mailchimp's limits over real sockets: the per-application fixed window with
//! Laravel's throttle headers, the configurable latency, and Mailchimp's 10 requests in flight
//! per API key.

mod common;

use classy_sandbox::mailchimp::counters::key_fingerprint;
use classy_sandbox::SandboxConfig;
use common::{http, start, Harness};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn small() -> SandboxConfig {
    SandboxConfig {
        orgs: 2,
        supporters: 20,
        transactions: 20,
        plans: 5,
        campaigns: 2,
        ..Default::default()
    }
}

/// One `/2.0` answer: status, the headers that matter here, the parsed body.
struct Answer {
    status: u16,
    limit: Option<u64>,
    remaining: Option<u64>,
    retry_after: Option<u64>,
    reset: Option<u64>,
    body: Value,
}

async fn call(client: &reqwest::Client, h: &Harness, token: &str, path: &str) -> Answer {
    let r = client
        .get(format!("{}{path}", h.sandbox.api_base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("api request");
    let num = |name: &str| -> Option<u64> {
        r.headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").parse().expect("a number"))
    };
    let (limit, remaining) = (num("x-ratelimit-limit"), num("x-ratelimit-remaining"));
    let (retry_after, reset) = (num("retry-after"), num("x-ratelimit-reset"));
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        limit,
        remaining,
        retry_after,
        reset,
        body,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn window_opens_at_the_first_request_and_resets_after_it() {
    let h = start(SandboxConfig {
        rate_limit_per_minute: 3,
        rate_limit_window: Duration::from_secs(2),
        ..small()
    })
    .await;
    let token = h.token().await;
    let path = format!("/organizations/{}/campaigns", h.org);
    // A window tied to the start of the sandbox (or to the clock) would close 0.5 s after
    // the first request below; Classy's opens at the application's first request.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t0 = Instant::now();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let a = call(&h.http, &h, &token, &path).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.limit, Some(3));
        assert_eq!((a.retry_after, a.reset), (None, None), "only once over");
        remaining.push(a.remaining.expect("X-RateLimit-Remaining"));
    }
    assert_eq!(remaining, [2, 1, 0]);

    let a = call(&h.http, &h, &token, &path).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.body["message"], "Too Many Attempts.");
    let wait = a.body["retry_after"].as_u64().expect("retry_after");
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(a.retry_after, Some(wait), "Retry-After = retry_after");
    assert_eq!((a.limit, a.remaining), (Some(3), Some(0)));
    let reset = a.reset.expect("X-RateLimit-Reset once over");
    assert!((unix_now()..=unix_now() + 3).contains(&reset), "{reset}");

    tokio::time::sleep(Duration::from_secs(1).saturating_sub(t0.elapsed())).await;
    let a = call(&h.http, &h, &token, &path).await;
    assert_eq!(a.status, 429, "one second after the first request");

    tokio::time::sleep(Duration::from_millis(2400).saturating_sub(t0.elapsed())).await;
    let a = call(&h.http, &h, &token, &path).await;
    assert_eq!(a.status, 200, "the window closed: {}", a.body);
    assert_eq!((a.limit, a.remaining), (Some(3), Some(2)));

    let c = h.admin_get("/counters").await;
    assert_eq!(
        c["by_application"][&h.client_id],
        json!({"requests": 6, "429": 2}),
        "{c}"
    );
    let rl = h.admin_get("/rate-limit").await;
    assert_eq!(rl, json!({"per_minute": 3, "window_ms": 2000}));
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn one_budget_per_application_across_connections_and_tokens() {
    let h = start(SandboxConfig {
        apps: 2,
        rate_limit_per_minute: 4,
        ..small()
    })
    .await;
    let apps = h.sandbox.apps();
    let second = &apps[1];
    // Two tokens of the first application, each on its own client (its own connections).
    let (a1, a2) = (h.token().await, h.token().await);
    assert_ne!(a1, a2);
    let (c1, c2) = (http(), http());
    let path = format!("/organizations/{}/supporters?per_page=1", h.org);
    let mut remaining = Vec::new();
    for i in 0..4 {
        let (client, token) = if i % 2 == 0 { (&c1, &a1) } else { (&c2, &a2) };
        let a = call(client, &h, token, &path).await;
        assert_eq!(a.status, 200, "{}", a.body);
        remaining.push(a.remaining.expect("remaining"));
    }
    assert_eq!(remaining, [3, 2, 1, 0], "one window for both tokens");
    for (client, token) in [(&c1, &a1), (&c2, &a2)] {
        let a = call(client, &h, token, &path).await;
        assert_eq!(a.status, 429);
        assert!(a.retry_after.unwrap() > 50, "{:?}", a.retry_after);
    }

    // The other application has its own window.
    let b = h.token_for(&second.client_id, &second.client_secret).await;
    let path_b = format!(
        "/organizations/{}/supporters?per_page=1",
        second.organizations[0]
    );
    let a = call(&h.http, &h, &b, &path_b).await;
    assert_eq!((a.status, a.limit, a.remaining), (200, Some(4), Some(3)));

    let c = h.admin_get("/counters").await;
    assert_eq!(c["by_application"][&h.client_id]["requests"], 6);
    assert_eq!(c["by_application"][&h.client_id]["429"], 2);
    assert_eq!(
        c["by_application"][&second.client_id],
        json!({"requests": 1, "429": 0})
    );

    // A new limit starts every window afresh; 0 turns limiting and its headers off.
    let (st, v) = h
        .admin_send(Method::PUT, "/rate-limit", json!({"per_minute": 10}))
        .await;
    assert_eq!((st, v["per_minute"].as_u64()), (200, Some(10)));
    let a = call(&c1, &h, &a1, &path).await;
    assert_eq!((a.status, a.remaining), (200, Some(9)));
    h.admin_send(Method::PUT, "/rate-limit", json!({"per_minute": 0}))
        .await;
    let a = call(&c1, &h, &a1, &path).await;
    assert_eq!((a.status, a.limit, a.remaining), (200, None, None));
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn default_mode_has_no_limit_no_headers_no_latency() {
    let h = start(small()).await;
    assert_eq!(h.admin_get("/latency").await, json!({"ms": 0}));
    assert_eq!(h.admin_get("/rate-limit").await["per_minute"], 0);
    let token = h.token().await;
    let path = format!("/organizations/{}/campaigns", h.org);
    for _ in 0..50 {
        let a = call(&h.http, &h, &token, &path).await;
        assert_eq!(a.status, 200);
        assert_eq!((a.limit, a.remaining, a.retry_after), (None, None, None));
    }
    let c = h.admin_get("/counters").await;
    assert_eq!(c["by_application"][&h.client_id]["429"], 0);
    h.sandbox.shutdown().await;
}

/// The median of five timed calls, so one slow moment of a busy machine does not decide.
async fn median_ms<F, Fut>(mut f: F) -> u128
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed().as_millis());
    }
    times.sort();
    times[2]
}

#[tokio::test]
async fn latency_applies_to_classy_api_requests_only() {
    let h = start(SandboxConfig {
        latency_ms: 300,
        ..small()
    })
    .await;
    let t = Instant::now();
    let token = h.token().await;
    assert!(t.elapsed() >= Duration::from_millis(300), "token request");
    let path = format!("/organizations/{}/campaigns", h.org);
    let api = median_ms(|| async {
        assert_eq!(call(&h.http, &h, &token, &path).await.status, 200);
    })
    .await;
    assert!(api >= 300, "{api} ms");
    let admin = median_ms(|| async {
        h.admin_get("/apps").await;
    })
    .await;
    assert!(admin < 250, "admin requests get no latency: {admin} ms");

    let (st, v) = h
        .admin_send(Method::PUT, "/latency", json!({"ms": 700}))
        .await;
    assert_eq!((st, v), (200, json!({"ms": 700})));
    let t = Instant::now();
    assert_eq!(call(&h.http, &h, &token, &path).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(700));
    h.admin_send(Method::PUT, "/latency", json!({"ms": 0}))
        .await;
    assert_eq!(h.admin_get("/latency").await, json!({"ms": 0}));
    let (st, _) = h
        .admin_send(Method::PUT, "/latency", json!({"ms": -1}))
        .await;
    assert!(st >= 400, "{st}");
    h.sandbox.shutdown().await;
}

/// Mailchimp: with 10 requests of one key in flight the 11th is refused at once with the
/// `TooManyRequests` problem document; another key is not; slots come back.
#[tokio::test]
async fn mailchimp_refuses_the_eleventh_request_in_flight_of_a_key() {
    let h = start(small()).await;
    let base = h.sandbox.base_url();
    let mc = h.sandbox.mailchimp_api_base_url();
    let key = h.sandbox.mailchimp_api_key();
    let admin = |method: Method, path: &str, body: Value| {
        h.http
            .request(method, format!("{base}/admin/mailchimp{path}"))
            .json(&body)
            .send()
    };
    assert!(admin(Method::PUT, "/faults", json!({"delay_ms": 2500}))
        .await
        .unwrap()
        .status()
        .is_success());
    admin(Method::POST, "/keys", json!({"key": "another-key-us2"}))
        .await
        .unwrap();
    let ping = |key: String| {
        let url = format!("{mc}/ping");
        async move {
            // A client per request: ten connections, as ten workers would hold.
            let r = http()
                .get(url)
                .basic_auth("anystring", Some(key))
                .send()
                .await
                .expect("ping");
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (
                status,
                headers,
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let ten: Vec<_> = (0..10).map(|_| tokio::spawn(ping(key.clone()))).collect();
    let fp = key_fingerprint(&key);
    let counters = || async {
        admin(Method::GET, "/counters", json!({}))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while counters().await["by_key"][&fp]["max_in_flight"] != 10 {
        assert!(
            Instant::now() < deadline,
            "the ten never were in flight together"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();
    let (status, headers, body) = ping(key.clone()).await;
    assert!(t.elapsed() < Duration::from_millis(1500), "refused at once");
    assert_eq!(status, 429, "{body}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));
    assert_eq!(body["title"], "Too Many Requests");
    assert_eq!(body["status"], 429);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("10 simultaneous connections"));
    assert!(body["type"].is_string() && body["instance"].is_string());
    assert!(headers.get("retry-after").is_none());
    let other = tokio::spawn(ping("another-key-us2".into()));

    for t in ten {
        assert_eq!(t.await.unwrap().0, 200);
    }
    assert_eq!(
        other.await.unwrap().0,
        200,
        "another key has slots of its own"
    );
    admin(Method::PUT, "/faults", json!({})).await.unwrap();
    assert_eq!(ping(key.clone()).await.0, 200, "slots were given back");

    let c = counters().await;
    assert_eq!(
        c["by_key"][&fp],
        json!({"key_hint": "…-us1", "max_in_flight": 10, "rejected_concurrency": 1}),
        "{c}"
    );
    assert_eq!(
        c["by_key"][key_fingerprint("another-key-us2")]["max_in_flight"],
        1
    );
    assert!(!c.to_string().contains(&key), "counters never show a key");
    h.sandbox.shutdown().await;
}
