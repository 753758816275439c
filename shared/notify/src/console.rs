//! The console channel: one JSON line per message on standard error (and a log event), for
//! local runs and as a last-resort channel.

use classy_sync_core::ports::Message;
use serde_json::json;
use std::io::Write;

pub fn line(m: &Message) -> String {
    json!({
        "notification": m.id,
        "kind": m.kind,
        "severity": m.severity,
        "org_id": m.org_id,
        "subject": m.subject,
        "text": m.text,
        "fields": m.fields.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
    })
    .to_string()
}

pub fn send(m: &Message) -> Result<(), super::SendError> {
    tracing::info!(message_id = %m.id, severity = m.severity.as_str(), subject = %m.subject, "notification");
    let mut err = std::io::stderr().lock();
    writeln!(err, "{}", line(m)).map_err(|e| super::SendError {
        reason: format!("cannot write to stderr: {e}"),
        retry_after: None,
        permanent: false,
    })
}
