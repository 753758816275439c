//! Tenant operations through the real binary: `org import`, `org update`, `org remove` and
//! `org credentials rotate`, against the sandbox over sockets (local backend) and moto (AWS).

use classy_sandbox::{AppInfo, RunningSandbox, SandboxConfig};
use classy_sync_core::ports::{SkRange, Store};
use classy_sync_tests::cli::{all_output, stdout_ok, AwsStack};
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");

fn cli(data: &Path, sandbox: &RunningSandbox) -> Command {
    classy_sync_tests::cli::against_sandbox(BIN, data, sandbox)
}

fn all(out: &Output) -> String {
    all_output(out)
}

fn ok(out: Output) -> String {
    stdout_ok(out)
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Writes a file with mode 0600 (0644 when `open`).
fn write_file(dir: &Path, name: &str, body: &str, open: bool) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    let mode = if open { 0o644 } else { 0o600 };
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn org_ids(data: &Path, sandbox: &RunningSandbox) -> Vec<u64> {
    let listed: Vec<Value> = serde_json::from_str(&ok(cli(data, sandbox)
        .args(["org", "list", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    listed.iter().map(|o| o["id"].as_u64().unwrap()).collect()
}

fn secrets_file(data: &Path) -> String {
    std::fs::read_to_string(data.join("secrets.json")).unwrap_or_default()
}

async fn sandbox(orgs: usize) -> RunningSandbox {
    classy_sandbox::start(SandboxConfig {
        orgs,
        supporters: 30,
        transactions: 40,
        plans: 4,
        campaigns: 2,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_checks_every_row_first_verifies_against_classy_and_writes_all_or_nothing() {
    let sb = sandbox(3).await;
    let app = &sb.apps()[0];
    let [a, b, c] = [0, 1, 2].map(|i| app.organizations[i] as u64);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = &app.client_secret;
    let client = &app.client_id;

    // Bad rows: every problem listed by line and field, exit 2, nothing written.
    let bad = write_file(
        dir.path(),
        "bad.csv",
        &format!(
            "classy_org_id,name,client_id,client_secret,timezone\n\
             {a},First,{client},{secret},America/New_York\n\
             x1,,{client},{secret},\n\
             {a},Dup,{client},,Mars/Base\n"
        ),
        false,
    );
    let out = cli(&data, &sb)
        .args(["org", "import"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", all(&out));
    let text = all(&out);
    for expected in [
        "line 3, classy_org_id: \"x1\" is not",
        "line 3, name: is required",
        &format!("line 4, classy_org_id: organization {a} is also on line 2"),
        "line 4, client_secret: is required",
        "line 4, timezone: \"Mars/Base\" is not an IANA time zone",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
    assert!(
        !text.contains(secret.as_str()),
        "a secret was printed: {text}"
    );
    assert!(org_ids(&data, &sb).is_empty());
    assert!(!secrets_file(&data).contains(secret.as_str()));

    // A secret Classy refuses on one row: refused before anything is written.
    let refused = write_file(
        dir.path(),
        "refused.csv",
        &format!(
            "classy_org_id,name,client_id,client_secret\n\
             {a},A,{client},{secret}\n\
             {b},B,{client},not-the-secret\n\
             {c},C,{client},{secret}\n"
        ),
        false,
    );
    let out = cli(&data, &sb)
        .args(["org", "import"])
        .arg(&refused)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", all(&out));
    assert!(
        all(&out).contains(&format!(
            "line 3, client_secret: Classy refused organization {b}"
        )),
        "{}",
        all(&out)
    );
    assert!(!all(&out).contains("not-the-secret"));
    assert!(org_ids(&data, &sb).is_empty());

    // Dry run of a good JSON file (group-readable: warned): prints the plan, writes nothing.
    let good_json = write_file(
        dir.path(),
        "orgs.json",
        &serde_json::json!([
            {"classy_org_id": a, "name": "A", "client_id": client, "client_secret": secret},
            {"classy_org_id": b.to_string(), "name": "B", "client_id": client, "client_secret": secret,
             "timezone": "Europe/London"},
            {"classy_org_id": c, "name": "C", "client_id": client, "client_secret": secret},
        ])
        .to_string(),
        true,
    );
    let out = cli(&data, &sb)
        .args(["org", "import", "--dry-run", "--json"])
        .arg(&good_json)
        .output()
        .unwrap();
    let plan: Value = serde_json::from_str(&ok(out.clone())).unwrap();
    assert_eq!(plan["create"], 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("group or others can read"));
    assert!(!all(&out).contains(secret.as_str()));
    assert!(org_ids(&data, &sb).is_empty());

    // The import: verified, written, secrets only in the secret store.
    let out = cli(&data, &sb)
        .args(["org", "import"])
        .arg(&good_json)
        .output()
        .unwrap();
    let text = ok(out.clone());
    assert!(text.contains("3 created"), "{text}");
    assert!(!all(&out).contains(secret.as_str()));
    assert_eq!(org_ids(&data, &sb), vec![a, b, c]);
    let shown: Value = serde_json::from_str(&ok(cli(&data, &sb)
        .args(["org", "show", &b.to_string(), "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(shown["timezone"], "Europe/London");
    assert_eq!(secrets_file(&data).matches(secret.as_str()).count(), 3);

    // Again: the organizations exist, so it is refused unless --update.
    let out = cli(&data, &sb)
        .args(["org", "import", "--no-verify"])
        .arg(&good_json)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(all(&out).contains(&format!(
        "line 1, classy_org_id: organization {a} already exists"
    )));
    let renamed = write_file(
        dir.path(),
        "renamed.csv",
        &format!("classy_org_id,name,client_id,client_secret\n{a},A renamed,{client},{secret}\n"),
        false,
    );
    let text = ok(cli(&data, &sb)
        .args(["org", "import", "--update", "--no-verify"])
        .arg(&renamed)
        .output()
        .unwrap());
    assert!(text.contains("1 updated"), "{text}");
    let listed = ok(cli(&data, &sb).args(["org", "list"]).output().unwrap());
    assert!(listed.contains("A renamed"), "{listed}");

    // The imported organizations sync.
    ok(cli(&data, &sb)
        .args(["sync", &c.to_string()])
        .output()
        .unwrap());
}

/// A sandbox with two organizations, both imported (verified) into `<dir>/data`.
async fn two_imported() -> (RunningSandbox, AppInfo, [u64; 2], tempfile::TempDir) {
    let sb = sandbox(2).await;
    let app = sb.apps()[0].clone();
    let [a, b] = [0, 1].map(|i| app.organizations[i] as u64);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write_file(
        dir.path(),
        "orgs.csv",
        &format!(
            "classy_org_id,name,client_id,client_secret\n{a},A,{},{}\n{b},B,{},{}\n",
            app.client_id, app.client_secret, app.client_id, app.client_secret
        ),
        false,
    );
    ok(cli(&data, &sb)
        .args(["org", "import"])
        .arg(&file)
        .output()
        .unwrap());
    (sb, app, [a, b], dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_is_all_or_nothing_and_remove_disables_or_purges_resumably() {
    let (sb, _app, [a, b], dir) = two_imported().await;
    let data = dir.path().join("data");
    let (sa, sb_) = (a.to_string(), b.to_string());

    // An unknown id among known ones: nothing changes for any of them.
    let out = cli(&data, &sb)
        .args(["org", "update", &sa, "424242", "--disable"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", all(&out));
    assert!(all(&out).contains("organization 424242 is not onboarded"));
    let out = cli(&data, &sb)
        .args(["org", "update", &sa, "--schedule", "donations=60"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(all(&out).contains("--schedule \"donations=60\": unknown entity"));
    let listed = ok(cli(&data, &sb).args(["org", "list"]).output().unwrap());
    assert!(!listed.contains("disabled"), "{listed}");

    // Dry run prints, writes nothing; then the real update of every organization.
    let out = ok(cli(&data, &sb)
        .args([
            "org",
            "update",
            "--all",
            "--schedule",
            "supporters=900",
            "--dry-run",
        ])
        .output()
        .unwrap());
    assert!(out.contains("2 organization(s) would change"), "{out}");
    assert!(!ok(cli(&data, &sb).args(["org", "list"]).output().unwrap()).contains("900"));
    let out = ok(cli(&data, &sb)
        .args([
            "org",
            "update",
            "--all",
            "--schedule",
            "supporters=900",
            "--disable",
        ])
        .output()
        .unwrap());
    assert!(out.contains("updated 2 of 2"), "{out}");
    let listed = ok(cli(&data, &sb).args(["org", "list"]).output().unwrap());
    assert_eq!(listed.matches("supporters=900s").count(), 2, "{listed}");
    assert_eq!(listed.matches("disabled").count(), 2, "{listed}");
    ok(cli(&data, &sb)
        .args(["org", "update", &sa, "--enable", "--name", "Alpha"])
        .output()
        .unwrap());
    ok(cli(&data, &sb).args(["sync", &sa]).output().unwrap());

    // Remove without --purge: disabled, data kept.
    ok(cli(&data, &sb)
        .args(["org", "remove", &sa])
        .output()
        .unwrap());
    let shown: Value = serde_json::from_str(&ok(cli(&data, &sb)
        .args(["org", "show", &sa, "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(shown["status"], "disabled");

    // --purge: refused without a terminal or --yes; the dry run counts; then it goes.
    let out = cli(&data, &sb)
        .args(["org", "remove", &sa, "--purge"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(all(&out).contains("--yes"), "{}", all(&out));
    let counted: Value = serde_json::from_str(&ok(cli(&data, &sb)
        .args(["org", "remove", &sa, "--purge", "--dry-run", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let total = counted["purge"][0]["total"].as_u64().unwrap();
    assert!(counted["purge"][0]["items"]["supporters"].as_u64().unwrap() >= 30);
    assert!(total > 100, "{counted}");
    let purged: Value = serde_json::from_str(&ok(cli(&data, &sb)
        .args(["org", "remove", &sa, "--purge", "--yes", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(purged["purged"][0]["items"].as_u64().unwrap(), total);
    assert_eq!(org_ids(&data, &sb), vec![b]);
    assert!(!secrets_file(&data).contains(&format!("classy-sync/{a}/")));
    assert!(secrets_file(&data).contains(&format!("classy-sync/{b}/classy")));
    let counted: Value = serde_json::from_str(&ok(cli(&data, &sb)
        .args(["org", "remove", &sa, "--purge", "--dry-run", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(counted["purge"][0]["total"], 0, "{counted}");
    // Idempotent: purging again is not an error.
    let again = ok(cli(&data, &sb)
        .args(["org", "remove", &sa, "--purge", "--yes", "--json"])
        .output()
        .unwrap());
    assert!(again.contains("already_purged"), "{again}");
    // The other organization is untouched.
    let shown: Value = serde_json::from_str(&ok(cli(&data, &sb)
        .args(["org", "show", &sb_, "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(shown["name"], "B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_verified_first_and_keeps_the_old_secret_when_refused() {
    let (sb, app, [a, b], dir) = two_imported().await;
    let data = dir.path().join("data");

    // The secret is regenerated in the developer portal: the stored one stops working.
    let regenerated: Value = reqwest::Client::new()
        .post(format!(
            "{}/admin/apps/{}/secret",
            sb.base_url(),
            app.client_id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = regenerated["client_secret"].as_str().unwrap().to_string();
    let out = cli(&data, &sb)
        .args(["sync", &a.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the old secret still works");

    // A wrong new secret: refused by Classy, the old one stays.
    let before = secrets_file(&data);
    let out = cli(&data, &sb)
        .args(["org", "credentials", "rotate", &a.to_string()])
        .env("CLASSY_CLIENT_SECRET", "still-wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        all(&out).contains("the old ones stay in use"),
        "{}",
        all(&out)
    );
    assert!(!all(&out).contains("still-wrong"));
    assert_eq!(secrets_file(&data), before);

    // The right one: verified, stored, and the organization syncs again.
    let out = ok(cli(&data, &sb)
        .args(["org", "credentials", "rotate", &a.to_string()])
        .env("CLASSY_CLIENT_SECRET", &new_secret)
        .output()
        .unwrap());
    assert!(out.contains("verified against Classy"), "{out}");
    assert!(!out.contains(&new_secret));
    ok(cli(&data, &sb)
        .args(["sync", &a.to_string()])
        .output()
        .unwrap());
    let info: Value = serde_json::from_str(&ok(cli(&data, &sb)
        .args(["org", "credentials", &a.to_string(), "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert!(info["rotated_at"].is_string(), "{info}");

    // Many from a file, all or nothing: one refused row leaves both as they were.
    let rotate = write_file(
        dir.path(),
        "rotate.csv",
        &format!("classy_org_id,client_secret\n{a},{new_secret}\n{b},wrong-again\n"),
        false,
    );
    let before = secrets_file(&data);
    let out = cli(&data, &sb)
        .args(["org", "credentials", "rotate", "--file"])
        .arg(&rotate)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", all(&out));
    assert!(all(&out).contains(&format!(
        "line 3, client_secret: Classy refused organization {b}"
    )));
    assert_eq!(secrets_file(&data), before);
    let rotate = write_file(
        dir.path(),
        "rotate.csv",
        &format!("classy_org_id,client_secret\n{a},{new_secret}\n{b},{new_secret}\n"),
        false,
    );
    ok(cli(&data, &sb)
        .args(["org", "credentials", "rotate", "--file"])
        .arg(&rotate)
        .output()
        .unwrap());
    ok(cli(&data, &sb)
        .args(["sync", &b.to_string()])
        .output()
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_purge_work_on_the_aws_backend() {
    let sb = sandbox(2).await;
    let app = sb.apps()[0].clone();
    let [a, b] = [0, 1].map(|i| app.organizations[i] as u64);
    let stack = AwsStack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let aws = |args: &[&str]| stack.command(cli(&dir.path().join("unused"), &sb), args);
    let file = write_file(
        dir.path(),
        "orgs.csv",
        &format!(
            "classy_org_id,name,client_id,client_secret,template\n{a},A,{},{},small-nonprofit\n{b},B,{},{},\n",
            app.client_id, app.client_secret, app.client_id, app.client_secret
        ),
        false,
    );
    let out = ok(aws(&["org", "import", file.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(out.contains("2 created"), "{out}");
    let listed: Vec<Value> =
        serde_json::from_str(&ok(aws(&["org", "list", "--json"]).output().unwrap())).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        !listed[0]["schedule"].as_object().unwrap().is_empty(),
        "the template's schedule was not applied: {listed:?}"
    );
    let sm = stack.moto.secrets_manager().await;
    let name = format!("classy-sync/{a}/classy");
    assert!(sm.describe_secret().secret_id(&name).send().await.is_ok());

    let out = ok(aws(&["org", "remove", &a.to_string(), "--purge", "--yes"])
        .output()
        .unwrap());
    assert!(out.contains(&format!("organization {a}: purged")), "{out}");
    let listed: Vec<Value> =
        serde_json::from_str(&ok(aws(&["org", "list", "--json"]).output().unwrap())).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(sm.describe_secret().secret_id(&name).send().await.is_err());
    let store = stack.store().await;
    let left = store
        .query(&format!("ORG#{a}"), &SkRange::All, None, 10)
        .await
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
}
