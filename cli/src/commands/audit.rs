//! `classy-sync audit list | verify`: the hash-chained audit trail (docs/audit.md).

use crate::output::{print_json, table};
use crate::runtime;
use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Entries oldest first: seq, time, actor, action, target, outcome.
    List {
        /// Only entries concerning this organization.
        #[arg(long)]
        org: Option<u64>,
        /// Only entries written at or after T: RFC 3339, a date (YYYY-MM-DD, UTC) or an age
        /// such as 12h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// The entries as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Checks the hash chain; exits 1 when an entry was changed or deleted.
    Verify {
        /// The verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `--since`: RFC 3339, a date, or an age (`90m`, `12h`, `7d`) before `now`.
pub fn parse_since(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    for (suffix, secs) in [('m', 60i64), ('h', 3600), ('d', 86_400)] {
        if let Some(Ok(n)) = v.strip_suffix(suffix).map(str::parse::<u32>) {
            return Ok(now - chrono::Duration::seconds(i64::from(n) * secs));
        }
    }
    bail!("--since {value:?}: expected RFC 3339 (2026-01-31T12:00:00Z), a date (2026-01-31) or an age (90m, 12h, 7d)")
}

pub async fn run(target: &runtime::Target, cmd: AuditCommand) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let data = root.data();
    match cmd {
        AuditCommand::List { org, since, json } => {
            let since = since
                .map(|s| parse_since(&s, data.clock.now()))
                .transpose()?;
            let entries = data.audit_entries(since, org).await?;
            if json {
                print_json(&entries)?;
            } else {
                let mut t = table(&["seq", "at", "actor", "action", "target", "outcome"]);
                for e in &entries {
                    t.add_row(vec![
                        e.seq.to_string(),
                        e.at.clone(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.target.clone(),
                        e.outcome.clone(),
                    ]);
                }
                println!("{t}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { json } => {
            let retention = crate::audit::retention()?;
            let verdict = data.verify_audit(retention).await?;
            match verdict {
                Ok(r) => {
                    if json {
                        print_json(&serde_json::json!({"intact": true, "report": r}))?;
                    } else {
                        let range = match (r.first_seq, r.last_seq) {
                            (Some(a), Some(b)) => format!(", seq {a} to {b}"),
                            _ => String::new(),
                        };
                        println!("{} entries checked{range}", r.checked);
                        if r.expired > 0 {
                            println!(
                                "{} older entries expired (retention {} days)",
                                r.expired,
                                retention.as_secs() / 86_400
                            );
                        }
                        println!("chain intact");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(b) => {
                    if json {
                        print_json(&serde_json::json!({"intact": false, "broken": b.to_string()}))?;
                    } else {
                        println!("chain broken: {b}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_ages() {
        let now = DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("2026-03-01T00:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-02-28T23:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-03-01", now).unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("7d", now).unwrap().to_rfc3339(),
            "2026-03-03T12:00:00+00:00"
        );
        assert_eq!(
            parse_since("90m", now).unwrap(),
            now - chrono::Duration::minutes(90)
        );
        for bad in ["", "yesterday", "7x", "-3d", "d"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
