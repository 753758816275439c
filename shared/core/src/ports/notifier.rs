//! Telling people: alerts, recoveries and reports leave the system through this port.
//! Channels (Slack, email, signed webhook, console) live behind it; callers name the
//! channels they want by their configured names and never see a URL or an address.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use crate::domain::severity::Severity;

/// What a message is about; channels may render kinds differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    AlertFiring,
    AlertResolved,
    Report,
    Test,
}

/// One message, rendered once by its producer; each channel picks the parts it can show.
/// All strings are plain text unless named `html`; channels escape what they embed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Stable id of this message (e.g. alert fingerprint + transition, report id + period);
    /// the same id is never delivered twice to the same channel.
    pub id: String,
    pub kind: MessageKind,
    pub severity: Severity,
    /// The organization it concerns, if one.
    pub org_id: Option<String>,
    /// Email subject, Slack header, webhook `title`.
    pub subject: String,
    /// Plain-text body (email text part, Slack fallback `text`, console).
    pub text: String,
    /// Key facts shown as fields (Slack section fields, email table, webhook `fields`).
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    /// A full HTML body (reports); channels without HTML ignore it.
    #[serde(default)]
    pub html: Option<String>,
    /// Ready-made Slack Block Kit blocks (reports); otherwise the Slack channel builds its own.
    #[serde(default)]
    pub slack_blocks: Option<serde_json::Value>,
}

/// The outcome of one message on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub message_id: String,
    pub channel: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Why the last attempt failed; never contains a secret.
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("unknown notification channel {0:?}")]
    UnknownChannel(String),
    #[error("notification channel {channel:?} is misconfigured: {reason}")]
    Misconfigured { channel: String, reason: String },
    #[error("notification store: {0}")]
    Store(String),
}

/// Sends a message to named channels, records one delivery per channel, and retries failed
/// deliveries later. A channel that fails does not stop the others: its report says so.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(
        &self,
        message: &Message,
        channels: &[String],
    ) -> Result<Vec<DeliveryReport>, NotifyError>;
}

/// Why one attempt to deliver a message on one channel failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Never contains a secret (URLs, passwords).
    pub reason: String,
    /// The receiver asked for this wait (HTTP 429 `Retry-After`).
    pub retry_after: Option<Duration>,
    /// Retrying cannot help (bad configuration, 4xx, rejected address).
    pub permanent: bool,
}

impl SendError {
    pub fn permanent(reason: impl Into<String>) -> Self {
        SendError {
            reason: reason.into(),
            retry_after: None,
            permanent: true,
        }
    }

    pub fn transient(reason: impl Into<String>) -> Self {
        SendError {
            reason: reason.into(),
            retry_after: None,
            permanent: false,
        }
    }
}

/// One email, rendered: a text part and an HTML part (sent as multipart/alternative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// How email leaves the system: SMTP (local adapters) or SES v2 (AWS adapters).
#[async_trait]
pub trait MailTransport: Send + Sync + std::fmt::Debug {
    /// Sends one email; `password` is the channel's SMTP secret, if it has one.
    async fn send(&self, email: &Email, password: Option<&str>) -> Result<(), SendError>;
}
