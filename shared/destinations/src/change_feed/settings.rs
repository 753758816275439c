//! The change feed's per-organization settings and its webhook credential.
//!
//! Settings (`PLUGIN#change-feed#CONFIG`), one of:
//! - `{"target": "eventbridge", "event_bus": "<name or ARN>", "detail_type_prefix": "Acme."}`
//! - `{"target": "webhook", "batch_size": 100, "allow_http_loopback": false,
//!    "allow_hosts": []}`: the URL and signing secret are NOT here; they live in the secret
//!   store as `classy-sync/<org>/change-feed`, JSON `{"url": "...", "secret": "..."}`.

use classy_sync_core::ports::PluginError;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::NAME;

/// Changes per webhook POST, at most.
pub const MAX_WEBHOOK_BATCH: usize = 100;
/// EventBridge `DetailType` is at most 128 characters; the longest event type is 18.
const MAX_PREFIX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Eventbridge,
    Webhook,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeFeedSettings {
    pub target: TargetKind,
    /// EventBridge: the customer's bus, by name or ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bus: Option<String>,
    /// EventBridge: prepended to `SupporterChanged` / `TransactionChanged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_type_prefix: Option<String>,
    /// Changes per delivery (webhook: at most 100; EventBridge: per PutEvents group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Webhook, development only (needs `CLASSY_SYNC_ALLOW_DEV_URLS=1`): allow `http://` to
    /// a loopback receiver.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http_loopback: bool,
    /// Webhook, development only (needs `CLASSY_SYNC_ALLOW_DEV_URLS=1`): hosts/addresses
    /// allowed to resolve to private addresses (internal receivers); never link-local ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_hosts: Vec<String>,
}

fn bad(m: impl Into<String>) -> PluginError {
    PluginError::config(NAME, m)
}

/// EventBridge bus names: 1-256 of `[/.\-_A-Za-z0-9]`; or an `arn:...:events:...:event-bus/<name>`.
fn valid_bus(s: &str) -> bool {
    if s.starts_with("arn:") {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        return parts.len() == 6
            && parts[2] == "events"
            && parts[5]
                .strip_prefix("event-bus/")
                .is_some_and(|n| !n.is_empty() && valid_bus(n));
    }
    !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
}

impl ChangeFeedSettings {
    /// Parses and checks settings under the deployment's development switch
    /// (`CLASSY_SYNC_ALLOW_DEV_URLS`).
    pub fn parse(v: &serde_json::Value) -> Result<Self, PluginError> {
        Self::parse_with(v, classy_sync_http::dev_urls_allowed())
    }

    /// [`ChangeFeedSettings::parse`] with the switch given: without it, `allow_http_loopback`
    /// and `allow_hosts` are refused.
    pub fn parse_with(v: &serde_json::Value, allow_dev_urls: bool) -> Result<Self, PluginError> {
        // Name the field when the target itself is wrong (serde only names the variant).
        if let Some(t) = v.get("target") {
            if !matches!(t.as_str(), Some("eventbridge" | "webhook")) {
                return Err(bad(format!(
                    "target must be \"eventbridge\" or \"webhook\", not {t}"
                )));
            }
        }
        let s: ChangeFeedSettings =
            serde_json::from_value(v.clone()).map_err(|e| bad(e.to_string()))?;
        s.check(allow_dev_urls)?;
        Ok(s)
    }

    fn check(&self, allow_dev_urls: bool) -> Result<(), PluginError> {
        match self.target {
            TargetKind::Eventbridge => {
                let bus = self.event_bus.as_deref().map(str::trim).unwrap_or("");
                if !valid_bus(bus) {
                    return Err(bad(
                        "event_bus must be an EventBridge bus name (letters, digits, / . _ -) or ARN",
                    ));
                }
                if let Some(p) = &self.detail_type_prefix {
                    if p.len() > MAX_PREFIX || p.chars().any(char::is_control) {
                        return Err(bad(format!(
                            "detail_type_prefix must be at most {MAX_PREFIX} printable characters"
                        )));
                    }
                }
                if self.allow_http_loopback || !self.allow_hosts.is_empty() {
                    return Err(bad(
                        "allow_http_loopback and allow_hosts apply to the webhook target only",
                    ));
                }
            }
            TargetKind::Webhook => {
                if self.event_bus.is_some() || self.detail_type_prefix.is_some() {
                    return Err(bad(
                        "event_bus and detail_type_prefix apply to the eventbridge target only",
                    ));
                }
                if !allow_dev_urls {
                    if self.allow_http_loopback {
                        return Err(bad(classy_sync_http::dev::needs_dev_switch(
                            "allow_http_loopback",
                        )));
                    }
                    if !self.allow_hosts.is_empty() {
                        return Err(bad(classy_sync_http::dev::needs_dev_switch("allow_hosts")));
                    }
                }
                for h in &self.allow_hosts {
                    classy_sync_http::url_guard::check_allow_entry(h)
                        .map_err(|e| bad(format!("allow_hosts: {e}")))?;
                }
            }
        }
        if let Some(n) = self.batch_size {
            if n == 0 || n > MAX_WEBHOOK_BATCH {
                return Err(bad(format!(
                    "batch_size must be between 1 and {MAX_WEBHOOK_BATCH}"
                )));
            }
        }
        Ok(())
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(MAX_WEBHOOK_BATCH)
    }

