//! Report charts as inline PNG images for email. Gmail and Outlook desktop do not show SVG, so
//! at the sending edge every chart of a report's HTML (`<svg ... class="chart">`, drawn by
//! `classy_sync_core::domain::report::chart`) is rasterized with `resvg` and replaced by
//! `<img src="cid:...">`; the PNG travels in the same email (multipart/related, with that
//! Content-ID). The report (and the message the notifier records) keeps the SVG: only the email
//! differs. Text in the chart (axis labels) is drawn with the host's fonts; a host without any
//! (e.g. a Lambda image) gets the bars and axes, and the caption under the chart and the
//! figure tables carry the same numbers in HTML.

use html_escape::{decode_html_entities, encode_double_quoted_attribute};
use resvg::{tiny_skia, usvg};
use std::sync::{Arc, OnceLock};

/// Pixels per SVG unit: sharp on high-density screens, still a small file (a 640×220 chart is
/// a 1280×440 PNG of a few tens of KB).
pub const SCALE: f32 = 2.0;

/// The widest the image is shown: a 600 px email column less its padding.
pub const SHOWN_WIDTH: u32 = 568;

/// One image the HTML shows by `cid:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    /// Without angle brackets: the HTML says `cid:<content_id>`.
    pub content_id: String,
    pub content_type: &'static str,
    pub data: Vec<u8>,
}

/// The fonts of the host, loaded once (it reads every font file's header).
fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        // `sans-serif` is Arial unless told otherwise: point it at a face the host has.
        let families: Vec<String> = db
            .faces()
            .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
            .collect();
        let preferred = ["Arial", "Helvetica", "Liberation Sans", "DejaVu Sans"];
        if let Some(name) = preferred
            .iter()
            .find(|p| families.iter().any(|f| f == *p))
            .map(|s| s.to_string())
            .or_else(|| families.first().cloned())
        {
            db.set_sans_serif_family(name);
        }
        tracing::debug!(faces = db.len(), "fonts for chart images");
        Arc::new(db)
    })
    .clone()
}

