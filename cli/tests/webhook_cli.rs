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
    assert!(shown.contains(&format!("/webhooks/classy/{org}")), "{shown}");
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
    for bad in ["not-a-secret-value", "whsec_%%%%notbase64%%%%%%%%%%%%%%%%%", "whsec_c2hvcnQ="] {
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
    assert_eq!(stored_secrets(dir.path()), before, "a refused value was written");

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
    assert!(!text.contains(&SECRET[6..]), "the secret is printed: {text}");
    let secrets = stored_secrets(dir.path());
    assert!(secrets.contains(&format!("classy-sync/{org}/webhook")), "not stored");
    assert!(secrets.contains(SECRET), "not stored");

    let out = cli(dir.path(), &sandbox)
        .args(["org", "webhook", &o, "--show", "--url", "https://hooks.example.org/"])
        .output()
        .unwrap();
    let text = all(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("https://hooks.example.org/webhooks/classy/{org}")),
        "{text}"
    );
    assert!(text.contains("signing secret: set"), "{text}");
    assert!(!text.contains(&SECRET[6..]), "the secret is printed: {text}");
}
