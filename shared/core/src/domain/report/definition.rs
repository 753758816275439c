//! A report definition: what to show (sections, period), for whom (one organization or all),
//! when (a cron expression in an IANA time zone) and to whom (email addresses and/or named
//! Slack channels). Pure: validation and next-run arithmetic only.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// One part of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Gross, net, fees, gifts, donors, average gift, with the gifts-per-day chart.
    Headline,
    /// New, returning, reactivated, lapsed donors and retention.
    Donors,
    Campaigns,
    Recurring,
    Trends,
    Prospects,
    AtRisk,
    Quality,
    /// The Fundraising Effectiveness Project figures over the last 12 months against the 12
    /// before: donor and dollar retention, gain/loss, LYBUNT/SYBUNT, recurring revenue.
    Fep,
}

impl Section {
    pub const ALL: [Section; 9] = [
        Section::Headline,
        Section::Donors,
        Section::Campaigns,
        Section::Recurring,
        Section::Trends,
        Section::Prospects,
        Section::AtRisk,
        Section::Quality,
        Section::Fep,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Headline => "headline",
            Section::Donors => "donors",
            Section::Campaigns => "campaigns",
            Section::Recurring => "recurring",
            Section::Trends => "trends",
            Section::Prospects => "prospects",
            Section::AtRisk => "at_risk",
            Section::Quality => "quality",
            Section::Fep => "fep",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Section::Headline => "Headline",
            Section::Donors => "Donors",
            Section::Campaigns => "Top campaigns",
            Section::Recurring => "Recurring giving",
            Section::Trends => "Trends",
            Section::Prospects => "Top prospects",
            Section::AtRisk => "Donors at risk",
            Section::Quality => "Data quality",
            Section::Fep => "Fundraising effectiveness (FEP)",
        }
    }
}

impl FromStr for Section {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Section::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Section::ALL.iter().map(|x| x.as_str()).collect();
                format!("unknown section {s:?} (one of {})", names.join(", "))
            })
    }
}

/// A ready-made kind of report: its sections, period and schedule, so `report add ID --preset
/// weekly --org 7 --email board@example.org` is a whole definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    pub sections: &'static [Section],
    pub period: &'static str,
    pub schedule: &'static str,
}

/// Every preset.
pub const PRESETS: [Preset; 1] = [Preset {
    name: "weekly",
    description: "every Monday at 08:00: the last 7 days' headline with its chart, the FEP \
                  figures of the last 12 months, donors, recurring giving, trends and the \
                  donors at risk",
    sections: &[
        Section::Headline,
        Section::Fep,
        Section::Donors,
        Section::Recurring,
        Section::Trends,
        Section::AtRisk,
    ],
    period: "7d",
    schedule: "0 8 * * MON",
}];

/// The preset called `name`.
pub fn preset(name: &str) -> Result<&'static Preset, DefinitionError> {
    let n = name.trim().to_ascii_lowercase();
    PRESETS.iter().find(|p| p.name == n).ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        invalid(
            "preset",
            format!("unknown preset {name:?} (one of {})", names.join(", ")),
        )
    })
}

/// Which organizations a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "org_id")]
pub enum ReportScope {
    Org(u64),
    /// Every organization, one section block per organization.
    All,
}

impl FromStr for ReportScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(ReportScope::All);
        }
        s.parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(ReportScope::Org)
            .ok_or_else(|| format!("org {s:?}: use a positive organization id or \"all\""))
    }
}

/// Where a report goes. Email addresses become one email notification channel owned by the
/// report; Slack channels are named notification channels configured with `notify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipients {
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub slack_channels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDefinition {
    pub id: String,
    pub scope: ReportScope,
    pub sections: Vec<Section>,
    /// An analytics period (`7d`, `30d`, `12m`, `ytd`...), resolved at send time.
    pub period: String,
    /// Five fields (`min hour day month weekday`) or the cron crate's six/seven with seconds.
    pub schedule: String,
    /// IANA time zone the schedule is read in, e.g. `America/New_York`.
    pub timezone: String,
    pub recipients: Recipients,
    /// Unix seconds; occurrences before it are never sent.
    pub created_at: i64,
}

/// Invalid definition: always names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report definition: {field}: {reason}")]
pub struct DefinitionError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> DefinitionError {
    DefinitionError {
        field,
        reason: reason.into(),
    }
}

/// Parses a cron expression; five-field Unix cron gets a leading `0` seconds field.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, DefinitionError> {
    let expr = expr.trim();
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_owned(),
        n => {
            return Err(invalid(
                "schedule",
                format!("{expr:?} has {n} fields; use 5 (min hour day month weekday)"),
            ))
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| invalid("schedule", format!("{expr:?}: {e}")))
}

