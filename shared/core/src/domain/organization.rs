//! An onboarded organization (tenant): its Classy id, the application it reads with, and
//! per-entity schedule overrides. Its client secret lives in the secret store, never here.

use super::Entity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Classy's organization id.
pub type OrgId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgStatus {
    Enabled,
    Disabled,
}

impl fmt::Display for OrgStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrgStatus::Enabled => "enabled",
            OrgStatus::Disabled => "disabled",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    /// The Classy application (OAuth client) this organization is read with.
    pub client_id: String,
    pub status: OrgStatus,
    /// Sync interval overrides in seconds, by entity.
    #[serde(default)]
    pub schedule: BTreeMap<Entity, u64>,
    pub created_at: String,
    /// The organization's IANA time zone (from an import file), shown with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl Organization {
    pub fn is_enabled(&self) -> bool {
        self.status == OrgStatus::Enabled
    }

    /// Name of this organization's Classy credential in the secret store.
    pub fn classy_secret_name(&self) -> String {
        classy_secret_name(self.id)
    }
}

/// `classy-sync/<org>/classy`: one secret per organization and service.
pub fn classy_secret_name(org: OrgId) -> String {
    format!("classy-sync/{org}/classy")
}

/// `classy-sync/<org>/webhook`: the organization's Classy (Svix) webhook signing secret,
/// the `whsec_<base64>` value GoFundMe Pro shows for the endpoint.
pub fn webhook_secret_name(org: OrgId) -> String {
    format!("classy-sync/{org}/webhook")
}
