//! CloudWatch Embedded Metric Format: one JSON line on stdout per job, which CloudWatch turns
//! into metrics (namespace `ClassySync`, dimensions Organization × Entity) without API calls.

use classy_sync_core::engine::{SyncOutcome, SyncReport};
use serde_json::json;

pub const NAMESPACE: &str = "ClassySync";

pub fn emf_line(report: &SyncReport, timestamp_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Organization", "Entity"]],
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

/// One line per organization×plugin push (dimensions Organization × Plugin). `Duration` is
/// the whole job's (a job may push several plugins of one organization).
pub fn plugin_emf_line(
    run: &classy_sync_core::engine::plugins::PluginRun,
    duration_ms: u64,
    timestamp_ms: i64,
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
                "Dimensions": [["Organization", "Plugin"]],
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
