//! Scheduled reports end to end over real sockets: the sandbox's data synced, a report
//! definition due at its cron time (time zone aware) sent once through a real SMTP server
//! (aiosmtpd), SES v2 on moto and a Slack-like HTTP receiver; the delivered figures equal
//! `OrgSummary` and an independent computation from the sandbox's records; hostile names stay
//! escaped; and the HTML renders in headless Chromium with a visible chart.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use chrono::DateTime;
use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::analytics::Period;
use classy_sync_core::domain::report::{
    format, Recipients, ReportDefinition, ReportScope, Section,
};
use classy_sync_core::domain::{Entity, Timestamp};
use classy_sync_core::engine::{reports, ReportService, RunControl, SyncMode, SyncOutcome};
use classy_sync_core::ports::{DeliveryStatus, ManualClock};
use classy_sync_notify::channel::{add_channel, ChannelConfig, ChannelKind, ChannelSecrets};
use classy_sync_notify::{NotificationService, NotifySettings};
use classy_sync_runtime::local::LocalRoot;
use classy_sync_tests::moto::MotoServer;
use classy_sync_tests::Harness;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOSTILE: &str = "<script>alert(\"x\")</script> & 'Q' <!channel>";
const FROM: &str = "reports@example.org";

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("python3")
}

fn helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("support/report_mail.py")
}

/// Parses a raw MIME message with Python's standard library (independent of lettre).
fn parse_mime(raw: &[u8]) -> Value {
    let mut child = Command::new(python())
        .arg(helper())
        .arg("parse")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "MIME parse failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A real SMTP server (aiosmtpd) on a loopback port; each message lands as a .eml file.
struct MailSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl MailSink {
    fn start() -> MailSink {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(python())
            .arg(helper())
            .args(["sink", "--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .ok();
        assert_eq!(
            line.trim(),
            "ready",
            "SMTP sink did not start (aiosmtpd installed? set PYTHON, see requirements-dev.txt)"
        );
        MailSink { child, port, dir }
    }

    fn messages(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "eml") {
                out.push(parse_mime(&std::fs::read(e.path()).unwrap()));
            }
        }
        out
    }

    fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Slack-like incoming-webhook receiver: records every JSON body, answers `ok`.
async fn slack_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    async fn hook(State(got): State<Arc<Mutex<Vec<Value>>>>, body: Bytes) -> &'static str {
        got.lock()
            .unwrap()
            .push(serde_json::from_slice(&body).expect("JSON body"));
        "ok"
    }
    let app = Router::new()
        .route("/services/T0/B0/x", post(hook))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/services/T0/B0/x"), got)
}

fn ts(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

fn cents(v: &Value) -> i64 {
    let x = match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    };
    (x * 100.0).round() as i64
}

struct Env {
    h: Harness,
    /// The local root over the harness's data directory, on the manual clock.
    root: LocalRoot,
    clock: Arc<ManualClock>,
    org: u64,
}

/// One organization with hostile campaign and supporter names, fully synced; a root on the
/// same data directory with a manual clock.
async fn setup() -> Env {
    let h = Harness::start(SandboxConfig {
        seed: 23,
        orgs: 1,
        apps: 1,
        supporters: 120,
        campaigns: 4,
        transactions: 700,
        plans: 25,
        ..SandboxConfig::default()
    })
    .await;
    let org = h.orgs[0];
    for c in h.truth(org, Entity::Campaigns).await {
        let id = c["id"].as_u64().unwrap();
        h.patch(
            org,
            Entity::Campaigns,
            id,
            serde_json::json!({"name": format!("{HOSTILE} {id}")}),
        )
        .await;
    }
    for s in h.truth(org, Entity::Supporters).await {
        let id = s["id"].as_u64().unwrap();
        h.patch(
            org,
            Entity::Supporters,
            id,
            serde_json::json!({"first_name": HOSTILE}),
        )
        .await;
    }
    for r in h
        .sync
        .sync_org(org, SyncMode::Full, &RunControl::default())
        .await
    {
        assert_eq!(r.unwrap().outcome, SyncOutcome::Succeeded);
    }
    h.data.refresh_aggregates(org).await.unwrap();
    let clock = Arc::new(ManualClock::new(
        DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z")
            .unwrap()
            .to_utc(),
    ));
    let mut root = LocalRoot::open(h.dir.path()).unwrap();
    root.clock = clock.clone();
    Env {
        h,
        root,
        clock,
        org,
    }
}

fn definition(
    org: u64,
    emails: Vec<String>,
    slack: Vec<String>,
    created_at: i64,
) -> ReportDefinition {
    ReportDefinition {
        id: "daily".into(),
        scope: ReportScope::Org(org),
        sections: Section::ALL.to_vec(),
        period: "90d".into(),
        // 09:00 in New York: 14:00 UTC on 2026-11-02 (the day after DST ended).
        schedule: "0 9 * * *".into(),
        timezone: "America/New_York".into(),
        recipients: Recipients {
            emails,
            slack_channels: slack,
        },
        created_at,
    }
}

