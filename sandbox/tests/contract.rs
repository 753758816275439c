//! Runs the project's Python contract checker (../shared/tools/classy_contract_check.py)
//! against a live sandbox: it must pass in default mode and report breaches with quirks on.

mod common;

use classy_sandbox::SandboxConfig;
use reqwest::Method;
use serde_json::json;
use std::path::PathBuf;

fn checker() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/classy_contract_check.py")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn has_jsonschema() -> bool {
    std::process::Command::new(python())
        .args(["-c", "import jsonschema"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

async fn run_checker(base: &str, id: &str, secret: &str, org: i64) -> (bool, String) {
    let out = tokio::process::Command::new(python())
        .arg(checker())
        .args([
            "--base",
            base,
            "--client-id",
            id,
            "--client-secret",
            secret,
            "--org",
            &org.to_string(),
        ])
        .output()
        .await
        .expect("run the contract checker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_contract_checker_passes_in_default_mode() {
    if !has_jsonschema() {
        eprintln!("SKIPPED: `{} -c 'import jsonschema'` failed; pip install jsonschema to run the contract check", python());
        return;
    }
    assert!(
        checker().exists(),
        "contract checker not found at {}",
        checker().display()
    );
    let h = common::start(SandboxConfig::default()).await;
    let base = h.base();
    let (ok, text) = run_checker(&base, &h.client_id, &h.secret, h.org).await;
    assert!(
        ok && text.contains("contract holds"),
        "default mode must honour the contract:\n{text}"
    );

    h.admin_send(
        Method::PUT,
        "/quirks",
        json!({"string_amounts": true, "missing_emails": true}),
    )
    .await;
    let (ok, text) = run_checker(&base, &h.client_id, &h.secret, h.org).await;
    assert!(!ok, "quirk mode must be reported as off-contract:\n{text}");
    assert!(text.contains("contract breaches"), "{text}");
    h.sandbox.shutdown().await;
}
