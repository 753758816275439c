//! [`EventBus`] for local runs: appends one JSON object per event, shaped like an EventBridge
//! event (`{"source","detail-type","time","detail"}`), to a JSON-lines file created with mode
//! 0600 (events may name organizations and supporters).

use async_trait::async_trait;
use classy_sync_core::ports::events::EVENT_SOURCE;
use classy_sync_core::ports::{Event, EventBus, EventError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct EventLogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl EventLogFile {
    /// Opens `path` for appending, creating it (and its parent directories) if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EventError> {
        let path = path.as_ref().to_path_buf();
        let fail = |e: std::io::Error| EventError::Unavailable(format!("{}: {e}", path.display()));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(fail)?;
        Ok(EventLogFile {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One line of the log.
pub fn event_line(e: &Event) -> String {
    let v = serde_json::json!({
        "source": EVENT_SOURCE,
        "detail-type": e.detail_type,
        "time": e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "detail": e.detail,
    });
    let mut line = v.to_string();
    line.push('\n');
    line
}

#[async_trait]
impl EventBus for EventLogFile {
    async fn publish(&self, events: Vec<Event>) -> Result<(), EventError> {
        if events.is_empty() {
            return Ok(());
        }
        let text: String = events.iter().map(event_line).collect();
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            // One write per publish: lines of concurrent publishers do not interleave.
            f.write_all(text.as_bytes()).and_then(|()| f.flush())
        })
        .await
        .map_err(|e| EventError::Unavailable(format!("{}: {e}", path.display())))?
        .map_err(|e| EventError::Unavailable(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn appends_json_lines_to_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.jsonl");
        let bus = EventLogFile::open(&path).unwrap();
        let time = chrono::Utc.with_ymd_and_hms(2025, 4, 20, 12, 0, 0).unwrap();
        let ev = |t: &str, n: u32| Event {
            detail_type: t.into(),
            detail: serde_json::json!({"org": 7, "n": n}),
            time,
        };
        bus.publish(vec![ev("SyncCompleted", 1), ev("SyncFailed", 2)])
            .await
            .unwrap();
        EventLogFile::open(&path)
            .unwrap()
            .publish(vec![ev("SyncCompleted", 3)])
            .await
            .unwrap();
        bus.publish(Vec::new()).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            serde_json::json!({"source": "classy-sync", "detail-type": "SyncCompleted",
                "time": "2025-04-20T12:00:00.000Z", "detail": {"org": 7, "n": 1}})
        );
        assert_eq!(lines[2]["detail"]["n"], 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