/// gross cents, gifts, donors of successful gifts in `[start, end)`, from the sandbox's records.
async fn independent_totals(h: &Harness, org: u64, start: i64, end: i64) -> (i64, u64, u64) {
    let mut gross = 0;
    let mut gifts = 0;
    let mut donors = std::collections::BTreeSet::new();
    for t in h.truth(org, Entity::Transactions).await {
        if t["status"] != "success" {
            continue;
        }
        let when =
            DateTime::parse_from_str(t["purchased_at"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%z")
                .unwrap()
                .timestamp();
        if start <= when && when < end {
            gross += cents(&t["total_gross_amount"]);
            gifts += 1;
            donors.insert(t["supporter_id"].as_u64().unwrap());
        }
    }
    (gross, gifts, donors.len() as u64)
}

fn assert_no_raw_hostile_html(html: &str) {
    assert!(!html.contains("<script"), "unescaped <script> in HTML");
    assert!(!html.contains("<!channel>"), "unescaped <!channel> in HTML");
    assert!(
        html.contains("&lt;script&gt;"),
        "hostile name absent from the HTML report"
    );
}

fn assert_no_raw_hostile_slack(payload: &Value) {
    // Every mrkdwn string must have Slack's control characters escaped.
    let blocks = payload["blocks"].as_array().expect("blocks");
    assert!(blocks.len() <= 50);
    let mut saw = false;
    let mut check = |s: &str| {
        assert!(
            !s.contains("<!channel>") && !s.contains("<script"),
            "unescaped: {s}"
        );
        saw |= s.contains("&lt;!channel&gt;");
    };
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000);
            check(t);
        }
        for f in b["fields"].as_array().into_iter().flatten() {
            check(f["text"].as_str().unwrap());
        }
        assert!(b["fields"].as_array().is_none_or(|f| f.len() <= 10));
    }
    assert!(saw, "hostile name absent from the Slack report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_report_arrives_by_smtp_and_slack_once_with_correct_figures() {
    let env = setup().await;
    let e = &env.root;
    let sink = MailSink::start();
    let (slack_url, slack_got) = slack_receiver().await;
    add_channel(
        e.store.as_ref(),
        e.secrets.as_ref(),
        &ChannelConfig {
            name: "board-slack".into(),
            kind: ChannelKind::Slack,
            to: vec![],
            allow_http_loopback: true,
        },
        &ChannelSecrets {
            url: Some(slack_url),
            ..ChannelSecrets::default()
        },
    )
    .await
    .unwrap();
    // Defined after 2026-11-01's 09:00 New York occurrence (14:00 UTC), which therefore is
    // not owed: the first one is 2026-11-02's.
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-01T15:00:00Z")
            .unwrap()
            .to_utc(),
    );
    let def = definition(
        env.org,
        vec!["board@example.org".into(), "ed@example.org".into()],
        vec!["board-slack".into()],
        env.clock_unix(),
    );
    e.report_definitions().add(&def).await.unwrap();
    let settings = NotifySettings {
        email_from: Some(FROM.into()),
        // The Slack receiver is http on loopback: the development switch is on.
        allow_dev_urls: true,
        ..NotifySettings::default()
    }
    .with_email(Arc::new(
        classy_sync_local::SmtpMailer::parse(&format!("smtp://127.0.0.1:{}", sink.port)).unwrap(),
    ));
    let notifier = NotificationService::new(
        e.store.clone(),
        e.secrets.clone(),
        e.clock.clone(),
        settings,
    );
    let reports = ReportService::new(e.data(), Arc::new(notifier));

    // Not yet due: 2026-11-02 08:59 New York.
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-02T13:59:00Z")
            .unwrap()
            .to_utc(),
    );
    assert!(reports.send_due(None).await.unwrap().is_empty());
    assert!(sink.messages().is_empty());

    // Due at 09:00 New York = 14:00 UTC (EST after the DST change).
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-02T14:05:00Z")
            .unwrap()
            .to_utc(),
    );
    let sent = reports.send_due(None).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].occurrence, ts("2026-11-02T14:00:00Z"));
    assert!(
        sent[0]
            .deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Sent),
        "{:?}",
        sent[0].deliveries
    );
    // Run twice: nothing more is sent for the same occurrence.
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-02T14:35:00Z")
            .unwrap()
            .to_utc(),
    );
    assert!(reports.send_due(None).await.unwrap().is_empty());
    assert!(reports
        .was_sent("daily", ts("2026-11-02T14:00:00Z"))
        .await
        .unwrap());

    let mails = sink.wait_for(1);
    assert_eq!(mails.len(), 1, "one email for both recipients");
    let mail = &mails[0];
    assert!(mail["to"].as_str().unwrap().contains("board@example.org"));
    assert!(mail["to"].as_str().unwrap().contains("ed@example.org"));
    let html = mail["parts"]["text/html"].as_str().expect("html part");
    let text = mail["parts"]["text/plain"].as_str().expect("text part");
    assert_inline_png_chart(mail);
    assert_no_raw_hostile_html(html);

    // Figures: the same as OrgSummary and as an independent computation.
    let now = Timestamp::parse("2026-11-02T14:05:00Z").unwrap();
    let s = e
        .data()
        .summarize(env.org, &"90d".parse::<Period>().unwrap(), now)
        .await
        .unwrap();
    let (gross, gifts, donors) =
        independent_totals(&env.h, env.org, s.period.start, s.period.end).await;
    assert!(
        gifts > 0,
        "the window must hold gifts for the test to mean something"
    );
    assert_eq!(
        (s.totals.gross_cents, s.totals.gifts, s.totals.donors),
        (gross, gifts, donors)
    );
    for shown in [
        format::money(gross),
        format::count(gifts),
        format::money(s.totals.net_cents),
    ] {
        assert!(html.contains(&shown), "HTML lacks {shown}");
        assert!(text.contains(&shown), "text lacks {shown}");
    }
    // The report's own chart (the SVG the PNG is drawn from): one bar per day.
    let report = reports::render(
        String::new(),
        &[Section::Headline],
        std::slice::from_ref(&s),
        &[],
        0,
    );
    let bars = report.html.matches("class=\"bar\"").count();
    assert_eq!(bars, s.gifts_per_day.len());
    let charted: i64 = s.gifts_per_day.iter().map(|d| d.gross_cents).sum();
    assert_eq!(
        charted, gross,
        "the chart's days add up to the headline gross"
    );

    let got = slack_got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one Slack post");
    assert_no_raw_hostile_slack(&got[0]);
    let slack_text = got[0].to_string();
    assert!(slack_text.contains(&format::money(gross)));
    assert!(slack_text.contains(&format::count(gifts)));
    // The Slack post carries the email's headline figures, label for label.
    let in_email = email_figures(html, "headline");
    assert_eq!(in_email.len(), 6, "{in_email:?}");
    assert!(in_email.contains(&("Gross raised".into(), format::money(gross))));
    assert_eq!(slack_headline(&got[0]), in_email);
}

