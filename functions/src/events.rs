//! The events the functions accept, typed: the runtime deserializes them, and a shape no
//! function expects is refused before any work with a message saying what was expected.

use anyhow::{bail, Context, Result};
use classy_sync_core::domain::{Entity, OrgId};
use serde::Deserialize;

/// What `dispatch` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchRequest {
    /// One sync job per due organization for this entity.
    Entity(Entity),
    /// One plugin job per due organization×plugin.
    Plugins,
    /// `SyncRequested`: a sync of one organization, every entity or the named one.
    Sync {
        org: OrgId,
        entity: Option<Entity>,
        full: bool,
    },
}

/// An organization id as a number or a string of digits.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OrgIdField {
    Number(OrgId),
    Text(String),
}

/// The input of a dispatch schedule, or the detail of a `SyncRequested` event.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DispatchInput {
    /// First: a `SyncRequested` detail may name an entity too.
    SyncRequested {
        organization_id: OrgIdField,
        #[serde(default)]
        entity: Option<String>,
        #[serde(default)]
        full: Option<bool>,
    },
    Plugins {
        plugins: bool,
    },
    Entity {
        entity: String,
    },
}

/// An invocation of `dispatch`: the EventBridge Scheduler input as given, or an EventBridge
/// event (a classic scheduled rule) carrying that input in `detail`.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "{\"entity\": \"supporters\"} or {\"plugins\": true}, optionally inside \"detail\", or a SyncRequested event ({\"organization_id\": 4021} in \"detail\")"
)]
pub enum DispatchEvent {
    Direct(DispatchInput),
    Wrapped { detail: DispatchInput },
}

impl DispatchEvent {
    pub fn request(&self) -> Result<DispatchRequest> {
        let input = match self {
            DispatchEvent::Direct(i) | DispatchEvent::Wrapped { detail: i } => i,
        };
        match input {
            DispatchInput::Plugins { plugins: true } => Ok(DispatchRequest::Plugins),
            DispatchInput::Plugins { plugins: false } => {
                bail!("event field \"plugins\" must be true when given")
            }
            DispatchInput::Entity { entity } => Ok(DispatchRequest::Entity(
                entity.parse().context("event field \"entity\"")?,
            )),
            DispatchInput::SyncRequested {
                organization_id,
                entity,
                full,
            } => {
                let org = match organization_id {
                    OrgIdField::Number(n) => *n,
                    OrgIdField::Text(t) => t
                        .trim()
                        .parse()
                        .context("event field \"organization_id\" is not an organization id")?,
                };
                let entity = entity
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .context("event field \"entity\"")?;
                Ok(DispatchRequest::Sync {
                    org,
                    entity,
                    full: full.unwrap_or(false),
                })
            }
        }
    }
}

/// What woke the `alert` function: an EventBridge event (its `detail-type`: HealthChanged,
/// SyncFailed, CredentialExpiring, a CloudWatch alarm, a scheduled event). Only the type
/// is used; the rules are evaluated against the stored state.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlertTrigger {
    #[serde(rename = "detail-type", default)]
    pub detail_type: Option<String>,
}

/// An invocation of `report`: `{}` (every due definition) or `{"report_id": "..."}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportEvent {
    /// Only this definition; absent: all due definitions.
    #[serde(default)]
    pub report_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{from_value, json};

    fn dispatch(v: serde_json::Value) -> Result<DispatchRequest> {
        from_value::<DispatchEvent>(v)?.request()
    }

    #[test]
    fn dispatch_events_of_every_shape() {
        assert_eq!(
            dispatch(json!({"entity": "transactions"})).unwrap(),
            DispatchRequest::Entity(Entity::Transactions)
        );
        let scheduled =
            json!({"detail-type": "Scheduled Event", "detail": {"entity": "recurring-plans"}});
        assert_eq!(
            dispatch(scheduled).unwrap(),
            DispatchRequest::Entity(Entity::RecurringPlans)
        );
        assert_eq!(
            dispatch(json!({"plugins": true})).unwrap(),
            DispatchRequest::Plugins
        );
        assert_eq!(
            dispatch(json!({"detail": {"plugins": true}})).unwrap(),
            DispatchRequest::Plugins
        );
        let e = dispatch(json!({"entity": "donations"})).unwrap_err();
        assert!(format!("{e:#}").contains("donations"), "{e:#}");
        assert!(dispatch(json!({"plugins": false})).is_err());
        let e = dispatch(json!({})).unwrap_err();
        assert!(
            e.to_string().contains("{\"entity\": \"supporters\"}"),
            "{e}"
        );
        assert!(dispatch(json!({"plugins": "yes"})).is_err());
    }

    #[test]
    fn sync_requested_events() {
        let ev = |detail: serde_json::Value| json!({"detail-type": "SyncRequested", "source": "crm", "detail": detail});
        assert_eq!(
            dispatch(ev(json!({"organization_id": 4021}))).unwrap(),
            DispatchRequest::Sync {
                org: 4021,
                entity: None,
                full: false
            }
        );
        assert_eq!(
            dispatch(ev(
                json!({"organization_id": "4021", "entity": "transactions", "full": true})
            ))
            .unwrap(),
            DispatchRequest::Sync {
                org: 4021,
                entity: Some(Entity::Transactions),
                full: true
            }
        );
        assert!(dispatch(ev(json!({"organization_id": "acme"}))).is_err());
        assert!(dispatch(ev(json!({"organization_id": 1, "entity": "donations"}))).is_err());
        // A schedule's input is still an entity dispatch.
        assert_eq!(
            dispatch(json!({"entity": "supporters"})).unwrap(),
            DispatchRequest::Entity(Entity::Supporters)
        );
    }

    #[test]
    fn alert_and_report_events() {
        let t: AlertTrigger =
            from_value(json!({"detail-type": "SyncFailed", "detail": {}})).unwrap();
        assert_eq!(t.detail_type.as_deref(), Some("SyncFailed"));
        let t: AlertTrigger = from_value(json!({})).unwrap();
        assert_eq!(t.detail_type, None);
        let r: ReportEvent = from_value(json!({"report_id": "weekly"})).unwrap();
        assert_eq!(r.report_id.as_deref(), Some("weekly"));
        let r: ReportEvent = from_value(json!({})).unwrap();
        assert_eq!(r.report_id, None);
        assert!(from_value::<ReportEvent>(json!({"report_id": 7})).is_err());
    }
}
