//! `classy-sync template ...` end to end on a temporary data dir: add/list/show/remove, built-in
//! templates that cannot be removed or overwritten, invalid files refused naming the field
//! (exit 2, nothing stored, no secret echoed), and `org add --template` applying the schedule,
//! report preset, alert routing and plugin settings, idempotently.

use classy_sync_core::domain::alerts::default_rules;
use classy_sync_core::domain::health::{CheckResult, HealthReport, HealthStatus};
use classy_sync_core::engine::alerts::Alerts;
use classy_sync_core::ports::Notifier;
use classy_sync_runtime::local::LocalRoot;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");

fn cli(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("CLASSY_SYNC_DATA_DIR", data)
        .env_remove("CLASSY_SYNC_BACKEND")
        .env_remove("CLASSY_CLIENT_SECRET")
        .env_remove("MAILCHIMP_API_KEY")
        .env("USER", "template-tester")
        .stdin(Stdio::null());
    c
}

/// Runs the command: (exit code, stdout, stderr).
fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(c: &mut Command) -> String {
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "failed: {out}\n{err}");
    out
}

fn json_of(c: &mut Command) -> Value {
    serde_json::from_str(&ok(c)).unwrap()
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

/// `report list --json`: one JSON object per line.
fn report_list(data: &Path) -> Vec<Value> {
    ok(cli(data).args(["report", "list", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn names(list: &Value) -> Vec<(String, bool)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["builtin"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn regional() -> Value {
    json!({
        "description": "regional chapters",
        "schedule": {"supporters": 900, "transactions": 300},
        "plugins": {"mailchimp": {"batch_size": 200}},
        "alerts": {"channels": ["team"], "min_severity": "high"},
        "reports": [{
            "id": "weekly",
            "sections": ["headline", "donors"],
            "period": "7d",
            "schedule": "0 8 * * 1",
            "timezone": "America/New_York",
            "recipients": {"emails": ["board@example.org"]}
        }]
    })
}

#[test]
fn template_add_list_show_remove_and_invalid_files_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let builtins = vec![
        ("default".to_string(), true),
        ("small-nonprofit".to_string(), true),
        ("high-volume".to_string(), true),
    ];
    assert_eq!(
        names(&json_of(cli(&data).args(["template", "list", "--json"]))),
        builtins
    );
    let table = ok(cli(&data).args(["template", "list"]));
    assert!(
        table.contains("built-in") && table.contains("high-volume"),
        "{table}"
    );

    // Invalid files: exit 2, the field named, nothing stored, the secret never echoed.
    let mut bad_schedule = regional();
    bad_schedule["schedule"]["supporters"] = json!(30);
    let mut secret = regional();
    secret["plugins"]["mailchimp"]["api_key"] = json!("hunter2-not-for-logs");
    let mut unknown = regional();
    unknown["reports"][0]["recipient"] = json!({});
    let mut bad_plugin = regional();
    bad_plugin["plugins"] = json!({"salesforce": {"x": 1}});
    for (file, field) in [
        (
            write(dir.path(), "a.json", &bad_schedule),
            "schedule.supporters: expected seconds >= 60",
        ),
        (
            write(dir.path(), "b.json", &secret),
            "plugins.mailchimp.api_key: secrets never go in a template",
        ),
        (
            write(dir.path(), "c.json", &unknown),
            "reports[0].recipient: unknown field `recipient`",
        ),
        (
            write(dir.path(), "d.json", &bad_plugin),
            "plugins.salesforce:",
        ),
    ] {
        let (code, out, err) =
            run(cli(&data).args(["template", "add", "regional", "--file", &file]));
        assert_eq!(code, 2, "{out}\n{err}");
        assert!(err.contains(field), "{field}: {err}");
        assert!(
            !err.contains("hunter2") && !out.contains("hunter2"),
            "{err}"
        );
    }
    let (code, _, err) = run(cli(&data).args([
        "template",
        "add",
        "Bad Name",
        "--file",
        &write(dir.path(), "e.json", &regional()),
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("name: \"Bad Name\""), "{err}");
    assert_eq!(
        names(&json_of(cli(&data).args(["template", "list", "--json"]))),
        builtins,
        "nothing stored"
    );

    // Add, list, show.
    let file = write(dir.path(), "regional.json", &regional());
    let out = ok(cli(&data).args(["template", "add", "regional", "--file", &file]));
    assert!(out.contains("template regional added"), "{out}");
    let mut with = builtins.clone();
    with.push(("regional".to_string(), false));
    assert_eq!(
        names(&json_of(cli(&data).args(["template", "list", "--json"]))),
        with
    );
    let shown = json_of(cli(&data).args(["template", "show", "regional", "--json"]));
    let mut expected = regional();
    expected["reports"][0]["recipients"]["slack_channels"] = json!([]);
    assert_eq!(shown, expected);
    let hv = json_of(cli(&data).args(["template", "show", "high-volume", "--json"]));
    assert_eq!(hv["schedule"]["transactions"], json!(300));
    assert_eq!(hv["reports"][0]["id"], json!("weekly"));

    // Existing and built-in names are refused; built-ins cannot be removed.
    let (code, _, err) = run(cli(&data).args(["template", "add", "regional", "--file", &file]));
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(cli(&data).args(["template", "add", "default", "--file", &file]));
    assert_ne!(code, 0);
    assert!(err.contains("built in and cannot be overwritten"), "{err}");
    let (code, _, err) = run(cli(&data).args(["template", "remove", "high-volume"]));
    assert_ne!(code, 0);
    assert!(err.contains("built in and cannot be removed"), "{err}");
    let (code, _, err) = run(cli(&data).args(["template", "show", "nope"]));
    assert_ne!(code, 0);
    assert!(err.contains("template \"nope\" not found"), "{err}");

    // Remove.
    ok(cli(&data).args(["template", "remove", "regional"]));
    assert_eq!(
        names(&json_of(cli(&data).args(["template", "list", "--json"]))),
        builtins
    );
    let (code, _, err) = run(cli(&data).args(["template", "remove", "regional"]));
    assert_ne!(code, 0);
    assert!(err.contains("not found"), "{err}");

    // Template changes are in the audit trail, with the actor.
    let audit = ok(cli(&data).args(["audit", "list", "--json"]));
    for action in ["template add", "template remove"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert!(audit.contains("template-tester"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_add_with_a_template_applies_schedule_reports_routing_and_plugins_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write(dir.path(), "regional.json", &regional());
    ok(cli(&data).args(["template", "add", "regional", "--file", &file]));
    // The routed channel exists: the routing is set. Console channels need no secret.
    ok(cli(&data).args(["notify", "channel", "add", "team", "console"]));
    ok(cli(&data).args(["notify", "channel", "add", "ops", "console"]));

    // An unknown template is refused before anything is written.
    let (code, _, err) = run(cli(&data)
        .args([
            "org",
            "add",
            "4242",
            "--name",
            "Chapter",
            "--client-id",
            "app",
        ])
        .args(["--no-verify", "--template", "nope"])
        .env("CLASSY_CLIENT_SECRET", "s3cret-value"));
    assert_ne!(code, 0);
    assert!(err.contains("template \"nope\" not found"), "{err}");
    assert_eq!(
        json_of(cli(&data).args(["org", "list", "--json"])),
        json!([])
    );

    let out = ok(cli(&data)
        .args([
            "org",
            "add",
            "4242",
            "--name",
            "Chapter",
            "--client-id",
            "app",
        ])
        .args(["--no-verify", "--template", "regional"])
        .env("CLASSY_CLIENT_SECRET", "s3cret-value"));
    for line in [
        "schedule supporters: every 900s",
        "schedule transactions: every 300s",
        "alert routing set",
        "report weekly-4242 created",
        "pending: plugin mailchimp needs its secret: classy-sync org plugin add 4242 mailchimp",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(!out.contains("s3cret-value"));
    let audit = ok(cli(&data).args(["audit", "list", "--org", "4242", "--json"]));
    assert!(
        audit.contains("org add") && audit.contains("org template"),
        "{audit}"
    );
    assert!(!audit.contains("s3cret-value"));
    let org = json_of(cli(&data).args(["org", "show", "4242", "--json"]));
    assert_eq!(
        org["schedule"],
        json!({"supporters": 900, "transactions": 300})
    );
    let reports = report_list(&data);
    assert_eq!(reports.len(), 1, "{reports:?}");
    let def = &reports[0]["definition"];
    assert_eq!(def["id"], json!("weekly-4242"));
    assert_eq!(def["scope"], json!({"type": "org", "org_id": 4242}));
    assert_eq!(def["timezone"], json!("America/New_York"));
    assert_eq!(def["sections"], json!(["headline", "donors"]));

    // The plugin configured later, the template applies its settings over the plugin's own.
    ok(cli(&data)
        .args([
            "org",
            "plugin",
            "add",
            "4242",
            "mailchimp",
            "--list-id",
            "list1",
        ])
        .arg("--no-verify")
        .env("MAILCHIMP_API_KEY", "0123456789abcdef0123456789abcdef-us21"));
    let root = LocalRoot::open(&data).unwrap();
    let plugins = root.plugins();
    let t = root.data().template("regional").await.unwrap();
    let applied = plugins.apply_template(4242, &t).await.unwrap();
    assert_eq!(
        applied.plugins,
        vec!["mailchimp".to_string()],
        "{applied:?}"
    );
    assert!(applied.schedule.is_empty() && applied.reports_created.is_empty());
    assert!(applied.pending.is_empty(), "{applied:?}");
    let config = plugins
        .plugin_config(4242, "mailchimp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        config.settings,
        json!({"list_id": "list1", "batch_size": 200})
    );
    assert!(config.enabled && config.secret_name.is_some());

    // Applying twice changes nothing and creates nothing new.
    let again = plugins.apply_template(4242, &t).await.unwrap();
    assert!(!again.changed(), "{again:?}");
    assert!(again.lines().is_empty(), "{again:?}");
    assert_eq!(report_list(&data), reports);

    // The routing: a high-severity alert of the organization also goes to `team`; a medium
    // one only to the rule's channel.
    let report = HealthReport::from_results(
        vec![
            CheckResult::new("sync:failureStreak", "component", HealthStatus::Fail)
                .for_org(4242, Some("supporters")),
            CheckResult::new("sync:freshness", "component", HealthStatus::Fail)
                .for_org(4242, Some("campaigns")),
        ],
        "t".into(),
        1,
    );
    let notifier = Arc::new(root.notifier().unwrap()) as Arc<dyn Notifier>;
    let eval = Alerts::new(root.data(), notifier, default_rules())
        .evaluate(&report)
        .await
        .unwrap();
    assert_eq!(eval.messages.len(), 2, "{eval:?}");
    let deliveries = json_of(cli(&data).args(["notify", "list", "--json"]));
    let mut seen: Vec<(String, String)> = deliveries
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap().to_string(),
                d["message_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let to = |c: &str| seen.iter().filter(|(ch, _)| ch == c).count();
    assert_eq!(to("ops"), 2, "{deliveries}");
    assert_eq!(to("team"), 1, "{deliveries}");
    let team_msg = &seen.iter().find(|(c, _)| c == "team").unwrap().1;
    assert!(
        seen.iter().any(|(c, m)| c == "ops" && m == team_msg),
        "the routed copy is the failure-streak message: {deliveries}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_work_on_the_aws_backend() {
    let stack = classy_sync_tests::cli::AwsStack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let aws = |args: &[&str]| stack.command(cli(&dir.path().join("unused")), args);
    let mut t = regional();
    t.as_object_mut().unwrap().remove("alerts");
    t["reports"][0]["recipients"] = json!({"emails": ["board@example.org"]});
    let file = write(dir.path(), "regional.json", &t);
    let mut bad = t.clone();
    bad["plugins"]["mailchimp"]["password"] = json!("pw-not-for-logs");
    let bad_file = write(dir.path(), "bad.json", &bad);
    let (code, _, err) = run(&mut aws(&[
        "template", "add", "regional", "--file", &bad_file,
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("plugins.mailchimp.password: secrets never go in a template"),
        "{err}"
    );
    assert!(!err.contains("pw-not-for-logs"));
    ok(&mut aws(&["template", "add", "regional", "--file", &file]));
    let listed = names(&json_of(&mut aws(&["template", "list", "--json"])));
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.contains(&("regional".to_string(), false)));
    assert_eq!(
        json_of(&mut aws(&["template", "show", "regional", "--json"]))["schedule"],
        json!({"supporters": 900, "transactions": 300})
    );
    let out = ok(
        aws(&["org", "add", "4242", "--name", "A", "--client-id", "c1"])
            .args(["--no-verify", "--template", "regional"])
            .env("CLASSY_CLIENT_SECRET", "client-secret-value"),
    );
    assert!(out.contains("report weekly-4242 created"), "{out}");
    assert_eq!(
        json_of(&mut aws(&["org", "show", "4242", "--json"]))["schedule"],
        json!({"supporters": 900, "transactions": 300})
    );
    ok(&mut aws(&["template", "remove", "regional"]));
    let (code, _, err) = run(&mut aws(&["template", "show", "regional"]));
    assert_ne!(code, 0);
    assert!(err.contains("not found"), "{err}");
    let audit = ok(&mut aws(&["audit", "list", "--json"]));
    for action in ["template add", "org template", "template remove"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
}
