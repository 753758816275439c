//! The four synced entity kinds, their API paths, store prefixes and default schedules.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entity {
    Supporters,
    Campaigns,
    Transactions,
    RecurringPlans,
}

impl Entity {
    /// Dependency order for a whole-organization sync.
    pub const ALL: [Entity; 4] = [
        Entity::Supporters,
        Entity::Campaigns,
        Entity::Transactions,
        Entity::RecurringPlans,
    ];

    /// Path segment under `/organizations/{id}/`.
    pub fn api_path(self) -> &'static str {
        match self {
            Entity::Supporters => "supporters",
            Entity::Campaigns => "campaigns",
            Entity::Transactions => "transactions",
            Entity::RecurringPlans => "recurring-donation-plans",
        }
    }

    /// The CLI / configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Supporters => "supporters",
            Entity::Campaigns => "campaigns",
            Entity::Transactions => "transactions",
            Entity::RecurringPlans => "recurring-plans",
        }
    }

    /// Sort-key prefix of the records in the single table.
    pub fn sk_prefix(self) -> &'static str {
        super::keys::record_prefix(self)
    }

    /// Default sync interval (supporters 30 min, transactions 15 min, others 1 h).
    pub fn default_interval(self) -> Duration {
        Duration::from_secs(match self {
            Entity::Supporters => 30 * 60,
            Entity::Transactions => 15 * 60,
            Entity::Campaigns | Entity::RecurringPlans => 60 * 60,
        })
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown entity {0:?}: expected supporters, campaigns, transactions or recurring-plans")]
pub struct UnknownEntity(pub String);

impl FromStr for Entity {
    type Err = UnknownEntity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "supporters" | "supporter" => Ok(Entity::Supporters),
            "campaigns" | "campaign" => Ok(Entity::Campaigns),
            "transactions" | "transaction" => Ok(Entity::Transactions),
            "recurring-plans" | "recurring-donation-plans" | "plans" => Ok(Entity::RecurringPlans),
            _ => Err(UnknownEntity(s.to_string())),
        }
    }
}
