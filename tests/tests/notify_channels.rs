//! Notifications end to end over real sockets: email through a real SMTP server (aiosmtpd) and
//! through SES v2 on moto; Slack and signed webhooks through local HTTP receivers that check
//! the payload and the signature and answer 429 first; delivery records (pending → sent,
//! failed → retried → sent, never twice); the SSRF guard.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use classy_sync_aws::SesMailer;
use classy_sync_core::ports::{
    Clock, DeliveryStatus, ManualClock, Message, MessageKind, Notifier, NotifyError, SecretStore,
    Severity, Store,
};
use classy_sync_core::signing;
use classy_sync_http::url_guard::{UrlError, UrlPolicy};
use classy_sync_local::secrets_file::SecretsFile;
use classy_sync_local::sqlite_store::SqliteStore;
use classy_sync_local::SmtpMailer;
use classy_sync_notify::channel::{self, ChannelConfig, ChannelKind, ChannelSecrets};
use classy_sync_notify::delivery;
use classy_sync_notify::{NotificationService, NotifySettings};
use classy_sync_tests::moto::MotoServer;
use classy_sync_tests::smtp_sink::SmtpSink;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WEBHOOK_SECRET: &str = "whsec_0123456789abcdef";

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<ManualClock>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    Env {
        store: Arc::new(SqliteStore::open(dir.path().join("store.db")).unwrap()),
        secrets: Arc::new(SecretsFile::open(dir.path().join("secrets.json")).unwrap()),
        clock: Arc::new(ManualClock::new(Utc::now())),
        _dir: dir,
    }
}

impl Env {
    /// The service with the deployment's development switch on: the receivers here are
    /// http on loopback (tests/tests/dev_urls_and_smtp_tls.rs covers the switch off).
    fn service(&self, mut settings: NotifySettings) -> NotificationService {
        settings.allow_dev_urls = true;
        let clock: Arc<dyn Clock> = self.clock.clone();
        NotificationService::new(self.store.clone(), self.secrets.clone(), clock, settings)
    }

    async fn add(&self, svc: &NotificationService, cfg: ChannelConfig, s: ChannelSecrets) {
        svc.add_channel(&cfg, &s).await.unwrap();
    }
}

fn message(id: &str) -> Message {
    Message {
        id: id.into(),
        kind: MessageKind::AlertFiring,
        severity: Severity::High,
        org_id: Some("4021".into()),
        subject: "Sync failing for <Org & Co>".into(),
        text: "Transactions have failed 3 times.\nLast error: HTTP 500".into(),
        fields: vec![
            ("entity".into(), "transactions".into()),
            ("failures".into(), "3".into()),
        ],
        html: None,
        slack_blocks: None,
    }
}

fn loopback_channel(name: &str, kind: ChannelKind) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        kind,
        to: vec![],
        allow_http_loopback: true,
    }
}

// ---------- local HTTP receivers ----------

