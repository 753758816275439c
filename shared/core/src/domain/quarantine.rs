//! Decoding one record Classy sent, and, when it does not decode, what can be said about it
//! without quoting it: its id and second if those read, and which field failed how. serde's
//! own messages quote the offending value (`invalid type: string "yes"`), which is donor data
//! and must not reach logs, events or alerts.

use super::entities::Record;
use super::lenient;
use super::Timestamp;
use serde::Deserialize;

/// A record that did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    /// The record's id when that much reads (as Classy sent it: digits, or a quoted number).
    pub id: Option<u64>,
    /// Its `updated_at` second when that reads, to keep the walk in order.
    pub updated_at: Option<i64>,
    /// Which field failed and how, without the value.
    pub reason: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    #[serde(default)]
    updated_at: Option<serde_json::Value>,
}

/// Decodes `raw` as a `T`, or says why not without quoting any value of it.
pub fn decode<T: Record>(raw: &str) -> Result<T, DecodeFailure> {
    // Nearly every record decodes: tracking the path costs a tenth of decoding, so it is only
    // paid again for a record that failed.
    if let Ok(record) = T::deserialize(&mut serde_json::Deserializer::from_str(raw)) {
        return Ok(record);
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(record) => Ok(record),
        Err(e) => {
            let path = e.path().to_string();
            let reason = describe(&path, &e.into_inner());
            let envelope = serde_json::from_str::<Envelope>(raw).ok();
            Err(DecodeFailure {
                id: envelope.as_ref().and_then(|e| e.id),
                updated_at: envelope
                    .and_then(|e| e.updated_at)
                    .and_then(|v| v.as_str().and_then(|s| Timestamp::parse(s).ok()))
                    .map(|t| t.second()),
                reason,
            })
        }
    }
}

/// `field `first_name`: expected a string` and the like. Only what serde says it expected is
/// kept: that part comes from the record type, never from the data.
fn describe(path: &str, e: &serde_json::Error) -> String {
    let field = if path.is_empty() || path == "." {
        "the record".to_string()
    } else {
        format!("field `{path}`")
    };
    let message = e.to_string();
    let what = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            "is not valid JSON".to_string()
        }
        serde_json::error::Category::Io => "could not be read".to_string(),
        serde_json::error::Category::Data => {
            if let Some(missing) = message.strip_prefix("missing field ") {
                // The name is the type's, not the data's.
                let name = missing.split_whitespace().next().unwrap_or("");
                return format!("{field}: missing field {name}");
            }
            match message.rsplit_once(", expected ") {
                Some((_, expected)) => {
                    let expected = expected.split(" at line ").next().unwrap_or(expected);
                    format!("has a value of the wrong type or form (expected {expected})")
                }
                None => "has a value of the wrong type or form".to_string(),
            }
        }
    };
    format!("{field} {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::entities::Supporter;

    #[test]
    fn a_good_record_decodes() {
        let s: Supporter =
            decode(r#"{"id": 5, "updated_at": "2026-01-02T03:04:05+0000", "first_name": "Ann"}"#)
                .unwrap();
        assert_eq!(s.id, 5);
    }

    #[test]
    fn a_bad_record_names_the_field_and_never_the_value() {
        let raw = r#"{"id": 7, "updated_at": "2026-01-02T03:04:05+0000",
                      "first_name": {"secret": "Rosalind Franklin"}, "opt_in": "maybe-later"}"#;
        let f = decode::<Supporter>(raw).unwrap_err();
        assert_eq!(f.id, Some(7));
        assert_eq!(f.updated_at, Some(1_767_323_045));
        assert!(f.reason.contains("first_name"), "{}", f.reason);
        for quoted in ["Rosalind", "secret", "maybe-later"] {
            assert!(!f.reason.contains(quoted), "{}", f.reason);
        }
        // serde's own message would have quoted it: the point of this module.
        let plain = serde_json::from_str::<Supporter>(
            r#"{"id": 7, "updated_at": "2026-01-02T03:04:05+0000", "opt_in": "maybe-later"}"#,
        )
        .unwrap_err()
        .to_string();
        let f = decode::<Supporter>(
            r#"{"id": 7, "updated_at": "2026-01-02T03:04:05+0000", "opt_in": "maybe-later"}"#,
        )
        .unwrap_err();
        assert!(plain.contains("maybe-later"), "{plain}");
        assert!(!f.reason.contains("maybe-later"), "{}", f.reason);
        assert!(f.reason.contains("opt_in"), "{}", f.reason);
    }

    #[test]
    fn a_record_without_a_readable_id_still_fails_cleanly() {
        let f = decode::<Supporter>(r#"{"id": {"x": 1}}"#).unwrap_err();
        assert_eq!(f.id, None);
        assert!(f.reason.contains("id"), "{}", f.reason);
        let f = decode::<Supporter>("[1, 2").unwrap_err();
        assert!(f.reason.contains("not valid JSON"), "{}", f.reason);
    }
}
