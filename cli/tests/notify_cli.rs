//! `classy-sync notify ...` end to end: channels added from the environment (never argv) and
//! checked by the SSRF guard, test messages over real sockets (a signed webhook to a local
//! receiver, email to a real SMTP server), delivery records, and retries.

use classy_sync_tests::smtp_sink::SmtpSink;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");
const SECRET: &str = "cli-webhook-secret-0123456789";

fn cli(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("CLASSY_SYNC_DATA_DIR", data)
        .env_remove("CLASSY_SYNC_WEBHOOK_URL")
        .env_remove("CLASSY_SYNC_WEBHOOK_SECRET")
        .env_remove("CLASSY_SYNC_SMTP_URL")
        .env_remove("CLASSY_SYNC_EMAIL_FROM")
        .env_remove("CLASSY_SYNC_NOTIFY_ALLOW")
        .env_remove("CLASSY_SYNC_BACKEND")
        // Loopback receivers over http are a development setting.
        .env("CLASSY_SYNC_ALLOW_DEV_URLS", "1")
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> (bool, String, String) {
    let out: Output = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A minimal HTTP/1.1 receiver on a loopback port: answers 200 `ok` and keeps each request's
/// headers and body.
/// Requests seen: the head (request line and headers) and the body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

fn receiver() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/hooks/very-secret-path",
        listener.local_addr().unwrap()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            keep.lock().unwrap().push((head, body));
            let mut s = stream;
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, seen)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn webhook_channel_from_the_environment_sends_a_signed_test_message() {
    let data = tempfile::tempdir().unwrap();
    let (url, seen) = receiver();

    // Without the URL in the environment (and no terminal) it says where to put it.
    let (ok, _, err) = run(cli(data.path()).args(["notify", "channel", "add", "hook", "webhook"]));
    assert!(!ok);
    assert!(err.contains("CLASSY_SYNC_WEBHOOK_URL"), "{err}");

    // http to loopback needs the development flag.
    let (ok, _, err) = run(cli(data.path())
        .args(["notify", "channel", "add", "hook", "webhook"])
        .env("CLASSY_SYNC_WEBHOOK_URL", &url)
        .env("CLASSY_SYNC_WEBHOOK_SECRET", SECRET));
    assert!(!ok);
    assert!(err.contains("URL refused"), "{err}");
    assert!(!err.contains("very-secret-path"), "{err}");

    // ... and the development flag needs the deployment's switch.
    let (ok, _, err) = run(cli(data.path())
        .args([
            "notify",
            "channel",
            "add",
            "hook",
            "webhook",
            "--allow-http-loopback",
        ])
        .env_remove("CLASSY_SYNC_ALLOW_DEV_URLS")
        .env("CLASSY_SYNC_WEBHOOK_URL", &url)
        .env("CLASSY_SYNC_WEBHOOK_SECRET", SECRET));
    assert!(!ok);
    assert!(
        err.contains("allow_http_loopback") && err.contains("CLASSY_SYNC_ALLOW_DEV_URLS"),
        "{err}"
    );

    let (ok, out, err) = run(cli(data.path())
        .args([
            "notify",
            "channel",
            "add",
            "hook",
            "webhook",
            "--allow-http-loopback",
        ])
        .env("CLASSY_SYNC_WEBHOOK_URL", &url)
        .env("CLASSY_SYNC_WEBHOOK_SECRET", SECRET));
    assert!(ok, "{out}{err}");

    let (ok, out, err) = run(cli(data.path()).args(["notify", "channel", "list"]));
    assert!(ok);
    assert!(out.contains("hook") && out.contains("webhook"), "{out}");
    assert!(!out.contains("very-secret-path") && !err.contains("very-secret-path"));

    let (ok, out, err) = run(cli(data.path()).args(["notify", "test", "hook", "--json"]));
    assert!(ok, "{out}{err}");
    let reports: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0]["status"], "sent");
    for text in [&out, &err] {
        assert!(!text.contains(SECRET) && !text.contains("very-secret-path"));
    }

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (head, body) = &seen[0];
    let sig = header(head, "x-classy-sync-signature").expect("signature header");
    let now = chrono::Utc::now().timestamp();
    classy_sync_core::signing::verify(SECRET.as_bytes(), sig, body, now, 300).unwrap();
    let json: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["kind"], "test");
    assert_eq!(
        header(head, "x-classy-sync-delivery"),
        json["id"].as_str(),
        "the delivery header carries the message id"
    );

    // Remove it: gone from the list, and its secret with it.
    let (ok, _, _) = run(cli(data.path()).args(["notify", "channel", "remove", "hook"]));
    assert!(ok);
    let (_, out, _) = run(cli(data.path()).args(["notify", "channel", "list", "--json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([])
    );
    let secrets = std::fs::read_to_string(data.path().join("secrets.json")).unwrap_or_default();
    assert!(!secrets.contains("very-secret-path"));
}

#[test]
fn metadata_and_private_urls_are_refused_when_adding() {
    let data = tempfile::tempdir().unwrap();
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://localhost/hook",
        "https://[::ffff:127.0.0.1]/hook",
    ] {
        let (ok, _, err) = run(cli(data.path())
            .args(["notify", "channel", "add", "s", "slack"])
            .env("CLASSY_SYNC_WEBHOOK_URL", url));
        assert!(!ok, "{url} accepted");
        assert!(err.contains("refused"), "{url}: {err}");
    }
    let (_, out, _) = run(cli(data.path()).args(["notify", "channel", "list", "--json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn email_fails_without_smtp_then_retry_sends_it_through_a_real_smtp_server() {
    let data = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(cli(data.path()).args([
        "notify",
        "channel",
        "add",
        "mail",
        "email",
        "--to",
        "ops@example.org,not-an-address",
    ]));
    assert!(!ok);
    assert!(err.contains("not-an-address"), "{err}");

    let (ok, out, err) = run(cli(data.path()).args([
        "notify",
        "channel",
        "add",
        "mail",
        "email",
        "--to",
        "ops@example.org,dev@example.org",
    ]));
    assert!(ok, "{out}{err}");

    // No SMTP configured: the test message fails and is recorded as failed.
    let (ok, out, _) = run(cli(data.path())
        .args(["notify", "test", "mail"])
        .env("CLASSY_SYNC_EMAIL_FROM", "alerts@example.org"));
    assert!(!ok, "{out}");
    assert!(out.contains("failed"), "{out}");
    let (ok, out, _) =
        run(cli(data.path()).args(["notify", "list", "--status", "failed", "--json"]));
    assert!(ok);
    let failed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert!(failed[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("CLASSY_SYNC_SMTP_URL"));

    // A permanent failure waits for `retry --now`; with SMTP configured it is sent.
    let (ok, out, _) = run(cli(data.path()).args(["notify", "retry"]));
    assert!(ok);
    assert!(out.contains("no deliveries due"), "{out}");
    let sink = SmtpSink::start(0);
    let (ok, out, err) = run(cli(data.path())
        .args(["notify", "retry", "--now", "--json"])
        .env("CLASSY_SYNC_SMTP_URL", sink.url())
        .env("CLASSY_SYNC_EMAIL_FROM", "alerts@example.org"));
    assert!(ok, "{out}{err}");
    let reports: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0]["status"], "sent");
    assert_eq!(reports[0]["attempts"], 2);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let got = rt.block_on(sink.wait_for(1, Duration::from_secs(5)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["subject"], "classy-sync test notification");
    assert_eq!(
        got[0]["rcpt_tos"],
        serde_json::json!(["ops@example.org", "dev@example.org"])
    );
    assert!(got[0]["parts"]["text/html"].is_string());
    assert!(got[0]["parts"]["text/plain"].is_string());

    let (_, out, _) = run(cli(data.path()).args(["notify", "list", "--status", "sent"]));
    assert!(out.contains("mail"), "{out}");
}

#[test]
fn console_channel_prints_the_message() {
    let data = tempfile::tempdir().unwrap();
    let (ok, _, _) = run(cli(data.path()).args(["notify", "channel", "add", "log", "console"]));
    assert!(ok);
    let (ok, out, err) = run(cli(data.path()).args(["notify", "test", "log"]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("sent"));
    let line = err
        .lines()
        .find(|l| l.contains("\"notification\""))
        .expect("a JSON line on stderr");
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["subject"], "classy-sync test notification");
    let (ok, _, err) = run(cli(data.path()).args(["notify", "test", "nope"]));
    assert!(!ok);
    assert!(err.contains("nope"), "{err}");
}
