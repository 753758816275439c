//! moto (`moto_server`) on a loopback port: DynamoDB, SQS, Secrets Manager and EventBridge
//! over the real AWS wire protocol, for the AWS adapters' tests.
//!
//! The binary is found as: `$MOTO_SERVER`, else `$(dirname $PYTHON)/moto_server` (the
//! Makefile passes `PYTHON=<repo>/.venv/bin/python`), else `<workspace>/.venv/bin/moto_server`,
//! else `moto_server` on `PATH`. Without one, [`MotoServer::start`] panics saying so: the AWS
//! tests fail rather than skip.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "AKIDTEST";
pub const SECRET_KEY: &str = "secret";

/// A running `moto_server`, killed when dropped. Every server has its own state.
pub struct MotoServer {
    child: Child,
    port: u16,
}

/// Where `moto_server` is, or why it was not found.
pub fn find_moto_server() -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(format!(
            "MOTO_SERVER={} does not exist; install moto with `make setup` \
             (pip install -r requirements-dev.txt)",
            p.display()
        ));
    }
    if let Some(python) = std::env::var_os("PYTHON") {
        if let Some(dir) = Path::new(&python).parent() {
            tried.push(dir.join("moto_server"));
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    tried.push(workspace.join(".venv/bin/moto_server"));
    if let Some(path) = std::env::var_os("PATH") {
        tried.extend(std::env::split_paths(&path).map(|d| d.join("moto_server")));
    }
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(format!(
        "moto_server not found (looked at $MOTO_SERVER, $(dirname $PYTHON)/moto_server, {} \
         and PATH). The AWS adapter tests need it: run `make setup` (a .venv with \
         requirements-dev.txt, which pins moto[server]) and `make test`, or set MOTO_SERVER \
         to the moto_server binary.",
        workspace.join(".venv/bin/moto_server").display()
    ))
}

impl MotoServer {
    /// Starts a fresh server and waits until it answers. Panics if moto is not installed.
    pub fn start() -> MotoServer {
        let bin = find_moto_server().unwrap_or_else(|e| panic!("{e}"));
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    // Most likely the port was taken between our probe and the bind.
                    last_error = format!("moto_server exited with {status} on port {port}");
                    break;
                }
                // The port must be served by this child: two tests may draw the same free
                // port, and a connection to the other test's server would pass for ours until
                // that test ends.
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
                    && listens_in(child.id(), port) != Some(false)
                {
                    return MotoServer { child, port };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!("moto_server did not listen on port {port} within 30 s");
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("{} could not be started: {last_error}", bin.display());
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration for this server: its endpoint, static test credentials, us-east-1.
    /// These explicit settings win over anything in the process environment, which is not
    /// changed.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let creds = aws_sdk_dynamodb::config::Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "moto-test",
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .credentials_provider(creds)
            .endpoint_url(self.endpoint())
            .load()
            .await
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    pub async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    pub async fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk_config().await)
    }

    /// Creates the event bus `bus` and a queue `queue` that a rule on the bus fills with
    /// every `source: classy-sync` event; returns the queue's URL (read it with
    /// [`drain_json`]).
    pub async fn bus_into_queue(&self, bus: &str, queue: &str) -> String {
        let eb = self.eventbridge().await;
        let sqs = self.sqs().await;
        eb.create_event_bus().name(bus).send().await.expect("bus");
        let url = sqs
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("queue url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn");
        let rule = format!("{queue}-rule");
        eb.put_rule()
            .name(&rule)
            .event_bus_name(bus)
            .event_pattern(r#"{"source":["classy-sync"]}"#)
            .send()
            .await
            .expect("rule");
        eb.put_targets()
            .rule(&rule)
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("target");
        url
    }
}

/// Every JSON message waiting in the queue, received and deleted.
pub async fn drain_json(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    loop {
        let r = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let msgs = r.messages.unwrap_or_default();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push(serde_json::from_str(m.body().expect("body")).expect("a JSON message"));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("delete");
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` holds the loopback listening socket of `port` (Linux `/proc`);
/// `None` where that cannot be read.
fn listens_in(pid: u32, port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // local_address, state 0A = LISTEN, inode.
        (cols.len() > 9 && cols[1] == local && cols[3] == "0A").then(|| cols[9].to_string())
    })?;
    let socket = format!("socket:[{inode}]");
    let holds = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy() == socket)
            })
        })
    };
    // The child, or (behind a wrapper script) one of its children.
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    Some(
        holds(pid)
            || children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .any(holds),
    )
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
