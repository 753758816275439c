//! `classy-sandbox`: runs the sandbox and prints one JSON ready line on stdout.

use clap::Parser;
use classy_sandbox::{FaultConfig, Quirks, SandboxConfig};
use std::net::SocketAddr;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Local Classy API 2.0 sandbox with deterministic data, plus a Mailchimp API 3.0 stand-in"
)]
struct Args {
    /// Port on 127.0.0.1 (0 = pick a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind (default loopback).
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    #[arg(long, default_value_t = 2)]
    orgs: usize,
    #[arg(long, default_value_t = 1)]
    apps: usize,
    /// Records per organization.
    #[arg(long, default_value_t = 200)]
    supporters: usize,
    #[arg(long, default_value_t = 5)]
    campaigns: usize,
    #[arg(long, default_value_t = 400)]
    transactions: usize,
    #[arg(long, default_value_t = 40)]
    plans: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long = "token-lifetime", default_value_t = 3600)]
    token_lifetime: u64,
    /// Requests per minute per app, Classy's is 1800 (0 = unlimited, the default).
    #[arg(long = "rate-limit", default_value_t = 0)]
    rate_limit: u32,
    /// Milliseconds added to every Classy API request (not admin ones).
    #[arg(long = "latency-ms", default_value_t = 0)]
    latency_ms: u64,
    /// Fault config as JSON, e.g. '{"seed":1,"error_500_rate":0.05}'.
    #[arg(long)]
    faults: Option<String>,
    /// Serve amounts as strings and omit some emails (deliberately off-spec).
    #[arg(long)]
    quirks: bool,
    /// Mailchimp API key the /3.0 stand-in accepts.
    #[arg(long = "mailchimp-api-key", env = "MAILCHIMP_SANDBOX_API_KEY",
          default_value = classy_sandbox::mailchimp::DEFAULT_API_KEY, hide_env_values = true)]
    mailchimp_api_key: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let faults: FaultConfig = match &args.faults {
        Some(s) => serde_json::from_str(s).map_err(|e| anyhow::anyhow!("--faults: {e}"))?,
        None => FaultConfig::default(),
    };
    let config = SandboxConfig {
        seed: args.seed,
        orgs: args.orgs,
        apps: args.apps,
        supporters: args.supporters,
        campaigns: args.campaigns,
        transactions: args.transactions,
        plans: args.plans,
        token_lifetime_secs: args.token_lifetime,
        rate_limit_per_minute: args.rate_limit,
        latency_ms: args.latency_ms,
        faults,
        quirks: Quirks {
            string_amounts: args.quirks,
            missing_emails: args.quirks,
            strict_timestamps: false,
        },
        bind: SocketAddr::new(args.host, args.port),
        mailchimp_api_key: args.mailchimp_api_key,
        ..SandboxConfig::default()
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
    shutdown_signal().await;
    tracing::info!("shutting down");
    sandbox.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