#[derive(Default)]
struct Receiver {
    hits: AtomicUsize,
    /// Answer the first N requests with 429 and this Retry-After.
    rate_limit_first: usize,
    retry_after_secs: u64,
    /// Answer the next N requests (after the 429s) with 500.
    fail_next: AtomicUsize,
    /// Answer every request with this error (Slack's plain-text errors).
    fixed_error: Option<(u16, &'static str)>,
    /// Accepted requests: delivery header and body.
    accepted: Mutex<Vec<(Option<String>, Value)>>,
    /// Problems the receiver found in a request (must stay empty).
    problems: Mutex<Vec<String>>,
    /// Verify the webhook signature with this secret.
    secret: Option<&'static str>,
    /// The receiver's clock for the signature's freshness (default: the system's).
    clock: Option<Arc<ManualClock>>,
}

fn check_slack(p: &Value) -> Result<(), String> {
    let blocks = p["blocks"].as_array().ok_or("no blocks")?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Err(format!("{} blocks", blocks.len()));
    }
    if p["text"].as_str().is_none_or(str::is_empty) {
        return Err("no fallback text".into());
    }
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            if t.chars().count() > 3000 {
                return Err("section text over 3000".into());
            }
        }
        if let Some(f) = b["fields"].as_array() {
            if f.len() > 10 {
                return Err(format!("{} fields", f.len()));
            }
        }
    }
    Ok(())
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let n = r.hits.fetch_add(1, Ordering::SeqCst);
    if n < r.rate_limit_first {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", r.retry_after_secs.to_string())],
            "rate_limited",
        )
            .into_response();
    }
    if let Some((code, text)) = r.fixed_error {
        return (StatusCode::from_u16(code).unwrap(), text).into_response();
    }
    if r.fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
    {
        return (StatusCode::INTERNAL_SERVER_ERROR, "rollup_error").into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
    };
    if let Some(secret) = r.secret {
        let sig = header(signing::SIGNATURE_HEADER).unwrap_or_default();
        if let Err(e) = signing::verify(
            secret.as_bytes(),
            &sig,
            &body,
            r.clock
                .as_ref()
                .map_or(Utc::now().timestamp(), |c| c.unix()),
            signing::DEFAULT_TOLERANCE_SECS,
        ) {
            r.problems.lock().unwrap().push(format!("signature: {e}"));
            return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
        }
    } else if let Err(e) = check_slack(&value) {
        r.problems.lock().unwrap().push(e);
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    }
    r.accepted
        .lock()
        .unwrap()
        .push((header(signing::DELIVERY_HEADER), value));
    (StatusCode::OK, "ok").into_response()
}

/// Serves `r` on a loopback port; returns the URL of its hook path.
async fn serve(r: Arc<Receiver>) -> String {
    let app = Router::new()
        .route("/services/T000/B000/XXXX", post(receive))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/services/T000/B000/XXXX")
}

fn url_secrets(url: &str, signing_secret: Option<&str>) -> ChannelSecrets {
    ChannelSecrets {
        url: Some(url.into()),
        signing_secret: signing_secret.map(str::to_owned),
        smtp_password: None,
    }
}

// ---------- email ----------

/// Email from alerts@example.org, through the SMTP server when given (else SES, added by the
/// caller).
fn email_settings(smtp_url: Option<String>) -> NotifySettings {
    let settings = NotifySettings::from_lookup(|k| match k {
        "CLASSY_SYNC_EMAIL_FROM" => Some("alerts@example.org".into()),
        _ => None,
    })
    .unwrap();
    match smtp_url {
        Some(url) => settings.with_email(Arc::new(SmtpMailer::parse(&url).unwrap())),
        None => settings,
    }
}

