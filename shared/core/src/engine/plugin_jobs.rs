//! Plugin jobs for the serverless deployment: one message = push one organization's plugins
//! (one named plugin, or all its enabled ones). They come from two places:
//! - an EventBridge rule on `SyncCompleted` (input `{"org": <organization_id>}`), so changes
//!   reach destinations right after a sync;
//! - the hourly schedule ([`PluginService::dispatch_plugins`]): one job per due organization×plugin,
//!   guarded by a `PLUGIN#<name>#QUEUED` marker (conditional put with an expiry) so a job
//!   still queued or running is not queued twice.

use super::plugins::PluginService;
use super::EngineError;
use crate::domain::keys::org_pk;
pub use crate::domain::keys::plugin_queued_sk as queued_sk;
use crate::domain::OrgId;
use crate::ports::queue::send_in_batches;
use crate::ports::store::{Condition, Item};
use crate::ports::{JobQueue, OutMessage};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginJob {
    pub org: OrgId,
    /// One plugin; all the organization's enabled plugins when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

impl PluginJob {
    pub fn parse(body: &str) -> Result<Self, EngineError> {
        serde_json::from_str(body).map_err(|e| {
            EngineError::Invalid(format!(
                "plugin job must be {{\"org\": <id>, \"plugin\": \"<name>\"?}}: {e}"
            ))
        })
    }

    pub fn to_message(&self) -> OutMessage {
        let body = serde_json::to_string(self).unwrap_or_default();
        let mut m = OutMessage::new(body);
        m.dedup_id = Some(format!(
            "plugin:{}:{}",
            self.org,
            self.plugin.as_deref().unwrap_or("*")
        ));
        m.group_id = Some(self.org.to_string());
        m
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PluginDispatchReport {
    pub enqueued: Vec<PluginJob>,
    pub already_queued: Vec<PluginJob>,
    /// Due pushes the queue refused: their markers are removed, so the next dispatch tries
    /// them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_enqueued: Vec<PluginJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_error: Option<String>,
}

impl PluginService {
    /// Enqueues one job per due organization×plugin (see [`PluginService::due_pushes`]) unless one
    /// is already queued or running. `marker_ttl` bounds how long a lost job blocks the next.
    pub async fn dispatch_plugins(
        &self,
        queue: &dyn JobQueue,
        marker_ttl: Duration,
    ) -> Result<PluginDispatchReport, EngineError> {
        let mut report = PluginDispatchReport::default();
        let now = self.data.clock.unix();
        let mut to_send = Vec::new();
        for (org, plugin) in self.due_pushes().await? {
            let job = PluginJob {
                org,
                plugin: Some(plugin.clone()),
            };
            let marker = Item::json(org_pk(org), queued_sk(&plugin), &job)
                .with_expiry(now + marker_ttl.as_secs() as i64);
            match self
                .data
                .store
                .put(marker, Condition::NotExistsOrExpired { now })
                .await
            {
                Ok(()) => to_send.push(job),
                Err(e) if e.is_condition_failed() => report.already_queued.push(job),
                Err(e) => return Err(e.into()),
            }
        }
        let not_sent =
            send_in_batches(queue, to_send.iter().map(PluginJob::to_message).collect()).await;
        for (i, job) in to_send.into_iter().enumerate() {
            if not_sent.positions.contains(&i) {
                // Nothing was queued for this pair: let the next dispatch try again.
                if let Some(p) = &job.plugin {
                    self.plugin_job_finished(job.org, p).await?;
                }
                report.not_enqueued.push(job);
            } else {
                report.enqueued.push(job);
            }
        }
        report.queue_error = not_sent.first_error;
        Ok(report)
    }

    /// The plugin job for this pair has ended: the next dispatch may queue another.
    pub async fn plugin_job_finished(&self, org: OrgId, plugin: &str) -> Result<(), EngineError> {
        self.data
            .store
            .delete(&org_pk(org), &queued_sk(plugin), Condition::Always)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_and_name_the_field_on_bad_input() {
        let j = PluginJob::parse(r#"{"org": 7, "plugin": "change-feed"}"#).unwrap();
        assert_eq!(j.plugin.as_deref(), Some("change-feed"));
        assert_eq!(PluginJob::parse(&j.to_message().body).unwrap(), j);
        let all = PluginJob::parse(r#"{"org": 7}"#).unwrap();
        assert_eq!(all.plugin, None);
        let e = PluginJob::parse(r#"{"organization": 7}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("org"), "{e}");
    }
}
