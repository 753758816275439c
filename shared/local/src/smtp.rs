//! Email over SMTP (local runs and any non-AWS host), with lettre.
//!
//! `CLASSY_SYNC_SMTP_URL`: `smtp://[user@]host[:port]` (default port 25; STARTTLS when the
//! server offers it), `smtp://host:587?tls=required` (STARTTLS or fail), `?tls=none` (never),
//! `smtps://host[:465]` (TLS from the first byte). A password, if any, is the channel's
//! secret (`smtp_password`), never part of the URL, and is only ever sent over TLS: with a
//! user name the URL must be `smtps://` or `?tls=required` (opportunistic STARTTLS can be
//! stripped by anyone on the path), and a channel password over any other connection is
//! refused before connecting.

use async_trait::async_trait;
use classy_sync_core::ports::{Email, MailTransport, SendError};
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

pub const ENV_SMTP_URL: &str = "CLASSY_SYNC_SMTP_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    Opportunistic,
    Required,
    Wrapper,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpMailer {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub timeout: Duration,
}

impl SmtpMailer {
    /// Parses an `smtp://` or `smtps://` URL (see the module docs). Errors name the problem
    /// and never echo a password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(raw.trim()).map_err(|e| format!("{ENV_SMTP_URL} is not a URL: {e}"))?;
        if url.password().is_some() {
            return Err(format!(
                "{ENV_SMTP_URL} must not contain a password: store it as the channel's secret"
            ));
        }
        let (default_port, mut tls) = match url.scheme() {
            "smtp" => (25, TlsMode::Opportunistic),
            "smtps" => (465, TlsMode::Wrapper),
            other => {
                return Err(format!(
                    "{ENV_SMTP_URL}: scheme {other:?} is not smtp or smtps"
                ))
            }
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), tls) {
                ("tls", "required", TlsMode::Opportunistic) => tls = TlsMode::Required,
                ("tls", "none", TlsMode::Opportunistic) => tls = TlsMode::None,
                ("tls", "opportunistic", _) => {}
                _ => return Err(format!("{ENV_SMTP_URL}: unknown option {k}={v}")),
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{ENV_SMTP_URL} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let username = Some(url.username()).filter(|u| !u.is_empty()).map(|u| {
            percent_encoding::percent_decode_str(u)
                .decode_utf8_lossy()
                .into_owned()
        });
        if username.is_some() && !matches!(tls, TlsMode::Required | TlsMode::Wrapper) {
            return Err(format!(
                "{ENV_SMTP_URL}: a user name means a password is sent, which needs TLS: use smtps://host or smtp://host:587?tls=required"
            ));
        }
        Ok(SmtpMailer {
            host,
            port: url.port().unwrap_or(default_port),
            tls,
            username,
            timeout: Duration::from_secs(30),
        })
    }

    fn transport(
        &self,
        password: Option<&str>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let params = || {
            TlsParameters::new(self.host.clone()).map_err(|e| SendError {
                reason: format!("SMTP TLS setup: {e}"),
                retry_after: None,
                permanent: true,
            })
        };
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            TlsMode::Opportunistic => Tls::Opportunistic(params()?),
            TlsMode::Required => Tls::Required(params()?),
            TlsMode::Wrapper => Tls::Wrapper(params()?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let (Some(user), Some(pass)) = (&self.username, password) {
            b = b.credentials(Credentials::new(user.clone(), pass.to_owned()));
        }
        Ok(b.build())
    }

    /// Whether the connection is always encrypted before anything is authenticated.
    pub fn always_tls(&self) -> bool {
        matches!(self.tls, TlsMode::Required | TlsMode::Wrapper)
    }

    /// Sends one message (`raw`: headers and MIME body, as built by the notifier) to the
    /// envelope's recipients. Permanent SMTP answers (5xx) are permanent failures. A password
    /// over a connection that is not always TLS is refused before connecting.
    pub async fn send_raw(
        &self,
        password: Option<&str>,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), SendError> {
        if password.is_some() {
            if let Some(why) = self.password_refusal() {
                return Err(SendError::permanent(why));
            }
        }
        let transport = self.transport(password)?;
        transport
            .send_raw(envelope, raw)
            .await
            .map(|_| ())
            .map_err(|e| SendError {
                reason: format!("SMTP {}:{}: {e}", self.host, self.port),
                retry_after: None,
                permanent: e.is_permanent(),
            })
    }
}

fn bad_address(what: &str, addr: &str) -> SendError {
    SendError::permanent(format!("{what} {addr:?} is not a valid email address"))
}

/// The SMTP envelope of `mail`: its sender and recipients.
pub fn envelope(mail: &Email) -> Result<Envelope, SendError> {
    let from: Address = mail
        .from
        .parse()
        .map_err(|_| bad_address("sender", &mail.from))?;
    let to = mail
        .to
        .iter()
        .map(|a| {
            a.parse::<Address>()
                .map_err(|_| bad_address("recipient", a))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(from), to)
        .map_err(|e| SendError::permanent(format!("cannot address the email: {e}")))
}

#[async_trait]
impl MailTransport for SmtpMailer {
    async fn send(&self, email: &Email, password: Option<&str>) -> Result<(), SendError> {
        self.send_raw(password, &envelope(email)?, &email.raw).await
    }

    fn password_refusal(&self) -> Option<String> {
        (!self.always_tls()).then(|| {
            format!(
                "smtp_password is set but {ENV_SMTP_URL} is not TLS ({}:{}, {:?}): the password would travel in clear; use smtps://host or ?tls=required",
                self.host, self.port, self.tls
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_refuses_bad_addresses() {
        let mut mail = Email {
            from: "ops@example.org".into(),
            to: vec!["a@example.org".into(), "b@example.org".into()],
            subject: "Hi".into(),
            raw: b"Subject: Hi\r\n\r\ntext".to_vec(),
        };
        let e = envelope(&mail).unwrap();
        assert_eq!(
            e.from().map(|a| a.to_string()).as_deref(),
            Some("ops@example.org")
        );
        assert_eq!(e.to().len(), 2);
        mail.from = "not an address".into();
        assert!(envelope(&mail).is_err());
        mail.from = "ops@example.org".into();
        mail.to = vec![];
        assert!(envelope(&mail).is_err());
    }

    #[test]
    fn parses_urls() {
        let s = SmtpMailer::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("127.0.0.1", 2525, TlsMode::Opportunistic)
        );
        let s = SmtpMailer::parse("smtp://bot%40x@mail.example.org:587?tls=required").unwrap();
        assert!(s.always_tls());
        assert_eq!(s.username.as_deref(), Some("bot@x"));
        assert_eq!(s.tls, TlsMode::Required);
        assert_eq!(
            SmtpMailer::parse("smtps://m.example.org").unwrap().port,
            465
        );
        assert_eq!(
            SmtpMailer::parse("smtp://h?tls=none").unwrap().tls,
            TlsMode::None
        );
        let e = SmtpMailer::parse("smtp://u:hunter2@h").unwrap_err();
        assert!(!e.contains("hunter2"));
        assert!(SmtpMailer::parse("http://h").is_err());
        // A user name (so a password) only over TLS.
        for raw in ["smtp://bot@h:587", "smtp://bot@h?tls=none"] {
            let e = SmtpMailer::parse(raw).unwrap_err();
            assert!(e.contains(ENV_SMTP_URL) && e.contains("TLS"), "{raw}: {e}");
        }
        assert!(SmtpMailer::parse("smtps://bot@h").unwrap().always_tls());
        assert!(SmtpMailer::parse("smtp://h?tls=maybe").is_err());
    }
}
