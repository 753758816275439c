//! The change feed's flags for `org plugin add`: `--webhook` (URL and signing secret from
//! the environment or prompts, never argv) or `--event-bus NAME [--detail-type-prefix P]`.

use anyhow::{bail, Context, Result};
use classy_sync_destinations::change_feed::settings::WebhookCredential;
use classy_sync_destinations::change_feed::NAME;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::io::IsTerminal;

pub const ENV_URL: &str = "CLASSY_SYNC_WEBHOOK_URL";
pub const ENV_SECRET: &str = "CLASSY_SYNC_WEBHOOK_SECRET";

pub enum Target {
    Unchanged,
    Webhook,
    EventBus { bus: String, prefix: Option<String> },
}

impl Target {
    pub fn from_flags(webhook: bool, event_bus: Option<String>, prefix: Option<String>) -> Self {
        match (webhook, event_bus) {
            (true, _) => Target::Webhook,
            (false, Some(bus)) => Target::EventBus { bus, prefix },
            (false, None) => Target::Unchanged,
        }
    }
}

/// Writes the target into the settings (which otherwise come from `--settings` or the
/// previous configuration).
pub fn apply(plugin: &str, target: &Target, settings: &mut Value) -> Result<()> {
    if matches!(target, Target::Unchanged) {
        return Ok(());
    }
    if plugin != NAME {
        bail!("--webhook and --event-bus apply to the {NAME} plugin only");
    }
    let Some(obj) = settings.as_object_mut() else {
        bail!("--settings must be a JSON object");
    };
    for k in ["target", "event_bus", "detail_type_prefix"] {
        obj.remove(k);
    }
    match target {
        Target::Webhook => {
            obj.insert("target".into(), json!("webhook"));
        }
        Target::EventBus { bus, prefix } => {
            obj.insert("target".into(), json!("eventbridge"));
            obj.insert("event_bus".into(), json!(bus));
            if let Some(p) = prefix {
                obj.insert("detail_type_prefix".into(), json!(p));
            }
            obj.remove("allow_http_loopback");
            obj.remove("allow_hosts");
        }
        Target::Unchanged => {}
    }
    Ok(())
}

/// Whether this configuration keeps a webhook URL and signing secret in the secret store.
pub fn needs_secret(plugin: &str, settings: &Value) -> bool {
    plugin == NAME && settings.get("target").and_then(Value::as_str) == Some("webhook")
}

fn read(var: &str, prompt: &str) -> Result<String> {
    if let Ok(v) = std::env::var(var) {
        if v.trim().is_empty() {
            bail!("{var} is set but empty");
        }
        return Ok(v.trim().to_string());
    }
    if !std::io::stdin().is_terminal() {
        bail!("set {var} (it is never taken from the command line)");
    }
    let v = rpassword::prompt_password(prompt).with_context(|| format!("cannot read {var}"))?;
    if v.trim().is_empty() {
        bail!("{var} must not be empty");
    }
    Ok(v.trim().to_string())
}

/// The stored webhook credential (`{"url", "secret"}`), checked before it is saved.
pub fn webhook_credential() -> Result<SecretString> {
    let url = read(ENV_URL, "webhook URL: ")?;
    let secret = read(ENV_SECRET, "webhook signing secret: ")?;
    let value = WebhookCredential::to_secret(&url, &secret);
    WebhookCredential::parse(&value)?;
    Ok(value)
}
