//! A real SMTP server for tests: `tests/support/smtp_sink.py` (aiosmtpd) on a loopback port.
//! Every accepted message lands as a parsed JSON file in a temporary directory.
//!
//! Python is `$PYTHON` (the Makefile's venv), else `<workspace>/.venv/bin/python`, else
//! `python3`; it needs `aiosmtpd` (requirements-dev.txt). Without it [`SmtpSink::start`]
//! panics saying so: the email tests fail rather than skip.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("python3")
}

impl SmtpSink {
    /// Starts the server; the first `fail_first` messages get a transient `451`.
    pub fn start(fail_first: u32) -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/smtp_sink.py");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let py = python();
        let mut child = Command::new(&py)
            .arg(&script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .args(["--fail-first", &fail_first.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).ok();
        if line.trim() != "ready" {
            let _ = child.kill();
            panic!(
                "the SMTP sink did not start with {} (is aiosmtpd installed? \
                 pip install -r requirements-dev.txt and set PYTHON)",
                py.display()
            );
        }
        SmtpSink { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.path())
            .expect("sink dir")
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "json") {
                let text = std::fs::read_to_string(e.path()).expect("message file");
                out.push(serde_json::from_str(&text).expect("message JSON"));
            }
        }
        out
    }

    /// Waits until at least `n` messages arrived (the server writes after answering).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
