//! The command-line grammar.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "classy-sync", version, about = "Keeps nonprofits' Classy data in sync", long_about = None)]
pub struct Cli {
    /// Where the local store, queue and secrets live.
    #[arg(
        long,
        global = true,
        env = "CLASSY_SYNC_DATA_DIR",
        default_value = "./.classy-sync"
    )]
    pub data_dir: PathBuf,

    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Logs as JSON lines.
    #[arg(long, global = true)]
    pub log_json: bool,

    /// `local`: embedded store, queue and secrets under --data-dir. `aws`: manage a deployed
    /// stack (DynamoDB, SQS, Secrets Manager named by CLASSY_SYNC_TABLE, CLASSY_SYNC_QUEUE_URL,
    /// ...; AWS_ENDPOINT_URL overrides the endpoint).
    #[arg(long, global = true, value_enum, env = "CLASSY_SYNC_BACKEND", default_value_t = Backend::Local)]
    pub backend: Backend,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Backend {
    Local,
    Aws,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Onboard and manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Sync one organization or all of them now (with --backend aws: enqueue the jobs).
    Sync(SyncArgs),
    /// Last run, cursor, counts and failures per organization and entity.
    Status(StatusArgs),
    /// Write stored records (with computed fields) as JSON lines or CSV.
    Export(ExportArgs),
    /// Run the local scheduler: sync every organization on its schedule until stopped.
    Run(RunArgs),
    /// Health of every component (application/health+json with --json).
    Health(crate::commands::health::HealthArgs),
    /// Alerts: list, acknowledge, silence, rules, history, evaluate.
    #[command(subcommand)]
    Alerts(crate::commands::alerts::AlertsCommand),
    /// Failing and automatically disabled organization×entity pairs.
    #[command(subcommand)]
    Failures(crate::commands::failures::FailuresCommand),
    /// Dead-letter queue: list and replay.
    #[command(subcommand)]
    Dlq(crate::commands::dlq::DlqCommand),
    /// Fundraising analytics computed from the store.
    #[command(subcommand)]
    Analytics(AnalyticsCommand),
    /// Data-quality checks (read-only).
    #[command(subcommand)]
    Quality(QualityCommand),
    /// Scheduled reports by email and Slack: define, preview, send.
    #[command(subcommand)]
    Report(crate::commands::report::ReportCommand),
    /// Notification channels (Slack, email, webhook, console) and their deliveries.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Push what changed to the destination plugins (Mailchimp, ...).
    Push(PushArgs),
    /// Tenant templates (schedules, plugin settings, alert routing, report presets) that
    /// `org add`/`org import`/`org update` apply with --template.
    #[command(subcommand)]
    Template(crate::commands::template::TemplateCommand),
    /// The audit trail of administrative actions: list, verify the hash chain.
    #[command(subcommand)]
    Audit(crate::commands::audit::AuditCommand),
    /// Usage: runs, records, Classy/Mailchimp calls, errors and duration p50/p95/p99 per
    /// organization and operation, Classy calls per day against the application's budget.
    Usage(crate::commands::usage::UsageArgs),
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Onboard an organization. The client secret comes from CLASSY_CLIENT_SECRET or a prompt.
    Add {
        /// The organization's Classy id.
        org_id: u64,
        #[arg(long)]
        name: String,
        /// The Classy application (OAuth client id) that reads this organization.
        #[arg(long)]
        client_id: String,
        /// Skip checking the credentials against Classy before saving.
        #[arg(long)]
        no_verify: bool,
        /// Apply this template (built-in or stored, see `classy-sync template list`).
        #[arg(long)]
        template: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        org_id: u64,
        #[arg(long)]
        json: bool,
    },
    Disable {
        org_id: u64,
    },
    Enable {
        org_id: u64,
    },
    /// Record when the organization's Classy credential expires or was rotated (health
    /// checks and expiry alerts at 30, 7 and 1 days use it). No flags: show it.
    Credentials(crate::commands::credentials::CredentialsArgs),
    /// Several organizations side by side, with cross-organization totals.
    Compare {
        #[arg(required = true, num_args = 1..)]
        org_ids: Vec<u64>,
        #[command(flatten)]
        opts: AnalyticsOpts,
    },
    /// Override how often an entity syncs (`--every default` restores the default).
    Schedule {
        org_id: u64,
        #[arg(long, value_parser = parse_entity)]
        entity: classy_sync_core::domain::Entity,
        /// Seconds, or `default`.
        #[arg(long)]
        every: String,
    },
    /// Onboard many organizations from a CSV or JSON file: every row is checked first (errors
    /// by line and field, exit 2), credentials are verified against Classy, and a failure
    /// midway undoes the whole import.
    Import(crate::commands::tenants::ImportArgs),
    /// Change many organizations at once (name, status, template, schedule), all or nothing.
    Update(crate::commands::tenants::UpdateArgs),
    /// Disable organizations (their data kept), or with --purge delete every item and secret
    /// of them (resumable: run it again after a crash).
    Remove(crate::commands::tenants::RemoveArgs),
    /// Configure the organization's destination plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Set the organization's GoFundMe Pro (Classy) webhook signing secret, the `whsec_...`
    /// value GoFundMe Pro shows for the endpoint, from CLASSY_WEBHOOK_SECRET or a hidden
    /// prompt (never the command line). With --show: the path to paste into GoFundMe Pro and
    /// whether a secret is set (never the secret).
    Webhook {
        org_id: u64,
        /// Show the endpoint path and whether a secret is set; change nothing.
        #[arg(long)]
        show: bool,
        /// With --show: the public base URL of the receiver (e.g. https://hooks.example.org),
        /// to print the full endpoint URL.
        #[arg(long, requires = "show")]
        url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Configure (or reconfigure) a plugin. Its credential comes from the environment
    /// (MAILCHIMP_API_KEY for mailchimp) or a prompt, never from the command line.
    Add {
        org_id: u64,
        /// The plugin: mailchimp or change-feed.
        plugin: String,
        /// Mailchimp audience (list) id.
        #[arg(long)]
        list_id: Option<String>,
        /// Donor-segment rules as a JSON file (an array of rules; the defaults otherwise).
        #[arg(long)]
        segments: Option<PathBuf>,
        /// Plugin settings as JSON (merged under the flags above).
        #[arg(long)]
        settings: Option<String>,
        /// Keep the stored credential (reconfigure settings only).
        #[arg(long)]
        keep_credential: bool,
        /// Configure it disabled.
        #[arg(long)]
        disabled: bool,
        /// Skip checking the destination before saving.
        #[arg(long)]
        no_verify: bool,
        /// change-feed: deliver to a signed HTTPS webhook; its URL and signing secret come
        /// from CLASSY_SYNC_WEBHOOK_URL / CLASSY_SYNC_WEBHOOK_SECRET or prompts, never argv.
        #[arg(long, conflicts_with = "event_bus")]
        webhook: bool,
        /// change-feed: publish to this EventBridge bus (name or ARN).
        #[arg(long)]
        event_bus: Option<String>,
        /// change-feed: prefix of the events' detail-type (e.g. `Acme.`).
        #[arg(long, requires = "event_bus")]
        detail_type_prefix: Option<String>,
    },
    /// Remove a plugin's configuration and credential.
    Remove { org_id: u64, plugin: String },
    /// Configuration (without secrets), cursor, last run and health of the plugins.
    Show {
        org_id: u64,
        #[arg(long)]
        json: bool,
        /// Also ask each destination whether it is reachable.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The organization to push.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub org_id: Option<u64>,
    /// Every enabled organization with plugins.
    #[arg(long)]
    pub all: bool,
    /// Only this plugin.
    #[arg(long)]
    pub plugin: Option<String>,
    /// Print the changes that would be made; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Compare every supporter (a reconcile), not only the changed ones.
    #[arg(long)]
    pub full: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The organization to sync.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub org_id: Option<u64>,
    /// Sync every enabled organization.
    #[arg(long)]
    pub all: bool,
    /// Only this entity (supporters, campaigns, transactions, recurring-plans).
    #[arg(long, value_parser = parse_entity)]
    pub entity: Option<classy_sync_core::domain::Entity>,
    /// Re-read everything instead of only what changed.
    #[arg(long)]
    pub full: bool,
    /// Organizations synced at the same time (with --all).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    pub org_id: Option<u64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    pub org_id: u64,
    #[arg(long, value_parser = parse_entity)]
    pub entity: classy_sync_core::domain::Entity,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Write to this file (atomically) instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Jobs run at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seconds between schedule checks.
    #[arg(long, default_value_t = 30)]
    pub tick: u64,
    /// Exit once nothing is due, queued or running.
    #[arg(long)]
    pub once: bool,
    /// Also receive GoFundMe Pro (Classy) webhooks on this address:
    /// `POST /webhooks/classy/<org-id>` (e.g. 127.0.0.1:8787).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

pub fn parse_entity(s: &str) -> Result<classy_sync_core::domain::Entity, String> {
    s.parse()
        .map_err(|e: classy_sync_core::domain::entity::UnknownEntity| e.to_string())
}

/// Options shared by the analytics views.
#[derive(Args, Debug, Clone)]
pub struct AnalyticsOpts {
    /// 30d, 90d, 12m, ytd, 2025 or 2025-01-01..2025-03-31 (both dates inclusive, UTC).
    #[arg(long, default_value = "30d", value_parser = parse_period)]
    pub period: classy_sync_core::domain::analytics::Period,
    /// Compute as of this time instead of now (e.g. 2026-06-01T00:00:00Z).
    #[arg(long, value_parser = parse_now)]
    pub as_of: Option<classy_sync_core::domain::Timestamp>,
    /// Value-tier thresholds in currency units, highest first (e.g. 1000,250).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1000.0, 250.0])]
    pub tiers: Vec<f64>,
    /// Length of the prospect, at-risk and campaign lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AnalyticsCommand {
    /// Giving totals, donor lifecycle, retention, tiers, recurring, prospects, at risk.
    Donors {
        org_id: Option<u64>,
        #[command(flatten)]
        opts: AnalyticsOpts,
    },
    /// Every campaign: raised, donors, gifts, goal, velocity, projection, rank.
    Campaigns {
        org_id: Option<u64>,
        #[command(flatten)]
        opts: AnalyticsOpts,
    },
    /// Week over week and month over month of the key figures.
    Trends {
        org_id: Option<u64>,
        #[command(flatten)]
        opts: AnalyticsOpts,
    },
    /// One supporter's journey: gifts, plans and segments over time.
    Donor {
        supporter_id: u64,
        org_id: Option<u64>,
        #[command(flatten)]
        opts: AnalyticsOpts,
    },
    /// Everything a periodic report shows (JSON: the OrgSummary).
    Summary {
        org_id: Option<u64>,
        #[command(flatten)]
        opts: AnalyticsOpts,
    },
    /// Fundraising Effectiveness Project figures (see docs/analytics.md): donor and dollar
    /// retention, gain/loss, LYBUNT/SYBUNT with Mailchimp consent, recurring-plan health,
    /// refunds and chargebacks, average and median gift, giving bands (JSON: the FepReport).
    Fep {
        org_id: Option<u64>,
        #[command(flatten)]
        opts: FepArgs,
    },
}

/// Options of `analytics fep`.
#[derive(Args, Debug, Clone)]
pub struct FepArgs {
    /// The current period, compared with the one before it: 30d, 90d, 12m, ytd, 2025 or
    /// 2025-01-01..2025-03-31 (a year with the year before, ytd with the same dates a year earlier).
    #[arg(long, default_value = "12m", value_parser = parse_period)]
    pub period: classy_sync_core::domain::analytics::Period,
    /// Compute as of this time instead of now (e.g. 2026-06-01T00:00:00Z).
    #[arg(long, value_parser = parse_now)]
    pub as_of: Option<classy_sync_core::domain::Timestamp>,
    /// Length of the LYBUNT and SYBUNT lists (their counts are always complete).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// First month (1–12) of the fiscal year LYBUNT and SYBUNT count in; 1 = calendar year.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=12))]
    pub fiscal_year_start: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum QualityCommand {
    /// Validation findings, duplicates and the 0–100 score, with suggested fixes.
    Report {
        /// One organization; all of them when omitted (then also cross-organization duplicates).
        org_id: Option<u64>,
        /// Findings listed per rule (counts and scores are always complete).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_parser = parse_now)]
        as_of: Option<classy_sync_core::domain::Timestamp>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Add, list or remove notification channels.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Send a test message to a channel and print the delivery outcome.
    Test {
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Delivery records (one per message and channel).
    List {
        /// Only deliveries with this status.
        #[arg(long, value_parser = ["pending", "sent", "failed"])]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send again the failed deliveries that are due.
    Retry {
        /// Ignore the backoff: retry every failed delivery now.
        #[arg(long)]
        now: bool,
        #[arg(long)]
        json: bool,
    },
}

fn parse_period(s: &str) -> Result<classy_sync_core::domain::analytics::Period, String> {
    s.parse()
        .map_err(|e: classy_sync_core::domain::analytics::period::PeriodError| e.to_string())
}

fn parse_now(s: &str) -> Result<classy_sync_core::domain::Timestamp, String> {
    classy_sync_core::domain::Timestamp::parse(s).map_err(|e| e.to_string())
}

#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Add a channel. Slack/webhook URLs come from CLASSY_SYNC_WEBHOOK_URL, the webhook's
    /// signing secret from CLASSY_SYNC_WEBHOOK_SECRET, an SMTP password from
    /// CLASSY_SYNC_SMTP_PASSWORD (or a prompt); never from the command line.
    Add {
        name: String,
        #[arg(value_parser = ["slack", "email", "webhook", "console"])]
        kind: String,
        /// Email recipients, comma-separated.
        #[arg(long, value_delimiter = ',')]
        to: Vec<String>,
        /// Development only: allow an http:// URL to a loopback address.
        #[arg(long)]
        allow_http_loopback: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
    },
}
