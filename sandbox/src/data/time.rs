//! Second-precision timestamps as the API writes them (`2016-01-01T12:00:00+0000`).
//! Hand-rolled civil-date arithmetic: formatting sits on the hot path of every page.

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Epoch seconds for a UTC date-time.
pub fn epoch(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64
}

fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

fn push_year(out: &mut Vec<u8>, y: i64) {
    let y = y.clamp(0, 9999) as u32;
    push2(out, y / 100);
    push2(out, y % 100);
}

/// Appends `YYYY-MM-DDTHH:MM:SS+0000`.
pub fn write_ts(out: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    push_year(out, y);
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
    out.push(b'T');
    push2(out, rem / 3600);
    out.push(b':');
    push2(out, rem / 60 % 60);
    out.push(b':');
    push2(out, rem % 60);
    out.extend_from_slice(b"+0000");
}

/// Appends `YYYY-MM-DD`.
pub fn write_date(out: &mut Vec<u8>, days: i32) {
    let (y, m, d) = civil_from_days(days as i64);
    push_year(out, y);
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
}

pub fn format_ts(secs: i64) -> String {
    let mut v = Vec::with_capacity(24);
    write_ts(&mut v, secs);
    String::from_utf8(v).expect("ascii")
}

pub fn format_date(days: i32) -> String {
    let mut v = Vec::with_capacity(10);
    write_date(&mut v, days);
    String::from_utf8(v).expect("ascii")
}

/// Why a timestamp operand was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TsError {
    Invalid,
    /// Fractional seconds while strict timestamps are on.
    Fraction,
}

fn num(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+HHMM|+HH:MM|-HHMM]` to epoch seconds
/// (fractions truncated). No offset means UTC.
pub fn parse_ts(s: &str, allow_fraction: bool) -> Result<i64, TsError> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(TsError::Invalid);
    }
    let y = num(&b[0..4]).ok_or(TsError::Invalid)? as i64;
    let mo = num(&b[5..7]).ok_or(TsError::Invalid)?;
    let d = num(&b[8..10]).ok_or(TsError::Invalid)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(TsError::Invalid);
    }
    if b.len() == 10 {
        return Ok(epoch(y, mo, d, 0, 0, 0));
    }
    if b.len() < 19 || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return Err(TsError::Invalid);
    }
    let h = num(&b[11..13]).ok_or(TsError::Invalid)?;
    let mi = num(&b[14..16]).ok_or(TsError::Invalid)?;
    let sec = num(&b[17..19]).ok_or(TsError::Invalid)?;
    if h > 23 || mi > 59 || sec > 60 {
        return Err(TsError::Invalid);
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(TsError::Invalid);
        }
        if !allow_fraction {
            return Err(TsError::Fraction);
        }
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (oh, om) = match tail {
                [a, b, c, d] => (num(&[*a, *b]), num(&[*c, *d])),
                [a, b, b':', c, d] => (num(&[*a, *b]), num(&[*c, *d])),
                [a, b] => (num(&[*a, *b]), Some(0)),
                _ => (None, None),
            };
            let (oh, om) = (oh.ok_or(TsError::Invalid)?, om.ok_or(TsError::Invalid)?);
            let off = (oh * 3600 + om * 60) as i64;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return Err(TsError::Invalid),
    };
    Ok(epoch(y, mo, d, h, mi, sec) - offset)
}

/// Parses `YYYY-MM-DD` (or the date part of a timestamp) to days since the epoch.
pub fn parse_date(s: &str) -> Option<i32> {
    let secs = parse_ts(s, true).ok()?;
    Some(secs.div_euclid(86_400) as i32)
}

/// Wall-clock now, truncated to the second.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_format() {
        let t = epoch(2016, 1, 1, 12, 0, 0);
        assert_eq!(format_ts(t), "2016-01-01T12:00:00+0000");
        for secs in [0, 951_782_400, 1_700_000_000, 1_798_761_599] {
            assert_eq!(parse_ts(&format_ts(secs), false), Ok(secs));
        }
        assert_eq!(
            format_date(days_from_civil(2024, 2, 29) as i32),
            "2024-02-29"
        );
    }

    #[test]
    fn accepts_offsets_z_and_millis() {
        let base = epoch(2025, 4, 20, 0, 0, 0);
        assert_eq!(parse_ts("2025-04-20T00:00:00+0000", false), Ok(base));
        assert_eq!(parse_ts("2025-04-20T00:00:00Z", false), Ok(base));
        assert_eq!(parse_ts("2025-04-20T02:00:00+02:00", false), Ok(base));
        assert_eq!(parse_ts("2025-04-19T19:00:00-0500", false), Ok(base));
        assert_eq!(parse_ts("2025-04-20T00:00:00.123Z", true), Ok(base));
        assert_eq!(
            parse_ts("2025-04-20T00:00:00.123Z", false),
            Err(TsError::Fraction)
        );
        assert_eq!(parse_ts("2025-04-20", false), Ok(base));
        assert_eq!(
            parse_ts("2025-04-20T00:00:00 0000", true),
            Err(TsError::Invalid)
        );
        assert_eq!(parse_ts("yesterday", true), Err(TsError::Invalid));
    }
}
