//! GoFundMe Pro (Classy) webhooks, local side: `classy-sync org webhook` stores the signing
//! secret (from the environment only, never printed) and `classy-sync run --listen` receives
//! Svix-signed webhooks next to the scheduler.

use classy_sandbox::{RunningSandbox, SandboxConfig};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");
/// The Svix test vector's secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn cli(data: &Path, sandbox: &RunningSandbox) -> Command {
    let mut c = Command::new(BIN);
    c.env("CLASSY_SYNC_DATA_DIR", data)
        .env("CLASSY_API_BASE_URL", sandbox.api_base_url())
        .env("CLASSY_AUTH_URL", sandbox.auth_url())
        .env("CLASSY_RATE_LIMIT_PER_MINUTE", "0")
        .env("CLASSY_RETRY_BASE_MS", "5")
        .env("CLASSY_SYNC_ALLOW_DEV_URLS", "1")
        .env_remove("CLASSY_CLIENT_SECRET")
        .env_remove("CLASSY_WEBHOOK_SECRET")
        .stdin(Stdio::null());
    c
}

fn all(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", all(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Onboards the sandbox's first organization; returns its id.
fn onboard(data: &Path, sandbox: &RunningSandbox) -> u64 {
    let app = &sandbox.apps()[0];
    let org = app.organizations[0] as u64;
    ok(cli(data, sandbox)
        .args(["org", "add", &org.to_string(), "--name", "Test Org"])
        .args(["--client-id", &app.client_id])
        .env("CLASSY_CLIENT_SECRET", &app.client_secret)
        .output()
        .unwrap());
    org
}

fn stored_secrets(data: &Path) -> String {
    std::fs::read_to_string(data.join("secrets.json")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_webhook_sets_the_secret_from_the_environment_and_show_never_prints_it() {
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs: 1,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let org = onboard(dir.path(), &sandbox);
    let o = org.to_string();

    // Not set yet: --show says so and prints the path to paste into GoFundMe Pro.
    let shown = ok(cli(dir.path(), &sandbox)
        .args(["org", "webhook", &o, "--show"])
        .output()
        .unwrap());
    assert!(
        shown.contains(&format!("/webhooks/classy/{org}")),
        "{shown}"
    );
    assert!(shown.contains("signing secret: not set"), "{shown}");

    // No secret in the environment and no terminal: refused, nothing written.
    let before = stored_secrets(dir.path());
    let out = cli(dir.path(), &sandbox)
        .args(["org", "webhook", &o])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(all(&out).contains("CLASSY_WEBHOOK_SECRET"), "{}", all(&out));

    // A value that is not whsec_<base64>: refused naming the field, never echoed, nothing written.
    for bad in [
        "not-a-secret-value",
        "whsec_%%%%notbase64%%%%%%%%%%%%%%%%%",
        "whsec_c2hvcnQ=",
    ] {
        let out = cli(dir.path(), &sandbox)
            .args(["org", "webhook", &o])
            .env("CLASSY_WEBHOOK_SECRET", bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} accepted");
        let text = all(&out);
        assert!(text.contains("CLASSY_WEBHOOK_SECRET"), "{text}");
        assert!(!text.contains(bad), "the value is echoed: {text}");
    }
    assert_eq!(
        stored_secrets(dir.path()),
        before,
        "a refused value was written"
    );

    // An unknown organization: a clear error, nothing written.
    let out = cli(dir.path(), &sandbox)
        .args(["org", "webhook", "999999"])
        .env("CLASSY_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(all(&out).contains("999999"), "{}", all(&out));
    let out = cli(dir.path(), &sandbox)
        .args(["org", "webhook", "999999", "--show"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(stored_secrets(dir.path()), before);

    // Set: stored under classy-sync/<org>/webhook, never printed.
    let out = cli(dir.path(), &sandbox)
        .args(["org", "webhook", &o])
        .env("CLASSY_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    let text = all(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains(&SECRET[6..]),
        "the secret is printed: {text}"
    );
    let secrets = stored_secrets(dir.path());
    assert!(
        secrets.contains(&format!("classy-sync/{org}/webhook")),
        "not stored"
    );
    assert!(secrets.contains(SECRET), "not stored");

    let out = cli(dir.path(), &sandbox)
        .args([
            "org",
            "webhook",
            &o,
            "--show",
            "--url",
            "https://hooks.example.org/",
        ])
        .output()
        .unwrap();
    let text = all(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("https://hooks.example.org/webhooks/classy/{org}")),
        "{text}"
    );
    assert!(text.contains("signing secret: set"), "{text}");
    assert!(
        !text.contains(&SECRET[6..]),
        "the secret is printed: {text}"
    );
    assert!(!text.contains("disabled"), "{text}");
    // A disabled organization: --show says its deliveries are refused.
    ok(cli(dir.path(), &sandbox)
        .args(["org", "disable", &o])
        .output()
        .unwrap());
    let shown = ok(cli(dir.path(), &sandbox)
        .args(["org", "webhook", &o, "--show"])
        .output()
        .unwrap());
    assert!(
        shown.contains("disabled: deliveries are refused (404)"),
        "{shown}"
    );
}

/// Signs like Svix: `v1,` + base64(HMAC-SHA256(base64-decoded part of whsec_, "id.ts.body")).
fn svix_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[test]
fn the_test_signer_matches_the_svix_test_vector() {
    assert_eq!(
        svix_signature(
            SECRET,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// POSTs `body` to the receiver with the given Svix headers; returns the status and the
/// time the receiver took to answer.
async fn deliver(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, std::time::Duration) {
    let mut req = http.post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let t0 = std::time::Instant::now();
    let r = req.body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    (status, t0.elapsed())
}

fn signed(secret: &str, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let ts = now_secs();
    vec![
        ("svix-id", id.to_string()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", svix_signature(secret, id, ts, body)),
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The stored supporter `id` of `org`, as `export` writes it.
fn stored_supporter(
    data: &Path,
    sandbox: &RunningSandbox,
    org: u64,
    id: u64,
) -> Option<serde_json::Value> {
    let out = ok(cli(data, sandbox)
        .args(["export", &org.to_string(), "--entity", "supporters"])
        .output()
        .unwrap());
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["id"].as_u64() == Some(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_listen_receives_signed_webhooks_and_the_change_reaches_the_store() {
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs: 1,
        supporters: 200,
        transactions: 300,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let org = onboard(data, &sandbox);
    ok(cli(data, &sandbox)
        .args(["org", "webhook", &org.to_string()])
        .env("CLASSY_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap());
    // Everything synced once: from now on nothing is due for a long while, so only a webhook
    // brings a change in quickly.
    ok(cli(data, &sandbox)
        .args(["sync", &org.to_string()])
        .output()
        .unwrap());
    let http = reqwest::Client::new();
    let admin = format!("{}/admin/orgs/{org}/supporters", sandbox.base_url());
    let supporters: Vec<serde_json::Value> =
        http.get(&admin).send().await.unwrap().json().await.unwrap();
    let id = supporters[0]["id"].as_u64().unwrap();
    let original = stored_supporter(data, &sandbox, org, id).unwrap()["first_name"].clone();

    let port = free_port();
    let log = std::fs::File::create(data.join("run.log")).unwrap();
    let mut child = cli(data, &sandbox)
        .args([
            "run",
            "--tick",
            "3600",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/webhooks/classy/{org}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiver did not start: {}",
            std::fs::read_to_string(data.join("run.log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The supporter changes in Classy.
    let r = http
        .patch(format!("{admin}/{id}"))
        .json(&serde_json::json!({"first_name": "Webhooked"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let event = serde_json::to_vec(&serde_json::json!({
        "type": "supporter.updated",
        "data": {"id": id, "note": "body-marker-7f3a"}
    }))
    .unwrap();

    // Refusals, none of which may start a sync.
    let wrong = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY";
    let (s, _) = deliver(
        &http,
        &url,
        &signed(wrong, "msg_bad", &event),
        event.clone(),
    )
    .await;
    assert_eq!(s, 401, "bad signature");
    let (s, _) = deliver(&http, &url, &[], event.clone()).await;
    assert_eq!(s, 401, "no signature");
    let stale_ts = now_secs() - 600;
    let stale = vec![
        ("svix-id", "msg_stale".to_string()),
        ("svix-timestamp", stale_ts.to_string()),
        (
            "svix-signature",
            svix_signature(SECRET, "msg_stale", stale_ts, &event),
        ),
    ];
    let (s, _) = deliver(&http, &url, &stale, event.clone()).await;
    assert_eq!(s, 401, "stale timestamp");
    for unknown in ["999999", "not-an-org"] {
        let (s, _) = deliver(
            &http,
            &format!("{base}/webhooks/classy/{unknown}"),
            &signed(SECRET, "msg_unknown", &event),
            event.clone(),
        )
        .await;
        assert_eq!(s, 404, "unknown organization {unknown}");
    }
    let big = vec![b' '; 300 * 1024];
    let (s, _) = deliver(&http, &url, &signed(SECRET, "msg_big", &big), big.clone()).await;
    assert_eq!(s, 413, "oversized");
    let junk = b"this is not json".to_vec();
    let (s, _) = deliver(
        &http,
        &url,
        &signed(SECRET, "msg_junk", &junk),
        junk.clone(),
    )
    .await;
    assert_eq!(s, 400, "signed but not JSON");
    // Longer than the debounce: a refused delivery enqueued nothing, so nothing synced.
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    assert_eq!(
        stored_supporter(data, &sandbox, org, id).unwrap()["first_name"],
        original,
        "a refused delivery started a sync"
    );

    // The signed event: accepted fast, and the change reaches the store within seconds.
    let sent = std::time::Instant::now();
    let (s, took) = deliver(
        &http,
        &url,
        &signed(SECRET, "msg_ok_1", &event),
        event.clone(),
    )
    .await;
    assert!((200..300).contains(&s), "signed event answered {s}");
    let mut stored_after = None;
    while sent.elapsed() < std::time::Duration::from_secs(15) {
        let row = stored_supporter(data, &sandbox, org, id).unwrap();
        if row["first_name"] == "Webhooked" {
            stored_after = Some(sent.elapsed());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let stored_after = stored_after.unwrap_or_else(|| {
        panic!(
            "the change did not reach the store: {}",
            std::fs::read_to_string(data.join("run.log")).unwrap_or_default()
        )
    });

    // The receiver's own latency: 200 more deliveries (duplicates of one id among them).
    let mut lat = vec![took];
    for i in 0..200 {
        let id = if i % 10 == 0 {
            "msg_dup".to_string()
        } else {
            format!("msg_{i}")
        };
        let (s, t) = deliver(&http, &url, &signed(SECRET, &id, &event), event.clone()).await;
        assert!((200..300).contains(&s), "delivery {i} answered {s}");
        lat.push(t);
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).min(lat.len()) - 1];
    eprintln!(
        "webhook receiver: change stored {:.2} s after the delivery; latency over {} deliveries p50 {:?} p99 {:?} max {:?}",
        stored_after.as_secs_f64(),
        lat.len(),
        p(0.50),
        p(0.99),
        lat[lat.len() - 1]
    );
    assert!(
        p(0.99) < std::time::Duration::from_millis(250),
        "p99 {:?}",
        p(0.99)
    );

    // The sandbox's own Svix-signed webhooks (as GoFundMe Pro sends them) pass the same
    // verifier: register the endpoint there, change a supporter there, and the change arrives.
    let other = supporters[1]["id"].as_u64().unwrap();
    let r = http
        .put(format!("{}/admin/orgs/{org}/webhook", sandbox.base_url()))
        .json(&serde_json::json!({"url": url, "secret": SECRET}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let changed_at = std::time::Instant::now();
    let r = http
        .patch(format!("{admin}/{other}"))
        .json(&serde_json::json!({"first_name": "FromSandbox"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let mut arrived = false;
    while changed_at.elapsed() < std::time::Duration::from_secs(20) {
        if stored_supporter(data, &sandbox, org, other).unwrap()["first_name"] == "FromSandbox" {
            arrived = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let counters: serde_json::Value = http
        .get(format!("{}/admin/webhooks", sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        arrived,
        "the sandbox's webhook did not bring the change: {counters} {}",
        std::fs::read_to_string(data.join("run.log")).unwrap_or_default()
    );
    assert!(
        counters["counters"]["sent"].as_u64().unwrap() >= 1,
        "{counters}"
    );
    assert_eq!(counters["counters"]["failed"], 0, "{counters}");
    eprintln!(
        "sandbox webhook: change stored {:.2} s after the sandbox change",
        changed_at.elapsed().as_secs_f64()
    );

    // Graceful shutdown with the scheduler.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let term_sent = std::time::Instant::now();
    let deadline = term_sent + std::time::Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not stop: {}",
            std::fs::read_to_string(data.join("run.log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    eprintln!("run stopped {:?} after SIGTERM", term_sent.elapsed());
    let log = std::fs::read_to_string(data.join("run.log")).unwrap_or_default();
    assert!(status.success(), "{log}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // Neither the body nor the secret is logged.
    assert!(!log.contains(&SECRET[6..]), "{log}");
    assert!(!log.contains("body-marker-7f3a"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_webhook_with_the_aws_backend_stores_the_secret_in_secrets_manager() {
    let stack = classy_sync_tests::cli::AwsStack::start().await;
    let moto = &stack.moto;
    let aws = |args: &[&str]| {
        stack.command(
            classy_sync_tests::cli::local(BIN, Path::new("unused")),
            args,
        )
    };
    ok(aws(&[
        "org",
        "add",
        "4242",
        "--name",
        "A",
        "--client-id",
        "c1",
        "--no-verify",
    ])
    .env("CLASSY_CLIENT_SECRET", "client-secret-value")
    .output()
    .unwrap());
    let shown = ok(aws(&["org", "webhook", "4242", "--show"]).output().unwrap());
    assert!(shown.contains("/webhooks/classy/4242"), "{shown}");
    assert!(shown.contains("signing secret: not set"), "{shown}");
    let out = aws(&["org", "webhook", "4242"])
        .env("CLASSY_WEBHOOK_SECRET", "whsec_???")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(all(&out).contains("CLASSY_WEBHOOK_SECRET"), "{}", all(&out));
    let out = aws(&["org", "webhook", "4242"])
        .env("CLASSY_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", all(&out));
    assert!(!all(&out).contains(&SECRET[6..]));
    let out = aws(&["org", "webhook", "4242", "--show"]).output().unwrap();
    assert!(all(&out).contains("signing secret: set"), "{}", all(&out));
    assert!(!all(&out).contains(&SECRET[6..]));
    let sm = moto.secrets_manager().await;
    let listed = sm.list_secrets().send().await.unwrap();
    let name = listed
        .secret_list()
        .iter()
        .filter_map(|s| s.name())
        .find(|n| n.ends_with("classy-sync/4242/webhook"))
        .expect("the webhook secret in Secrets Manager")
        .to_string();
    let value = sm.get_secret_value().secret_id(&name).send().await.unwrap();
    assert_eq!(value.secret_string(), Some(SECRET));
    let out = aws(&["org", "webhook", "777"])
        .env("CLASSY_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success(), "unknown organization accepted");
}
