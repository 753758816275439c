//! `classy-sync usage` on the local backend: after real syncs through the CLI against the
//! sandbox, `usage --json` counts the runs, records and Classy calls the syncs reported and the
//! sandbox saw; the table names the operations; a bad --period is refused naming the flag.

use classy_sandbox::{RunningSandbox, SandboxConfig};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");

fn cli(data: &Path, sandbox: &RunningSandbox) -> Command {
    classy_sync_tests::cli::against_sandbox(BIN, data, sandbox)
}

fn ok(out: Output) -> String {
    classy_sync_tests::cli::stdout_ok(out)
}

async fn sandbox_calls(sandbox: &RunningSandbox, reset: bool) -> u64 {
    let http = reqwest::Client::new();
    let base = format!("{}/admin/counters", sandbox.base_url());
    let v: Value = if reset {
        http.post(format!("{base}/reset"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    } else {
        http.get(&base).send().await.unwrap().json().await.unwrap()
    };
    v["total"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_json_counts_the_cli_syncs_and_bad_periods_name_the_flag() {
    let sandbox = classy_sandbox::start(SandboxConfig {
        seed: 5,
        orgs: 1,
        apps: 1,
        supporters: 120,
        campaigns: 3,
        transactions: 200,
        plans: 9,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let app = &sandbox.apps()[0];
    let org = app.organizations[0] as u64;
    ok(cli(data, &sandbox)
        .args(["org", "add", &org.to_string(), "--name", "Usage Org"])
        .args(["--client-id", &app.client_id])
        .env("CLASSY_CLIENT_SECRET", &app.client_secret)
        .output()
        .unwrap());
    // Nothing ran yet: empty, not an error.
    let empty: Value = serde_json::from_str(&ok(cli(data, &sandbox)
        .args(["usage", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(empty["by_org"], serde_json::json!([]), "{empty}");

    // The credential check of `org add` is not an operation: count from here.
    sandbox_calls(&sandbox, true).await;
    let mut fetched = 0;
    let mut calls = 0;
    let mut runs = 0;
    for _ in 0..2 {
        let out: Value = serde_json::from_str(&ok(cli(data, &sandbox)
            .args(["sync", &org.to_string(), "--json"])
            .output()
            .unwrap()))
        .unwrap();
        for r in out["runs"].as_array().unwrap() {
            fetched += r["fetched"].as_u64().unwrap();
            calls += r["api_calls"].as_u64().unwrap();
            runs += 1;
        }
    }
    assert_eq!(runs, 8);
    let seen = sandbox_calls(&sandbox, false).await;
    assert_eq!(calls, seen, "the runs' calls are the calls the sandbox saw");

    let usage: Value = serde_json::from_str(&ok(cli(data, &sandbox)
        .args([
            "usage",
            "--org",
            &org.to_string(),
            "--period",
            "2h",
            "--json",
        ])
        .output()
        .unwrap()))
    .unwrap();
    let sync = usage["by_operation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "sync")
        .unwrap_or_else(|| panic!("{usage}"));
    assert_eq!(sync["runs"], runs, "{usage}");
    assert_eq!(sync["records"], fetched, "{usage}");
    assert!(fetched >= 120 + 3 + 200 + 9);
    assert_eq!(sync["classy_calls"], seen, "{usage}");
    assert_eq!(sync["errors"], 0);
    for p in ["p50", "p95", "p99"] {
        assert!(sync["duration_ms"][p].is_u64(), "{usage}");
    }
    let by_org = usage["by_org"].as_array().unwrap();
    assert_eq!(by_org.len(), 4, "one row per entity: {usage}");
    assert!(by_org.iter().all(|r| r["org"] == org && r["runs"] == 2));
    // Per day (one row unless the test runs across midnight UTC) and per application.
    for key in ["classy_calls_per_day", "classy_calls_per_application_day"] {
        let days = usage[key].as_array().unwrap();
        let sum: u64 = days
            .iter()
            .map(|d| d["classy_calls"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, seen, "{key}: {usage}");
    }
    assert_eq!(
        usage["classy_calls_per_application_day"][0]["application"],
        app.client_id.as_str()
    );
    assert_eq!(usage["budget_per_minute"], 1800);

    // The table.
    let table = ok(cli(data, &sandbox).args(["usage"]).output().unwrap());
    for word in [
        "sync",
        "supporters",
        "recurring-plans",
        "p99 ms",
        "Usage Org",
        "share of daily budget",
        app.client_id.as_str(),
    ] {
        assert!(table.contains(word), "{word}: {table}");
    }

    // Bad periods: refused, naming the flag; nothing printed on stdout.
    for bad in ["91d", "3w", "0d", "x"] {
        let out = cli(data, &sandbox)
            .args(["usage", "--period", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--period"), "{bad}: {err}");
        assert!(out.stdout.is_empty());
    }
    // An unknown organization is an error.
    let out = cli(data, &sandbox)
        .args(["usage", "--org", "999999"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `usage --backend aws` reads the same records from DynamoDB (moto): run and operation
/// records written through the AWS root, one run from before the period left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_with_the_aws_backend_reads_run_and_operation_records_from_dynamodb() {
    use classy_sync_core::domain::keys::{org_pk, run_sk};
    use classy_sync_core::domain::usage::Operation;
    use classy_sync_core::domain::Entity;
    use classy_sync_core::engine::{SyncOutcome, SyncReport};
    use classy_sync_core::ports::{Condition, Item};
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

    let root =
        classy_sync_runtime::aws::AwsRoot::from_sdk(moto.sdk_config().await, stack.settings());
    let data = root.data();
    let now = data.clock.now().timestamp_millis();
    // Five supporter runs (one failed) in the last hour, one two hours ago.
    let durations = [400u64, 100, 300, 500, 200];
    let mut starts: Vec<i64> = (0..5).map(|i| now - 600_000 + i * 1000).collect();
    starts.push(now - 2 * 3_600_000);
    for (i, start) in starts.iter().enumerate() {
        let report = SyncReport {
            run_id: format!("r{i}"),
            org: 4242,
            entity: Entity::Supporters,
            mode: "incremental".into(),
            resumed: false,
            outcome: if i == 1 {
                SyncOutcome::Failed
            } else {
                SyncOutcome::Succeeded
            },
            fetched: 10 * (i as u64 + 1),
            created: 0,
            updated: 0,
            unchanged: 0,
            pages: 1,
            api_calls: 2,
            started_at: String::new(),
            started_at_ms: *start,
            duration_ms: durations.get(i).copied().unwrap_or(9_999),
            error: (i == 1).then(|| "boom".to_string()),
            aggregates_recomputed: 0,
            quarantined: 0,
        };
        data.store
            .put(
                Item::json(
                    org_pk(4242),
                    run_sk(Entity::Supporters, *start, &report.run_id),
                    &report,
                ),
                Condition::Always,
            )
            .await
            .unwrap();
    }
    let mut op = data.new_op(4242, Operation::Push, "mailchimp", now - 1000);
    op.duration_ms = 1234;
    op.records = Some(7);
    op.classy_calls = Some(0);
    op.mailchimp_calls = Some(5);
    data.record_op(&op).await.unwrap();
    let stored = data
        .store
        .get(
            &org_pk(4242),
            &classy_sync_core::domain::keys::op_sk("push", op.started_at_ms, &op.id),
        )
        .await
        .unwrap()
        .expect("the operation record");
    assert!(
        stored.expires_at.unwrap() > now / 1000 + 89 * 86_400,
        "kept 90 days"
    );

    let usage: Value = serde_json::from_str(&ok(aws(&["usage", "--period", "1h", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let rows = usage["by_org"].as_array().unwrap();
    let sync = rows.iter().find(|r| r["operation"] == "sync").unwrap();
    assert_eq!(sync["subject"], "supporters");
    assert_eq!(
        sync["runs"], 5,
        "the older run is outside the period: {usage}"
    );
    assert_eq!(sync["records"], 10 + 20 + 30 + 40 + 50);
    assert_eq!(sync["classy_calls"], 10);
    assert_eq!(sync["errors"], 1);
    assert_eq!(sync["error_rate"], 0.2);
    // 100, 200, 300, 400, 500: p50 rank 3, p95 and p99 rank 5.
    assert_eq!(sync["duration_ms"]["p50"], 300);
    assert_eq!(sync["duration_ms"]["p95"], 500);
    assert_eq!(sync["duration_ms"]["p99"], 500);
    let push = rows.iter().find(|r| r["operation"] == "push").unwrap();
    assert_eq!(
        (&push["runs"], &push["records"], &push["mailchimp_calls"]),
        (&Value::from(1), &Value::from(7), &Value::from(5))
    );
    // A longer period includes the older run.
    let usage: Value = serde_json::from_str(&ok(aws(&["usage", "--period", "3h", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(usage["by_operation"][0]["runs"], 6, "{usage}");
}