/// The PNG of one SVG document, on white, at [`SCALE`].
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, String> {
    let opts = usvg::Options {
        fontdb: fonts(),
        font_family: "sans-serif".into(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opts).map_err(|e| format!("chart SVG: {e}"))?;
    let size = tree.size();
    let w = (size.width() * SCALE).ceil() as u32;
    let h = (size.height() * SCALE).ceil() as u32;
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("chart of {w}x{h} pixels"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| format!("chart PNG: {e}"))
}

/// The value of attribute `name` in one start tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

/// A Content-ID from a chart's element id: `[A-Za-z0-9-]` only, made unique by its position.
fn content_id(id: Option<&str>, n: usize) -> String {
    let clean: String = id
        .unwrap_or("chart")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(60)
        .collect();
    format!("{clean}-{n}@classy-sync")
}

/// `html` with every chart replaced by an `<img>` of its PNG, and those PNGs. A chart that
/// cannot be rasterized stays SVG (logged). HTML without charts comes back unchanged.
///
/// The charts are found by text: the report renderer escapes every user-supplied string, so
/// `<svg` and `</svg>` appear only as the chart's own tags.
pub fn inline_charts(html: &str) -> (String, Vec<InlineImage>) {
    let mut out = String::with_capacity(html.len());
    let mut images = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let Some(tag_end) = rest[start..].find('>').map(|i| start + i + 1) else {
            break;
        };
        let Some(end) = rest[start..]
            .find("</svg>")
            .map(|i| start + i + "</svg>".len())
        else {
            break;
        };
        let tag = &rest[start..tag_end];
        let svg = &rest[start..end];
        out.push_str(&rest[..start]);
        if attr(tag, "class").is_some_and(|c| c.split(' ').any(|c| c == "chart")) {
            match svg_to_png(svg) {
                Ok(png) => {
                    let cid = content_id(attr(tag, "id"), images.len() + 1);
                    let alt = svg
                        .split_once("<title")
                        .and_then(|(_, t)| t.split_once('>'))
                        .and_then(|(_, t)| t.split_once("</title>"))
                        .map(|(t, _)| decode_html_entities(t).into_owned())
                        .unwrap_or_else(|| "Chart".into());
                    let (w, h) = shown_size(svg);
                    out.push_str(&format!(
                        "<img src=\"cid:{cid}\" alt=\"{}\" width=\"{w}\" height=\"{h}\" \
                         style=\"display:block;width:100%;max-width:{w}px;height:auto;border:0\">",
                        encode_double_quoted_attribute(&alt)
                    ));
                    images.push(InlineImage {
                        content_id: cid,
                        content_type: "image/png",
                        data: png,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "chart left as SVG in the email");
                    out.push_str(svg);
                }
            }
        } else {
            out.push_str(svg);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    (out, images)
}

/// The width and height the image is shown at: the SVG's own, scaled down to
/// [`SHOWN_WIDTH`] (Outlook desktop reads the attributes, not the CSS).
fn shown_size(svg: &str) -> (u32, u32) {
    let tag = &svg[..svg.find('>').unwrap_or(svg.len())];
    let num = |n: &str| attr(tag, n).and_then(|v| v.parse::<f64>().ok());
    match (num("width"), num("height")) {
        (Some(w), Some(h)) if w > 0.0 && h > 0.0 => {
            let shown = w.min(SHOWN_WIDTH as f64);
            (shown.round() as u32, (h * shown / w).round() as u32)
        }
        _ => (SHOWN_WIDTH, SHOWN_WIDTH / 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classy_sync_core::domain::analytics::donors::DayPoint;
    use classy_sync_core::domain::report::chart::gifts_per_day_svg;

    fn days() -> Vec<DayPoint> {
        (0..30)
            .map(|i| DayPoint {
                day: 1_790_000_000 + i * 86_400,
                gifts: 1,
                gross_cents: 1_000 + (i % 7) * 900,
            })
            .collect()
    }

    /// Pixels of the bars' blue (#2b6cb0), give or take anti-aliasing.
    fn blue_pixels(png: &[u8]) -> usize {
        let p = tiny_skia::Pixmap::decode_png(png).unwrap();
        p.pixels()
            .iter()
            .filter(|c| {
                let (r, g, b) = (c.red() as i32, c.green() as i32, c.blue() as i32);
                (r - 0x2b).abs() < 8 && (g - 0x6c).abs() < 8 && (b - 0xb0).abs() < 8
            })
            .count()
    }

    #[test]
    fn a_chart_becomes_a_png_with_its_bars_and_an_img_by_content_id() {
        let svg = gifts_per_day_svg("gifts-per-day-7", "A & <B>", &days());
        let html = format!("<p>before</p><div>{svg}</div><p>after &lt;svg&gt;</p>");
        let (out, images) = inline_charts(&html);
        assert_eq!(images.len(), 1);
        let img = &images[0];
        assert_eq!(img.content_type, "image/png");
        assert_eq!(img.content_id, "gifts-per-day-7-1@classy-sync");
        assert!(!out.contains("<svg"), "{out}");
        assert!(out.contains(&format!("<img src=\"cid:{}\"", img.content_id)));
        assert!(
            out.contains("alt=\"Gifts per day, A &amp; &lt;B&gt;\""),
            "{out}"
        );
        assert!(out.starts_with("<p>before</p><div>") && out.ends_with("<p>after &lt;svg&gt;</p>"));
        assert!(out.contains("width=\"568\" height=\"195\""), "{out}");
        // 640x220 at twice the size; the bars are drawn (a blank image has no blue).
        let p = tiny_skia::Pixmap::decode_png(&img.data).unwrap();
        assert_eq!((p.width(), p.height()), (1280, 440));
        assert!(
            blue_pixels(&img.data) > 10_000,
            "{} blue pixels",
            blue_pixels(&img.data)
        );
    }

    #[test]
    fn html_without_charts_is_unchanged() {
        let html = "<p>no chart</p><svg id=\"x\"><rect/></svg>";
        let (out, images) = inline_charts(html);
        assert_eq!(out, html);
        assert!(images.is_empty());
    }
}
