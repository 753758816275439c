//! Slack Block Kit: a header, then per organization a title section, a fields section with the
//! headline and a mrkdwn section per other section. Within Slack's limits: at most 50 blocks,
//! 3,000 characters per section text, 10 fields of 2,000, header 150; `&`, `<`, `>` escaped
//! in every mrkdwn string so names cannot mention `<!channel>` or forge links.

use super::figures;
use super::format::{self, money};
use super::{ReportView, Section};
use crate::domain::analytics::fep::FepReport;
use crate::domain::analytics::OrgSummary;
use serde_json::{json, Value};

pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3_000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_TEXT: usize = 2_000;
pub const MAX_HEADER_TEXT: usize = 150;

/// Slack's mrkdwn control characters.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts to at most `max` characters, ending with `…` when cut (never splits an escape).
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    // Do not leave half an `&amp;`.
    if let Some(amp) = out.rfind('&') {
        if !out[amp..].contains(';') {
            out.truncate(amp);
        }
    }
    out.push('…');
    out
}

fn mrkdwn_section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT)}})
}

fn lines(rows: &[(String, String)]) -> String {
    rows.iter()
        .map(|(k, v)| format!("• {}: *{}*", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line per figure: `• label: *value*`.
fn figure_lines(fs: &[figures::Figure]) -> String {
    let rows: Vec<(String, String)> = fs
        .iter()
        .map(|f| (f.label.clone(), f.value().to_owned()))
        .collect();
    lines(&rows)
}

fn org_blocks(o: &OrgSummary, sections: &[Section], fep: Option<&FepReport>) -> Vec<Value> {
    let mut out = vec![
        json!({"type": "divider"}),
        mrkdwn_section(&format!(
            "*{}* (organization {})\nPeriod {}",
            escape(&o.org_name),
            o.org_id,
            escape(&format::period(&o.period))
        )),
    ];
    for s in sections {
        let title = format!("*{}*\n", s.title());
        let block = match s {
            Section::Headline => {
                let fields: Vec<Value> = figures::headline(o)
                        .iter()
                        .take(MAX_FIELDS)
                        .map(|f| {
                            json!({"type": "mrkdwn",
                            "text": truncate(&format!("*{}*\n{}", escape(&f.label), escape(f.value())),
                                MAX_FIELD_TEXT)})
                        })
                        .collect();
                json!({"type": "section",
                    "text": {"type": "mrkdwn", "text": format!("*{}*", s.title())},
                    "fields": fields})
            }
            Section::Donors => mrkdwn_section(&(title + &figure_lines(&figures::donors(o)))),
            Section::Campaigns => {
                let rows: Vec<(String, String)> = o
                    .top_campaigns
                    .iter()
                    .map(|c| {
                        (
                            format::name_or_id(&c.name, c.campaign_id),
                            format!(
                                "{} raised in all, {} in the period",
                                money(c.raised_gross_cents),
                                money(c.window_gross_cents)
                            ),
                        )
                    })
                    .collect();
                mrkdwn_section(&(title + &or_none(lines(&rows))))
            }
            Section::Recurring => mrkdwn_section(&(title + &figure_lines(&figures::recurring(o)))),
            Section::Trends => {
                let rows: Vec<(String, String)> = figures::trends(o)
                    .iter()
                    .map(|f| (f.label.clone(), super::text::trend_value(f)))
                    .collect();
                mrkdwn_section(&(title + &or_none(lines(&rows))))
            }
            Section::Prospects => {
                let rows: Vec<(String, String)> = o
                    .top_prospects
                    .iter()
                    .map(|p| {
                        (
                            format::name_or_id(&p.name, p.supporter_id),
                            format!("{} given in all", money(p.lifetime_gross_cents)),
                        )
                    })
                    .collect();
                mrkdwn_section(&format!(
                    "{title}{}\n_{} prospects in total_",
                    or_none(lines(&rows)),
                    o.prospects_total
                ))
            }
            Section::AtRisk => {
                let rows: Vec<(String, String)> = o
                    .at_risk
                    .iter()
                    .map(|a| {
                        (
                            format::name_or_id(&a.name, a.supporter_id),
                            format!(
                                "{}; {} given in all",
                                figures::risk_reasons(&a.reasons),
                                money(a.lifetime_gross_cents)
                            ),
                        )
                    })
                    .collect();
                mrkdwn_section(&format!(
                    "{title}{}\n_{} at risk in total_",
                    or_none(lines(&rows)),
                    o.at_risk_total
                ))
            }
            Section::Quality => mrkdwn_section(&(title + &figure_lines(&figures::quality(o)))),
            Section::Fep => match fep {
                Some(r) => mrkdwn_section(&format!(
                    "{title}_{}_\n{}",
                    escape(&figures::fep_windows(r)),
                    figure_lines(&figures::fep(r))
                )),
                None => mrkdwn_section(&(title + &figure_lines(&figures::fep_missing()))),
            },
        };
        out.push(block);
    }
    out
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "_none_".into()
    } else {
        s
    }
}

/// The `blocks` array.
pub fn render(v: &ReportView<'_>) -> Value {
    let mut blocks = vec![json!({"type": "header", "text": {"type": "plain_text",
        "text": truncate(&v.title, MAX_HEADER_TEXT)}})];
    for o in v.summaries {
        blocks.extend(org_blocks(o, v.sections, v.fep_of(o.org_id)));
    }
    if blocks.len() > MAX_BLOCKS {
        let cut = blocks.len() - (MAX_BLOCKS - 1);
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": format!("… {cut} more blocks: see the email report")}]}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
        "text": format!("Generated {}", format::datetime(v.generated_at))}]}));
    if blocks.len() > MAX_BLOCKS {
        blocks.remove(blocks.len() - 2);
    }
    Value::Array(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_truncates() {
        assert_eq!(escape("<!channel> & co"), "&lt;!channel&gt; &amp; co");
        let t = truncate(&"&amp;".repeat(1000), 3000);
        assert!(t.chars().count() <= 3000);
        assert!(t.trim_end_matches('…').ends_with(';'));
    }
}
