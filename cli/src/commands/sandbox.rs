//! `classy-sync sandbox`: the local Classy sandbox (with its Mailchimp stand-in under `/3.0`),
//! in process, until Ctrl-C.

use crate::cli::SandboxArgs;
use anyhow::Result;
use classy_sandbox::{Quirks, SandboxConfig};
use std::process::ExitCode;

pub async fn run(a: SandboxArgs) -> Result<ExitCode> {
    let config = SandboxConfig {
        seed: a.seed,
        orgs: a.orgs,
        apps: a.apps,
        supporters: a.supporters,
        campaigns: a.campaigns,
        transactions: a.transactions,
        plans: a.plans,
        token_lifetime_secs: a.token_lifetime,
        quirks: if a.quirks {
            Quirks {
                string_amounts: true,
                missing_emails: true,
                ..Default::default()
            }
        } else {
            Quirks::default()
        },
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], a.port)),
        ..Default::default()
    };
    let sandbox = classy_sandbox::start(config).await?;
    let ready = serde_json::json!({
        "base_url": sandbox.base_url(),
        "api_base_url": sandbox.api_base_url(),
        "auth_url": sandbox.auth_url(),
        "apps": sandbox.apps(),
        "mailchimp": {
            "api_base_url": sandbox.mailchimp_api_base_url(),
            "api_key": sandbox.mailchimp_api_key(),
            "list_id": sandbox.mailchimp_list_id(),
        },
    });
    println!("{ready}");
    // Until Ctrl-C or SIGTERM, then a graceful shutdown.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    sandbox.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
