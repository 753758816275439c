//! The Mailchimp destination's per-organization settings (the API key is not here: it lives
//! in the secret store as `classy-sync/<org>/mailchimp`).

use classy_sync_core::domain::segments::{default_rules, validate_rules, SegmentRule};
use classy_sync_core::ports::PluginError;
use serde::{Deserialize, Serialize};

/// Mailchimp's batch limit.
pub const MAX_BATCH: usize = 500;

/// Environment override of the API base URL (the sandbox: `http://127.0.0.1:PORT/3.0`): a
/// deployment setting, never an organization's.
pub const BASE_URL_ENV: &str = "MAILCHIMP_API_BASE_URL";

/// The deployment's default for requests in flight per Mailchimp API key (every worker and
/// process together); an organization's `max_in_flight` wins.
pub const MAX_IN_FLIGHT_ENV: &str = "CLASSY_SYNC_MAILCHIMP_MAX_IN_FLIGHT";

/// Requests in flight per key when nothing says otherwise: 4 of Mailchimp's 10, so the
/// nonprofit's other integrations keep headroom.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4;

/// Mailchimp's own limit: simultaneous connections per API key.
pub const MAILCHIMP_MAX_IN_FLIGHT: u32 = 10;

/// Why a per-organization `api_base_url` is refused (the value is not echoed: it could carry
/// credentials).
const BASE_URL_RULE: &str = "api_base_url must be https://<dc>.api.mailchimp.com (optionally \
     ending in /3.0), <dc> being the data center, e.g. us14; a sandbox or other endpoint is \
     set for the whole deployment with the MAILCHIMP_API_BASE_URL environment variable";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailchimpSettings {
    /// The audience (list) id.
    pub list_id: String,
    /// Donor-segment rules; the defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<SegmentRule>>,
    /// Another data center than the key's: only `https://<dc>.api.mailchimp.com` (the API
    /// key is sent there). Wins over `MAILCHIMP_API_BASE_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    /// Members per batch call (at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Requests in flight for this organization's API key, across every worker and process
    /// (1 to 10); `CLASSY_SYNC_MAILCHIMP_MAX_IN_FLIGHT`, else 4, when absent. Organizations
    /// sharing a key share its places: a request goes out only while fewer than its own
    /// organization's limit are in flight for the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

impl MailchimpSettings {
    pub fn parse(v: &serde_json::Value) -> Result<Self, PluginError> {
        let s: MailchimpSettings = serde_json::from_value(v.clone())
            .map_err(|e| PluginError::config("mailchimp", e.to_string()))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), PluginError> {
        let bad = |m: &str| Err(PluginError::config("mailchimp", m));
        let id = self.list_id.trim();
        if id.is_empty()
            || id.len() > 100
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad("list_id must be 1 to 100 letters, digits, '_' or '-'");
        }
        if let Some(rules) = &self.segments {
            validate_rules(rules)
                .map_err(|e| PluginError::config("mailchimp", format!("segments: {e}")))?;
        }
        if let Some(url) = &self.api_base_url {
            if mailchimp_base(url).is_none() {
                return bad(BASE_URL_RULE);
            }
        }
        if let Some(n) = self.max_in_flight {
            if n == 0 || n > MAILCHIMP_MAX_IN_FLIGHT {
                return bad("max_in_flight must be between 1 and 10 (Mailchimp's limit per key)");
            }
        }
        if let Some(n) = self.batch_size {
            if n == 0 || n > MAX_BATCH {
                return bad("batch_size must be between 1 and 500");
            }
        }
        Ok(())
    }

    pub fn rules(&self) -> Vec<SegmentRule> {
        self.segments.clone().unwrap_or_else(default_rules)
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(MAX_BATCH)
    }

    /// Requests in flight per key: the organization's `max_in_flight`, else
    /// `CLASSY_SYNC_MAILCHIMP_MAX_IN_FLIGHT`, else 4.
    pub fn max_in_flight(&self) -> Result<u32, PluginError> {
        match self.max_in_flight {
            Some(n) => Ok(n),
            None => env_max_in_flight(std::env::var(MAX_IN_FLIGHT_ENV).ok()),
        }
    }

    /// The organization's data center (`https://<dc>.api.mailchimp.com/3.0`) first, then
    /// the deployment's `MAILCHIMP_API_BASE_URL`; `None` means "derive from the key".
    pub fn base_url_override(&self) -> Result<Option<String>, PluginError> {
        if let Some(url) = &self.api_base_url {
            return mailchimp_base(url)
                .map(Some)
                .ok_or_else(|| PluginError::config("mailchimp", BASE_URL_RULE));
        }
        env_base_url(std::env::var(BASE_URL_ENV).ok())
    }
}

/// `https://<dc>.api.mailchimp.com[/3.0][/]` as `https://<dc>.api.mailchimp.com/3.0`; anything
/// else (another scheme, host, port, user, path, query) is `None`.
pub fn mailchimp_base(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    let host = url.host_str()?;
    let dc = host.strip_suffix(".api.mailchimp.com")?;
    let ok = url.scheme() == "https"
        && url.username().is_empty()
        && url.password().is_none()
        && url.port().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && matches!(url.path(), "" | "/" | "/3.0" | "/3.0/")
        && !dc.is_empty()
        && dc.chars().all(|c| c.is_ascii_alphanumeric());
    ok.then(|| format!("https://{dc}.api.mailchimp.com/3.0"))
}

