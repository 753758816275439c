//! The `classy-sync` binary end to end against the sandbox: onboarding without secrets on the
//! command line, sync killed with SIGKILL and resumed to exact truth, the scheduler, export,
//! and clear failures on bad input.

use classy_sandbox::{RunningSandbox, SandboxConfig};
use classy_sync_core::domain::Entity;
use classy_sync_tests::assert_same_records;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");

fn cli(data: &Path, sandbox: &RunningSandbox) -> Command {
    let mut c = Command::new(BIN);
    c.env("CLASSY_SYNC_DATA_DIR", data)
        .env("CLASSY_API_BASE_URL", sandbox.api_base_url())
        .env("CLASSY_AUTH_URL", sandbox.auth_url())
        .env("CLASSY_RATE_LIMIT_PER_MINUTE", "0")
        .env("CLASSY_RETRY_BASE_MS", "5")
        // The sandbox speaks plain http: a development URL.
        .env("CLASSY_SYNC_ALLOW_DEV_URLS", "1")
        .env_remove("CLASSY_CLIENT_SECRET")
        .stdin(Stdio::null());
    c
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn onboard(data: &Path, sandbox: &RunningSandbox) -> Vec<u64> {
    let mut orgs = Vec::new();
    for app in sandbox.apps() {
        for org in &app.organizations {
            let out = cli(data, sandbox)
                .args([
                    "org",
                    "add",
                    &org.to_string(),
                    "--name",
                    "Test Org",
                    "--client-id",
                    &app.client_id,
                ])
                .env("CLASSY_CLIENT_SECRET", &app.client_secret)
                .output()
                .unwrap();
            ok(out);
            orgs.push(*org as u64);
        }
    }
    orgs
}

async fn truth(sandbox: &RunningSandbox, org: u64, entity: Entity) -> Vec<Value> {
    let url = format!(
        "{}/admin/orgs/{org}/{}",
        sandbox.base_url(),
        entity.api_path()
    );
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn exported(
    data: &Path,
    sandbox: &RunningSandbox,
    org: u64,
    entity: Entity,
) -> Vec<serde_json::Map<String, Value>> {
    let out = ok(cli(data, sandbox)
        .args(["export", &org.to_string(), "--entity", entity.name()])
        .output()
        .unwrap());
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_killed_with_sigkill_at_random_points_resumes_to_exact_truth() {
    let sandbox = classy_sandbox::start(SandboxConfig {
        seed: 5,
        orgs: 1,
        supporters: 6000,
        campaigns: 10,
        transactions: 8000,
        plans: 300,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    // Slow answers so the kills land mid-walk.
    reqwest::Client::new()
        .put(format!("{}/admin/faults", sandbox.base_url()))
        .json(&json!({"seed": 2, "slow_rate": 1.0, "slow_ms": 8}))
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let orgs = onboard(dir.path(), &sandbox).await;
    let org = orgs[0];
    let mut rng = fastrand::Rng::with_seed(20261121);
    let mut killed = 0;
    for round in 0..6 {
        let mut child = cli(dir.path(), &sandbox)
            .args(["sync", &org.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(rng.u64(150..1200))).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        if round == 2 {
            // Changes between kills must be picked up too.
            reqwest::Client::new()
                .post(format!(
                    "{}/admin/orgs/{org}/supporters/touch",
                    sandbox.base_url()
                ))
                .json(&json!({"count": 30}))
                .send()
                .await
                .unwrap();
        }
    }
    assert!(killed >= 3, "only {killed} runs were killed mid-way");
    reqwest::Client::new()
        .put(format!("{}/admin/faults", sandbox.base_url()))
        .json(&json!({"seed": 2}))
        .send()
        .await
        .unwrap();
    ok(cli(dir.path(), &sandbox)
        .args(["sync", &org.to_string()])
        .output()
        .unwrap());
    for e in Entity::ALL {
        assert_same_records(
            e,
            &truth(&sandbox, org, e).await,
            &exported(dir.path(), &sandbox, org, e),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_takes_the_secret_from_the_environment_only_and_never_prints_it() {
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs: 1,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = &sandbox.apps()[0];
    let org = app.organizations[0].to_string();
    // No secret in the environment and no terminal: a clear refusal.
    let out = cli(dir.path(), &sandbox)
        .args([
            "org",
            "add",
            &org,
            "--name",
            "X",
            "--client-id",
            &app.client_id,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLASSY_CLIENT_SECRET"));
    // A wrong secret is caught before anything is saved.
    let out = cli(dir.path(), &sandbox)
        .args([
            "org",
            "add",
            &org,
            "--name",
            "X",
            "--client-id",
            &app.client_id,
        ])
        .env("CLASSY_CLIENT_SECRET", "wrong-secret-value")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-secret-value"));
    let listed = ok(cli(dir.path(), &sandbox)
        .args(["org", "list", "--json"])
        .output()
        .unwrap());
    assert_eq!(serde_json::from_str::<Value>(&listed).unwrap(), json!([]));

    onboard(dir.path(), &sandbox).await;
    for args in [
        vec!["org", "list", "--json"],
        vec!["org", "show", &org],
        vec!["status", "--json"],
    ] {
        let out = cli(dir.path(), &sandbox).args(&args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {all}");
        assert!(
            !all.contains(&app.client_secret),
            "{args:?} printed the secret"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secrets.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Disable and enable round-trip.
    ok(cli(dir.path(), &sandbox)
        .args(["org", "disable", &org])
        .output()
        .unwrap());
    let out = cli(dir.path(), &sandbox)
        .args(["sync", &org])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a disabled organization does not sync"
    );
    ok(cli(dir.path(), &sandbox)
        .args(["org", "enable", &org])
        .output()
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_runs_every_due_job_once_and_export_writes_whole_files() {
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs: 2,
        supporters: 300,
        transactions: 500,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let orgs = onboard(dir.path(), &sandbox).await;
    let out = ok(cli(dir.path(), &sandbox)
        .args(["run", "--once", "--tick", "1"])
        .output()
        .unwrap());
    let runs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        runs.len(),
        orgs.len() * 4,
        "one run per organization×entity: {out}"
    );
    assert!(runs.iter().all(|r| r["outcome"] == "succeeded"), "{out}");
    for &org in &orgs {
        for e in Entity::ALL {
            assert_same_records(
                e,
                &truth(&sandbox, org, e).await,
                &exported(dir.path(), &sandbox, org, e),
            );
        }
    }
    // CSV export to a file, with computed columns.
    let file = dir.path().join("supporters.csv");
    ok(cli(dir.path(), &sandbox)
        .args([
            "export",
            &orgs[0].to_string(),
            "--entity",
            "supporters",
            "--format",
            "csv",
            "--output",
        ])
        .arg(&file)
        .output()
        .unwrap());
    let text = std::fs::read_to_string(&file).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("id,")
            && header.contains("email_address")
            && header.contains("lifetime_gross_amount"),
        "{header}"
    );
    assert_eq!(text.lines().count(), 301);
    // A failing export leaves no file behind.
    let bad = dir.path().join("nothing.csv");
    let out = cli(dir.path(), &sandbox)
        .args(["export", "777", "--entity", "supporters", "--output"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!bad.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_data_dir_is_reported_and_left_untouched() {
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs: 1,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let junk = b"this is not a database, and must stay exactly as it is".repeat(100);
    std::fs::write(dir.path().join("store.db"), &junk).unwrap();
    let out = cli(dir.path(), &sandbox).args(["status"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.db"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("store.db")).unwrap(), junk);

    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(dir2.path().join("secrets.json"), "{ not json").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir2.path().join("secrets.json"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let out = cli(dir2.path(), &sandbox)
        .args(["org", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("secrets.json"));
    assert_eq!(
        std::fs::read_to_string(dir2.path().join("secrets.json")).unwrap(),
        "{ not json"
    );

    let out = cli(dir.path(), &sandbox)
        .args(["sync", "--entity", "donations", "--all"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("donations"));
}
