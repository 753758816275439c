//! Client configuration: defaults for production Classy, overridable from the environment
//! so the same client talks to the local sandbox.

use classy_sync_core::ports::SourceError;
use std::time::Duration;

/// Classy API 2.0 base: the part before `/organizations/...`.
pub const DEFAULT_API_BASE_URL: &str = "https://api.classy.org/2.0";
/// OAuth2 token endpoint.
pub const DEFAULT_AUTH_URL: &str = "https://api.classy.org/oauth2/auth";
/// Classy's documented limit per application.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 1800;

pub const ENV_API_BASE_URL: &str = "CLASSY_API_BASE_URL";
pub const ENV_AUTH_URL: &str = "CLASSY_AUTH_URL";
pub const ENV_RATE_LIMIT_PER_MINUTE: &str = "CLASSY_RATE_LIMIT_PER_MINUTE";
pub const ENV_TIMEOUT_SECS: &str = "CLASSY_TIMEOUT_SECS";
pub const ENV_MAX_RETRIES: &str = "CLASSY_MAX_RETRIES";
pub const ENV_RETRY_BASE_MS: &str = "CLASSY_RETRY_BASE_MS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassyConfig {
    /// e.g. `https://api.classy.org/2.0` (no trailing slash needed).
    pub api_base_url: String,
    /// e.g. `https://api.classy.org/oauth2/auth`.
    pub auth_url: String,
    /// Client-side limit per application (client_id), token requests included; 0 = unlimited.
    /// Requests are paced evenly (no burst).
    pub requests_per_minute: u32,
    pub connect_timeout: Duration,
    /// Whole request, body included.
    pub request_timeout: Duration,
    /// Retries after the first attempt for transient failures (429, 5xx, transport, bad body).
    pub max_retries: u32,
    /// Backoff base: attempt n waits a uniform random time in `[0, min(cap, base * 2^(n-1))]`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Upper bound on a server's `Retry-After` / `retry_after`.
    pub max_retry_after: Duration,
    /// Development and tests only (the sandbox): allow `http://` URLs. Off unless the
    /// deployment sets `CLASSY_SYNC_ALLOW_DEV_URLS=1`; production Classy is https only.
    pub allow_http: bool,
}

impl Default for ClassyConfig {
    fn default() -> Self {
        ClassyConfig {
            api_base_url: DEFAULT_API_BASE_URL.to_string(),
            auth_url: DEFAULT_AUTH_URL.to_string(),
            requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_retries: 6,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            allow_http: false,
        }
    }
}