/// The deployment's default in flight per key: unset or blank is 4; otherwise 1 to 10.
fn env_max_in_flight(value: Option<String>) -> Result<u32, PluginError> {
    let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(DEFAULT_MAX_IN_FLIGHT);
    };
    match v.parse::<u32>() {
        Ok(n) if (1..=MAILCHIMP_MAX_IN_FLIGHT).contains(&n) => Ok(n),
        _ => Err(PluginError::config(
            "mailchimp",
            format!("{MAX_IN_FLIGHT_ENV} must be a whole number from 1 to 10, not {v:?}"),
        )),
    }
}

/// The deployment's override (the sandbox, a test): any http(s) URL; unset or blank is none.
fn env_base_url(value: Option<String>) -> Result<Option<String>, PluginError> {
    let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    match url::Url::parse(&v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(Some(v)),
        _ => Err(PluginError::config(
            "mailchimp",
            format!("{BASE_URL_ENV} must be an http:// or https:// URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_field() {
        assert!(MailchimpSettings::parse(&json!({"list_id": "abc123"})).is_ok());
        let e = MailchimpSettings::parse(&json!({}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("list_id"), "{e}");
        let e = MailchimpSettings::parse(&json!({"list_id": "a/b"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("list_id"), "{e}");
        let e = MailchimpSettings::parse(&json!({"list_id": "a", "batch_size": 501}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch_size"), "{e}");
        let e = MailchimpSettings::parse(&json!({"list_id": "a", "listid": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listid"), "{e}");
        let e = MailchimpSettings::parse(
            &json!({"list_id": "a", "segments": [{"tag": "", "when": "active_recurring_plan"}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("segments"), "{e}");
    }

    #[test]
    fn only_a_mailchimp_data_center_is_accepted_per_organization() {
        for ok in [
            "https://us14.api.mailchimp.com",
            "https://us14.api.mailchimp.com/",
            "https://US14.api.mailchimp.com/3.0",
            "https://us14.api.mailchimp.com/3.0/",
        ] {
            let s = MailchimpSettings::parse(&json!({"list_id": "a", "api_base_url": ok}))
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(
                s.base_url_override().unwrap().as_deref(),
                Some("https://us14.api.mailchimp.com/3.0"),
                "{ok}"
            );
        }
        for bad in [
            "http://127.0.0.1:8080/3.0",
            "http://us14.api.mailchimp.com/3.0",
            "https://127.0.0.1/3.0",
            "https://169.254.169.254/3.0",
            "https://evil.example/us14.api.mailchimp.com",
            "https://us14.api.mailchimp.com.evil.example/3.0",
            "https://user:secret@us14.api.mailchimp.com/3.0",
            "https://us14.api.mailchimp.com:8443/3.0",
            "https://us14.api.mailchimp.com/3.0/lists?x=1",
            "https://api.mailchimp.com/3.0",
            "https://x-y.api.mailchimp.com/3.0",
            "us14.api.mailchimp.com",
        ] {
            let e = MailchimpSettings::parse(&json!({"list_id": "a", "api_base_url": bad}))
                .unwrap_err()
                .to_string();
            assert!(e.contains("api_base_url"), "{bad}: {e}");
            assert!(e.contains("MAILCHIMP_API_BASE_URL"), "{bad}: {e}");
            assert!(!e.contains("secret") && !e.contains("evil"), "{bad}: {e}");
        }
    }

    #[test]
    fn in_flight_per_key_defaults_to_four_of_mailchimps_ten() {
        assert_eq!(env_max_in_flight(None).unwrap(), 4);
        assert_eq!(env_max_in_flight(Some(" ".into())).unwrap(), 4);
        assert_eq!(env_max_in_flight(Some(" 7 ".into())).unwrap(), 7);
        for bad in ["0", "11", "four", "-1"] {
            let e = env_max_in_flight(Some(bad.into())).unwrap_err().to_string();
            assert!(e.contains(MAX_IN_FLIGHT_ENV), "{bad}: {e}");
        }
        let s = MailchimpSettings::parse(&json!({"list_id": "a", "max_in_flight": 2})).unwrap();
        assert_eq!(s.max_in_flight().unwrap(), 2);
        for bad in [0, 11] {
            let e = MailchimpSettings::parse(&json!({"list_id": "a", "max_in_flight": bad}))
                .unwrap_err()
                .to_string();
            assert!(e.contains("max_in_flight"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_deployment_override_is_an_http_url_from_the_environment() {
        assert_eq!(env_base_url(None).unwrap(), None);
        assert_eq!(env_base_url(Some(" ".into())).unwrap(), None);
        assert_eq!(
            env_base_url(Some("http://127.0.0.1:9/3.0".into())).unwrap(),
            Some("http://127.0.0.1:9/3.0".into())
        );
        let e = env_base_url(Some("ftp://x/3.0".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains(BASE_URL_ENV), "{e}");
    }
}
