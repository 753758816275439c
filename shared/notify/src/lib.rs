//! Notifications: the [`Notifier`] port implemented over named channels (Slack, email by SMTP
//! or SES v2, signed webhook, console), with a delivery record per message × channel and
//! retries with backoff. See docs/notifications.md.
//!
//! - [`channel`]: channel configuration (store item + secret), from the core.
//! - [`delivery`]: delivery records and the idempotent claim/finish of one attempt.
//! - [`retry`]: the backoff ladder.
//! - [`url_guard`]: the SSRF guard every Slack/webhook URL passes, at save and at send time.
//! - one module per channel: [`slack`], [`webhook`], [`email`] (rendering the whole MIME
//!   message, report charts as inline PNGs by [`chart_png`]; the transport, SMTP or SES, is a
//!   [`MailTransport`] adapter that sends it as it is), [`console`].

pub mod chart_png;
pub mod console;
pub mod delivery;
pub mod email;
pub mod retry;
pub mod slack;
pub mod webhook;

pub use classy_sync_core::channels as channel;
pub use classy_sync_core::ports::SendError;
pub use classy_sync_http::url_guard;

use async_trait::async_trait;
use channel::{ChannelConfig, ChannelError, ChannelKind};
use classy_sync_core::ports::{
    Clock, DeliveryReport, DeliveryStatus, MailTransport, Message, Notifier, NotifyError,
    SecretStore, Store,
};
use delivery::Claim;
use retry::RetryPolicy;
use std::sync::Arc;
use std::time::Duration;
use url_guard::{UrlError, UrlPolicy};

/// Sender address of email channels.
pub const ENV_EMAIL_FROM: &str = "CLASSY_SYNC_EMAIL_FROM";
/// Comma-separated host names or IP addresses that Slack/webhook URLs may resolve to even if
/// they are private (an internal receiver).
pub const ENV_URL_ALLOW: &str = "CLASSY_SYNC_NOTIFY_ALLOW";
/// The deployment switch for development URLs (a channel's `allow_http_loopback`).
pub use classy_sync_http::ENV_ALLOW_DEV_URLS;

#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// How email leaves (SMTP locally, SES on AWS); `None`: email channels fail.
    pub email: Option<Arc<dyn MailTransport>>,
    pub email_from: Option<String>,
    /// Hosts/addresses exempt from the private-address refusal (see [`UrlPolicy`]); never
    /// link-local ones.
    pub url_allow_list: Vec<String>,
    /// The deployment's development switch (`CLASSY_SYNC_ALLOW_DEV_URLS`): without it a
    /// channel's `allow_http_loopback` is refused when added and ignored when sending.
    pub allow_dev_urls: bool,
    pub retry: RetryPolicy,
    pub http_timeout: Duration,
    /// Longest total `Retry-After` wait inside one delivery attempt.
    pub max_429_wait: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            email: None,
            email_from: None,
            url_allow_list: Vec::new(),
            allow_dev_urls: false,
            retry: retry::default_policy(),
            http_timeout: Duration::from_secs(15),
            max_429_wait: Duration::from_secs(30),
        }
    }
}

impl NotifySettings {
    /// Reads `CLASSY_SYNC_EMAIL_FROM`, `CLASSY_SYNC_NOTIFY_ALLOW` and
    /// `CLASSY_SYNC_ALLOW_DEV_URLS` through `var`; the composition root adds the email
    /// transport ([`with_email`]).
    ///
    /// [`with_email`]: NotifySettings::with_email
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |n: &str| {
            var(n)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let email_from = get(ENV_EMAIL_FROM);
        if let Some(f) = &email_from {
            channel::validate_email(f)
                .map_err(|_| format!("{ENV_EMAIL_FROM} {f:?} is not an email address"))?;
        }
        let url_allow_list: Vec<String> = get(ENV_URL_ALLOW)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for entry in &url_allow_list {
            url_guard::check_allow_entry(entry).map_err(|e| format!("{ENV_URL_ALLOW}: {e}"))?;
        }
        let allow_dev_urls = classy_sync_http::dev_urls_from(&var)?;
        Ok(NotifySettings {
            email_from,
            url_allow_list,
            allow_dev_urls,
            ..NotifySettings::default()
        })
    }

    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|n| std::env::var(n).ok())
    }

    /// Email through this transport (SMTP locally, SES v2 on AWS).
    pub fn with_email(mut self, transport: Arc<dyn MailTransport>) -> Self {
        self.email = Some(transport);
        self
    }

    /// The SSRF policy for one channel: its `allow_http_loopback` counts only with the
    /// deployment's development switch.
    pub fn url_policy(&self, channel: &ChannelConfig) -> UrlPolicy {
        UrlPolicy {
            allow_http_loopback: channel.allow_http_loopback && self.allow_dev_urls,
            allow_list: self.url_allow_list.clone(),
        }
    }
}

