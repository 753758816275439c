//! `classy-sync analytics fep` end to end: onboarded and synced through the binary against the
//! sandbox, its JSON is the engine's FepReport for the same store, its tables name every
//! figure, its lists are capped by `--limit`, and a month outside 1–12 is refused.

use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::analytics::fep::FepOptions;
use classy_sync_core::domain::Timestamp;
use classy_sync_runtime::local::LocalRoot;
use classy_sync_tests::cli::{against_sandbox, all_output, stdout_ok};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");
const AS_OF: &str = "2026-11-01T00:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_fep_prints_the_engine_report_as_json_and_tables() {
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs: 1,
        supporters: 400,
        transactions: 1500,
        plans: 80,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cli = || against_sandbox(BIN, dir.path(), &sandbox);
    let app = &sandbox.apps()[0];
    let org = app.organizations[0].to_string();
    stdout_ok(
        cli()
            .args(["org", "add", &org, "--name", "Fep Org", "--client-id"])
            .arg(&app.client_id)
            .env("CLASSY_CLIENT_SECRET", &app.client_secret)
            .output()
            .unwrap(),
    );
    stdout_ok(cli().args(["sync", &org]).output().unwrap());

    let args = |extra: &[&str]| {
        let mut v = vec![
            "analytics",
            "fep",
            org.as_str(),
            "--period",
            "2025",
            "--as-of",
            AS_OF,
            "--limit",
            "3",
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let json: Value =
        serde_json::from_str(&stdout_ok(cli().args(args(&["--json"])).output().unwrap())).unwrap();
    let data = LocalRoot::open(dir.path()).unwrap().data();
    let report = data
        .fep_report(
            org.parse().unwrap(),
            &"2025".parse().unwrap(),
            Timestamp::parse(AS_OF).unwrap(),
            &FepOptions {
                limit: 3,
                fiscal_year_start_month: 1,
            },
        )
        .await
        .unwrap();
    // Both through text, so floats parse alike.
    let want: Value = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(json, want);
    assert!(report.retention.donors_previous > 0);
    assert!(report.lapsed.lybunt.donors > 3);
    assert_eq!(report.lapsed.lybunt.list.len(), 3);
    assert_eq!(
        (report.lapsed.this_year, report.lapsed.last_year),
        (2025, 2024)
    );

    let text = stdout_ok(cli().args(args(&[])).output().unwrap());
    for label in [
        "donor retention",
        "new-donor retention",
        "repeat-donor retention",
        "dollar retention",
        "recaptured",
        "downgraded",
        "LYBUNT: gave in 2024, not in 2025 to date",
        "SYBUNT",
        "consented for Mailchimp",
        "monthly recurring revenue",
        "MRR churn",
        "chargebacks lost",
        "median gift",
        "$10,000+",
    ] {
        assert!(text.contains(label), "{label} missing from:\n{text}");
    }
    let first = &report.lapsed.lybunt.list[0];
    assert!(text.contains(&first.supporter_id.to_string()), "{text}");

    // A July fiscal year names years by their end; month 13 is refused.
    let july: Value = serde_json::from_str(&stdout_ok(
        cli()
            .args(args(&["--fiscal-year-start", "7", "--json"]))
            .output()
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(july["lapsed"]["fiscal_year_start_month"], 7);
    assert_eq!(july["lapsed"]["this_year"], 2026);
    let bad = cli()
        .args(args(&["--fiscal-year-start", "13"]))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(all_output(&bad).contains("13"), "{}", all_output(&bad));
}