fn email_channel(name: &str, to: &[&str]) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        kind: ChannelKind::Email,
        to: to.iter().map(|t| t.to_string()).collect(),
        allow_http_loopback: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_through_a_real_smtp_server_with_text_and_html_parts() {
    let sink = SmtpSink::start(0);
    let e = env();
    let settings = email_settings(Some(sink.url()));
    let svc = e.service(settings);
    let cfg = email_channel("ops-mail", &["ops@example.org", "cto@example.org"]);
    e.add(&svc, cfg, ChannelSecrets::default()).await;

    let reports = svc
        .notify(&message("m-email-1"), &["ops-mail".into()])
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].status, DeliveryStatus::Sent, "{reports:?}");
    assert_eq!(reports[0].attempts, 1);

    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m["subject"], "Sync failing for <Org & Co>");
    assert_eq!(m["mail_from"], "alerts@example.org");
    assert_eq!(m["rcpt_tos"], json!(["ops@example.org", "cto@example.org"]));
    assert_eq!(m["content_type"], "multipart/alternative");
    let text = m["parts"]["text/plain"].as_str().expect("text part");
    let html = m["parts"]["text/html"].as_str().expect("html part");
    assert!(text.contains("Transactions have failed 3 times."));
    assert!(text.contains("entity: transactions"));
    assert!(
        html.contains("<h2>Sync failing for &lt;Org &amp; Co&gt;</h2>"),
        "{html}"
    );
    assert!(html.contains("<td>transactions</td>"));

    // The same message id again: recorded as sent, not sent twice.
    let again = svc
        .notify(&message("m-email-1"), &["ops-mail".into()])
        .await
        .unwrap();
    assert_eq!(again[0].status, DeliveryStatus::Sent);
    assert_eq!(again[0].attempts, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1);

    // A message with its own HTML sends that HTML.
    let mut report = message("m-email-2");
    report.kind = MessageKind::Report;
    report.html = Some("<html><body><h1>Weekly report</h1></body></html>".into());
    svc.notify(&report, &["ops-mail".into()]).await.unwrap();
    let got = sink.wait_for(2, Duration::from_secs(5)).await;
    assert!(got.iter().any(|m| m["parts"]["text/html"]
        .as_str()
        .unwrap()
        .contains("<h1>Weekly report</h1>")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_smtp_failure_is_retried_after_the_backoff_and_sent_once() {
    let sink = SmtpSink::start(1);
    let e = env();
    let settings = email_settings(Some(sink.url()));
    let svc = e.service(settings);
    let cfg = email_channel("mail", &["ops@example.org"]);
    e.add(&svc, cfg, ChannelSecrets::default()).await;

    let r = svc
        .notify(&message("m-retry"), &["mail".into()])
        .await
        .unwrap();
    assert_eq!(r[0].status, DeliveryStatus::Failed);
    assert!(r[0].error.as_deref().unwrap().contains("451"), "{r:?}");
    let (rec, _) = delivery::load(e.store.as_ref(), "mail", "m-retry")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.next_attempt_at, Some(e.clock.unix() + 60));

    // Not due yet: nothing is retried.
    e.clock.advance(chrono::Duration::seconds(30));
    assert!(svc.retry_due(false).await.unwrap().is_empty());
    // Due after a minute.
    e.clock.advance(chrono::Duration::seconds(31));
    let r = svc.retry_due(false).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, DeliveryStatus::Sent);
    assert_eq!(r[0].attempts, 2);
    assert!(svc.retry_due(true).await.unwrap().is_empty());
    assert_eq!(sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(
        svc.deliveries(Some(DeliveryStatus::Sent))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_through_ses_v2_on_moto() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    ses.create_email_identity()
        .email_identity("alerts@example.org")
        .send()
        .await
        .unwrap();

    let e = env();
    let settings = email_settings(None).with_email(Arc::new(SesMailer::new(&sdk)));
    let svc = e.service(settings);
    let cfg = email_channel("ses", &["board@example.org"]);
    e.add(&svc, cfg, ChannelSecrets::default()).await;
    let r = svc
        .notify(&message("m-ses"), &["ses".into()])
        .await
        .unwrap();
    assert_eq!(r[0].status, DeliveryStatus::Sent, "{r:?}");

    // Read what moto stored: its model data lists the messages SES accepted. SES v2 Raw
    // content: the notifier's whole MIME message, kept as sent.
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = data["ses"]["RawMessage"]
        .as_array()
        .expect("ses raw messages");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let m = &sent[0];
    assert_eq!(m["source"], "alerts@example.org");
    // moto adds the message's To: header to the Destination given: the same address.
    let to: std::collections::BTreeSet<&str> = m["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(to, ["board@example.org"].into());
    let raw = m["raw_data"].as_str().unwrap();
    assert!(
        raw.contains("Subject: Sync failing for <Org & Co>"),
        "{raw}"
    );
    assert!(raw.contains("multipart/alternative"), "{raw}");
    // The HTML part is quoted-printable: its soft line breaks removed, the name is escaped.
    let unfolded = raw.replace("=\r\n", "");
    assert!(unfolded.contains("&lt;Org &amp; Co&gt;"), "{raw}");

    // An unverified sender is rejected by SES: a permanent failure, not retried.
    let settings = NotifySettings::from_lookup(|k| match k {
        "CLASSY_SYNC_EMAIL_FROM" => Some("nobody@unverified.example".into()),
        _ => None,
    })
    .unwrap()
    .with_email(Arc::new(SesMailer::new(&sdk)));
    let svc = e.service(settings);
    let r = svc
        .notify(&message("m-ses-2"), &["ses".into()])
        .await
        .unwrap();
    assert_eq!(r[0].status, DeliveryStatus::Failed, "{r:?}");
    assert!(r[0].error.as_deref().unwrap().contains("SES"), "{r:?}");
    let (rec, _) = delivery::load(e.store.as_ref(), "ses", "m-ses-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.next_attempt_at, None, "rejections are not retried");
}

// ---------- Slack ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_block_kit_within_limits_after_honouring_a_429() {
    let r = Arc::new(Receiver {
        rate_limit_first: 1,
        retry_after_secs: 1,
        ..Receiver::default()
    });
    let url = serve(r.clone()).await;
    let e = env();
    let svc = e.service(NotifySettings::default());
    e.add(
        &svc,
        loopback_channel("slack", ChannelKind::Slack),
        url_secrets(&url, None),
    )
    .await;

    // A big message: long text, 25 fields; and a report with 70 ready-made blocks.
    let mut big = message("m-slack-1");
    big.text = "long ".repeat(2000);
    big.fields = (0..25).map(|i| (format!("f{i}"), "v".repeat(50))).collect();
    let started = std::time::Instant::now();
    let rep = svc.notify(&big, &["slack".into()]).await.unwrap();
    assert_eq!(rep[0].status, DeliveryStatus::Sent, "{rep:?}");
    assert_eq!(
        rep[0].attempts, 1,
        "the 429 was waited out within the attempt"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(r.hits.load(Ordering::SeqCst), 2);

    let mut report = message("m-slack-2");
    report.kind = MessageKind::Report;
    report.slack_blocks = Some(Value::Array(
        (0..70)
            .map(|i| json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("row {i} {}", "x".repeat(4000))}}))
            .collect(),
    ));
    let rep = svc.notify(&report, &["slack".into()]).await.unwrap();
    assert_eq!(rep[0].status, DeliveryStatus::Sent, "{rep:?}");

    assert!(r.problems.lock().unwrap().is_empty(), "{:?}", r.problems);
    let accepted = r.accepted.lock().unwrap();
    assert_eq!(accepted.len(), 2);
    let first = &accepted[0].1;
    assert_eq!(first["blocks"][0]["type"], "header");
    let field_sections: Vec<&Value> = first["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b.get("fields").is_some())
        .collect();
    assert_eq!(
        field_sections.len(),
        3,
        "25 fields in sections of at most 10"
    );
    let second = &accepted[1].1;
    assert_eq!(second["blocks"].as_array().unwrap().len(), 50);
    assert!(second["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .starts_with("row 0 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_permanent_errors_fail_without_retry_and_never_show_the_url() {
    let r = Arc::new(Receiver {
        fixed_error: Some((404, "channel_not_found")),
        ..Receiver::default()
    });
    let url = serve(r.clone()).await;
    let e = env();
    let svc = e.service(NotifySettings::default());
    e.add(
        &svc,
        loopback_channel("slack", ChannelKind::Slack),
        url_secrets(&url, None),
    )
    .await;
    let rep = svc
        .notify(&message("m-404"), &["slack".into()])
        .await
        .unwrap();
    assert_eq!(rep[0].status, DeliveryStatus::Failed);
    let err = rep[0].error.clone().unwrap();
    assert!(
        err.contains("404") && err.contains("channel_not_found"),
        "{err}"
    );
    assert!(!err.contains("/services/"), "the URL is a secret: {err}");
    e.clock.advance(chrono::Duration::hours(3));
    assert!(svc.retry_due(false).await.unwrap().is_empty());
    assert_eq!(r.hits.load(Ordering::SeqCst), 1);
}

// ---------- webhooks ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_signed_and_failed_deliveries_are_retried_until_sent() {
    let r = Arc::new(Receiver {
        secret: Some(WEBHOOK_SECRET),
        fail_next: AtomicUsize::new(2),
        ..Receiver::default()
    });
    let url = serve(r.clone()).await;
    let e = env();
    let svc = e.service(NotifySettings::default());
    e.add(
        &svc,
        loopback_channel("hook", ChannelKind::Webhook),
        url_secrets(&url, Some(WEBHOOK_SECRET)),
    )
    .await;
    // A console channel alongside: one channel failing does not stop the other.
    e.add(
        &svc,
        loopback_channel("console", ChannelKind::Console),
        ChannelSecrets::default(),
    )
    .await;

    let msg = message("m-hook");
    let rep = svc
        .notify(&msg, &["hook".into(), "console".into()])
        .await
        .unwrap();
    assert_eq!(rep[0].status, DeliveryStatus::Failed);
    assert_eq!(rep[1].status, DeliveryStatus::Sent);
    let failed = svc.deliveries(Some(DeliveryStatus::Failed)).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 1);
    assert!(failed[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("HTTP 500"));

    e.clock.advance(chrono::Duration::seconds(61));
    let rep = svc.retry_due(false).await.unwrap();
    assert_eq!(rep[0].status, DeliveryStatus::Failed);
    assert_eq!(rep[0].attempts, 2);
    let (rec, _) = delivery::load(e.store.as_ref(), "hook", "m-hook")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.next_attempt_at,
        Some(e.clock.unix() + 300),
        "second step: 5 min"
    );

    // `--now` ignores the backoff.
    let rep = svc.retry_due(true).await.unwrap();
    assert_eq!(rep.len(), 1);
    assert_eq!(rep[0].status, DeliveryStatus::Sent);
    assert_eq!(rep[0].attempts, 3);

    assert!(r.problems.lock().unwrap().is_empty(), "{:?}", r.problems);
    let accepted = r.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1);
    let (delivery_id, body) = &accepted[0];
    assert_eq!(delivery_id.as_deref(), Some("m-hook"));
    assert_eq!(body["id"], "m-hook");
    assert_eq!(body["kind"], "alert_firing");
    assert_eq!(body["severity"], "high");
    assert_eq!(body["org_id"], "4021");
    assert_eq!(body["subject"], msg.subject);
    assert_eq!(body["text"], msg.text);
    assert_eq!(
        body["fields"],
        json!([{"name": "entity", "value": "transactions"}, {"name": "failures", "value": "3"}])
    );
    assert!(body["sent_at"].as_str().unwrap().ends_with('Z'));

    // Sent: never again, whether notified again or retried.
    svc.notify(&msg, &["hook".into()]).await.unwrap();
    svc.retry_due(true).await.unwrap();
    assert_eq!(r.accepted.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_a_wrong_secret_is_refused_by_the_receiver() {
    let r = Arc::new(Receiver {
        secret: Some(WEBHOOK_SECRET),
        ..Receiver::default()
    });
    let url = serve(r.clone()).await;
    let e = env();
    let svc = e.service(NotifySettings::default());
    e.add(
        &svc,
        loopback_channel("hook", ChannelKind::Webhook),
        url_secrets(&url, Some("a-different-secret-value")),
    )
    .await;
    let rep = svc
        .notify(&message("m-bad-sig"), &["hook".into()])
        .await
        .unwrap();
    assert_eq!(rep[0].status, DeliveryStatus::Failed);
    assert!(rep[0].error.as_deref().unwrap().contains("401"));
    assert_eq!(r.problems.lock().unwrap().len(), 1);
    let err = rep[0].error.clone().unwrap();
    assert!(!err.contains("a-different-secret-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_beyond_the_wait_bound_is_left_for_a_retry_after_retry_after() {
    let e = env();
    let r = Arc::new(Receiver {
        // The receiver's clock moves with the test's, so signatures made 600 s "later" are fresh.
        clock: Some(e.clock.clone()),
        secret: Some(WEBHOOK_SECRET),
        rate_limit_first: 1,
        retry_after_secs: 600,
        ..Receiver::default()
    });
    let url = serve(r.clone()).await;
    let settings = NotifySettings {
        max_429_wait: Duration::from_secs(2),
        ..NotifySettings::default()
    };
    let svc = e.service(settings);
    e.add(
        &svc,
        loopback_channel("hook", ChannelKind::Webhook),
        url_secrets(&url, Some(WEBHOOK_SECRET)),
    )
    .await;
    let started = std::time::Instant::now();
    let rep = svc
        .notify(&message("m-429"), &["hook".into()])
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not sleep 600 s"
    );
    assert_eq!(rep[0].status, DeliveryStatus::Failed);
    let (rec, _) = delivery::load(e.store.as_ref(), "hook", "m-429")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.next_attempt_at,
        Some(e.clock.unix() + 600),
        "Retry-After wins over 60 s"
    );
    e.clock.advance(chrono::Duration::seconds(599));
    assert!(svc.retry_due(false).await.unwrap().is_empty());
    e.clock.advance(chrono::Duration::seconds(1));
    let rep = svc.retry_due(false).await.unwrap();
    assert_eq!(rep[0].status, DeliveryStatus::Sent);
    assert_eq!(r.accepted.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_notifiers_send_one_message_once() {
    let r = Arc::new(Receiver {
        secret: Some(WEBHOOK_SECRET),
        ..Receiver::default()
    });
    let url = serve(r.clone()).await;
    let e = env();
    let svc = Arc::new(e.service(NotifySettings::default()));
    e.add(
        &svc,
        loopback_channel("hook", ChannelKind::Webhook),
        url_secrets(&url, Some(WEBHOOK_SECRET)),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            svc.notify(&message("m-race"), &["hook".into()])
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(r.accepted.lock().unwrap().len(), 1);
    let recs = svc.deliveries(None).await.unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].status, DeliveryStatus::Sent);
    assert_eq!(recs[0].attempts, 1);
}

#[tokio::test]
async fn an_unknown_channel_is_an_error_before_anything_is_sent() {
    let e = env();
    let svc = e.service(NotifySettings::default());
    e.add(
        &svc,
        loopback_channel("console", ChannelKind::Console),
        ChannelSecrets::default(),
    )
    .await;
    let err = svc
        .notify(&message("m-x"), &["console".into(), "nope".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::UnknownChannel(n) if n == "nope"));
    assert!(svc.deliveries(None).await.unwrap().is_empty());
}

// ---------- SSRF ----------

fn hosts_name_for_loopback() -> Option<String> {
    // A name from /etc/hosts that maps to a loopback address (other than "localhost").
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|l| {
        let mut parts = l.split('#').next()?.split_whitespace();
        let addr: std::net::IpAddr = parts.next()?.parse().ok()?;
        if !addr.is_loopback() {
            return None;
        }
        parts.find(|n| *n != "localhost").map(str::to_owned)
    })
}

#[tokio::test]
async fn urls_resolving_to_private_loopback_or_metadata_addresses_are_refused() {
    let strict = UrlPolicy::default();
    let mut refused = vec![
        "https://127.0.0.1/hook".to_owned(),
        "https://10.1.2.3/hook".into(),
        "https://192.168.0.10/hook".into(),
        "https://172.20.0.1/hook".into(),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://100.64.1.1/hook".into(),
        "https://0.0.0.0/hook".into(),
        "https://[::1]/hook".into(),
        "https://[fd00::1]/hook".into(),
        "https://[fe80::1]/hook".into(),
        "https://[::ffff:127.0.0.1]/hook".into(),
        "https://[::ffff:169.254.169.254]/hook".into(),
        "https://localhost/hook".into(),
        "https://localhost./hook".into(),
        "https://LOCALHOST:8443/hook".into(),
        // Decimal and hex IPv4 forms are normalised by the URL parser to 127.0.0.1.
        "https://2130706433/hook".into(),
        "https://0x7f000001/hook".into(),
    ];
    if let Some(name) = hosts_name_for_loopback() {
        refused.push(format!("https://{name}/hook"));
    }
    for u in &refused {
        match strict.check(u).await {
            Err(UrlError::Forbidden { .. }) => {}
            other => panic!("{u}: expected Forbidden, got {other:?}"),
        }
    }

    // Schemes and plain http.
    assert!(matches!(
        strict.check("ftp://example.org/x").await,
        Err(UrlError::Scheme(_))
    ));
    assert!(matches!(
        strict.check("file:///etc/passwd").await,
        Err(UrlError::Scheme(_))
    ));
    assert!(matches!(
        strict.check("http://127.0.0.1:9/x").await,
        Err(UrlError::PlainHttp)
    ));
    assert!(matches!(
        strict.check("http://93.184.216.34/x").await,
        Err(UrlError::PlainHttp)
    ));
    assert!(matches!(
        strict.check("https://user:pw@93.184.216.34/x").await,
        Err(UrlError::Credentials)
    ));
    assert!(matches!(
        strict.check("not a url").await,
        Err(UrlError::Invalid(_))
    ));

    // The development setting allows http to loopback only.
    let dev = UrlPolicy {
        allow_http_loopback: true,
        allow_list: vec![],
    };
    dev.check("http://127.0.0.1:9/x").await.unwrap();
    dev.check("http://[::1]:9/x").await.unwrap();
    assert!(matches!(
        dev.check("http://93.184.216.34/x").await,
        Err(UrlError::PlainHttp)
    ));
    assert!(matches!(
        dev.check("http://10.0.0.1/x").await,
        Err(UrlError::PlainHttp)
    ));
    assert!(matches!(
        dev.check("https://169.254.169.254/x").await,
        Err(UrlError::Forbidden { .. })
    ));

    // Public addresses pass (IP literals: no DNS needed here).
    strict.check("https://93.184.216.34/hook").await.unwrap();
    strict
        .check("https://[2606:4700::1111]/hook")
        .await
        .unwrap();

    // The allow-list exempts a named host or an address.
    let allow = UrlPolicy {
        allow_http_loopback: false,
        allow_list: vec!["10.1.2.3".into(), "localhost".into()],
    };
    allow.check("https://10.1.2.3/hook").await.unwrap();
    allow.check("https://localhost/hook").await.unwrap();
    assert!(matches!(
        allow.check("https://10.1.2.4/hook").await,
        Err(UrlError::Forbidden { .. })
    ));
    assert!(matches!(
        allow.check("http://10.1.2.3/hook").await,
        Err(UrlError::PlainHttp)
    ));
}

#[tokio::test]
async fn refused_urls_are_never_saved_nor_called() {
    let e = env();
    let svc = e.service(NotifySettings::default());
    for (name, url) in [
        ("meta", "https://169.254.169.254/latest/meta-data/iam"),
        ("private", "https://10.0.0.8/services/T/B/X"),
        ("plain", "http://93.184.216.34/hook"),
        ("loop", "https://127.0.0.1/hook"),
    ] {
        let cfg = ChannelConfig {
            name: name.into(),
            kind: ChannelKind::Webhook,
            to: vec![],
            allow_http_loopback: false,
        };
        let err = svc
            .add_channel(&cfg, &url_secrets(url, Some(WEBHOOK_SECRET)))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("URL refused"), "{name}: {text}");
        assert!(
            !text.contains("/services/") && !text.contains("meta-data"),
            "{text}"
        );
    }
    assert!(svc.list_channels().await.unwrap().is_empty());
    // Nothing half-saved: no secret either.
    assert!(e
        .secrets
        .get(&channel::channel_secret_name("meta"))
        .await
        .is_err());

    // A URL stored before the guard (or whose DNS changed) is checked again at send time.
    let cfg = ChannelConfig {
        name: "legacy".into(),
        kind: ChannelKind::Slack,
        to: vec![],
        allow_http_loopback: false,
    };
    channel::add_channel(
        e.store.as_ref(),
        e.secrets.as_ref(),
        &cfg,
        &url_secrets("https://169.254.169.254/services/x", None),
    )
    .await
    .unwrap();
    let rep = svc
        .notify(&message("m-ssrf"), &["legacy".into()])
        .await
        .unwrap();
    assert_eq!(rep[0].status, DeliveryStatus::Failed);
    let err = rep[0].error.clone().unwrap();
    assert!(
        err.contains("169.254.169.254") && err.contains("refused"),
        "{err}"
    );
    let (rec, _) = delivery::load(e.store.as_ref(), "legacy", "m-ssrf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.next_attempt_at, None, "a refused URL is not retried");
}
