//! What a reader sees: words, not field names, in the HTML, the text part and Slack; and the
//! Slack message carries the email's figures.

use super::{html, slack, text, ReportView, Section};
use crate::domain::analytics::donors::{AtRisk, DayPoint, DonorTotals, Lifecycle, RiskReason};
use crate::domain::analytics::fep::{
    FepReport, Flow, GainLoss, GiftFigures, LapsedGroup, LapsedReport, PlanHealth, Refunds,
    Retention,
};
use crate::domain::analytics::recurring::Recurring;
use crate::domain::analytics::trends::{Figures, Trends};
use crate::domain::analytics::{OrgSummary, PeriodInfo, Window};
use crate::domain::quality::score::QualityScore;

const DAY: i64 = 86_400;

pub(crate) fn sample() -> OrgSummary {
    let end = 1_793_577_600; // 2026-11-01
    OrgSummary {
        org_id: 7,
        org_name: "Friends of the Park".into(),
        as_of: end,
        period: PeriodInfo::new(
            "90d".into(),
            Window {
                start: end - 90 * DAY,
                end,
            },
        ),
        totals: DonorTotals {
            gross_cents: 1_234_567,
            net_cents: 1_200_000,
            fees_cents: 34_567,
            gifts: 321,
            donors: 123,
            average_gift_cents: 3_846,
        },
        lifecycle: Lifecycle {
            new: 11,
            returning: 90,
            reactivated: 4,
            lapsed: 17,
            lost: 9,
            previous_period_donors: 107,
            retained: 90,
            retention_rate: Some(0.841),
        },
        tiers: vec![],
        recurring: Recurring {
            active_plans: 25,
            recurring_donors: 24,
            mrr_cents: 98_765,
            unknown_frequency: 0,
        },
        top_campaigns: vec![],
        trends: Trends::from_pairs(
            (
                Figures {
                    gross_cents: 250_075,
                    net_cents: 240_000,
                    gifts: 40,
                    donors: 33,
                },
                Figures {
                    gross_cents: 200_000,
                    net_cents: 190_000,
                    gifts: 35,
                    donors: 30,
                },
            ),
            (
                Figures {
                    gross_cents: 900_000,
                    net_cents: 870_000,
                    gifts: 150,
                    donors: 100,
                },
                Figures {
                    gross_cents: 1_000_000,
                    net_cents: 960_000,
                    gifts: 160,
                    donors: 110,
                },
            ),
        ),
        gifts_per_day: (0..90)
            .map(|i| DayPoint {
                day: end - (90 - i) * DAY,
                gifts: (i % 5) as u64,
                gross_cents: (i % 5) * 2_500,
            })
            .collect(),
        top_prospects: vec![],
        prospects_total: 0,
        at_risk: vec![AtRisk {
            supporter_id: 42,
            name: Some("Ada".into()),
            reasons: vec![RiskReason::PlanFailing, RiskReason::Overdue],
            lifetime_gross_cents: 50_000,
            gifts: 6,
            last_gift_at: Some(end - 70 * DAY),
            days_since_last_gift: Some(70),
        }],
        at_risk_total: 1,
        quality: QualityScore {
            score: 97.5,
            ..QualityScore::default()
        },
    }
}

pub(crate) fn sample_fep() -> FepReport {
    let end = 1_793_577_600;
    FepReport {
        org_id: 7,
        as_of: end,
        period: "12m".into(),
        previous: Window {
            start: end - 730 * DAY,
            end: end - 365 * DAY,
        },
        current: Window {
            start: end - 365 * DAY,
            end,
        },
        retention: Retention {
            donors_previous: 200,
            donors_current: 180,
            retained: 86,
            rate: Some(0.43),
            new_donors_previous: 80,
            new_donors_retained: 16,
            new_donor_rate: Some(0.2),
            repeat_donors_previous: 120,
            repeat_donors_retained: 70,
            repeat_donor_rate: Some(70.0 / 120.0),
            dollars_previous_cents: 5_000_000,
            dollars_current_cents: 4_500_000,
            dollars_retained_cents: 2_750_000,
            dollar_rate: Some(0.55),
        },
        gain_loss: GainLoss {
            new: Flow {
                donors: 60,
                cents: 900_000,
            },
            lapsed: Flow {
                donors: 114,
                cents: 2_250_000,
            },
            net: Flow {
                donors: -20,
                cents: -500_000,
            },
            ..GainLoss::default()
        },
        lapsed: LapsedReport {
            fiscal_year_start_month: 1,
            this_year: 2026,
            last_year: 2025,
            lybunt: LapsedGroup {
                donors: 41,
                dollars_at_risk_cents: 1_234_500,
                mailchimp_consented: 30,
                list: vec![],
            },
            sybunt: LapsedGroup {
                donors: 77,
                dollars_at_risk_cents: 987_600,
                mailchimp_consented: 50,
                list: vec![],
            },
        },
        recurring: PlanHealth {
            active: 25,
            mrr_cents: 98_765,
            churned_mrr_cents: 4_321,
            mrr_churn_rate: Some(0.04),
            ..PlanHealth::default()
        },
        refunds: Refunds::default(),
        gifts: GiftFigures::default(),
        bands: vec![],
    }
}

