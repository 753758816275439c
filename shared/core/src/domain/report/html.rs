//! The HTML email: self-contained (inline CSS, inline SVG), a table per section, every
//! user-supplied string (organization, campaign and supporter names) escaped. Laid out for a
//! 600 px email column (the chart scales down to it). The sending edge swaps each chart
//! (`<svg class="chart">`) for an inline PNG, since Gmail and Outlook desktop show no SVG.

use super::chart::{bucket, gifts_per_day_svg};
use super::figures::{self, Figure};
use super::format::{self, money};
use super::{ReportView, Section};
use crate::domain::analytics::fep::FepReport;
use crate::domain::analytics::OrgSummary;
use html_escape::encode_text as esc;

const TABLE: &str = "width:100%;border-collapse:collapse;margin:6px 0 14px 0;font-size:14px";
const TH: &str = "text-align:left;border-bottom:1px solid #ccc;padding:4px 6px;background:#f4f6f8";
/// The first column (names, labels) wraps anywhere a long name needs, so a table fits a 600 px
/// column; the others (amounts, counts, dates) never wrap.
const TD: &str = "border-bottom:1px solid #eee;padding:4px 6px;overflow-wrap:anywhere";
const TD_NUM: &str = "border-bottom:1px solid #eee;padding:4px 6px;white-space:nowrap";

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    figures_table(None, head, rows)
}

