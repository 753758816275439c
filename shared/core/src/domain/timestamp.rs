//! Classy timestamps: `2016-01-01T12:00:00+0000`, sometimes `...Z` or with milliseconds.
//! Parsed into UTC; written back in Classy's own form so exports keep the API's values.

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone, Timelike, Utc,
};
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
        // Every record carries several timestamps: chrono's format-string parser was a tenth
        // of a full sync's CPU, so the forms Classy sends are read by hand first.
        match parse_wire(raw.trim().as_bytes()) {
            Some(t) => Ok(t),
            None => Self::parse_any(raw),
        }
    }

    /// The general parser: every accepted form, through chrono's format strings.
    fn parse_any(raw: &str) -> Result<Self, TimestampError> {
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
        let mut buf = [0u8; CLASSY_LEN];
        match self.write_classy(&mut buf) {
            Some(s) => s.to_string(),
            None => self.0.format(CLASSY_FORMAT).to_string(),
        }
    }

    /// [`Self::to_classy`] into a buffer, without chrono's formatter; `None` for a year
    /// outside 0000–9999 (which the formatter writes with a sign or more digits).
    fn write_classy<'a>(&self, buf: &'a mut [u8; CLASSY_LEN]) -> Option<&'a str> {
        let d = self.0.naive_utc();
        let year = u32::try_from(d.year()).ok().filter(|y| *y <= 9999)?;
        let mut put = |at: usize, value: u32, digits: usize| {
            let mut v = value;
            for i in (0..digits).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, year, 4);
        put(5, d.month(), 2);
        put(8, d.day(), 2);
        put(11, d.hour(), 2);
        put(14, d.minute(), 2);
        // chrono keeps a leap second as nanoseconds past 59; %S writes 60 for it.
        put(17, d.second() + d.nanosecond() / 1_000_000_000, 2);
        for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
            buf[at] = c;
        }
        buf[19..].copy_from_slice(b"+0000");
        std::str::from_utf8(&buf[..]).ok()
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
        let mut buf = [0u8; CLASSY_LEN];
        match self.write_classy(&mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&self.to_classy()),
        }
    }
}

/// The length of `2016-01-01T12:00:00+0000`.
const CLASSY_LEN: usize = 24;

/// The forms Classy sends, read without chrono's format strings:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HHMM|±HH:MM)`, or a space and no fraction. `None` for anything else (and for
/// values out of range), which the general parser then reads or rejects.
fn parse_wire(s: &[u8]) -> Option<Timestamp> {
    fn num(s: &[u8], from: usize, len: usize) -> Option<u32> {
        let digits = s.get(from..from + len)?;
        digits.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    }
    let sep = |at: usize, c: u8| s.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && (sep(10, b'T') || sep(10, b' ')))
        || !(sep(13, b':') && sep(16, b':'))
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(s, 0, 4)? as i32, num(s, 5, 2)?, num(s, 8, 2)?)?;
    let (hour, minute, second) = (num(s, 11, 2)?, num(s, 14, 2)?, num(s, 17, 2)?);
    if second > 59 {
        return None; // a leap second: the general parser's rules apply
    }
    let mut at = 19;
    let mut nanos = 0u32;
    // With a space the general parser takes no fraction (Classy sends none there).
    if s.get(at) == Some(&b'.') && s[10] == b'T' {
        let digits = s[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(s, at + 1, digits)? * 10u32.pow(9 - digits as u32);
        at += 1 + digits;
    }
    let offset_secs = match s.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest.len() {
                4 => (num(rest, 0, 2)?, num(rest, 2, 2)?),
                5 if rest[2] == b':' => (num(rest, 0, 2)?, num(rest, 3, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i64;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let utc = NaiveDateTime::new(date, time)
        .checked_sub_signed(chrono::Duration::seconds(offset_secs))?;
    Some(Timestamp(Utc.from_utc_datetime(&utc)))
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Parses the string where it lies (no copy into a `String` first).
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
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

    /// The hand-written reader agrees with chrono's on every string it accepts, and accepts
    /// the forms Classy sends; strings built from valid, out-of-range and malformed parts.
    #[test]
    fn the_wire_reader_agrees_with_the_general_parser() {
        let mut rng = fastrand::Rng::with_seed(20261207);
        let pick = |rng: &mut fastrand::Rng, xs: &[&'static str]| xs[rng.usize(..xs.len())];
        let mut accepted = 0;
        for _ in 0..200_000 {
            let year = pick(&mut rng, &["2016", "1999", "0000", "9999", "2024", "20x6"]);
            let month = pick(&mut rng, &["01", "02", "12", "13", "00", "1"]);
            let day = pick(&mut rng, &["01", "28", "29", "30", "31", "32", "00"]);
            let t = pick(&mut rng, &["T", " ", "t", "_"]);
            let hour = pick(&mut rng, &["00", "12", "23", "24"]);
            let minute = pick(&mut rng, &["00", "59", "60"]);
            let second = pick(&mut rng, &["00", "30", "59", "60", "61"]);
            let fraction = pick(
                &mut rng,
                &[
                    "",
                    "",
                    ".5",
                    ".000",
                    ".999",
                    ".123456789",
                    ".1234567891",
                    ".",
                ],
            );
            let offset = pick(
                &mut rng,
                &[
                    "+0000", "Z", "z", "+00:00", "-0500", "+0530", "+05:30", "-23:59", "+2400",
                    "+0060", "+000", "", "+00:0",
                ],
            );
            let text = format!("{year}-{month}-{day}{t}{hour}:{minute}:{second}{fraction}{offset}");
            if let Some(fast) = parse_wire(text.as_bytes()) {
                accepted += 1;
                assert_eq!(Ok(fast), Timestamp::parse_any(&text), "{text}");
            }
        }
        assert!(accepted > 1_000, "{accepted}");
        for classy in [
            "2016-01-01T12:00:00+0000",
            "2016-01-01T12:00:00Z",
            "2016-01-01T12:00:00.000+0000",
            "2016-01-01T14:00:00+02:00",
            "2024-02-29 23:59:59-0800",
        ] {
            assert!(parse_wire(classy.as_bytes()).is_some(), "{classy}");
        }
    }

    /// The hand-written writer equals chrono's `CLASSY_FORMAT` (a leap second included).
    #[test]
    fn the_wire_writer_equals_chrono_format() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut instants: Vec<DateTime<Utc>> = (0..100_000)
            .map(|_| {
                let secs = rng.i64(-62_167_219_200..253_402_300_800); // 0000-01-01..9999-12-31
                Utc.timestamp_opt(secs, rng.u32(..1_000_000_000)).unwrap()
            })
            .collect();
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap();
        instants.push(Utc.from_utc_datetime(&leap));
        for at in instants {
            let t = Timestamp(at);
            assert_eq!(t.to_classy(), at.format(CLASSY_FORMAT).to_string());
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.to_classy())
            );
        }
        let far = Timestamp(Utc.timestamp_opt(253_402_300_800 + 86_400, 0).unwrap());
        assert_eq!(far.to_classy(), far.0.format(CLASSY_FORMAT).to_string());
    }

    #[test]
    fn rejects_garbage_naming_the_value() {
        let e = Timestamp::parse("yesterday").unwrap_err();
        assert!(e.to_string().contains("yesterday"));
    }
}