fn view<'a>(s: &'a [OrgSummary], fep: &'a [FepReport]) -> ReportView<'a> {
    ReportView {
        title: "Fundraising report".into(),
        sections: &Section::ALL,
        summaries: s,
        fep,
        generated_at: 1_793_577_600,
    }
}

/// The text a reader sees in an HTML document: tags (and their attributes) dropped,
/// entities decoded.
pub(crate) fn visible_html(h: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in h.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    html_escape::decode_html_entities(&out).into_owned()
}

/// Every string a Slack reader sees (text and fields of the blocks).
fn visible_slack(v: &serde_json::Value) -> String {
    let mut out = String::new();
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    if k != "type" {
                        walk(x, out);
                    }
                }
            }
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// Identifiers that are not words: `gross_cents`, `PlanFailing`, `(wow)`.
fn leaks(s: &str) -> Vec<String> {
    let mut found = Vec::new();
    for w in s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        // `_none_` is Slack's italics, not a field name.
        let w = w.trim_matches('_');
        let snake = w.contains('_') && w.chars().any(|c| c.is_ascii_alphabetic());
        let camel = w.len() > 2
            && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && w.chars().skip(1).any(|c| c.is_ascii_uppercase())
            && w.chars().any(|c| c.is_ascii_lowercase());
        if snake || camel || w == "wow" || w == "mom" || w == "cents" {
            found.push(w.to_owned());
        }
    }
    found
}

#[test]
fn readers_see_words_and_dollars_not_field_names() {
    let s = [sample()];
    let f = [sample_fep()];
    let v = view(&s, &f);
    let html = visible_html(&html::render(&v));
    let text = text::render(&v);
    let slack = visible_slack(&slack::render(&v));
    for (what, body) in [("HTML", &html), ("text", &text), ("Slack", &slack)] {
        assert!(
            leaks(body).is_empty(),
            "{what} shows field names: {:?}",
            leaks(body)
        );
        assert!(
            body.contains("Gross raised (week over week)"),
            "{what} lacks the worded trend label"
        );
        // The trend in dollars, not in cents.
        assert!(
            body.contains("$2,500.75"),
            "{what} lacks the trend in dollars"
        );
        assert!(!body.contains("250075"), "{what} shows raw cents");
        assert!(
            body.contains("Last 90 days"),
            "{what} lacks the period in words"
        );
        assert!(
            body.contains("Recurring plan failing"),
            "{what} lacks the at-risk reason in words"
        );
        for fep in [
            "Donor retention",
            "43.0% (86 of 200 donors)",
            "Dollar retention",
            "55.0% ($27,500.00 of $50,000.00)",
            "LYBUNT (gave in 2025, not yet in 2026)",
            "41 donors, $12,345.00 at risk, 30 reachable in Mailchimp",
            "SYBUNT (gave before 2025, not in 2025 or 2026)",
            "Net change",
            "-20 donors, -$5,000.00",
            "Recurring revenue churn",
        ] {
            assert!(body.contains(fep), "{what} lacks the FEP figure {fep}");
        }
    }
}

/// `label -> value` rows of the email's figure tables (`data-figures` tables), per section.
fn html_figures(doc: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for table in doc.split("<table").skip(1) {
        let Some(sec) = table
            .split_once("data-figures=\"")
            .map(|(_, r)| r[..r.find('"').unwrap()].to_owned())
        else {
            continue;
        };
        let body = &table[..table.find("</table>").unwrap()];
        for row in body.split("<tr>").skip(1) {
            if row.contains("<th") {
                continue;
            }
            let cells: Vec<String> = row
                .split("<td")
                .skip(1)
                .map(|c| visible_html(&format!("<td{c}")).trim().to_owned())
                .collect();
            if cells.len() >= 2 {
                out.push((sec.clone(), cells[0].clone(), cells[1..].join(" ")));
            }
        }
    }
    out
}

#[test]
fn slack_carries_every_figure_of_the_email() {
    let s = [sample()];
    let f = [sample_fep()];
    let v = view(&s, &f);
    let figures = html_figures(&html::render(&v));
    let sections: std::collections::BTreeSet<&str> =
        figures.iter().map(|(s, _, _)| s.as_str()).collect();
    for want in [
        "headline",
        "donors",
        "recurring",
        "trends",
        "quality",
        "fep",
    ] {
        assert!(sections.contains(want), "no {want} figures in the email");
    }
    let blocks = slack::render(&v);
    let slack = visible_slack(&blocks);
    for (sec, label, value) in &figures {
        // Headline: a field `*label*\nvalue`; other sections: a line `• label: *value*`.
        let words: Vec<&str> = value.split_whitespace().collect();
        let found = slack.lines().enumerate().any(|(i, l)| {
            let l = l.replace('*', "");
            let next = slack.lines().nth(i + 1).unwrap_or("");
            (l.trim_start_matches("• ")
                .starts_with(&format!("{label}: "))
                && words.iter().all(|w| l.contains(w)))
                || (l == *label && words.iter().all(|w| next.contains(w)))
        });
        assert!(found, "Slack lacks {sec} figure {label}: {value}\n{slack}");
    }
}

#[test]
fn an_organization_without_fep_figures_says_so() {
    let s = [sample()];
    let v = view(&s, &[]);
    assert!(html::render(&v).contains("not computed"));
    assert!(text::render(&v).contains("not computed"));
    assert!(slack::render(&v).to_string().contains("not computed"));
}
