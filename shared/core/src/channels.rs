//! Named notification channels: the non-secret part is a store item
//! (`NOTIFY` / `CHANNEL#<name>`), the secret part (webhook URL, signing secret, SMTP password)
//! is one JSON secret `classy-sync/_channels/<name>` in the secret store.

use crate::ports::{Condition, Item, SecretError, SecretStore, SkRange, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Partition of everything notification-related that is not per organization.
pub use crate::domain::keys::{channel_sk, CHANNEL_PREFIX, NOTIFY_PK};

/// `classy-sync/_channels/<name>` (the `_` keeps it apart from organization ids).
pub fn channel_secret_name(name: &str) -> String {
    format!("classy-sync/_channels/{name}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Slack,
    Email,
    Webhook,
    Console,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Console => "console",
        }
    }

    /// Whether the channel needs a URL secret.
    pub fn needs_url(self) -> bool {
        matches!(self, ChannelKind::Slack | ChannelKind::Webhook)
    }
}

impl std::str::FromStr for ChannelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "slack" => Ok(ChannelKind::Slack),
            "email" => Ok(ChannelKind::Email),
            "webhook" => Ok(ChannelKind::Webhook),
            "console" => Ok(ChannelKind::Console),
            other => Err(format!(
                "unknown channel kind {other:?} (slack, email, webhook, console)"
            )),
        }
    }
}

/// The stored, non-secret configuration of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// Email recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Development only: http:// to loopback is allowed for this channel's URL.
    #[serde(default)]
    pub allow_http_loopback: bool,
}

/// The secret part of a channel, stored as one JSON secret.
#[derive(Default, Serialize, Deserialize)]
pub struct ChannelSecrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password: Option<String>,
}

impl std::fmt::Debug for ChannelSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelSecrets(redacted)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("invalid channel: {0}")]
    Invalid(String),
    #[error("channel {0:?} already exists")]
    Exists(String),
    #[error("channel {0:?} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// A channel name: 1–64 of `[A-Za-z0-9_-]`, so it is safe in keys and secret names.
pub fn validate_name(name: &str) -> Result<(), ChannelError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ChannelError::Invalid(format!(
            "name {name:?}: use 1-64 letters, digits, '-' or '_'"
        )))
    }
}

/// A plausible email address (`local@domain.tld`); real validation is the server's.
pub fn validate_email(addr: &str) -> Result<(), ChannelError> {
    let valid = addr
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !addr.contains(char::is_whitespace)
        && is_address(addr);
    if valid {
        Ok(())
    } else {
        Err(ChannelError::Invalid(format!(
            "email recipient {addr:?} is not an address"
        )))
    }
}

/// RFC 5322 dot-atom local part and a domain of letter/digit/hyphen labels: what SMTP and
/// SES both accept without quoting.
fn is_address(addr: &str) -> bool {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let local_ok = local.len() <= 64
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext));
    let domain_ok = domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

impl ChannelConfig {
    pub fn validate(&self) -> Result<(), ChannelError> {
        validate_name(&self.name)?;
        if self.kind == ChannelKind::Email {
            if self.to.is_empty() {
                return Err(ChannelError::Invalid(
                    "an email channel needs at least one recipient (--to)".into(),
                ));
            }
            for a in &self.to {
                validate_email(a)?;
            }
        }
        Ok(())
    }
}

pub async fn load_channel(store: &dyn Store, name: &str) -> Result<ChannelConfig, ChannelError> {
    let item = store
        .get(NOTIFY_PK, &channel_sk(name))
        .await?
        .ok_or_else(|| ChannelError::NotFound(name.to_owned()))?;
    Ok(item.parse()?)
}

pub async fn list_channels(store: &dyn Store) -> Result<Vec<ChannelConfig>, ChannelError> {
    let mut out = Vec::new();
    let range = SkRange::prefix(CHANNEL_PREFIX);
    crate::ports::store::for_each_page(store, NOTIFY_PK, &range, 100, |items| {
        for i in items {
            out.push(i.parse()?);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Saves a new channel: the secret first, so a stored channel always has its secret.
pub async fn add_channel(
    store: &dyn Store,
    secrets: &dyn SecretStore,
    config: &ChannelConfig,
    secret: &ChannelSecrets,
) -> Result<(), ChannelError> {
    config.validate()?;
    if store
        .get(NOTIFY_PK, &channel_sk(&config.name))
        .await?
        .is_some()
    {
        return Err(ChannelError::Exists(config.name.clone()));
    }
    if secret.url.is_some() || secret.signing_secret.is_some() || secret.smtp_password.is_some() {
        let json = serde_json::to_string(secret)
            .map_err(|e| ChannelError::Invalid(format!("secret does not serialize: {e}")))?;
        secrets
            .put(&channel_secret_name(&config.name), SecretString::from(json))
            .await?;
    }
    let item = Item::json(NOTIFY_PK, channel_sk(&config.name), config);
    match store.put(item, Condition::NotExists).await {
        Err(e) if e.is_condition_failed() => Err(ChannelError::Exists(config.name.clone())),
        other => Ok(other?),
    }
}

/// Removes a channel and its secret (a missing secret is fine: console and email may have none).
pub async fn remove_channel(
    store: &dyn Store,
    secrets: &dyn SecretStore,
    name: &str,
) -> Result<(), ChannelError> {
    load_channel(store, name).await?;
    match secrets.delete(&channel_secret_name(name)).await {
        Ok(()) | Err(SecretError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    store
        .delete(NOTIFY_PK, &channel_sk(name), Condition::Always)
        .await?;
    Ok(())
}

/// The channel's secrets; none stored reads as empty.
pub async fn load_secrets(
    secrets: &dyn SecretStore,
    name: &str,
) -> Result<ChannelSecrets, ChannelError> {
    match secrets.get(&channel_secret_name(name)).await {
        Ok(s) => serde_json::from_str(s.expose_secret()).map_err(|_| {
            // Never echo the secret's content.
            ChannelError::Invalid(format!(
                "secret {} is not the expected JSON",
                channel_secret_name(name)
            ))
        }),
        Err(SecretError::NotFound(_)) => Ok(ChannelSecrets::default()),
        Err(e) => Err(e.into()),
    }
}
