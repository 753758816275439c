//! CloudWatch Embedded Metric Format: one JSON line on stdout per job, which CloudWatch turns
//! into metrics (namespace `ClassySync`, dimensions Organization × Entity) without API calls.

use classy_sync::engine::{SyncOutcome, SyncReport};
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
