//! The destination plugin registry. Adding a destination = one module implementing
//! [`crate::ports::Destination`] plus one line in [`REGISTRY`] (see docs/plugins.md).

pub mod change_feed;
pub mod mailchimp;

use crate::ports::{Destination, PluginConfig, PluginError, Wants};

/// How the engine finds, checks and builds one kind of destination.
pub struct PluginSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// What its change sets must carry.
    pub wants: Wants,
    /// Whether it needs a credential in the secret store (`classy-sync/<org>/<name>`).
    pub needs_secret: bool,
    /// Checks the plugin-specific settings; the error names the bad field.
    pub validate: fn(&serde_json::Value) -> Result<(), PluginError>,
    /// Makes the plugin from a validated configuration (no I/O; `prepare` does that).
    pub build: fn(&PluginConfig) -> Result<Box<dyn Destination>, PluginError>,
}

/// Every destination classy-sync knows, one line each.
pub static REGISTRY: &[PluginSpec] = &[mailchimp::SPEC, change_feed::SPEC];

pub fn find(name: &str) -> Result<&'static PluginSpec, PluginError> {
    REGISTRY
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| {
            PluginError::Unknown(
                name.to_string(),
                REGISTRY
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_unknown_names_list_the_known_ones() {
        let mut names: Vec<_> = REGISTRY.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        assert_eq!(find("MailChimp").unwrap().name, "mailchimp");
        let e = find("nope").err().expect("unknown").to_string();
        assert!(e.contains("mailchimp"), "{e}");
    }
}