/// A table; `figures` names the section whose figures it holds (`data-figures`), so a reader
/// of the HTML (or a test) can find the figures the Slack message repeats.
fn figures_table(figures: Option<Section>, head: &[&str], rows: &[Vec<String>]) -> String {
    let attr = figures
        .map(|s| format!(" data-figures=\"{}\"", s.as_str()))
        .unwrap_or_default();
    let mut s = format!("<table style=\"{TABLE}\"{attr}><thead><tr>");
    for h in head {
        s.push_str(&format!("<th style=\"{TH}\">{}</th>", esc(h)));
    }
    s.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        s.push_str(&format!(
            "<tr><td style=\"{TD}\" colspan=\"{}\">None</td></tr>",
            head.len()
        ));
    }
    for r in rows {
        s.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let style = if i == 0 { TD } else { TD_NUM };
            s.push_str(&format!("<td style=\"{style}\">{}</td>", esc(c)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// A section's figures, one row each (plain strings; escaped here).
fn pairs(section: Section, figures: &[Figure]) -> String {
    let rows: Vec<Vec<String>> = figures
        .iter()
        .map(|f| {
            let mut r = vec![f.label.clone()];
            r.extend(f.values.iter().cloned());
            r
        })
        .collect();
    figures_table(Some(section), &["Figure", "Value"], &rows)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// Organizations beyond this many in one report get their figures without a chart, so a
/// report over every organization stays a bounded email.
pub const MAX_CHARTS: usize = 20;

fn section(s: Section, o: &OrgSummary, chart: bool, fep: Option<&FepReport>) -> String {
    let body = match s {
        Section::Headline => {
            let mut b = pairs(s, &figures::headline(o));
            if chart {
                let (points, per) = bucket(&o.gifts_per_day);
                let highest = points.iter().map(|d| d.gross_cents).max().unwrap_or(0);
                let unit = if per == 1 {
                    "day".to_string()
                } else {
                    format!("{per} days")
                };
                b.push_str(&format!(
                    "<div class=\"chart-box\" style=\"margin:8px 0;max-width:100%\">{}</div>\
                     <p style=\"color:#555;font-size:12px;margin:2px 0 8px 0\">Gross raised per {unit}, \
                     {}; highest {}.</p>",
                    gifts_per_day_svg(
                        &format!("gifts-per-day-{}", o.org_id),
                        &o.org_name,
                        &o.gifts_per_day
                    ),
                    esc(&lower_first(&format::period(&o.period))),
                    esc(&money(highest))
                ));
            } else {
                b.push_str(&format!(
                    "<p style=\"color:#555;font-size:12px\">No chart: a report draws at most \
                     {MAX_CHARTS} (one per organization).</p>"
                ));
            }
            b
        }
        Section::Donors => pairs(s, &figures::donors(o)),
        Section::Campaigns => {
            let rows: Vec<Vec<String>> = o
                .top_campaigns
                .iter()
                .map(|c| {
                    vec![
                        format::name_or_id(&c.name, c.campaign_id),
                        money(c.raised_gross_cents),
                        money(c.window_gross_cents),
                        format::count(c.window_gifts),
                        c.percent_of_goal
                            .map(|p| format!("{p:.1}%"))
                            .unwrap_or_else(|| "n/a".into()),
                    ]
                })
                .collect();
            table(
                &[
                    "Campaign",
                    "Raised (lifetime)",
                    "Raised (period)",
                    "Gifts (period)",
                    "Share of goal",
                ],
                &rows,
            )
        }
        Section::Recurring => pairs(s, &figures::recurring(o)),
        Section::Trends => {
            let rows: Vec<Vec<String>> = figures::trends(o)
                .into_iter()
                .map(|f| {
                    let mut r = vec![f.label];
                    r.extend(f.values);
                    r
                })
                .collect();
            figures_table(
                Some(s),
                &["Figure", "This period", "Previous period", "Change"],
                &rows,
            )
        }
        Section::Prospects => {
            let rows: Vec<Vec<String>> = o
                .top_prospects
                .iter()
                .map(|p| {
                    vec![
                        format::name_or_id(&p.name, p.supporter_id),
                        p.rfm_total.to_string(),
                        money(p.lifetime_gross_cents),
                        format::date(p.last_gift_at),
                    ]
                })
                .collect();
            let mut t = table(
                &[
                    "Supporter",
                    "RFM score (3 to 15)",
                    "Given in all",
                    "Last gift",
                ],
                &rows,
            );
            t.push_str(&format!(
                "<p style=\"color:#555;font-size:12px\">{} prospects in total</p>",
                o.prospects_total
            ));
            t
        }
        Section::AtRisk => {
            let rows: Vec<Vec<String>> = o
                .at_risk
                .iter()
                .map(|a| {
                    vec![
                        format::name_or_id(&a.name, a.supporter_id),
                        figures::risk_reasons(&a.reasons),
                        money(a.lifetime_gross_cents),
                        a.days_since_last_gift
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "n/a".into()),
                    ]
                })
                .collect();
            let mut t = table(
                &["Supporter", "Why", "Given in all", "Days since last gift"],
                &rows,
            );
            t.push_str(&format!(
                "<p style=\"color:#555;font-size:12px\">{} donors at risk in total</p>",
                o.at_risk_total
            ));
            t
        }
        Section::Quality => pairs(s, &figures::quality(o)),
        Section::Fep => match fep {
            Some(r) => format!(
                "<p style=\"color:#555;font-size:12px;margin:2px 0\">{}</p>{}",
                esc(&figures::fep_windows(r)),
                pairs(s, &figures::fep(r))
            ),
            None => pairs(s, &figures::fep_missing()),
        },
    };
    format!(
        "<h3 style=\"margin:14px 0 4px 0;font-size:16px\" data-section=\"{}\">{}</h3>{body}",
        s.as_str(),
        esc(s.title())
    )
}

/// The full HTML document.
pub fn render(v: &ReportView<'_>) -> String {
    let mut s = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\
         <body style=\"margin:0;padding:16px;background:#ffffff;color:#1a202c;\
         font-family:Helvetica,Arial,sans-serif\"><div style=\"max-width:600px;margin:0 auto\">\
         <h1 style=\"font-size:22px;margin:0 0 4px 0\">{}</h1>\
         <p style=\"color:#555;margin:0 0 12px 0\">Generated {}</p>",
        esc(&v.title),
        esc(&v.title),
        format::datetime(v.generated_at)
    );
    for (i, o) in v.summaries.iter().enumerate() {
        s.push_str(&format!(
            "<div class=\"org\" data-org-id=\"{}\" style=\"border-top:3px solid #2b6cb0;padding-top:8px;margin-top:12px\">\
             <h2 style=\"font-size:19px;margin:0\">{}</h2>\
             <p style=\"color:#555;margin:2px 0 8px 0\">Organization {} &middot; {}</p>",
            o.org_id,
            esc(&o.org_name),
            o.org_id,
            esc(&format::period(&o.period))
        ));
        for sec in v.sections {
            s.push_str(&section(*sec, o, i < MAX_CHARTS, v.fep_of(o.org_id)));
        }
        s.push_str("</div>");
    }
    if v.summaries.is_empty() {
        s.push_str("<p>No organizations.</p>");
    }
    s.push_str("</div></body></html>");
    s
}