    pub fn bus(&self) -> &str {
        self.event_bus.as_deref().map(str::trim).unwrap_or("")
    }

    pub fn detail_type(&self, event_type: &str) -> String {
        format!(
            "{}{event_type}",
            self.detail_type_prefix.as_deref().unwrap_or("")
        )
    }
}

/// The webhook's secret parts, stored together as one secret.
pub struct WebhookCredential {
    pub url: SecretString,
    pub signing_secret: SecretString,
}

#[derive(Serialize, Deserialize)]
struct StoredCredential {
    url: String,
    secret: String,
}

impl WebhookCredential {
    /// Parses the stored JSON; errors never echo the values.
    pub fn parse(raw: &SecretString) -> Result<Self, PluginError> {
        let cred = |m: &str| PluginError::Credentials {
            plugin: NAME.into(),
            message: m.to_string(),
        };
        let s: StoredCredential = serde_json::from_str(raw.expose_secret())
            .map_err(|_| cred("the secret must be JSON {\"url\": ..., \"secret\": ...}"))?;
        if s.url.trim().is_empty() {
            return Err(cred("url is empty"));
        }
        if s.secret.len() < 16 {
            return Err(cred("the signing secret must be at least 16 characters"));
        }
        Ok(WebhookCredential {
            url: SecretString::from(s.url.trim().to_string()),
            signing_secret: SecretString::from(s.secret),
        })
    }

    /// The value stored in the secret store.
    pub fn to_secret(url: &str, secret: &str) -> SecretString {
        SecretString::from(
            serde_json::to_string(&StoredCredential {
                url: url.trim().to_string(),
                secret: secret.to_string(),
            })
            .unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_and_their_fields() {
        let eb = ChangeFeedSettings::parse(
            &json!({"target": "eventbridge", "event_bus": "acme-feed", "detail_type_prefix": "Acme."}),
        )
        .unwrap();
        assert_eq!(eb.detail_type("SupporterChanged"), "Acme.SupporterChanged");
        assert!(ChangeFeedSettings::parse(&json!({
            "target": "eventbridge",
            "event_bus": "arn:aws:events:us-east-1:123456789012:event-bus/acme"
        }))
        .is_ok());
        for (v, field) in [
            (json!({"target": "eventbridge"}), "event_bus"),
            (
                json!({"target": "eventbridge", "event_bus": "a b"}),
                "event_bus",
            ),
            (json!({"target": "webhook", "event_bus": "x"}), "event_bus"),
            (
                json!({"target": "webhook", "batch_size": 101}),
                "batch_size",
            ),
            (json!({"target": "smtp"}), "target"),
            (json!({"target": "webhook", "url": "https://x"}), "url"),
        ] {
            let e = ChangeFeedSettings::parse(&v).unwrap_err().to_string();
            assert!(e.contains(field), "{v}: {e}");
        }
        let wh = ChangeFeedSettings::parse(&json!({"target": "webhook"})).unwrap();
        assert_eq!(wh.batch_size(), 100);
    }

    #[test]
    fn development_flags_need_the_switch_and_metadata_is_never_allowed() {
        for v in [
            json!({"target": "webhook", "allow_http_loopback": true}),
            json!({"target": "webhook", "allow_hosts": ["10.0.0.5"]}),
        ] {
            let e = ChangeFeedSettings::parse_with(&v, false)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("CLASSY_SYNC_ALLOW_DEV_URLS")
                    && (e.contains("allow_http_loopback") || e.contains("allow_hosts")),
                "{v}: {e}"
            );
            assert!(ChangeFeedSettings::parse_with(&v, true).is_ok(), "{v}");
        }
        for entry in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254"] {
            let v = json!({"target": "webhook", "allow_hosts": [entry]});
            let e = ChangeFeedSettings::parse_with(&v, true)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("allow_hosts") && e.contains("link-local"),
                "{entry}: {e}"
            );
        }
    }

    #[test]
    fn credential_errors_never_show_the_values() {
        let raw = WebhookCredential::to_secret("https://hooks.example.org/x?token=abc", "short");
        let e = WebhookCredential::parse(&raw).err().unwrap().to_string();
        assert!(!e.contains("token=abc") && !e.contains("short"), "{e}");
        let ok = WebhookCredential::to_secret("https://hooks.example.org/x", "0123456789abcdef");
        let c = WebhookCredential::parse(&ok).unwrap();
        assert_eq!(c.url.expose_secret(), "https://hooks.example.org/x");
    }
}
