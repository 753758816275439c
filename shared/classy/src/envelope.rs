//! The pagination envelope: `{ data, current_page, last_page, total, next_page_url, ... }`.
//! Extra fields are ignored; counters may come as numbers or numeric strings.

use classy_sync_core::ports::SourcePage;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    pub data: Vec<Box<RawValue>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub current_page: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub last_page: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    #[allow(dead_code)]
    pub per_page: Option<u64>,
    #[serde(default)]
    pub next_page_url: Option<String>,
}

impl Envelope {
    /// Parses a body; the error says what was wrong without echoing the body.
    pub fn parse(body: &[u8]) -> Result<Envelope, String> {
        serde_json::from_slice::<Envelope>(body).map_err(|e| {
            if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
                format!("not a Classy list envelope ({e})")
            } else {
                format!("body is not valid JSON ({} bytes: {e})", body.len())
            }
        })
    }

    pub fn has_next(&self) -> bool {
        self.next_page_url.as_deref().is_some_and(|u| !u.is_empty())
    }

    pub fn into_page(self, requested_page: u32) -> SourcePage {
        let has_next = self.has_next();
        let current = self
            .current_page
            .map_or(requested_page, |p| to_u32(p).max(1));
        let last = self
            .last_page
            .map_or(current + u32::from(has_next), to_u32)
            .max(current);
        SourcePage {
            total: self.total.unwrap_or(self.data.len() as u64),
            records: self.data,
            current_page: current,
            last_page: last,
            has_next,
            requests: 0,
        }
    }
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_envelope_with_extra_fields() {
        let body = br#"{"current_page":2,"data":[{"id":1},{"id":2,"x":[1,2]}],
            "first_page_url":"u","from":21,"last_page":5,"last_page_url":"u",
            "next_page_url":"https://api.classy.org/2.0/organizations/1/supporters?page=3",
            "path":"p","per_page":20,"prev_page_url":"u","to":40,"total":97,"links":[]}"#;
        let page = Envelope::parse(body).unwrap().into_page(2);
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[1].get(), r#"{"id":2,"x":[1,2]}"#);
        assert_eq!(
            (page.current_page, page.last_page, page.total, page.has_next),
            (2, 5, 97, true)
        );
    }

    #[test]
    fn last_page_and_string_counters() {
        let body =
            br#"{"current_page":"5","data":[],"last_page":"5","total":"97","next_page_url":null}"#;
        let page = Envelope::parse(body).unwrap().into_page(5);
        assert_eq!(
            (page.current_page, page.last_page, page.total, page.has_next),
            (5, 5, 97, false)
        );
    }

    #[test]
    fn minimal_envelope() {
        let page = Envelope::parse(br#"{"data":[{"id":1}]}"#)
            .unwrap()
            .into_page(3);
        assert_eq!(
            (page.current_page, page.last_page, page.total, page.has_next),
            (3, 3, 1, false)
        );
    }

    #[test]
    fn missing_data_or_bad_json_is_an_error() {
        let e = Envelope::parse(br#"{"error":"x"}"#).unwrap_err();
        assert!(e.contains("envelope"), "{e}");
        let e = Envelope::parse(br#"{"data":[{"id":1},{"id""#).unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        assert!(Envelope::parse(br#"{"data":{"id":1}}"#).is_err());
        assert!(Envelope::parse(b"").is_err());
    }
}