/// The [`Notifier`]: looks channels up by name, records and sends each delivery.
pub struct NotificationService {
    store: Arc<dyn Store>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    settings: NotifySettings,
}

fn store_err(e: impl std::fmt::Display) -> NotifyError {
    NotifyError::Store(e.to_string())
}

fn url_failure(e: UrlError) -> SendError {
    // A name that does not resolve now may resolve later; everything else is configuration.
    let permanent = !matches!(e, UrlError::Unresolvable { .. });
    SendError {
        reason: format!("URL refused: {e}"),
        retry_after: None,
        permanent,
    }
}

impl NotificationService {
    pub fn new(
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
        settings: NotifySettings,
    ) -> Self {
        NotificationService {
            store,
            secrets,
            clock,
            settings,
        }
    }

    pub fn settings(&self) -> &NotifySettings {
        &self.settings
    }

    /// Validates and saves a channel. A Slack or webhook URL must pass the SSRF guard now
    /// (it is checked again before every send, since DNS answers change); the development
    /// flag needs the deployment's switch; an SMTP password needs a TLS transport.
    pub async fn add_channel(
        &self,
        config: &ChannelConfig,
        secrets: &channel::ChannelSecrets,
    ) -> Result<(), ChannelError> {
        config.validate()?;
        if config.allow_http_loopback && !self.settings.allow_dev_urls {
            return Err(ChannelError::Invalid(
                classy_sync_http::dev::needs_dev_switch("allow_http_loopback"),
            ));
        }
        if config.kind == ChannelKind::Email && secrets.smtp_password.is_some() {
            if let Some(why) = self
                .settings
                .email
                .as_ref()
                .and_then(|t| t.password_refusal())
            {
                return Err(ChannelError::Invalid(why));
            }
        }
        if config.kind.needs_url() {
            let url = secrets.url.as_deref().ok_or_else(|| {
                ChannelError::Invalid(format!("a {} channel needs a URL", config.kind.as_str()))
            })?;
            self.settings
                .url_policy(config)
                .check(url)
                .await
                .map_err(|e| ChannelError::Invalid(format!("URL refused: {e}")))?;
        }
        if config.kind == ChannelKind::Webhook
            && secrets
                .signing_secret
                .as_deref()
                .is_none_or(|s| s.len() < 16)
        {
            return Err(ChannelError::Invalid(
                "a webhook channel needs a signing secret of at least 16 characters".into(),
            ));
        }
        channel::add_channel(self.store.as_ref(), self.secrets.as_ref(), config, secrets).await
    }

    pub async fn list_channels(&self) -> Result<Vec<ChannelConfig>, ChannelError> {
        channel::list_channels(self.store.as_ref()).await
    }

    pub async fn remove_channel(&self, name: &str) -> Result<(), ChannelError> {
        channel::remove_channel(self.store.as_ref(), self.secrets.as_ref(), name).await
    }