/// The email shows its chart as an inline PNG by Content-ID: multipart/alternative of the text
/// and a multipart/related of the HTML and the PNG; no SVG (Gmail and Outlook drop it).
fn assert_inline_png_chart(mail: &Value) {
    let html = mail["parts"]["text/html"].as_str().expect("html part");
    assert!(!html.contains("<svg"), "the email shows the PNG, not SVG");
    assert_eq!(
        mail["tree"],
        serde_json::json!({"multipart/alternative": ["text/plain",
            {"multipart/related": ["text/html", "image/png"]}]}),
        "MIME structure"
    );
    let images = mail["images"].as_array().expect("images");
    assert_eq!(images.len(), 1, "one chart image");
    let img = &images[0];
    assert_eq!(img["content_type"], "image/png");
    assert_eq!(img["disposition"], "inline");
    assert_eq!(
        img["size"],
        serde_json::json!([1280, 440]),
        "640x220 drawn at 2x"
    );
    let cid = img["content_id"].as_str().unwrap();
    assert!(
        html.contains(&format!("<img src=\"cid:{cid}\"")),
        "the HTML shows the image by its Content-ID {cid}"
    );
}

/// The `(label, value)` rows of the email's figure table of `section` (`data-figures`).
fn email_figures(html: &str, section: &str) -> Vec<(String, String)> {
    let key = format!("data-figures=\"{section}\"");
    let Some(at) = html.find(&key) else {
        return Vec::new();
    };
    let table = &html[at..at + html[at..].find("</table>").unwrap()];
    let cell = |c: &str| {
        let c = &c[c.find('>').unwrap() + 1..];
        html_escape::decode_html_entities(&c[..c.find("</td>").unwrap()]).into_owned()
    };
    table
        .split("<tr>")
        .filter_map(|row| {
            let cells: Vec<String> = row.split("<td").skip(1).map(cell).collect();
            (cells.len() == 2).then(|| (cells[0].clone(), cells[1].clone()))
        })
        .collect()
}

/// The `(label, value)` fields of the Slack post's headline block (`*label*\nvalue`).
fn slack_headline(payload: &Value) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    payload["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["text"]["text"] == "*Headline*")
        .expect("a headline block")["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let t = f["text"].as_str().unwrap();
            let (k, v) = t.split_once('\n').unwrap();
            (unescape(k.trim_matches('*')), unescape(v))
        })
        .collect()
}

impl Env {
    fn clock_unix(&self) -> i64 {
        use classy_sync_core::ports::Clock;
        self.clock.unix()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_report_arrives_through_ses_on_moto() {
    let env = setup().await;
    let e = &env.root;
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(FROM)
        .send()
        .await
        .unwrap();
    let def = definition(
        env.org,
        vec!["board@example.org".into()],
        vec![],
        env.clock_unix(),
    );
    e.report_definitions().add(&def).await.unwrap();
    let settings = NotifySettings {
        email_from: Some(FROM.into()),
        ..NotifySettings::default()
    }
    .with_email(Arc::new(classy_sync_aws::SesMailer::new(&sdk)));
    let notifier = NotificationService::new(
        e.store.clone(),
        e.secrets.clone(),
        e.clock.clone(),
        settings,
    );
    let reports = ReportService::new(e.data(), Arc::new(notifier));
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-02T14:05:00Z")
            .unwrap()
            .to_utc(),
    );
    let sent = reports.send_due(None).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].deliveries[0].status,
        DeliveryStatus::Sent,
        "{:?}",
        sent[0].deliveries
    );

    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // SES v2 Raw content: moto keeps the whole MIME message, parsed here by Python's email.
    let sent = data["ses"]["RawMessage"]
        .as_array()
        .expect("SES raw messages");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["source"], FROM);
    let mail = parse_mime(sent[0]["raw_data"].as_str().unwrap().as_bytes());
    assert!(mail["to"].as_str().unwrap().contains("board@example.org"));
    let html = mail["parts"]["text/html"].as_str().expect("html part");
    assert_inline_png_chart(&mail);
    assert_no_raw_hostile_html(html);
    let now = Timestamp::parse("2026-11-02T14:05:00Z").unwrap();
    let s = e
        .data()
        .summarize(env.org, &"90d".parse::<Period>().unwrap(), now)
        .await
        .unwrap();
    let (gross, gifts, _) = independent_totals(&env.h, env.org, s.period.start, s.period.end).await;
    let headline = email_figures(html, "headline");
    assert!(headline.contains(&("Gross raised".into(), format::money(gross))));
    assert!(headline.contains(&("Gifts".into(), format::count(gifts))));
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(b))
                    .find(|c| c.is_file())
            })
        })
}