pub fn parse_timezone(tz: &str) -> Result<Tz, DefinitionError> {
    tz.trim().parse::<Tz>().map_err(|_| {
        invalid(
            "timezone",
            format!("{tz:?} is not an IANA time zone (e.g. Europe/Paris, UTC)"),
        )
    })
}

/// A report id: 1–64 of `[a-z0-9_-]` (it becomes part of store keys and channel names).
pub fn validate_id(id: &str) -> Result<(), DefinitionError> {
    let ok = !id.is_empty()
        && id.len() <= 48
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "id",
            format!("{id:?}: use 1-48 lowercase letters, digits, '-' or '_'"),
        ))
    }
}

fn plausible_email(a: &str) -> bool {
    a.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
    }) && !a.contains(char::is_whitespace)
        && !a.contains(['<', '>', ',', ';', '"'])
}

impl ReportDefinition {
    pub fn validate(&self) -> Result<(), DefinitionError> {
        validate_id(&self.id)?;
        if let ReportScope::Org(0) = self.scope {
            return Err(invalid("org", "organization id must be positive"));
        }
        if self.sections.is_empty() {
            return Err(invalid("sections", "at least one section"));
        }
        crate::domain::analytics::Period::from_str(&self.period)
            .map_err(|e| invalid("period", e.to_string()))?;
        parse_cron(&self.schedule)?;
        parse_timezone(&self.timezone)?;
        let r = &self.recipients;
        if r.emails.is_empty() && r.slack_channels.is_empty() {
            return Err(invalid(
                "recipients",
                "at least one email address or Slack channel",
            ));
        }
        for e in &r.emails {
            if !plausible_email(e) {
                return Err(invalid(
                    "recipients.emails",
                    format!("{e:?} is not an email address"),
                ));
            }
        }
        for c in &r.slack_channels {
            let ok = !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(invalid(
                    "recipients.slack_channels",
                    format!("{c:?} is not a notification channel name"),
                ));
            }
        }
        Ok(())
    }

    /// The name of the email notification channel this report owns.
    pub fn email_channel(&self) -> Option<String> {
        (!self.recipients.emails.is_empty()).then(|| format!("report-{}-email", self.id))
    }

    /// Every notification channel the report is sent to.
    pub fn channels(&self) -> Vec<String> {
        let mut out: Vec<String> = self.email_channel().into_iter().collect();
        out.extend(self.recipients.slack_channels.iter().cloned());
        out
    }

    /// The first occurrence strictly after `after` (Unix seconds), as Unix seconds.
    pub fn next_run_after(&self, after: i64) -> Result<Option<i64>, DefinitionError> {
        next_occurrence(&self.schedule, &self.timezone, after)
    }

    /// The latest occurrence in `(now - catch_up, now]` not before `created_at`: the one a
    /// run at `now` owes. Older missed occurrences are not sent (a report is about "now").
    pub fn due_occurrence(&self, now: i64, catch_up: i64) -> Result<Option<i64>, DefinitionError> {
        let schedule = parse_cron(&self.schedule)?;
        let tz = parse_timezone(&self.timezone)?;
        let from = (now - catch_up).max(self.created_at - 1);
        let Some(start) = Utc.timestamp_opt(from, 0).single() else {
            return Ok(None);
        };
        let mut due = None;
        for t in schedule.after(&start.with_timezone(&tz)) {
            let u = t.timestamp();
            if u > now {
                break;
            }
            due = Some(u);
        }
        Ok(due)
    }
}