impl ClassyConfig {
    /// Defaults overridden by `CLASSY_API_BASE_URL`, `CLASSY_AUTH_URL`,
    /// `CLASSY_RATE_LIMIT_PER_MINUTE`, `CLASSY_TIMEOUT_SECS`, `CLASSY_MAX_RETRIES` and
    /// `CLASSY_RETRY_BASE_MS`; `http://` URLs only with `CLASSY_SYNC_ALLOW_DEV_URLS=1`. A bad
    /// value is a [`SourceError::Config`] naming the variable.
    pub fn from_env() -> Result<Self, SourceError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`ClassyConfig::from_env`], reading variables through `lookup` (tests, other sources).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SourceError> {
        let mut c = ClassyConfig {
            allow_http: classy_sync_http::dev_urls_from(&lookup).map_err(SourceError::Config)?,
            ..ClassyConfig::default()
        };
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = get(ENV_API_BASE_URL) {
            c.api_base_url = v;
        }
        if let Some(v) = get(ENV_AUTH_URL) {
            c.auth_url = v;
        }
        if let Some(v) = get(ENV_RATE_LIMIT_PER_MINUTE) {
            c.requests_per_minute = parse_num(ENV_RATE_LIMIT_PER_MINUTE, &v)?;
        }
        if let Some(v) = get(ENV_TIMEOUT_SECS) {
            let secs: u64 = parse_num(ENV_TIMEOUT_SECS, &v)?;
            if secs == 0 {
                return Err(bad(ENV_TIMEOUT_SECS, &v, "must be at least 1"));
            }
            c.request_timeout = Duration::from_secs(secs);
        }
        if let Some(v) = get(ENV_MAX_RETRIES) {
            c.max_retries = parse_num(ENV_MAX_RETRIES, &v)?;
        }
        if let Some(v) = get(ENV_RETRY_BASE_MS) {
            let ms: u64 = parse_num(ENV_RETRY_BASE_MS, &v)?;
            c.retry_base = Duration::from_millis(ms);
        }
        c.validate_named(ENV_API_BASE_URL, ENV_AUTH_URL)?;
        Ok(c)
    }

    /// Checks URLs (absolute https with a host, no query or credentials; http only with
    /// [`ClassyConfig::allow_http`]) and timeouts.
    pub fn validate(&self) -> Result<(), SourceError> {
        self.validate_named("api_base_url", "auth_url")
    }

    fn validate_named(&self, base_name: &str, auth_name: &str) -> Result<(), SourceError> {
        check_url(base_name, &self.api_base_url, self.allow_http)?;
        check_url(auth_name, &self.auth_url, self.allow_http)?;
        if self.request_timeout.is_zero() {
            return Err(SourceError::Config(
                "request_timeout must be positive".to_string(),
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(SourceError::Config(
                "connect_timeout must be positive".to_string(),
            ));
        }
        Ok(())
    }

    /// `api_base_url` without a trailing slash.
    pub(crate) fn api_base(&self) -> &str {
        self.api_base_url.trim_end_matches('/')
    }
}

/// The error names the variable and quotes the value with any URL credentials blanked.
fn bad(name: &str, value: &str, why: &str) -> SourceError {
    let value = classy_sync_http::redact_url_credentials(value);
    SourceError::Config(format!("{name}={value:?}: {why}"))
}

fn parse_num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, SourceError> {
    value
        .parse()
        .map_err(|_| bad(name, value, "expected a non-negative whole number"))
}

fn check_url(name: &str, value: &str, allow_http: bool) -> Result<(), SourceError> {
    let url =
        ::url::Url::parse(value).map_err(|e| bad(name, value, &format!("not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(bad(
                name,
                value,
                &format!(
                    "http is refused (the client secret and tokens would travel in clear): use https, or set {}=1 for the sandbox",
                    classy_sync_http::ENV_ALLOW_DEV_URLS
                ),
            ))
        }
        _ => return Err(bad(name, value, "scheme must be https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(name, value, "URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(name, value, "URL must not carry a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(name, value, "URL must not carry credentials"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_production_classy() {
        let c = ClassyConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c, ClassyConfig::default());
        assert_eq!(c.api_base_url, "https://api.classy.org/2.0");
        assert_eq!(c.auth_url, "https://api.classy.org/oauth2/auth");
        assert_eq!(c.requests_per_minute, 1800);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.max_retries, 6);
        assert_eq!(c.retry_base, Duration::from_millis(500));
        assert_eq!(c.retry_cap, Duration::from_secs(30));
        assert_eq!(c.max_retry_after, Duration::from_secs(120));
        c.validate().unwrap();
    }

    #[test]
    fn reads_every_variable() {
        let c = ClassyConfig::from_lookup(lookup(&[
            (ENV_API_BASE_URL, "http://127.0.0.1:8080/2.0/"),
            (ENV_AUTH_URL, "http://127.0.0.1:8080/oauth2/auth"),
            (ENV_RATE_LIMIT_PER_MINUTE, "0"),
            (ENV_TIMEOUT_SECS, "5"),
            (ENV_MAX_RETRIES, "2"),
            (ENV_RETRY_BASE_MS, "10"),
            (classy_sync_http::ENV_ALLOW_DEV_URLS, "1"),
        ]))
        .unwrap();
        assert!(c.allow_http);
        assert_eq!(c.api_base(), "http://127.0.0.1:8080/2.0");
        assert_eq!(c.auth_url, "http://127.0.0.1:8080/oauth2/auth");
        assert_eq!(c.requests_per_minute, 0);
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert_eq!(c.max_retries, 2);
        assert_eq!(c.retry_base, Duration::from_millis(10));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            (ENV_API_BASE_URL, "not a url"),
            (ENV_API_BASE_URL, "ftp://example.org/2.0"),
            (ENV_AUTH_URL, "http://"),
            (ENV_AUTH_URL, "https://x.org/auth?secret=1"),
            (ENV_RATE_LIMIT_PER_MINUTE, "-5"),
            (ENV_RATE_LIMIT_PER_MINUTE, "fast"),
            (ENV_TIMEOUT_SECS, "0"),
            (ENV_TIMEOUT_SECS, "1.5"),
            (ENV_MAX_RETRIES, "many"),
            (ENV_RETRY_BASE_MS, "1e3"),
        ] {
            let err = ClassyConfig::from_lookup(lookup(&[(name, value)])).unwrap_err();
            assert!(
                matches!(err, SourceError::Config(_)),
                "{name}={value}: {err:?}"
            );
            assert!(
                err.to_string().contains(name),
                "{name}={value}: error does not name the variable: {err}"
            );
        }
    }

    #[test]
    fn http_is_refused_outside_development() {
        for name in [ENV_API_BASE_URL, ENV_AUTH_URL] {
            let err = ClassyConfig::from_lookup(lookup(&[(name, "http://127.0.0.1:8080/2.0")]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(name) && err.contains("http is refused"),
                "{err}"
            );
            let err = ClassyConfig::from_lookup(lookup(&[
                (name, "http://127.0.0.1:8080/2.0"),
                (classy_sync_http::ENV_ALLOW_DEV_URLS, "0"),
            ]))
            .unwrap_err();
            assert!(matches!(err, SourceError::Config(_)));
        }
        let direct = ClassyConfig {
            api_base_url: "http://api.classy.org/2.0".into(),
            ..ClassyConfig::default()
        };
        assert!(direct.validate().is_err());
        assert!(ClassyConfig {
            allow_http: true,
            ..direct
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn url_errors_never_echo_credentials() {
        for value in [
            "https://bob:hunter2@api.classy.org/2.0",
            "https://bob:hunter2@api.classy.org/2.0?x=1",
            "ftp://bob:hunter2@api.classy.org/2.0",
        ] {
            let err = ClassyConfig::from_lookup(lookup(&[(ENV_API_BASE_URL, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(ENV_API_BASE_URL), "{err}");
            assert!(!err.contains("hunter2") && !err.contains("bob"), "{err}");
        }
    }

    #[test]
    fn blank_values_keep_defaults() {
        let c = ClassyConfig::from_lookup(lookup(&[(ENV_MAX_RETRIES, "  ")])).unwrap();
        assert_eq!(c.max_retries, 6);
    }
}
