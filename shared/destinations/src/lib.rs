//! The destination plugins classy-sync ships: [`mailchimp`] (with its API client,
//! [`mailchimp_api`]) and [`change_feed`]. Adding a destination = one module implementing
//! [`classy_sync_core::ports::Destination`] plus one line in [`REGISTRY`] (see
//! docs/plugins.md).

pub mod change_feed;
pub mod mailchimp;
pub mod mailchimp_api;

use classy_sync_core::ports::{PluginRegistry, PluginSpec};

/// Every destination classy-sync knows, one line each.
pub static REGISTRY: &[PluginSpec] = &[mailchimp::SPEC, change_feed::SPEC];

/// The registry the composition roots hand to the engine.
pub fn registry() -> PluginRegistry {
    PluginRegistry::new(REGISTRY)
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
        assert_eq!(registry().find("MailChimp").unwrap().name, "mailchimp");
        let e = registry().find("nope").err().expect("unknown").to_string();
        assert!(e.contains("mailchimp"), "{e}");
    }
}