/// Next occurrence of `cron` read in `tz` strictly after `after`. DST is handled by reading the
/// cron fields as wall-clock time in the zone (chrono-tz), so `0 9 * * *` stays 09:00 local.
pub fn next_occurrence(cron: &str, tz: &str, after: i64) -> Result<Option<i64>, DefinitionError> {
    let schedule = parse_cron(cron)?;
    let tz = parse_timezone(tz)?;
    let start: DateTime<Utc> = Utc
        .timestamp_opt(after, 0)
        .single()
        .ok_or_else(|| invalid("schedule", "time out of range"))?;
    Ok(schedule
        .after(&start.with_timezone(&tz))
        .next()
        .map(|t| t.timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn def() -> ReportDefinition {
        ReportDefinition {
            id: "weekly".into(),
            scope: ReportScope::Org(7),
            sections: vec![Section::Headline],
            period: "7d".into(),
            schedule: "0 9 * * MON".into(),
            timezone: "America/New_York".into(),
            recipients: Recipients {
                emails: vec!["board@example.org".into()],
                slack_channels: vec![],
            },
            created_at: 0,
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert!(def().validate().is_ok());
        type Mutation = Box<dyn Fn(&mut ReportDefinition)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("id", Box::new(|d| d.id = "Bad Id".into())),
            ("sections", Box::new(|d| d.sections.clear())),
            ("period", Box::new(|d| d.period = "fortnight".into())),
            ("schedule", Box::new(|d| d.schedule = "0 9 * *".into())),
            ("schedule", Box::new(|d| d.schedule = "0 99 * * *".into())),
            ("timezone", Box::new(|d| d.timezone = "Mars/Olympus".into())),
            (
                "recipients",
                Box::new(|d| d.recipients = Recipients::default()),
            ),
            (
                "recipients.emails",
                Box::new(|d| d.recipients.emails = vec!["x<y>@a.b".into()]),
            ),
            (
                "recipients.slack_channels",
                Box::new(|d| d.recipients.slack_channels = vec!["a b".into()]),
            ),
        ];
        for (field, mutate) in cases {
            let mut d = def();
            mutate(&mut d);
            let e = d.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().contains(field));
        }
    }

    #[test]
    fn the_weekly_preset_makes_a_valid_definition_with_the_fep_section() {
        let p = preset("Weekly").unwrap();
        let mut d = def();
        d.sections = p.sections.to_vec();
        d.period = p.period.into();
        d.schedule = p.schedule.into();
        assert!(d.validate().is_ok());
        assert!(d.sections.contains(&Section::Fep));
        assert_eq!("fep".parse::<Section>().unwrap(), Section::Fep);
        // Mondays 08:00 in the zone.
        assert_eq!(
            d.next_run_after(ts("2026-03-03T00:00:00Z")).unwrap(),
            Some(ts("2026-03-09T12:00:00Z"))
        );
        let e = preset("monthly").unwrap_err();
        assert_eq!(e.field, "preset");
        assert!(e.reason.contains("weekly"), "{e}");
    }

    #[test]
    fn next_run_is_wall_clock_in_the_zone_across_dst() {
        // 2026-03-08: US clocks spring forward. Mondays 09:00 New York are 14:00 UTC before
        // and 13:00 UTC after.
        let before = next_occurrence(
            "0 9 * * MON",
            "America/New_York",
            ts("2026-03-01T00:00:00Z"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(before, ts("2026-03-02T14:00:00Z"));
        let after = next_occurrence(
            "0 9 * * MON",
            "America/New_York",
            ts("2026-03-03T00:00:00Z"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(after, ts("2026-03-09T13:00:00Z"));
        // Europe/Paris daily 08:00 around the October change.
        let oct = next_occurrence("0 8 * * *", "Europe/Paris", ts("2026-10-24T12:00:00Z"))
            .unwrap()
            .unwrap();
        assert_eq!(oct, ts("2026-10-25T07:00:00Z"));
    }

    #[test]
    fn a_wall_time_skipped_by_dst_does_not_fire_twice_or_in_the_gap() {
        // 02:30 does not exist in New York on 2026-03-08.
        let mut t = ts("2026-03-07T00:00:00Z");
        let mut seen = Vec::new();
        for _ in 0..3 {
            t = next_occurrence("30 2 * * *", "America/New_York", t)
                .unwrap()
                .unwrap();
            seen.push(t);
        }
        assert_eq!(seen[0], ts("2026-03-07T07:30:00Z"));
        assert!(
            seen.windows(2).all(|w| w[1] - w[0] >= 23 * 3600),
            "{seen:?}"
        );
        assert!(seen.contains(&ts("2026-03-09T06:30:00Z")), "{seen:?}");
    }

    #[test]
    fn due_occurrence_is_the_latest_past_one_within_catch_up() {
        let mut d = def();
        d.schedule = "0 9 * * *".into();
        d.timezone = "UTC".into();
        let now = ts("2026-05-05T10:00:00Z");
        assert_eq!(
            d.due_occurrence(now, 86_400).unwrap(),
            Some(ts("2026-05-05T09:00:00Z"))
        );
        assert_eq!(
            d.due_occurrence(ts("2026-05-05T08:59:59Z"), 3_600).unwrap(),
            None
        );
        d.created_at = ts("2026-05-05T09:30:00Z");
        assert_eq!(d.due_occurrence(now, 86_400).unwrap(), None);
    }
}
