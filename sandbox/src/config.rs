//! Sandbox configuration: data volume, auth lifetime, rate limit, faults and quirks.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// Everything needed to start a sandbox. Counts are per organization.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub seed: u64,
    pub orgs: usize,
    pub apps: usize,
    pub supporters: usize,
    pub campaigns: usize,
    pub transactions: usize,
    pub plans: usize,
    pub token_lifetime_secs: u64,
    /// Requests per window per application (client id), like Classy's 1,800 a minute; 0 turns
    /// rate limiting off (no `X-RateLimit-*` headers then).
    pub rate_limit_per_minute: u32,
    /// Length of the fixed rate-limit window, which opens at an application's first request.
    /// One minute, as Classy's; tests shorten it so they need not wait a minute.
    pub rate_limit_window: Duration,
    /// Added to every Classy API request (`/oauth2/auth`, `/2.0/...`; not admin) before it is
    /// handled, so throughput measured against the sandbox resembles the real API. 0 = none.
    pub latency_ms: u64,
    pub faults: FaultConfig,
    pub quirks: Quirks,
    pub bind: SocketAddr,
    /// The Mailchimp API key accepted from the start (more via `POST /admin/mailchimp/keys`).
    pub mailchimp_api_key: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            orgs: 2,
            apps: 1,
            supporters: 200,
            campaigns: 5,
            transactions: 400,
            plans: 40,
            token_lifetime_secs: 3600,
            rate_limit_per_minute: 0,
            rate_limit_window: Duration::from_secs(60),
            latency_ms: 0,
            faults: FaultConfig::default(),
            quirks: Quirks::default(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            mailchimp_api_key: crate::mailchimp::DEFAULT_API_KEY.to_string(),
        }
    }
}

/// Random fault injection for `/2.0/` requests. Rates are probabilities in 0..=1, decided by a
/// RNG seeded with `seed` so a run can be replayed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultConfig {
    pub seed: u64,
    pub rate_limit_rate: f64,
    pub error_500_rate: f64,
    pub error_503_rate: f64,
    pub slow_rate: f64,
    pub slow_ms: u64,
    pub drop_rate: f64,
    pub malformed_rate: f64,
    pub revoke_token_rate: f64,
    pub retry_after_secs: u64,
}

/// Opt-in deviations from the spec that real integrations report; all off by default.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Quirks {
    /// Amount fields served as numeric strings ("12.50").
    pub string_amounts: bool,
    /// `email_address` omitted on ~5% of supporters.
    pub missing_emails: bool,
    /// Filter timestamps with milliseconds answer 400, as the real API does.
    pub strict_timestamps: bool,
}
