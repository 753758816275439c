//! The events the functions accept, typed: the runtime deserializes them, and a shape no
//! function expects is refused before any work with a message saying what was expected.

use anyhow::{bail, Context, Result};
use classy_sync_core::domain::Entity;
use serde::Deserialize;

/// What `dispatch` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchRequest {
    /// One sync job per due organization for this entity.
    Entity(Entity),
    /// One plugin job per due organization×plugin.
    Plugins,
}

/// The input of a dispatch schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DispatchInput {
    Plugins { plugins: bool },
    Entity { entity: String },
}

/// An invocation of `dispatch`: the EventBridge Scheduler input as given, or an EventBridge
/// event (a classic scheduled rule) carrying that input in `detail`.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "{\"entity\": \"supporters\"} or {\"plugins\": true}, optionally inside \"detail\""
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
