//! The audit trail end to end on `--backend local`: real commands append hash-chained
//! entries (who, what, target, outcome, digests of the state, never a secret), `audit list`
//! and `audit verify` read them, concurrent processes stay one chain, and an entry changed or
//! deleted in the SQLite file makes `audit verify` exit non-zero naming the entry.

use classy_sync_core::domain::audit::{state_digest, AuditEntry};
use classy_sync_core::domain::keys::{audit_entry_sk, AUDIT_PK};
use classy_sync_core::ports::{Condition, Store};
use classy_sync_local::SqliteStore;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");
const CLIENT_SECRET: &str = "audit-client-secret-7f3a9c";

fn cli(data: &Path) -> Command {
    let mut c = classy_sync_tests::cli::local(BIN, data);
    c.env("USER", "audit-tester")
        .env_remove("CLASSY_SYNC_AUDIT_RETENTION_DAYS");
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

fn ok(c: &mut Command) -> String {
    let (success, stdout, stderr) = run(c);
    assert!(success, "failed: {stdout}\n{stderr}");
    stdout
}

fn entries(data: &Path, extra: &[&str]) -> Vec<AuditEntry> {
    let mut args = vec!["audit", "list", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(cli(data).args(args))).unwrap()
}

fn add_org(data: &Path, id: &str) {
    ok(cli(data)
        .args([
            "org",
            "add",
            id,
            "--name",
            "Audit Org",
            "--client-id",
            "audit-app",
            "--no-verify",
        ])
        .env("CLASSY_CLIENT_SECRET", CLIENT_SECRET));
}

#[tokio::test]
async fn commands_are_audited_chained_and_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // Nothing recorded yet: an empty trail is intact.
    let out = ok(cli(data).args(["audit", "verify"]));
    assert!(out.contains("chain intact"), "{out}");

    add_org(data, "5001");
    add_org(data, "5002");
    ok(cli(data).args(["org", "disable", "5001"]));
    ok(cli(data).args([
        "org",
        "schedule",
        "5002",
        "--entity",
        "supporters",
        "--every",
        "600",
    ]));
    ok(cli(data).args(["notify", "channel", "add", "board", "console"]));
    ok(cli(data).args(["failures", "reset", "5002"]));
    // A failed attempt that reaches the store: the organization is unknown.
    let (success, _, stderr) = run(cli(data).args(["org", "enable", "9999"]));
    assert!(!success);
    assert!(stderr.contains("9999"), "{stderr}");

    let all = entries(data, &[]);
    let actions: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("org add", "org 5001", "ok"),
            ("org add", "org 5002", "ok"),
            ("org disable", "org 5001", "ok"),
            ("org schedule", "org 5002 supporters", "ok"),
            ("notify channel add", "channel board", "ok"),
            ("failures reset", "org 5002", "ok"),
            ("org enable", "org 9999", all[6].outcome.as_str()),
        ]
    );
    assert!(
        all[6].outcome.starts_with("failed: ") && all[6].outcome.contains("9999"),
        "{}",
        all[6].outcome
    );
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<u64>>()
    );
    assert!(all.iter().all(|e| e.actor == "audit-tester"));
    for w in all.windows(2) {
        assert_eq!(w[1].prev_hash.as_deref(), Some(w[0].hash.as_str()));
        assert_eq!(w[1].prev_at.as_deref(), Some(w[0].at.as_str()));
    }

    // The digests are of the organization as `org show --json` prints it: no secret in it.
    let shown: Value =
        serde_json::from_str(&ok(cli(data).args(["org", "show", "5002", "--json"]))).unwrap();
    assert_eq!(all[3].after_digest, Some(state_digest(&shown)));
    let disabled: Value =
        serde_json::from_str(&ok(cli(data).args(["org", "show", "5001", "--json"]))).unwrap();
    assert_eq!(all[2].after_digest, Some(state_digest(&disabled)));
    assert_ne!(all[2].before_digest, all[2].after_digest);
    assert_eq!(all[0].before_digest, None);
    assert!(all[0].after_digest.is_some());
    // Never the client secret: not in the listing, not anywhere in the audit partition.
    let listing = ok(cli(data).args(["audit", "list", "--json"]));
    assert!(!listing.contains(CLIENT_SECRET));
    let store = SqliteStore::open(data.join("store.db")).unwrap();
    let page = store
        .query(AUDIT_PK, &classy_sync_core::ports::SkRange::All, None, 1000)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 8, "HEAD and 7 entries");
    for item in &page.items {
        assert!(!item.data.contains(CLIENT_SECRET), "{}", item.data);
        if item.sk != "HEAD" {
            let at = chrono::DateTime::parse_from_rfc3339(&item.parse::<AuditEntry>().unwrap().at)
                .unwrap();
            // Retention: a year by default.
            assert_eq!(item.expires_at, Some(at.timestamp() + 365 * 24 * 3600));
        }
    }

    // Filters.
    let of_5002 = entries(data, &["--org", "5002"]);
    assert_eq!(
        of_5002.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 4, 6]
    );
    assert!(entries(data, &["--since", "2999-01-01"]).is_empty());
    assert_eq!(entries(data, &["--since", "1h"]).len(), 7);
    let table = ok(cli(data).args(["audit", "list"]));
    assert!(
        table.contains("org disable") && table.contains("audit-tester"),
        "{table}"
    );

    let out = ok(cli(data).args(["audit", "verify"]));
    assert!(out.contains("7 entries checked, seq 1 to 7"), "{out}");
    assert!(out.contains("chain intact"), "{out}");

    // Tamper: entry 3 now says someone else disabled the organization.
    let key = audit_entry_sk(3);
    let original = store.get(AUDIT_PK, &key).await.unwrap().unwrap();
    let mut forged = original.clone();
    forged.data = original.data.replace("audit-tester", "someone-else");
    assert_ne!(forged.data, original.data);
    store.put(forged, Condition::Always).await.unwrap();
    let (success, out, _) = run(cli(data).args(["audit", "verify"]));
    assert!(!success, "a changed entry must fail verification: {out}");
    assert!(out.contains("chain broken: entry 3 was changed"), "{out}");
    let (success, out, _) = run(cli(data).args(["audit", "verify", "--json"]));
    assert!(!success);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["intact"], false);

    // Restored, it verifies again; deleting a middle entry breaks it again.
    store.put(original, Condition::Always).await.unwrap();
    ok(cli(data).args(["audit", "verify"]));
    store
        .delete(AUDIT_PK, &audit_entry_sk(4), Condition::Always)
        .await
        .unwrap();
    let (success, out, _) = run(cli(data).args(["audit", "verify"]));
    assert!(!success);
    assert!(out.contains("entries 4..=4 were deleted"), "{out}");

    // Deleting the tail (the newest entry) is detected through the head.
    let dir2 = tempfile::tempdir().unwrap();
    add_org(dir2.path(), "6001");
    ok(cli(dir2.path()).args(["org", "disable", "6001"]));
    let store2 = SqliteStore::open(dir2.path().join("store.db")).unwrap();
    store2
        .delete(AUDIT_PK, &audit_entry_sk(2), Condition::Always)
        .await
        .unwrap();
    let (success, out, _) = run(cli(dir2.path()).args(["audit", "verify"]));
    assert!(!success);
    assert!(out.contains("the last entries 2..=2 were deleted"), "{out}");

    // Deleting the head: verify says so, and the next command does not start a second
    // chain; it fails naming the audit trail (its change stays made).
    store2
        .delete(AUDIT_PK, "HEAD", Condition::Always)
        .await
        .unwrap();
    let (success, out, _) = run(cli(dir2.path()).args(["audit", "verify"]));
    assert!(!success);
    assert!(
        out.contains("the head is missing while entries exist (1 of them)"),
        "{out}"
    );
    let (success, _, stderr) = run(cli(dir2.path()).args(["org", "enable", "6001"]));
    assert!(!success);
    assert!(
        stderr.contains("audit trail could not record org enable")
            && stderr.contains("head is missing"),
        "{stderr}"
    );
    let shown: Value =
        serde_json::from_str(&ok(cli(dir2.path()).args(["org", "show", "6001", "--json"])))
            .unwrap();
    assert_eq!(shown["status"], "enabled");
}

