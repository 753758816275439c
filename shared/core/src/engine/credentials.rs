//! When each organization's Classy credential expires: recorded next to the organization
//! (`ORG#<id>/CREDENTIAL#classy`), never with the secret's value. Either an explicit expiry
//! or a rotation date plus a maximum age.

use super::{Datastore, EngineError};
use crate::domain::keys::org_pk;
use crate::domain::OrgId;
use crate::ports::store::{Condition, Item};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::domain::keys::CREDENTIAL_SK;

/// Rotation policy when only a rotation date is known.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 365;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub expires_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub max_age_days: Option<i64>,
}

impl CredentialInfo {
    /// The explicit expiry, else rotation date + maximum age; None when nothing is known.
    pub fn effective_expiry(&self) -> Option<DateTime<Utc>> {
        self.expires_at.or_else(|| {
            self.rotated_at.map(|r| {
                r + chrono::Duration::days(self.max_age_days.unwrap_or(DEFAULT_MAX_AGE_DAYS))
            })
        })
    }
}

/// Parses `2026-12-31` or an RFC 3339 instant, naming the flag on error.
pub fn parse_date(flag: &str, s: &str) -> Result<DateTime<Utc>, EngineError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| {
            EngineError::Invalid(format!(
                "{flag} {s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"
            ))
        })
}

impl Datastore {
    pub async fn credential_info(&self, org: OrgId) -> Result<CredentialInfo, EngineError> {
        match self.store.get(&org_pk(org), CREDENTIAL_SK).await? {
            Some(i) => Ok(i.parse()?),
            None => Ok(CredentialInfo::default()),
        }
    }

    pub async fn set_credential_info(
        &self,
        org: OrgId,
        info: &CredentialInfo,
    ) -> Result<(), EngineError> {
        self.get_org(org).await?;
        if info.max_age_days.is_some_and(|d| d <= 0) {
            return Err(EngineError::Invalid(
                "--max-age-days must be at least 1".into(),
            ));
        }
        self.store
            .put(
                Item::json(org_pk(org), CREDENTIAL_SK, info),
                Condition::Always,
            )
            .await?;
        Ok(())
    }
}
