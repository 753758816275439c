//! The Mailchimp destination's per-organization settings (the API key is not here: it lives
//! in the secret store as `classy-sync/<org>/mailchimp`).

use classy_sync_core::domain::segments::{default_rules, validate_rules, SegmentRule};
use classy_sync_core::ports::PluginError;
use serde::{Deserialize, Serialize};

/// Mailchimp's batch limit.
pub const MAX_BATCH: usize = 500;

/// Environment override of the API base URL (the sandbox: `http://127.0.0.1:PORT/3.0`).
pub const BASE_URL_ENV: &str = "MAILCHIMP_API_BASE_URL";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailchimpSettings {
    /// The audience (list) id.
    pub list_id: String,
    /// Donor-segment rules; the defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<SegmentRule>>,
    /// Overrides the URL derived from the key's data center (and `MAILCHIMP_API_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    /// Members per batch call (at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
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
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad("api_base_url must start with http:// or https://");
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

    /// Settings first, then the environment; `None` means "derive from the key".
    pub fn base_url_override(&self) -> Option<String> {
        self.api_base_url
            .clone()
            .or_else(|| std::env::var(BASE_URL_ENV).ok())
            .filter(|s| !s.trim().is_empty())
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
}
