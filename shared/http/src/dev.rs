//! The deployment-level switch for development URLs.
//!
//! `CLASSY_SYNC_ALLOW_DEV_URLS=1` lets a deployment use what only development needs: plain
//! `http://` to the Classy sandbox, channels and change feeds with `allow_http_loopback`, and
//! per-organization `allow_hosts`. Unset (the default, and on AWS unless the template sets
//! it), those settings are refused. Link-local and metadata addresses (169.254.0.0/16,
//! fe80::/10) are refused whatever the switch says.

/// The switch's environment variable.
pub const ENV_ALLOW_DEV_URLS: &str = "CLASSY_SYNC_ALLOW_DEV_URLS";

/// Reads the switch through `lookup`: `1`/`true`/`yes` on, unset/empty/`0`/`false`/`no` off,
/// anything else an error naming the variable.
pub fn dev_urls_from(lookup: impl Fn(&str) -> Option<String>) -> Result<bool, String> {
    let Some(raw) = lookup(ENV_ALLOW_DEV_URLS) else {
        return Ok(false);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "" | "0" | "false" | "no" => Ok(false),
        other => Err(format!(
            "{ENV_ALLOW_DEV_URLS}={other:?}: expected 1/true/yes or 0/false/no"
        )),
    }
}

/// The switch from the process environment; a value that is not a boolean counts as off.
pub fn dev_urls_allowed() -> bool {
    dev_urls_from(|n| std::env::var(n).ok()).unwrap_or(false)
}

/// The message for a development setting used without the switch.
pub fn needs_dev_switch(setting: &str) -> String {
    format!(
        "{setting} is a development setting: it is refused unless the deployment sets {ENV_ALLOW_DEV_URLS}=1"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let with = |v: Option<&'static str>| dev_urls_from(move |_| v.map(str::to_owned));
        assert_eq!(with(None), Ok(false));
        assert_eq!(with(Some("1")), Ok(true));
        assert_eq!(with(Some(" TRUE ")), Ok(true));
        assert_eq!(with(Some("0")), Ok(false));
        assert_eq!(with(Some("")), Ok(false));
        assert!(with(Some("maybe"))
            .unwrap_err()
            .contains(ENV_ALLOW_DEV_URLS));
    }
}
