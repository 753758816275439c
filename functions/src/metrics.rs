//! CloudWatch Embedded Metric Format: one JSON line on stdout per job, which CloudWatch turns
//! into metrics (namespace `ClassySync`) without API calls.
//!
//! Each distinct combination of dimension values is a custom metric billed by the month, so
//! the default dimensions do not grow with tenants: sync metrics per `Entity`, plugin metrics
//! per `Plugin`. The organization is a property of every line (not a dimension), so Logs
//! Insights can still answer per-organization questions. Per-organization metrics (the extra
//! dimension sets Organization × Entity and Organization × Plugin) are an opt-in:
//! `CLASSY_SYNC_METRICS_PER_ORGANIZATION=true` (template parameter `PerOrganizationMetrics`;
//! the cost per organization is in docs/cost.md).

use classy_sync_core::engine::{SyncOutcome, SyncReport};
use serde_json::{json, Value};

pub const NAMESPACE: &str = "ClassySync";

/// `true` adds the per-organization dimension sets; anything else but `false` or blank is an
/// error.
pub const ENV_METRICS_PER_ORGANIZATION: &str = "CLASSY_SYNC_METRICS_PER_ORGANIZATION";

/// Which dimension sets the EMF lines declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricDimensions {
    /// Dimensions that do not grow with tenants (entity, plugin): the default.
    #[default]
    Shared,
    /// Also one set per organization (a custom metric per organization × entity and
    /// organization × plugin).
    PerOrganization,
}

impl MetricDimensions {
    /// From [`ENV_METRICS_PER_ORGANIZATION`] read through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        match var(ENV_METRICS_PER_ORGANIZATION)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("false") => Ok(MetricDimensions::Shared),
            Some("true") => Ok(MetricDimensions::PerOrganization),
            Some(other) => {
                anyhow::bail!("{ENV_METRICS_PER_ORGANIZATION}={other:?}: use \"true\" or \"false\"")
            }
        }
    }

    /// The dimension sets for metrics split by `key` (`Entity`, `Plugin`).
    fn sets(self, key: &str) -> Value {
        match self {
            MetricDimensions::Shared => json!([[key]]),
            MetricDimensions::PerOrganization => json!([[key], ["Organization", key]]),
        }
    }
}

pub fn emf_line(report: &SyncReport, timestamp_ms: i64, dimensions: MetricDimensions) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions.sets("Entity"),
                "Metrics": [
                    {"Name": "RecordsSynced", "Unit": "Count"},
                    {"Name": "RecordsChanged", "Unit": "Count"},
                    {"Name": "Duration", "Unit": "Milliseconds"},
                    {"Name": "ApiCalls", "Unit": "Count"},
                    {"Name": "Failures", "Unit": "Count"}
                ]
            }]
        },
        "Organization": report.org.to_string(),
        "Entity": report.entity.name(),
        "RecordsSynced": report.fetched,
        "RecordsChanged": report.created + report.updated,
        "Duration": report.duration_ms,
        "ApiCalls": report.api_calls,
        "Failures": u64::from(report.outcome == SyncOutcome::Failed),
        "run_id": report.run_id,
        "outcome": report.outcome,
    })
    .to_string()
}

