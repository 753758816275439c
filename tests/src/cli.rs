//! Running the `classy-sync` binary in tests: on a local data directory (optionally pointed at
//! the sandbox), or with `--backend aws` against a table and queue on moto. The binary's path
//! comes from the caller (`env!("CARGO_BIN_EXE_classy-sync")` exists only in the CLI's tests).

use crate::moto::{MotoServer, ACCESS_KEY, REGION, SECRET_KEY};
use classy_sandbox::RunningSandbox;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The table and queue names the AWS stack uses in these tests.
pub const TABLE: &str = "classy-sync";

/// The binary on a local data directory, with no secret or backend inherited from the
/// environment and no terminal on stdin.
pub fn local(bin: &str, data: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("CLASSY_SYNC_DATA_DIR", data)
        .env_remove("CLASSY_SYNC_BACKEND")
        .env_remove("CLASSY_CLIENT_SECRET")
        .env_remove("CLASSY_WEBHOOK_SECRET")
        .env_remove("MAILCHIMP_API_KEY")
        .stdin(Stdio::null());
    c
}

/// [`local`], reading Classy from the sandbox: no client rate limit, fast retries, and the
/// development switch for its plain-http loopback URLs.
pub fn against_sandbox(bin: &str, data: &Path, sandbox: &RunningSandbox) -> Command {
    let mut c = local(bin, data);
    c.env("CLASSY_API_BASE_URL", sandbox.api_base_url())
        .env("CLASSY_AUTH_URL", sandbox.auth_url())
        .env("CLASSY_RATE_LIMIT_PER_MINUTE", "0")
        .env("CLASSY_RETRY_BASE_MS", "5")
        .env("CLASSY_SYNC_ALLOW_DEV_URLS", "1");
    c
}

/// A moto server with the stack's table and job queue, for `--backend aws` commands.
pub struct AwsStack {
    pub moto: MotoServer,
    pub queue_url: String,
}

impl AwsStack {
    pub async fn start() -> AwsStack {
        let moto = MotoServer::start();
        crate::aws_setup::create_table(&moto.dynamodb().await, TABLE)
            .await
            .expect("table");
        let (queue_url, _) =
            crate::aws_setup::create_queues(&moto.sqs().await, "jobs.fifo", 5, 300)
                .await
                .expect("queues");
        AwsStack { moto, queue_url }
    }

    /// `base --backend aws args...` with the stack's endpoint, credentials and names.
    pub fn command(&self, mut base: Command, args: &[&str]) -> Command {
        base.arg("--backend")
            .arg("aws")
            .args(args)
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("CLASSY_SYNC_TABLE", TABLE)
            .env("CLASSY_SYNC_QUEUE_URL", &self.queue_url);
        base
    }

    /// The settings the CLI reads from that environment.
    pub fn settings(&self) -> classy_sync_aws::AwsSettings {
        let queue = self.queue_url.clone();
        classy_sync_aws::AwsSettings::from_lookup(move |n| match n {
            "CLASSY_SYNC_TABLE" => Some(TABLE.into()),
            "CLASSY_SYNC_QUEUE_URL" => Some(queue.clone()),
            _ => None,
        })
        .expect("settings")
    }

    /// The stack's table, as the CLI sees it.
    pub async fn store(&self) -> classy_sync_aws::DynamoStore {
        classy_sync_aws::DynamoStore::from_settings(&self.moto.sdk_config().await, &self.settings())
    }
}

/// stdout and stderr together (for messages).
pub fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// stdout of a command that must succeed (the panic shows everything it printed).
pub fn stdout_ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", all_output(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