/// Width and height from the PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_in_headless_chromium_with_a_visible_chart() {
    let Some(bin) = chromium() else {
        if std::env::var_os("CLASSY_SYNC_REQUIRE_CHROMIUM").is_some() {
            panic!("chromium is required (CLASSY_SYNC_REQUIRE_CHROMIUM is set) but not found");
        }
        eprintln!("\n!!!!! SKIPPED: chromium not installed (apt-get install chromium) !!!!!\n");
        return;
    };
    let env = setup().await;
    let e = &env.root;
    let now = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
    let sums = reports::summaries(&e.data(), ReportScope::Org(env.org), "90d", now)
        .await
        .unwrap();
    let fep = reports::fep_reports(&e.data(), &Section::ALL, &sums, now)
        .await
        .unwrap();
    let r = reports::render(
        reports::title_for(None, &sums),
        &Section::ALL,
        &sums,
        &fep,
        now.unix(),
    );

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let html_path = artifacts.join("report.html");
    std::fs::write(&html_path, &r.html).unwrap();
    // A page holding only the chart, to probe its pixels on their own.
    let svg_start = r.html.find("<svg").unwrap();
    let svg_end = r.html.find("</svg>").unwrap() + "</svg>".len();
    let chart_path = artifacts.join("report-chart.html");
    std::fs::write(
        &chart_path,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0;background:#fff\">{}</body></html>",
            &r.html[svg_start..svg_end]
        ),
    )
    .unwrap();

    let profile = tempfile::tempdir().unwrap();
    let run = |args: &[&str], url: &Path| {
        let out = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(format!("file://{}", url.display()))
            .output()
            .expect("chromium runs");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };

    // The DOM after parsing: the chart is there with one bar per day, titled.
    let dom = String::from_utf8(run(&["--dump-dom"], &html_path).stdout).unwrap();
    assert!(dom.contains("<svg"), "no SVG in the rendered DOM");
    let bars = dom.matches("class=\"bar\"").count();
    assert_eq!(bars, sums[0].gifts_per_day.len());
    assert!(bars > 0);
    assert!(dom.contains("Gifts per day"));
    assert!(
        !dom.contains("<script>alert"),
        "hostile script made it into the DOM"
    );

    // Full-page screenshot kept as an artifact.
    let shot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    run(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,1400",
        ],
        &html_path,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(png_size(&png), (1000, 1400));

    // The chart alone vs. an empty page of the same size: a drawn chart compresses to a
    // much larger PNG than a blank white page.
    let chart_shot = artifacts.join("report-chart.png");
    run(
        &[
            &format!("--screenshot={}", chart_shot.display()),
            "--window-size=640,220",
        ],
        &chart_path,
    );
    let blank_path = artifacts.join("blank.html");
    std::fs::write(
        &blank_path,
        "<!DOCTYPE html><html><body style=\"margin:0;background:#fff\"></body></html>",
    )
    .unwrap();
    let blank_shot = artifacts.join("blank.png");
    run(
        &[
            &format!("--screenshot={}", blank_shot.display()),
            "--window-size=640,220",
        ],
        &blank_path,
    );
    let chart_len = std::fs::metadata(&chart_shot).unwrap().len();
    let blank_len = std::fs::metadata(&blank_shot).unwrap().len();
    assert!(
        chart_len > blank_len * 3,
        "chart screenshot looks blank: {chart_len} bytes vs blank {blank_len}"
    );
    eprintln!("screenshot kept at {}", shot.display());
}