#[test]
fn concurrent_processes_append_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    add_org(data, "7001");
    let children: Vec<_> = (0..8)
        .map(|i| {
            let verb = if i % 2 == 0 { "disable" } else { "enable" };
            cli(data)
                .args(["org", verb, "7001"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all = entries(data, &[]);
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<u64>>()
    );
    let out = ok(cli(data).args(["audit", "verify"]));
    assert!(
        out.contains("9 entries checked") && out.contains("chain intact"),
        "{out}"
    );
}

#[test]
fn a_bad_retention_setting_is_refused_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    add_org(data, "8001");
    let (success, _, stderr) = run(cli(data)
        .args(["org", "disable", "8001"])
        .env("CLASSY_SYNC_AUDIT_RETENTION_DAYS", "forever"));
    assert!(!success);
    assert!(
        stderr.contains("audit trail") && stderr.contains("CLASSY_SYNC_AUDIT_RETENTION_DAYS"),
        "{stderr}"
    );
    // The change itself stayed made.
    let shown: Value =
        serde_json::from_str(&ok(cli(data).args(["org", "show", "8001", "--json"]))).unwrap();
    assert_eq!(shown["status"], "disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_backend_records_the_callers_arn_and_verifies_on_dynamodb() {
    use classy_sync_aws::DynamoStore;
    let stack = classy_sync_tests::cli::AwsStack::start().await;
    let aws = |args: &[&str]| {
        let mut c = stack.command(Command::new(BIN), args);
        c.env("CLASSY_SYNC_AUDIT_RETENTION_DAYS", "30")
            // The OS user is not the actor on AWS.
            .env("USER", "local-user")
            .env_remove("CLASSY_CLIENT_SECRET")
            .stdin(Stdio::null());
        c
    };
    ok(aws(&[
        "org",
        "add",
        "4343",
        "--name",
        "A",
        "--client-id",
        "c1",
        "--no-verify",
    ])
    .env("CLASSY_CLIENT_SECRET", CLIENT_SECRET));
    ok(&mut aws(&["org", "disable", "4343"]));
    // Concurrent appenders on DynamoDB (transactions with conditions) stay one chain.
    let children: Vec<_> = (0..4)
        .map(|i| {
            aws(&["org", if i % 2 == 0 { "enable" } else { "disable" }, "4343"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let sdk = stack.moto.sdk_config().await;
    let arn = classy_sync_aws::caller_arn(&sdk).await.unwrap();
    assert!(arn.starts_with("arn:aws:"), "{arn}");
    let listed: Vec<AuditEntry> =
        serde_json::from_str(&ok(&mut aws(&["audit", "list", "--json"]))).unwrap();
    assert_eq!(
        listed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<u64>>()
    );
    assert!(listed.iter().all(|e| e.actor == arn), "{listed:?}");
    assert_eq!(listed[0].action, "org add");
    assert_eq!(listed[1].action, "org disable");
    let out = ok(&mut aws(&["audit", "verify"]));
    assert!(
        out.contains("6 entries checked") && out.contains("chain intact"),
        "{out}"
    );

    // In DynamoDB: TTL 30 days on the entries, never the secret; then a forged entry.
    let settings = stack.settings();
    let store = DynamoStore::from_settings(&sdk, &settings);
    let entry = store
        .get(AUDIT_PK, &audit_entry_sk(1))
        .await
        .unwrap()
        .unwrap();
    assert!(!entry.data.contains(CLIENT_SECRET));
    let at = chrono::DateTime::parse_from_rfc3339(&listed[0].at).unwrap();
    assert_eq!(entry.expires_at, Some(at.timestamp() + 30 * 24 * 3600));
    let mut forged = entry.clone();
    forged.data = entry.data.replace("org add", "org list");
    store.put(forged, Condition::Always).await.unwrap();
    let (success, out, _) = run(&mut aws(&["audit", "verify"]));
    assert!(!success, "{out}");
    assert!(out.contains("entry 1 was changed"), "{out}");
}

#[test]
fn plugin_report_notify_alert_and_dlq_commands_are_audited() {
    const MC_KEY: &str = "0123456789abcdef0123456789abcdef-us1";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    add_org(data, "9001");
    ok(cli(data)
        .args([
            "org",
            "plugin",
            "add",
            "9001",
            "mailchimp",
            "--list-id",
            "L1",
            "--no-verify",
        ])
        .env("MAILCHIMP_API_KEY", MC_KEY));
    ok(cli(data).args(["org", "plugin", "remove", "9001", "mailchimp"]));
    // Removing it again fails, and is recorded as failed.
    let (success, _, _) = run(cli(data).args(["org", "plugin", "remove", "9001", "mailchimp"]));
    assert!(!success);
    ok(cli(data).args([
        "report",
        "add",
        "weekly",
        "--org",
        "9001",
        "--schedule",
        "0 8 * * MON",
        "--email",
        "ops@example.org",
    ]));
    ok(cli(data).args(["report", "remove", "weekly"]));
    ok(cli(data).args(["notify", "channel", "add", "ops", "console"]));
    ok(cli(data).args(["notify", "channel", "remove", "ops"]));
    ok(cli(data).args(["alerts", "silence", "org 9001", "--for", "2h"]));
    ok(cli(data).args(["dlq", "replay", "--all"]));

    let all = entries(data, &[]);
    let got: Vec<(&str, &str, Option<u64>, bool)> = all
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.target.as_str(),
                e.org,
                e.outcome == "ok",
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("org add", "org 9001", Some(9001), true),
            (
                "org plugin add",
                "org 9001 plugin mailchimp",
                Some(9001),
                true
            ),
            (
                "org plugin remove",
                "org 9001 plugin mailchimp",
                Some(9001),
                true
            ),
            (
                "org plugin remove",
                "org 9001 plugin mailchimp",
                Some(9001),
                false
            ),
            ("report add", "report weekly", Some(9001), true),
            ("report remove", "report weekly", Some(9001), true),
            ("notify channel add", "channel ops", None, true),
            ("notify channel remove", "channel ops", None, true),
            ("alerts silence", "silence org 9001", None, true),
            ("dlq replay", "all dead letters", None, true),
        ]
    );
    assert!(
        all[3].outcome.contains("not configured"),
        "{}",
        all[3].outcome
    );
    // A removal's before-state is the addition's after-state.
    assert_eq!(all[2].before_digest, all[1].after_digest);
    assert_eq!(all[5].before_digest, all[4].after_digest);
    assert_eq!(all[7].before_digest, all[6].after_digest);
    let store = std::fs::read(data.join("store.db")).unwrap();
    let needle = MC_KEY.as_bytes();
    assert!(
        !store.windows(needle.len()).any(|w| w == needle),
        "the Mailchimp key is in the store"
    );
    let out = ok(cli(data).args(["audit", "verify"]));
    assert!(
        out.contains("10 entries checked") && out.contains("chain intact"),
        "{out}"
    );
}

#[test]
fn recording_a_credential_expiry_is_audited_and_showing_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    add_org(data, "9101");
    ok(cli(data).args(["org", "credentials", "9101", "--expires-at", "2027-01-31"]));
    ok(cli(data).args(["org", "credentials", "9101"]));
    ok(cli(data).args(["org", "credentials", "9101", "--clear"]));
    let all = entries(data, &[]);
    let got: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("org add", "org 9101", "ok"),
            ("org credentials", "org 9101", "ok"),
            ("org credentials", "org 9101", "ok"),
        ]
    );
    // Recorded then cleared: the clear's before is the record's after, its after the first's
    // before (nothing recorded).
    assert_eq!(all[2].before_digest, all[1].after_digest);
    assert_eq!(all[2].after_digest, all[1].before_digest);
    assert_ne!(all[1].before_digest, all[1].after_digest);
}

#[tokio::test]
async fn acknowledging_an_alert_is_audited_with_its_organization() {
    use classy_sync_core::domain::alerts::{AlertState, AlertStatus};
    use classy_sync_core::domain::keys::{alert_state_sk, ALERTS_PK};
    use classy_sync_core::ports::Item;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    add_org(data, "9201");
    // A firing alert as the alert evaluation stores it.
    let firing = AlertState {
        fingerprint: "fp9201abc".into(),
        rule: "data-stale".into(),
        subject: "org 9201 supporters".into(),
        org: Some(9201),
        severity: classy_sync_core::domain::Severity::Medium,
        status: AlertStatus::Firing,
        stage: None,
        summary: "stale".into(),
        fields: Vec::new(),
        started_at: 1_700_000_000,
        last_notified_at: None,
        notifications: 0,
        acked_at: None,
        acked_by: None,
        resolved_at: None,
    };
    let store = SqliteStore::open(data.join("store.db")).unwrap();
    store
        .put(
            Item::json(ALERTS_PK, alert_state_sk(&firing.fingerprint), &firing),
            Condition::Always,
        )
        .await
        .unwrap();
    ok(cli(data).args(["alerts", "ack", "fp9201", "--by", "oncall"]));
    let (success, _, _) = run(cli(data).args(["alerts", "ack", "nosuchalert"]));
    assert!(!success);
    let all = entries(data, &[]);
    assert_eq!(all.len(), 3);
    assert_eq!(
        (all[1].action.as_str(), all[1].target.as_str(), all[1].org),
        ("alerts ack", "alert fp9201", Some(9201))
    );
    assert_eq!(all[1].outcome, "ok");
    assert_eq!(
        all[1].before_digest,
        Some(state_digest(&serde_json::to_value(&firing).unwrap()))
    );
    assert_ne!(all[1].after_digest, all[1].before_digest);
    assert_eq!(all[2].action, "alerts ack");
    assert!(all[2].outcome.starts_with("failed: "), "{}", all[2].outcome);
    assert_eq!(all[2].org, None);
}