    /// Delivery records, optionally only those with `status`.
    pub async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
    ) -> Result<Vec<delivery::DeliveryRecord>, NotifyError> {
        delivery::list(self.store.as_ref(), status)
            .await
            .map_err(store_err)
    }

    /// One attempt on one channel, without any bookkeeping.
    async fn send_via(
        &self,
        cfg: &ChannelConfig,
        m: &Message,
        first_attempt_at: i64,
    ) -> Result<(), SendError> {
        let s = &self.settings;
        if cfg.kind == ChannelKind::Console {
            return console::send(m);
        }
        let secrets = channel::load_secrets(self.secrets.as_ref(), &cfg.name)
            .await
            .map_err(|e| match e {
                ChannelError::Secret(classy_sync_core::ports::SecretError::Unavailable(r)) => {
                    SendError {
                        reason: format!("secret store unavailable: {r}"),
                        retry_after: None,
                        permanent: false,
                    }
                }
                other => SendError::permanent(other.to_string()),
            })?;
        match cfg.kind {
            ChannelKind::Console => unreachable!("handled above"),
            ChannelKind::Slack => {
                let raw = secrets
                    .url
                    .as_deref()
                    .ok_or_else(|| SendError::permanent("no webhook URL stored for the channel"))?;
                let url = s.url_policy(cfg).check(raw).await.map_err(url_failure)?;
                slack::send(&url, m, s.http_timeout, s.max_429_wait).await
            }
            ChannelKind::Webhook => {
                let raw = secrets
                    .url
                    .as_deref()
                    .ok_or_else(|| SendError::permanent("no webhook URL stored for the channel"))?;
                let key = secrets.signing_secret.as_deref().ok_or_else(|| {
                    SendError::permanent("no signing secret stored for the channel")
                })?;
                let url = s.url_policy(cfg).check(raw).await.map_err(url_failure)?;
                let clock = self.clock.clone();
                webhook::send(
                    &url,
                    key.as_bytes(),
                    m,
                    first_attempt_at,
                    move || clock.unix(),
                    s.http_timeout,
                    s.max_429_wait,
                )
                .await
            }
            ChannelKind::Email => {
                let from = s.email_from.as_deref().ok_or_else(|| {
                    SendError::permanent(format!("no sender address: set {ENV_EMAIL_FROM}"))
                })?;
                let transport = s.email.as_ref().ok_or_else(|| {
                    SendError::permanent(
                        "no email transport: set CLASSY_SYNC_SMTP_URL (or use the aws backend for SES)",
                    )
                })?;
                let mail = email::render(from, &cfg.to, m)?;
                transport
                    .send(&mail, secrets.smtp_password.as_deref())
                    .await
            }
        }
    }

    /// Claims, sends and records one delivery. `force` ignores the backoff of a failed one.
    async fn deliver(
        &self,
        cfg: Option<&ChannelConfig>,
        channel: &str,
        m: &Message,
        force: bool,
    ) -> Result<DeliveryReport, NotifyError> {
        let store = self.store.as_ref();
        let claim = delivery::claim(store, m, channel, self.clock.unix(), force)
            .await
            .map_err(store_err)?;
        let (rec, version) = match claim {
            Claim::Skip(rec) => return Ok(rec.report()),
            Claim::Go(rec, v) => (rec, v),
        };
        let result = match cfg {
            Some(cfg) => self.send_via(cfg, m, rec.created_at).await,
            None => Err(SendError::permanent("the channel was removed")),
        };
        let now = self.clock.unix();
        let outcome = result.map_err(|e| {
            let retry_at = if e.permanent {
                None
            } else {
                self.settings.retry.next_delay(rec.attempts).map(|d| {
                    let wait = e.retry_after.map_or(d, |r| r.max(d));
                    now + wait.as_secs() as i64
                })
            };
            tracing::warn!(channel, message_id = %m.id, attempts = rec.attempts,
                error = %e.reason, retry_at, "notification delivery failed");
            (e.reason, retry_at)
        });
        let rec = delivery::finish(store, rec, version, now, outcome)
            .await
            .map_err(store_err)?;
        Ok(rec.report())
    }

    /// Sends again every failed (or abandoned in-flight) delivery that is due; with `force`,
    /// every failed one whatever its backoff, even those given up on. A delivery whose message
    /// was too large to keep whole (a report) is left to its producer, which rebuilds it (the
    /// report run retries its own deliveries).
    pub async fn retry_due(&self, force: bool) -> Result<Vec<DeliveryReport>, NotifyError> {
        let now = self.clock.unix();
        let due: Vec<_> = delivery::list(self.store.as_ref(), None)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|r| r.status != DeliveryStatus::Sent && r.is_due(now, force))
            .filter(|r| {
                if !r.complete {
                    tracing::debug!(channel = %r.channel, message_id = %r.message_id,
                        "delivery left to its producer: the message is rebuilt to be retried");
                }
                r.complete
            })
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for rec in due {
            let cfg = match channel::load_channel(self.store.as_ref(), &rec.channel).await {
                Ok(c) => Some(c),
                Err(ChannelError::NotFound(_)) => None,
                Err(e) => return Err(store_err(e)),
            };
            out.push(
                self.deliver(cfg.as_ref(), &rec.channel, &rec.message, force)
                    .await?,
            );
        }
        Ok(out)
    }
}

#[async_trait]
impl Notifier for NotificationService {
    async fn notify(
        &self,
        message: &Message,
        channels: &[String],
    ) -> Result<Vec<DeliveryReport>, NotifyError> {
        // Resolve every name first: an unknown name is the caller's error, reported before
        // anything is sent.
        let mut configs = Vec::with_capacity(channels.len());
        for name in channels {
            match channel::load_channel(self.store.as_ref(), name).await {
                Ok(c) => configs.push(c),
                Err(ChannelError::NotFound(n)) => return Err(NotifyError::UnknownChannel(n)),
                Err(e) => return Err(store_err(e)),
            }
        }
        let sends = configs
            .iter()
            .map(|c| self.deliver(Some(c), &c.name, message, false));
        futures::future::join_all(sends).await.into_iter().collect()
    }

    async fn retry_due(&self, force: bool) -> Result<Vec<DeliveryReport>, NotifyError> {
        NotificationService::retry_due(self, force).await
    }

    async fn deliveries(
        &self,
        message_id: &str,
        channels: &[String],
    ) -> Result<Vec<Option<DeliveryReport>>, NotifyError> {
        let mut out = Vec::with_capacity(channels.len());
        for c in channels {
            let rec = delivery::load(self.store.as_ref(), c, message_id)
                .await
                .map_err(store_err)?;
            out.push(rec.map(|(r, _)| r.report()));
        }
        Ok(out)
    }
}