/// The report as it arrives by email (the MIME message the notifier builds: HTML with the
/// chart as an inline PNG), opened in headless Chromium in a 600 px window, the usual email
/// column: nothing is wider than the window (a script records the page's scroll width and the
/// right edge of every element), the PNG loads and is shown within the column, and a screenshot
/// of the whole page is kept as `target/test-artifacts/report-600px.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_email_fits_a_600px_column_in_headless_chromium_with_its_png_chart() {
    let Some(bin) = chromium() else {
        if std::env::var_os("CLASSY_SYNC_REQUIRE_CHROMIUM").is_some() {
            panic!("chromium is required (CLASSY_SYNC_REQUIRE_CHROMIUM is set) but not found");
        }
        eprintln!("\n!!!!! SKIPPED: chromium not installed (apt-get install chromium) !!!!!\n");
        return;
    };
    let env = setup().await;
    let e = &env.root;
    let now = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
    let sums = reports::summaries(&e.data(), ReportScope::Org(env.org), "90d", now)
        .await
        .unwrap();
    let fep = reports::fep_reports(&e.data(), &Section::ALL, &sums, now)
        .await
        .unwrap();
    assert_eq!(fep.len(), 1);
    let r = reports::render(
        reports::title_for(Some("weekly"), &sums),
        &Section::ALL,
        &sums,
        &fep,
        now.unix(),
    );
    let def = definition(env.org, vec!["board@example.org".into()], vec![], 0);
    let m = reports::message("report:weekly:1".into(), &def, &r);
    let raw = classy_sync_notify::email::render(FROM, &def.recipients.emails, &m)
        .unwrap()
        .raw;
    let mail = parse_mime(&raw);
    assert_inline_png_chart(&mail);

    // The email's HTML with each cid: image as a file beside it.
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut html = mail["parts"]["text/html"].as_str().unwrap().to_owned();
    for (i, img) in mail["images"].as_array().unwrap().iter().enumerate() {
        use base64::Engine;
        let name = format!("report-600px-image-{i}.png");
        let data = base64::engine::general_purpose::STANDARD
            .decode(img["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(artifacts.join(&name), data).unwrap();
        html = html.replace(
            &format!("cid:{}", img["content_id"].as_str().unwrap()),
            &name,
        );
    }
    let probe = "<pre id=\"probe\" style=\"display:none\"></pre><script>window.addEventListener('load', function () {\
        var d = document.documentElement, right = 0;\
        document.querySelectorAll('body *').forEach(function (el) {\
          if (el.id !== 'probe') right = Math.max(right, Math.ceil(el.getBoundingClientRect().right)); });\
        var imgs = Array.prototype.map.call(document.images, function (i) {\
          return [i.complete && i.naturalWidth > 0, i.naturalWidth, Math.round(i.getBoundingClientRect().width)]; });\
        document.getElementById('probe').textContent = JSON.stringify(\
          {scroll: d.scrollWidth, client: d.clientWidth, height: d.scrollHeight, right: right,\
           images: imgs}); });</script>";
    let probed = html.replace("</body>", &format!("{probe}</body>"));
    assert_ne!(probed, html, "the email HTML has a body");
    let page = artifacts.join("report-600px.html");
    std::fs::write(&page, &probed).unwrap();

    let profile = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--allow-file-access-from-files",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let dom = String::from_utf8(run(&["--window-size=600,2400", "--dump-dom"]).stdout).unwrap();
    let open = "<pre id=\"probe\" style=\"display:none\">";
    let at = dom.find(open).expect("probe in the DOM") + open.len();
    let json = html_escape::decode_html_entities(&dom[at..at + dom[at..].find("</pre>").unwrap()])
        .into_owned();
    let probe: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    eprintln!("600 px layout: {probe}");
    assert_eq!(probe["client"], 600, "{probe}");
    assert!(
        probe["scroll"].as_u64().unwrap() <= 600,
        "horizontal overflow: {probe}"
    );
    assert!(
        probe["right"].as_u64().unwrap() <= 600,
        "an element sticks out: {probe}"
    );
    let images = probe["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{probe}");
    assert_eq!(images[0][0], true, "the PNG did not load: {probe}");
    assert_eq!(images[0][1], 1280, "{probe}");
    let shown = images[0][2].as_u64().unwrap();
    assert!(
        (300..=568).contains(&shown),
        "chart shown {shown} px wide: {probe}"
    );

    // The whole page, 600 px wide.
    let height = probe["height"].as_u64().unwrap().clamp(600, 12_000) as u32;
    let shot = artifacts.join("report-600px.png");
    let _ = std::fs::remove_file(&shot);
    run(&[
        &format!("--window-size=600,{height}"),
        &format!("--screenshot={}", shot.display()),
    ]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(png_size(&png), (600, height));
    eprintln!(
        "600 px screenshot kept at {}",
        shot.canonicalize().unwrap().display()
    );
}

/// The `weekly` preset as a definition (Mondays 08:00, the last 7 days, with the FEP section):
/// the email and the Slack post show the FEP figures the engine computes for the last 12 months
/// (`Datastore::fep_report`, itself checked against the sandbox's records in tests/fep.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_preset_sends_the_fep_figures_by_email_and_slack() {
    use classy_sync_core::domain::analytics::fep::FepOptions;
    use classy_sync_core::domain::report::{figures, preset};
    let env = setup().await;
    let e = &env.root;
    let sink = MailSink::start();
    let (slack_url, slack_got) = slack_receiver().await;
    add_channel(
        e.store.as_ref(),
        e.secrets.as_ref(),
        &ChannelConfig {
            name: "board-slack".into(),
            kind: ChannelKind::Slack,
            to: vec![],
            allow_http_loopback: true,
        },
        &ChannelSecrets {
            url: Some(slack_url),
            ..ChannelSecrets::default()
        },
    )
    .await
    .unwrap();
    let weekly = preset("weekly").unwrap();
    let def = ReportDefinition {
        id: "board-weekly".into(),
        scope: ReportScope::Org(env.org),
        sections: weekly.sections.to_vec(),
        period: weekly.period.into(),
        schedule: weekly.schedule.into(),
        timezone: "UTC".into(),
        recipients: Recipients {
            emails: vec!["board@example.org".into()],
            slack_channels: vec!["board-slack".into()],
        },
        created_at: env.clock_unix(),
    };
    e.report_definitions().add(&def).await.unwrap();
    let settings = NotifySettings {
        email_from: Some(FROM.into()),
        allow_dev_urls: true,
        ..NotifySettings::default()
    }
    .with_email(Arc::new(
        classy_sync_local::SmtpMailer::parse(&format!("smtp://127.0.0.1:{}", sink.port)).unwrap(),
    ));
    let notifier = NotificationService::new(
        e.store.clone(),
        e.secrets.clone(),
        e.clock.clone(),
        settings,
    );
    let reports = ReportService::new(e.data(), Arc::new(notifier));
    // 2026-11-01 is a Sunday: the first run is Monday 08:00 UTC.
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-02T08:05:00Z")
            .unwrap()
            .to_utc(),
    );
    let sent = reports.send_due(None).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].occurrence, ts("2026-11-02T08:00:00Z"));
    assert!(sent[0].complete, "{:?}", sent[0].deliveries);

    let now = Timestamp::parse("2026-11-02T08:05:00Z").unwrap();
    let expected = e
        .data()
        .fep_report(
            env.org,
            &reports::FEP_PERIOD.parse::<Period>().unwrap(),
            now,
            &FepOptions {
                limit: 0,
                ..FepOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(
        expected.retention.donors_previous > 0 && expected.lapsed.lybunt.donors > 0,
        "the sandbox must give the FEP figures something to count: {expected:?}"
    );
    let want: Vec<(String, String)> = figures::fep(&expected)
        .into_iter()
        .map(|f| (f.label.clone(), f.value().to_owned()))
        .collect();
    assert!(want.iter().any(|(k, _)| k.starts_with("LYBUNT")));

    let mails = sink.wait_for(1);
    assert_eq!(mails.len(), 1);
    let html = mails[0]["parts"]["text/html"].as_str().unwrap();
    assert_eq!(email_figures(html, "fep"), want, "the email's FEP figures");
    assert!(html.contains(&format!(
        "{} donors, {} at risk",
        format::count(expected.lapsed.lybunt.donors),
        format::money(expected.lapsed.lybunt.dollars_at_risk_cents)
    )));
    let text = mails[0]["parts"]["text/plain"].as_str().unwrap();
    assert!(text.contains("Fundraising effectiveness (FEP)"));
    assert_inline_png_chart(&mails[0]);

    let got = slack_got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let fep_block = got[0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.starts_with("*Fundraising effectiveness (FEP)*"))
        .expect("a FEP block in Slack")
        .to_owned();
    for (k, v) in &want {
        assert!(
            fep_block.contains(&format!("• {k}: *{v}*")),
            "Slack lacks {k}: {v}\n{fep_block}"
        );
    }
    assert_eq!(slack_headline(&got[0]), email_figures(html, "headline"));
}

// ---------- delivery records, retries, a failing definition (issue 12, items 3 and 4) ----------

/// An email channel named `name` to `to`, in `store` (the notifier's).
async fn email_channel(root: &LocalRoot, store: &dyn classy_sync_core::ports::Store, name: &str) {
    add_channel(
        store,
        root.secrets.as_ref(),
        &ChannelConfig {
            name: name.into(),
            kind: ChannelKind::Email,
            to: vec!["board@example.org".into()],
            allow_http_loopback: false,
        },
        &ChannelSecrets::default(),
    )
    .await
    .unwrap();
}

fn smtp_settings(sink: &classy_sync_tests::smtp_sink::SmtpSink) -> NotifySettings {
    NotifySettings {
        email_from: Some(FROM.into()),
        ..NotifySettings::default()
    }
    .with_email(Arc::new(
        classy_sync_local::SmtpMailer::parse(&sink.url()).unwrap(),
    ))
}

/// A 12-month report over 16 organizations: the delivery record in DynamoDB (moto enforces the
/// 400 KB item limit) keeps a digest and a bounded stand-in, while a record holding the whole
/// message, as delivery records did, is refused. A definition whose delivery fails (its Slack
/// channel was removed) is reported and the next definition is still sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_12_month_report_over_every_organization_keeps_a_small_delivery_record_and_a_failing_report_does_not_block_the_next(
) {
    use classy_sync_core::ports::{Condition, Item, Store};
    use classy_sync_notify::delivery::{self, DeliveryRecord};
    let h = Harness::start(SandboxConfig {
        seed: 12,
        orgs: 16,
        apps: 1,
        supporters: 12,
        campaigns: 2,
        transactions: 40,
        plans: 2,
        ..SandboxConfig::default()
    })
    .await;
    for org in h.orgs.clone() {
        for r in h
            .sync
            .sync_org(org, SyncMode::Full, &RunControl::default())
            .await
        {
            assert_eq!(r.unwrap().outcome, SyncOutcome::Succeeded);
        }
        h.data.refresh_aggregates(org).await.unwrap();
    }
    let clock = Arc::new(ManualClock::new(
        DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z")
            .unwrap()
            .to_utc(),
    ));
    let mut root = LocalRoot::open(h.dir.path()).unwrap();
    root.clock = clock.clone();

    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    classy_sync_tests::aws_setup::create_table(&moto.dynamodb().await, "reports")
        .await
        .unwrap();
    let dynamo: Arc<dyn Store> = Arc::new(classy_sync_aws::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        "reports",
    ));

    let year = ReportDefinition {
        id: "year-all".into(),
        scope: ReportScope::All,
        sections: Section::ALL.to_vec(),
        period: "12m".into(),
        schedule: "0 9 * * *".into(),
        timezone: "UTC".into(),
        recipients: Recipients {
            emails: vec!["board@example.org".into()],
            slack_channels: vec![],
        },
        created_at: ts("2026-10-01T00:00:00Z"),
    };
    // Sorted before `year-all`: the run meets it first.
    let broken = ReportDefinition {
        id: "a-broken".into(),
        scope: ReportScope::Org(h.orgs[0]),
        period: "30d".into(),
        recipients: Recipients {
            emails: vec![],
            slack_channels: vec!["gone".into()],
        },
        ..year.clone()
    };
    let gone = ChannelConfig {
        name: "gone".into(),
        kind: ChannelKind::Slack,
        to: vec![],
        allow_http_loopback: false,
    };
    let gone_secrets = ChannelSecrets {
        url: Some("https://hooks.slack.com/services/T0/B0/x".into()),
        ..ChannelSecrets::default()
    };
    add_channel(
        root.store.as_ref(),
        root.secrets.as_ref(),
        &gone,
        &gone_secrets,
    )
    .await
    .unwrap();
    root.report_definitions().add(&year).await.unwrap();
    root.report_definitions().add(&broken).await.unwrap();
    // The notifier's store (DynamoDB) has the year report's email channel, not `gone`.
    let email = year.email_channel().unwrap();
    email_channel(&root, dynamo.as_ref(), &email).await;

    let sink = classy_sync_tests::smtp_sink::SmtpSink::start(0);
    let notifier = NotificationService::new(
        dynamo.clone(),
        root.secrets.clone(),
        clock.clone(),
        smtp_settings(&sink),
    );
    let reports = ReportService::new(root.data(), Arc::new(notifier));
    clock.set(
        DateTime::parse_from_rfc3339("2026-11-02T09:10:00Z")
            .unwrap()
            .to_utc(),
    );
    let out = classy_sync_functions::report::handle(
        &reports,
        classy_sync_functions::events::ReportEvent::default(),
    )
    .await
    .unwrap();
    assert_eq!(out["failed_reports"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["failed_reports"][0]["report_id"], "a-broken");
    let sent = out["sent"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{out}");
    assert_eq!(sent[0]["report_id"], "year-all");
    assert_eq!(sent[0]["complete"], true);
    assert_eq!(sent[0]["deliveries"][0]["status"], "sent", "{out}");
    let occurrence = ts("2026-11-02T09:00:00Z");
    assert!(reports.was_sent("year-all", occurrence).await.unwrap());
    assert!(!reports.was_sent("a-broken", occurrence).await.unwrap());
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);

    // The stored delivery item, as DynamoDB holds it.
    let message_id = format!("report:year-all:{occurrence}");
    let item = dynamo
        .get(
            classy_sync_core::channels::NOTIFY_PK,
            &delivery::delivery_sk(&email, &message_id),
        )
        .await
        .unwrap()
        .expect("delivery record");
    let rec: DeliveryRecord = item.parse().unwrap();
    let stored = item.data.len();
    assert!(!rec.complete);
    assert!(rec.message.html.is_none() && rec.message.slack_blocks.is_none());

    // The whole message, rebuilt as of the first attempt: the same digest as recorded.
    let as_of = Timestamp::from_unix(rec.created_at);
    let sums = reports::summaries(&root.data(), ReportScope::All, "12m", as_of)
        .await
        .unwrap();
    assert_eq!(sums.len(), 16);
    assert!(sums.iter().all(|s| s.gifts_per_day.len() >= 365));
    let fep = reports::fep_reports(&root.data(), &year.sections, &sums, as_of)
        .await
        .unwrap();
    let rendered = reports::render(
        reports::title_for(Some("year-all"), &sums),
        &year.sections,
        &sums,
        &fep,
        as_of.unix(),
    );
    let whole = reports::message(message_id.clone(), &year, &rendered);
    assert_eq!(
        whole.digest(),
        rec.digest,
        "the rebuilt report is the one sent"
    );
    assert_eq!(whole.json_len() as u64, rec.message_bytes);
    let old_shape = DeliveryRecord {
        message: whole.clone(),
        complete: true,
        ..rec.clone()
    };
    let old_item = Item::json(
        classy_sync_core::channels::NOTIFY_PK,
        "DELIVERY#probe#whole-message",
        &old_shape,
    );
    let before = old_item.data.len();
    eprintln!(
        "MEASURE delivery record of a 12-month report over 16 organizations: {before} bytes \
         holding the whole message (chart bounded), {stored} bytes stored (digest + stand-in)"
    );
    assert!(
        before > 400 * 1024,
        "the whole message must pass 400 KB: {before}"
    );
    assert!(stored < 40 * 1024, "{stored} bytes");
    let refused = dynamo.put(old_item, Condition::Always).await;
    assert!(refused.is_err(), "DynamoDB took a {before}-byte item");

    // Each chart is bounded: at most MAX_BARS bars for 365 days.
    let html = rendered.html.as_str();
    let bars = html.matches("class=\"bar\"").count();
    assert!(
        bars <= 16 * classy_sync_core::domain::report::chart::MAX_BARS,
        "{bars} bars"
    );
}

