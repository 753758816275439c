//! The gifts-per-day chart as inline SVG: one bar per day (gross), axis labels, an accessible
//! `<title>`/`<desc>`. It scales down to a narrow column (`max-width:100%`); the email carries
//! it as an inline PNG too (rendered at the sending edge, `classy_sync_notify::chart_png`),
//! since Gmail and Outlook desktop drop SVG.
//! At most [`MAX_BARS`] bars: a longer period draws one bar per run of days (a 12-month report
//! one per 4 days), so a chart stays about 25 KB whatever the period.

use super::format;
use crate::domain::analytics::donors::DayPoint;
use html_escape::encode_text;

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 16.0;
const RIGHT: f64 = 10.0;

/// The most bars one chart draws (a quarter, day by day).
pub const MAX_BARS: usize = 92;

/// `days` summed into runs of `ceil(len / MAX_BARS)` consecutive days (each point keeps its
/// first day), so at most [`MAX_BARS`] remain; the number of days per point.
pub fn bucket(days: &[DayPoint]) -> (Vec<DayPoint>, usize) {
    let per = days.len().div_ceil(MAX_BARS).max(1);
    if per == 1 {
        return (days.to_vec(), 1);
    }
    let points = days
        .chunks(per)
        .map(|c| DayPoint {
            day: c[0].day,
            gifts: c.iter().map(|d| d.gifts).sum(),
            gross_cents: c.iter().map(|d| d.gross_cents).sum(),
        })
        .collect();
    (points, per)
}

/// `id` must be a safe token (it is used as an element id); `org_name` is escaped.
pub fn gifts_per_day_svg(id: &str, org_name: &str, days: &[DayPoint]) -> String {
    let (points, per) = bucket(days);
    let unit = if per == 1 {
        "day".to_string()
    } else {
        format!("{per} days")
    };
    let all_days = days;
    let days = &points[..];
    let max = days.iter().map(|d| d.gross_cents).max().unwrap_or(0).max(1);
    let total_gifts: u64 = days.iter().map(|d| d.gifts).sum();
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = days.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.8).max(1.0);
    let title = format!("Gifts per {unit}, {}", encode_text(org_name));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" class=\"chart\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" \
         style=\"background:#ffffff;font-family:sans-serif;max-width:100%;height:auto\">\
         <title id=\"{id}-title\">{title}</title>\
         <desc id=\"{id}-desc\">{} days, {} gifts, highest {unit} {}</desc>",
        all_days.len(),
        total_gifts,
        format::money(if days.is_empty() { 0 } else { max })
    );
    // Axes.
    let x0 = LEFT;
    let y0 = H - BOTTOM;
    s.push_str(&format!(
        "<line x1=\"{x0}\" y1=\"{TOP}\" x2=\"{x0}\" y2=\"{y0}\" stroke=\"#333\"/>\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"#333\"/>",
        W - RIGHT
    ));
    // Y labels: 0 and max.
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{y0}\" font-size=\"11\" text-anchor=\"end\">$0</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        x0 - 4.0,
        x0 - 4.0,
        TOP + 10.0,
        format::money(max)
    ));
    for (i, d) in days.iter().enumerate() {
        let h = (d.gross_cents.max(0) as f64 / max as f64) * plot_h;
        let x = x0 + i as f64 * slot + (slot - bar_w) / 2.0;
        let y = y0 - h;
        s.push_str(&format!(
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" \
             fill=\"#2b6cb0\" data-day=\"{}\" data-gross-cents=\"{}\">\
             <title>{}: {} gifts, {}</title></rect>",
            format::date(d.day),
            d.gross_cents,
            format::date(d.day),
            d.gifts,
            format::money(d.gross_cents)
        ));
    }
    // X labels: first and last day.
    if let (Some(first), Some(last)) = (all_days.first(), all_days.last()) {
        s.push_str(&format!(
            "<text x=\"{x0}\" y=\"{}\" font-size=\"11\">{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            H - 10.0,
            format::date(first.day),
            W - RIGHT,
            H - 10.0,
            format::date(last.day)
        ));
    } else {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">No gifts in the period</text>",
            W / 2.0,
            H / 2.0
        ));
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_day_scaled_to_the_highest() {
        let days = [
            DayPoint {
                day: 0,
                gifts: 1,
                gross_cents: 500,
            },
            DayPoint {
                day: 86_400,
                gifts: 2,
                gross_cents: 1_000,
            },
        ];
        let svg = gifts_per_day_svg("c1", "A & <B>", &days);
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains("Gifts per day, A &amp; &lt;B&gt;"));
        assert!(svg.contains(&format!("height=\"{:.1}\"", H - TOP - BOTTOM)));
        assert!(!gifts_per_day_svg("c", "x", &[]).contains("class=\"bar\""));
    }

    #[test]
    fn a_year_is_drawn_in_at_most_max_bars_that_keep_the_total() {
        let year: Vec<DayPoint> = (0..366)
            .map(|i| DayPoint {
                day: i * 86_400,
                gifts: 1,
                gross_cents: 100 + i,
            })
            .collect();
        let svg = gifts_per_day_svg("c1", "Org", &year);
        let bars = svg.matches("class=\"bar\"").count();
        assert!((MAX_BARS - 4..=MAX_BARS).contains(&bars), "{bars} bars");
        let drawn: i64 = svg
            .split("data-gross-cents=\"")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap()].parse::<i64>().unwrap())
            .sum();
        assert_eq!(drawn, year.iter().map(|d| d.gross_cents).sum::<i64>());
        assert!(svg.contains("Gifts per 4 days, Org"));
        assert!(svg.contains("366 days, 366 gifts"));
        assert!(svg.len() < 30_000, "{} bytes", svg.len());
        // A quarter is still drawn day by day.
        assert_eq!(
            gifts_per_day_svg("c2", "Org", &year[..92])
                .matches("class=\"bar\"")
                .count(),
            92
        );
    }
}
