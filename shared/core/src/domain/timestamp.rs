//! Classy timestamps: `2016-01-01T12:00:00+0000`, sometimes `...Z` or with milliseconds.
//! Parsed into UTC; written back in Classy's own form so exports keep the API's values.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Classy's wire format: offset without a colon, second precision.
pub const CLASSY_FORMAT: &str = "%Y-%m-%dT%H:%M:%S+0000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Classy timestamp: {0:?}")]
pub struct TimestampError(pub String);

impl Timestamp {
    pub fn from_unix(secs: i64) -> Self {
        Timestamp(Utc.timestamp_opt(secs, 0).single().unwrap_or_default())
    }

    pub fn unix(&self) -> i64 {
        self.0.timestamp()
    }

    /// Parses the three forms Classy emits (and RFC 3339 with a colon in the offset).
    pub fn parse(raw: &str) -> Result<Self, TimestampError> {
        let s = raw.trim();
        let err = || TimestampError(raw.to_string());
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(Timestamp(dt.with_timezone(&Utc)));
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%z",
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%z",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
                return Ok(Timestamp(dt.with_timezone(&Utc)));
            }
        }
        // A bare date or a naive date-time is taken as UTC.
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
            return Ok(Timestamp(Utc.from_utc_datetime(&dt)));
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Timestamp(
                Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).ok_or_else(err)?),
            ));
        }
        Err(err())
    }

    /// Classy's own representation, e.g. for filters: `2025-04-20T00:00:00+0000`.
    pub fn to_classy(&self) -> String {
        self.0.format(CLASSY_FORMAT).to_string()
    }

    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Truncated to the second: Classy's precision, and the cursor's unit.
    pub fn second(&self) -> i64 {
        self.0.timestamp()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_classy())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_classy())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_classy_forms_to_the_same_instant() {
        let a = Timestamp::parse("2016-01-01T12:00:00+0000").unwrap();
        let b = Timestamp::parse("2016-01-01T12:00:00Z").unwrap();
        let c = Timestamp::parse("2016-01-01T12:00:00.000+0000").unwrap();
        let d = Timestamp::parse("2016-01-01T14:00:00+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_eq!(a.to_classy(), "2016-01-01T12:00:00+0000");
    }

    #[test]
    fn milliseconds_keep_their_second() {
        let t = Timestamp::parse("2016-01-01T12:00:00.999Z").unwrap();
        assert_eq!(
            t.second(),
            Timestamp::parse("2016-01-01T12:00:00Z").unwrap().second()
        );
    }

    #[test]
    fn rejects_garbage_naming_the_value() {
        let e = Timestamp::parse("yesterday").unwrap_err();
        assert!(e.to_string().contains("yesterday"));
    }
}
