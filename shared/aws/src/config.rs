//! Settings of the AWS adapters, read from the environment of the Lambda function (or of the
//! CLI's `--backend aws`), and the SDK configuration.

use std::time::Duration;

/// Table name of the single table (`pk`/`sk`, GSI `gsi1`, TTL on `expires_at`).
pub const ENV_TABLE: &str = "CLASSY_SYNC_TABLE";
/// URL of the sync-job queue.
pub const ENV_QUEUE_URL: &str = "CLASSY_SYNC_QUEUE_URL";
/// URL of the queue's dead-letter queue (optional: without it there are no dead letters).
pub const ENV_DLQ_URL: &str = "CLASSY_SYNC_DLQ_URL";
/// EventBridge bus for domain events; default `default`.
pub const ENV_EVENT_BUS: &str = "CLASSY_SYNC_EVENT_BUS";
/// Prefix of the secrets this deployment may read (for IAM and the CLI); default `classy-sync/`.
pub const ENV_SECRET_PREFIX: &str = "CLASSY_SYNC_SECRET_PREFIX";
/// How long a secret read from Secrets Manager is cached per container; default 300 seconds.
pub const ENV_SECRET_TTL_SECS: &str = "CLASSY_SYNC_SECRET_TTL_SECS";

pub const DEFAULT_EVENT_BUS: &str = "default";
pub const DEFAULT_SECRET_PREFIX: &str = "classy-sync/";
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: Option<String>,
    pub event_bus: String,
    pub secret_prefix: String,
    pub secret_ttl: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

impl AwsSettings {
    /// Reads the `CLASSY_SYNC_*` variables of this process.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (a variable that is unset or blank counts as absent).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(SettingsError::Missing(name));
        let secret_ttl = match get(ENV_SECRET_TTL_SECS) {
            None => DEFAULT_SECRET_TTL,
            Some(v) => {
                Duration::from_secs(v.parse::<u64>().map_err(|e| SettingsError::Invalid {
                    var: ENV_SECRET_TTL_SECS,
                    reason: format!("{v:?} is not a number of seconds ({e})"),
                })?)
            }
        };
        Ok(AwsSettings {
            table: required(ENV_TABLE)?,
            queue_url: required(ENV_QUEUE_URL)?,
            dlq_url: get(ENV_DLQ_URL),
            event_bus: get(ENV_EVENT_BUS).unwrap_or_else(|| DEFAULT_EVENT_BUS.to_owned()),
            secret_prefix: get(ENV_SECRET_PREFIX)
                .unwrap_or_else(|| DEFAULT_SECRET_PREFIX.to_owned()),
            secret_ttl,
        })
    }
}

/// The SDK configuration from the usual sources (Lambda's role, profile, environment).
/// Honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` (moto, LocalStack).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_and_required_variables() {
        let s = AwsSettings::from_lookup(lookup(&[(ENV_TABLE, "t"), (ENV_QUEUE_URL, "http://q")]))
            .unwrap();
        assert_eq!(s.event_bus, "default");
        assert_eq!(s.secret_prefix, "classy-sync/");
        assert_eq!(s.secret_ttl, Duration::from_secs(300));
        assert_eq!(s.dlq_url, None);

        let e = AwsSettings::from_lookup(lookup(&[(ENV_QUEUE_URL, "http://q")])).unwrap_err();
        assert_eq!(e, SettingsError::Missing(ENV_TABLE));
        assert!(e.to_string().contains("CLASSY_SYNC_TABLE"));
        let e = AwsSettings::from_lookup(lookup(&[(ENV_TABLE, "t"), (ENV_QUEUE_URL, " ")]))
            .unwrap_err();
        assert_eq!(e, SettingsError::Missing(ENV_QUEUE_URL));

        let e = AwsSettings::from_lookup(lookup(&[
            (ENV_TABLE, "t"),
            (ENV_QUEUE_URL, "q"),
            (ENV_SECRET_TTL_SECS, "five"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains(ENV_SECRET_TTL_SECS), "{e}");

        let s = AwsSettings::from_lookup(lookup(&[
            (ENV_TABLE, "t"),
            (ENV_QUEUE_URL, "q"),
            (ENV_DLQ_URL, "d"),
            (ENV_EVENT_BUS, "bus"),
            (ENV_SECRET_PREFIX, "p/"),
            (ENV_SECRET_TTL_SECS, "0"),
        ]))
        .unwrap();
        assert_eq!(
            (
                s.dlq_url.as_deref(),
                s.event_bus.as_str(),
                s.secret_prefix.as_str()
            ),
            (Some("d"), "bus", "p/")
        );
        assert_eq!(s.secret_ttl, Duration::ZERO);
    }
}
