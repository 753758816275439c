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

impl Message {
    /// The size of the message as JSON, in bytes.
    pub fn json_len(&self) -> usize {
        serde_json::to_vec(self).map_or(0, |v| v.len())
    }

    /// `sha256:<hex>` of the message as JSON: tells two renderings of one message id apart.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    }

    /// The message itself if its JSON takes at most `max` bytes; otherwise a bounded stand-in
    /// (no HTML, no Slack blocks, the text and fields cut) and `false`: enough to list it, not
    /// to send it (its producer rebuilds it, see `engine::reports`).
    pub fn bounded(&self, max: usize) -> (Message, bool) {
        if self.json_len() <= max {
            return (self.clone(), true);
        }
        let cut = |s: &str, n: usize| -> String {
            if s.len() <= n {
                return s.to_string();
            }
            let mut end = n;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &s[..end])
        };
        let budget = (max / 4).max(64);
        let m = Message {
            id: self.id.clone(),
            kind: self.kind,
            severity: self.severity,
            org_id: self.org_id.clone(),
            subject: cut(&self.subject, 300),
            text: cut(&self.text, budget),
            fields: self
                .fields
                .iter()
                .take(20)
                .map(|(k, v)| (cut(k, 100), cut(v, 200)))
                .collect(),
            html: None,
            slack_blocks: None,
        };
        (m, false)
    }
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
    /// When the notifier tries again (Unix seconds): `None` once sent or given up on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    /// When the first attempt was made (Unix seconds), if the notifier recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempt_at: Option<i64>,
}

impl DeliveryReport {
    /// Nothing more will happen to this delivery: sent, or failed and given up on (a
    /// permanent error, or the retry ladder is spent).
    pub fn is_final(&self) -> bool {
        match self.status {
            DeliveryStatus::Sent => true,
            DeliveryStatus::Failed => self.next_attempt_at.is_none(),
            DeliveryStatus::Pending => false,
        }
    }

    /// A later attempt is due at `now` (or was never scheduled: in flight past its claim).
    pub fn is_due(&self, now: i64) -> bool {
        !self.is_final() && self.next_attempt_at.is_none_or(|t| t <= now)
    }
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

    /// The recorded delivery of `message_id` on each of `channels` (`None`: never tried), so
    /// a producer can tell whether a message it would rebuild is still owed. A notifier that
    /// keeps no records answers `None` for each.
    async fn deliveries(
        &self,
        message_id: &str,
        channels: &[String],
    ) -> Result<Vec<Option<DeliveryReport>>, NotifyError> {
        let _ = message_id;
        Ok(vec![None; channels.len()])
    }

    /// Sends again the failed deliveries whose next attempt is due (with `force`, every failed
    /// one), and reports what happened. Called on a schedule (the alert function, the local
    /// run loop). A notifier that keeps no records has nothing to retry.
    async fn retry_due(&self, force: bool) -> Result<Vec<DeliveryReport>, NotifyError> {
        let _ = force;
        Ok(Vec::new())
    }
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

/// One email as it leaves: the envelope and the whole message, built by the notifier (RFC 5322
/// with MIME: a text part and an HTML part as multipart/alternative, the HTML in
/// multipart/related with the images it shows by `cid:`, e.g. the report chart as a PNG).
/// Transports (SMTP, SES raw) send `raw` as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    /// The subject line (also in `raw`'s headers), for logs and errors.
    pub subject: String,
    /// The message as sent, headers included.
    pub raw: Vec<u8>,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("raw_bytes", &self.raw.len())
            .finish()
    }
}

/// How email leaves the system: SMTP (local adapters) or SES v2 (AWS adapters).
#[async_trait]
pub trait MailTransport: Send + Sync + std::fmt::Debug {
    /// Sends one email; `password` is the channel's SMTP secret, if it has one.
    async fn send(&self, email: &Email, password: Option<&str>) -> Result<(), SendError>;

    /// Why a channel password must not be used with this transport (e.g. SMTP without TLS,
    /// where it would travel in clear), or `None` when it may. Checked when a channel with a
    /// password is added; `send` refuses it too.
    fn password_refusal(&self) -> Option<String> {
        None
    }
}
