//! `classy-sync notify ...`: notification channels, test messages, delivery records, retries.

use crate::cli::{ChannelCommand, NotifyCommand};
use crate::output::{opt, print_json, table};
use crate::runtime;
use anyhow::{bail, Context, Result};
use classy_sync_core::ports::{
    DeliveryReport, DeliveryStatus, Message, MessageKind, Notifier, Severity,
};
use classy_sync_notify::channel::{ChannelConfig, ChannelKind, ChannelSecrets};
use classy_sync_notify::delivery::DeliveryRecord;
use std::io::IsTerminal;
use std::process::ExitCode;

pub const ENV_WEBHOOK_URL: &str = "CLASSY_SYNC_WEBHOOK_URL";
pub const ENV_WEBHOOK_SECRET: &str = "CLASSY_SYNC_WEBHOOK_SECRET";
pub const ENV_SMTP_PASSWORD: &str = "CLASSY_SYNC_SMTP_PASSWORD";

/// A secret from `var`, else a hidden prompt when interactive; `None` if neither and optional.
fn secret_input(var: &str, prompt: &str, required: bool) -> Result<Option<String>> {
    if let Ok(v) = std::env::var(var) {
        if v.trim().is_empty() {
            bail!("{var} is set but empty");
        }
        return Ok(Some(v.trim().to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        if required {
            bail!("{var} is not set (secrets are never taken from the command line)");
        }
        return Ok(None);
    }
    let v = rpassword::prompt_password(prompt).with_context(|| format!("cannot read {prompt}"))?;
    match (v.trim().is_empty(), required) {
        (true, true) => bail!("the value must not be empty"),
        (true, false) => Ok(None),
        (false, _) => Ok(Some(v.trim().to_owned())),
    }
}

fn status_str(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Failed => "failed",
    }
}

fn time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| unix.to_string())
}

fn print_reports(reports: &[DeliveryReport], json: bool) -> Result<ExitCode> {
    if json {
        print_json(&reports)?;
    } else {
        let mut t = table(&["message", "channel", "status", "attempts", "error"]);
        for r in reports {
            t.add_row(vec![
                r.message_id.clone(),
                r.channel.clone(),
                status_str(r.status).into(),
                r.attempts.to_string(),
                opt(&r.error),
            ]);
        }
        println!("{t}");
    }
    let all_sent = reports.iter().all(|r| r.status == DeliveryStatus::Sent);
    Ok(if all_sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_records(records: &[DeliveryRecord], json: bool) -> Result<()> {
    if json {
        // The stored message is part of the record; the listing shows the outcome only.
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "message_id": r.message_id,
                    "channel": r.channel,
                    "status": r.status,
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "next_attempt_at": r.next_attempt_at.map(time),
                    "created_at": time(r.created_at),
                    "updated_at": time(r.updated_at),
                    "subject": r.message.subject,
                })
            })
            .collect();
        return print_json(&rows);
    }
    let mut t = table(&[
        "message",
        "channel",
        "status",
        "attempts",
        "next attempt",
        "updated",
        "error",
    ]);
    for r in records {
        t.add_row(vec![
            r.message_id.clone(),
            r.channel.clone(),
            status_str(r.status).into(),
            r.attempts.to_string(),
            opt(&r.next_attempt_at.map(time)),
            time(r.updated_at),
            opt(&r.last_error),
        ]);
    }
    println!("{t}");
    Ok(())
}

pub async fn run(target: &runtime::Target, cmd: NotifyCommand) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let service = root.notifier()?;
    match cmd {
        NotifyCommand::Channel(ChannelCommand::Add {
            name,
            kind,
            to,
            allow_http_loopback,
        }) => {
            let kind: ChannelKind = kind.parse().map_err(anyhow::Error::msg)?;
            let mut secrets = ChannelSecrets::default();
            if kind.needs_url() {
                secrets.url = secret_input(ENV_WEBHOOK_URL, "Webhook URL: ", true)?;
            }
            if kind == ChannelKind::Webhook {
                secrets.signing_secret =
                    secret_input(ENV_WEBHOOK_SECRET, "Webhook signing secret: ", true)?;
            }
            if kind == ChannelKind::Email {
                secrets.smtp_password = std::env::var(ENV_SMTP_PASSWORD)
                    .ok()
                    .filter(|p| !p.is_empty());
            }
            let config = ChannelConfig {
                name: name.clone(),
                kind,
                to: to.into_iter().map(|a| a.trim().to_owned()).collect(),
                allow_http_loopback,
            };
            let added = service
                .add_channel(&config, &secrets)
                .await
                .with_context(|| format!("cannot add channel {name:?}"));
            // The state is the channel's settings; its URL and secrets are never part of it.
            crate::audit::Audited::new(&root, "notify channel add", format!("channel {name}"))
                .finish(added, |_| crate::audit::state(&config))
                .await?;
            println!("added {} channel {name}", kind.as_str());
            Ok(ExitCode::SUCCESS)
        }
        NotifyCommand::Channel(ChannelCommand::List { json }) => {
            let channels = service.list_channels().await?;
            if json {
                print_json(&channels)?;
            } else {
                let mut t = table(&["name", "kind", "recipients", "http to loopback"]);
                for c in &channels {
                    t.add_row(vec![
                        c.name.clone(),
                        c.kind.as_str().into(),
                        if c.to.is_empty() {
                            "-".into()
                        } else {
                            c.to.join(", ")
                        },
                        if c.allow_http_loopback {
                            "allowed"
                        } else {
                            "-"
                        }
                        .into(),
                    ]);
                }
                println!("{t}");
            }
            Ok(ExitCode::SUCCESS)
        }
        NotifyCommand::Channel(ChannelCommand::Remove { name }) => {
            let before = service
                .list_channels()
                .await
                .ok()
                .and_then(|cs| cs.into_iter().find(|c| c.name == name));
            let removed = service.remove_channel(&name).await;
            crate::audit::Audited::new(&root, "notify channel remove", format!("channel {name}"))
                .before(before.as_ref().and_then(crate::audit::state))
                .finish(removed, |_| None)
                .await?;
            println!("removed channel {name}");
            Ok(ExitCode::SUCCESS)
        }
        NotifyCommand::Test { channel, json } => {
            let message = Message {
                id: format!("test-{}", uuid::Uuid::new_v4()),
                kind: MessageKind::Test,
                severity: Severity::Info,
                org_id: None,
                subject: "classy-sync test notification".into(),
                text: format!(
                    "This is a test message sent with `classy-sync notify test {channel}`."
                ),
                fields: vec![
                    ("channel".into(), channel.clone()),
                    ("sent at".into(), chrono::Utc::now().to_rfc3339()),
                ],
                html: None,
                slack_blocks: None,
            };
            let reports = service.notify(&message, &[channel]).await?;
            print_reports(&reports, json)
        }
        NotifyCommand::List { status, json } => {
            let status = match status.as_deref() {
                None => None,
                Some("pending") => Some(DeliveryStatus::Pending),
                Some("sent") => Some(DeliveryStatus::Sent),
                Some("failed") => Some(DeliveryStatus::Failed),
                Some(other) => bail!("unknown status {other:?}"),
            };
            let records = service.deliveries(status).await?;
            print_records(&records, json)?;
            Ok(ExitCode::SUCCESS)
        }
        NotifyCommand::Retry { now, json } => {
            let reports = service.retry_due(now).await?;
            if reports.is_empty() && !json {
                println!("no deliveries due for a retry");
                return Ok(ExitCode::SUCCESS);
            }
            print_reports(&reports, json)
        }
    }
}