/// One line per organization×plugin push (dimension Plugin; Organization × Plugin too with
/// [`MetricDimensions::PerOrganization`]). `Duration` is the whole job's (a job may push
/// several plugins of one organization).
pub fn plugin_emf_line(
    run: &classy_sync_core::engine::plugins::PluginRun,
    duration_ms: u64,
    timestamp_ms: i64,
    dimensions: MetricDimensions,
) -> String {
    let (considered, sent, unchanged, failed) = match &run.result {
        Ok(r) => (r.considered, r.sent, r.unchanged, r.failed),
        Err(_) => (0, 0, 0, 0),
    };
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions.sets("Plugin"),
                "Metrics": [
                    {"Name": "PluginRecordsConsidered", "Unit": "Count"},
                    {"Name": "PluginRecordsSent", "Unit": "Count"},
                    {"Name": "PluginRecordsRefused", "Unit": "Count"},
                    {"Name": "PluginFailures", "Unit": "Count"},
                    {"Name": "PluginDuration", "Unit": "Milliseconds"}
                ]
            }]
        },
        "Organization": run.org.to_string(),
        "Plugin": run.plugin,
        "PluginRecordsConsidered": considered,
        "PluginRecordsSent": sent,
        "PluginRecordsUnchanged": unchanged,
        "PluginRecordsRefused": failed,
        "PluginFailures": u64::from(run.failed()),
        "PluginDuration": duration_ms,
        "reconcile": run.reconcile,
        "error": run.result.as_ref().err(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use classy_sync_core::domain::Entity;
    use classy_sync_core::engine::plugins::PluginRun;
    use classy_sync_core::ports::PushReport;
    use std::collections::{BTreeMap, BTreeSet};

    fn report() -> SyncReport {
        SyncReport {
            run_id: "r1".into(),
            org: 4242,
            entity: Entity::Supporters,
            mode: "incremental".into(),
            resumed: false,
            outcome: SyncOutcome::Succeeded,
            fetched: 10,
            created: 2,
            updated: 3,
            unchanged: 5,
            pages: 1,
            api_calls: 2,
            started_at: "2025-01-01T00:00:00Z".into(),
            started_at_ms: 0,
            duration_ms: 1500,
            error: None,
            aggregates_recomputed: 0,
            quarantined: 0,
        }
    }

    fn run(org: u64) -> PluginRun {
        PluginRun {
            org,
            plugin: "mailchimp".into(),
            reconcile: false,
            result: Ok(PushReport::default()),
        }
    }

    /// The custom metrics CloudWatch creates from EMF lines: one per metric name and value
    /// of each declared dimension set (what it bills), as (metric, [(dimension, value)]).
    fn custom_metrics(lines: &[String]) -> BTreeSet<(String, Vec<(String, String)>)> {
        let mut out = BTreeSet::new();
        for line in lines {
            let v: Value = serde_json::from_str(line).unwrap();
            for directive in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
                for set in directive["Dimensions"].as_array().unwrap() {
                    for m in directive["Metrics"].as_array().unwrap() {
                        let dims = set
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| {
                                let d = d.as_str().unwrap();
                                // Every dimension must be a member of the line.
                                (d.to_owned(), v[d].as_str().expect(d).to_owned())
                            })
                            .collect();
                        out.insert((m["Name"].as_str().unwrap().to_owned(), dims));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn by_default_no_dimension_names_the_organization_but_every_line_carries_it() {
        let line: Value =
            serde_json::from_str(&emf_line(&report(), 1, MetricDimensions::Shared)).unwrap();
        let sets = &line["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        assert_eq!(sets, &json!([["Entity"]]));
        assert_eq!(line["Organization"], "4242", "queryable in Logs Insights");
        assert_eq!(line["Entity"], "supporters");

        let line: Value =
            serde_json::from_str(&plugin_emf_line(&run(4242), 5, 1, MetricDimensions::Shared))
                .unwrap();
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Plugin"]])
        );
        assert_eq!(line["Organization"], "4242");
    }

    #[test]
    fn the_default_custom_metric_count_does_not_grow_with_organizations() {
        let entities = [
            Entity::Supporters,
            Entity::Campaigns,
            Entity::Transactions,
            Entity::RecurringPlans,
        ];
        let count = |orgs: u64, dims: MetricDimensions| {
            let mut lines = Vec::new();
            for org in 1..=orgs {
                for entity in entities {
                    lines.push(emf_line(
                        &SyncReport {
                            org,
                            entity,
                            ..report()
                        },
                        1,
                        dims,
                    ));
                }
                lines.push(plugin_emf_line(&run(org), 5, 1, dims));
            }
            custom_metrics(&lines).len()
        };
        // 5 sync metrics × 4 entities + 5 plugin metrics × 1 plugin.
        assert_eq!(count(1, MetricDimensions::Shared), 25);
        assert_eq!(count(100, MetricDimensions::Shared), 25);
        // The opt-in adds 25 per organization (docs/cost.md).
        assert_eq!(count(1, MetricDimensions::PerOrganization), 25 + 25);
        assert_eq!(count(100, MetricDimensions::PerOrganization), 25 + 100 * 25);
    }

    #[test]
    fn the_opt_in_adds_the_organization_dimension_sets() {
        let line: Value =
            serde_json::from_str(&emf_line(&report(), 1, MetricDimensions::PerOrganization))
                .unwrap();
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Entity"], ["Organization", "Entity"]])
        );
        let line: Value = serde_json::from_str(&plugin_emf_line(
            &run(7),
            5,
            1,
            MetricDimensions::PerOrganization,
        ))
        .unwrap();
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Plugin"], ["Organization", "Plugin"]])
        );
    }

    #[test]
    fn the_opt_in_is_read_from_the_environment() {
        let env = |v: Option<&'static str>| {
            let map: BTreeMap<&str, &str> = v
                .map(|v| (ENV_METRICS_PER_ORGANIZATION, v))
                .into_iter()
                .collect();
            MetricDimensions::from_lookup(move |n| map.get(n).map(|s| s.to_string()))
        };
        assert_eq!(env(None).unwrap(), MetricDimensions::Shared);
        assert_eq!(env(Some("")).unwrap(), MetricDimensions::Shared);
        assert_eq!(env(Some("false")).unwrap(), MetricDimensions::Shared);
        assert_eq!(
            env(Some("true")).unwrap(),
            MetricDimensions::PerOrganization
        );
        assert_eq!(
            env(Some("TRUE")).unwrap(),
            MetricDimensions::PerOrganization
        );
        let e = env(Some("yes")).unwrap_err().to_string();
        assert!(e.contains(ENV_METRICS_PER_ORGANIZATION), "{e}");
    }
}
