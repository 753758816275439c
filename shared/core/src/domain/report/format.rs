//! Number and date formatting shared by the renderers (plain strings, not escaped).

use chrono::{TimeZone, Utc};

/// `$1,234.56`, `-$5.00`.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}${}.{:02}", group(c / 100), c % 100)
}

/// `12,345`.
pub fn count(n: u64) -> String {
    group(n)
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `2026-05-05` (UTC).
pub fn date(unix: i64) -> String {
    Utc.timestamp_opt(unix, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// `2026-05-05 09:00 UTC`.
pub fn datetime(unix: i64) -> String {
    Utc.timestamp_opt(unix, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// `+12.5%`, `-3.0%`, `n/a`.
pub fn change(pct: Option<f64>) -> String {
    match pct {
        Some(p) => format!("{p:+.1}%"),
        None => "n/a".into(),
    }
}

/// `45.0%` of a 0..1 ratio.
pub fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "n/a".into(),
    }
}

/// A period's name in words: `30d` is "Last 30 days", `12m` "Last 12 months", `ytd` "Year
/// to date", `2025` "Year 2025"; a range of dates is the dates.
pub fn period_words(label: &str) -> String {
    use crate::domain::analytics::Period;
    match label.parse::<Period>() {
        Ok(Period::LastDays(1)) => "Last day".into(),
        Ok(Period::LastDays(n)) => format!("Last {n} days"),
        Ok(Period::LastMonths(1)) => "Last month".into(),
        Ok(Period::LastMonths(n)) => format!("Last {n} months"),
        Ok(Period::YearToDate) => "Year to date".into(),
        Ok(Period::Year(y)) => format!("Year {y}"),
        Ok(Period::Dates(a, b)) => format!("{a} to {b}"),
        Err(_) => label.to_owned(),
    }
}

/// The period line: `Last 30 days: 2026-04-05 to 2026-05-04`.
pub fn period(p: &crate::domain::analytics::PeriodInfo) -> String {
    // `end` is exclusive: show the last day included.
    let dates = format!("{} to {}", date(p.start), date(p.end - 1));
    let words = period_words(&p.label);
    if words == dates {
        dates
    } else {
        format!("{words}: {dates}")
    }
}

/// A display name, or `#id` when none is stored.
pub fn name_or_id(name: &Option<String>, id: u64) -> String {
    match name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => format!("#{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(money(123_456), "$1,234.56");
        assert_eq!(money(-500), "-$5.00");
        assert_eq!(money(5), "$0.05");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count(999), "999");
        assert_eq!(change(Some(12.345)), "+12.3%");
        assert_eq!(change(None), "n/a");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(name_or_id(&Some("  ".into()), 4), "#4");
        assert_eq!(period_words("90d"), "Last 90 days");
        assert_eq!(period_words("12m"), "Last 12 months");
        assert_eq!(period_words("ytd"), "Year to date");
        assert_eq!(
            period_words("2025-01-01..2025-03-31"),
            "2025-01-01 to 2025-03-31"
        );
    }
}