/// A report delivery that fails (the SMTP server answers 451) is retried by the next report
/// run once its backoff is over, rebuilt as of the first attempt; the occurrence is marked
/// sent only then. The local run loop's round retries a failed report and a failed alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_report_delivery_is_retried_by_the_next_run_and_marked_sent_only_then() {
    use classy_sync_core::ports::{Message, MessageKind, Notifier, Severity};
    let env = setup().await;
    let e = &env.root;
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-01T15:00:00Z")
            .unwrap()
            .to_utc(),
    );
    let def = definition(
        env.org,
        vec!["board@example.org".into()],
        vec![],
        env.clock_unix(),
    );
    e.report_definitions().add(&def).await.unwrap();
    let sink = classy_sync_tests::smtp_sink::SmtpSink::start(1);
    let notifier = Arc::new(NotificationService::new(
        e.store.clone(),
        e.secrets.clone(),
        e.clock.clone(),
        smtp_settings(&sink),
    ));
    let reports = ReportService::new(e.data(), notifier.clone());
    let run = || async {
        classy_sync_functions::report::handle(
            &reports,
            classy_sync_functions::events::ReportEvent::default(),
        )
        .await
        .unwrap()
    };
    let occurrence = ts("2026-11-02T14:00:00Z");
    let first_at = "2026-11-02T14:05:00Z";
    env.clock
        .set(DateTime::parse_from_rfc3339(first_at).unwrap().to_utc());
    let out = run().await;
    assert_eq!(out["sent"][0]["complete"], false, "{out}");
    assert_eq!(out["sent"][0]["deliveries"][0]["status"], "failed");
    assert_eq!(out["failed_deliveries"], 1);
    assert!(
        !reports.was_sent("daily", occurrence).await.unwrap(),
        "marked sent before the delivery succeeded"
    );

    // Within the backoff (1 minute): nothing is owed, nothing is rebuilt.
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-02T14:05:30Z")
            .unwrap()
            .to_utc(),
    );
    let out = run().await;
    assert!(out["sent"].as_array().unwrap().is_empty(), "{out}");
    assert!(!reports.was_sent("daily", occurrence).await.unwrap());

    // The next run after the backoff: retried, sent, marked.
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-02T14:08:00Z")
            .unwrap()
            .to_utc(),
    );
    let out = run().await;
    assert_eq!(out["sent"][0]["complete"], true, "{out}");
    assert_eq!(out["sent"][0]["deliveries"][0]["status"], "sent");
    assert_eq!(out["sent"][0]["deliveries"][0]["attempts"], 2);
    assert!(reports.was_sent("daily", occurrence).await.unwrap());
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    // Rebuilt as of the first attempt.
    let generated = format!("Generated {}", format::datetime(ts(first_at)));
    assert!(
        mails[0].to_string().contains(&generated),
        "the retried report is not the first attempt's: {generated}"
    );
    // Nothing more afterwards.
    assert!(run().await["sent"].as_array().unwrap().is_empty());

    // The local run loop's round: the next day's report and an alert both fail once, and the
    // round after the backoff retries both.
    let sink2 = classy_sync_tests::smtp_sink::SmtpSink::start(2);
    let notifier2 = Arc::new(NotificationService::new(
        e.store.clone(),
        e.secrets.clone(),
        e.clock.clone(),
        smtp_settings(&sink2),
    ));
    email_channel(&env.root, e.store.as_ref(), "ops").await;
    let reports2 = ReportService::new(e.data(), notifier2.clone());
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-03T14:01:00Z")
            .unwrap()
            .to_utc(),
    );
    let alert = Message {
        id: "alert:test:fire".into(),
        kind: MessageKind::AlertFiring,
        severity: Severity::High,
        org_id: None,
        subject: "[HIGH] dead-letters: queue".into(),
        text: "FIRING".into(),
        fields: vec![],
        html: None,
        slack_blocks: None,
    };
    let round = reports2.scheduled_round().await;
    let outcomes = round.reports.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(!outcomes[0].complete);
    let r = notifier2.notify(&alert, &["ops".into()]).await.unwrap();
    assert_eq!(r[0].status, DeliveryStatus::Failed);
    let next = ts("2026-11-03T14:00:00Z");
    assert!(!reports2.was_sent("daily", next).await.unwrap());
    env.clock.set(
        DateTime::parse_from_rfc3339("2026-11-03T14:04:00Z")
            .unwrap()
            .to_utc(),
    );
    let round = reports2.scheduled_round().await;
    let outcomes = round.reports.unwrap();
    assert!(outcomes[0].complete, "{outcomes:?}");
    assert!(reports2.was_sent("daily", next).await.unwrap());
    let retried = round.retried.unwrap();
    assert!(
        retried
            .iter()
            .any(|d| d.message_id == "alert:test:fire" && d.status == DeliveryStatus::Sent),
        "{retried:?}"
    );
    assert_eq!(sink2.wait_for(2, Duration::from_secs(10)).await.len(), 2);
}
