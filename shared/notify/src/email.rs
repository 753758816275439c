//! Email rendering shared by SMTP and SES: the whole MIME message, a multipart/alternative with
//! a text part and an HTML part (the message's own HTML, or one rendered from text and fields).
//! When the HTML has charts, they become inline PNGs ([`crate::chart_png`]) and the HTML part
//! is a multipart/related with them (each with its Content-ID), so the transports send the
//! bytes as they are. Built with `mail-builder` (a MIME builder, no transport: the Lambda
//! functions link no SMTP library).

use crate::chart_png::{self, InlineImage};
use classy_sync_core::ports::{Email, Message, SendError};
use html_escape::encode_text;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;

/// A simple HTML body from the plain text and the fields, everything escaped.
pub fn render_html(m: &Message) -> String {
    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family:sans-serif\">",
    );
    html.push_str(&format!("<h2>{}</h2>", encode_text(&m.subject)));
    for para in m.text.split("\n\n") {
        html.push_str(&format!(
            "<p>{}</p>",
            encode_text(para).replace('\n', "<br>")
        ));
    }
    if !m.fields.is_empty() {
        html.push_str("<table cellpadding=\"4\" style=\"border-collapse:collapse\">");
        for (k, v) in &m.fields {
            html.push_str(&format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                encode_text(k),
                encode_text(v)
            ));
        }
        html.push_str("</table>");
    }
    html.push_str(&format!(
        "<p style=\"color:#666\">severity {}</p></body></html>",
        m.severity.as_str()
    ));
    html
}

/// The plain-text part: the text, then the fields one per line.
pub fn render_text(m: &Message) -> String {
    let mut t = m.text.clone();
    if !m.fields.is_empty() {
        t.push_str("\n\n");
        for (k, v) in &m.fields {
            t.push_str(&format!("{k}: {v}\n"));
        }
    }
    t
}

fn checked<'a>(what: &str, addr: &'a str) -> Result<&'a str, SendError> {
    classy_sync_core::channels::validate_email(addr)
        .map(|()| addr)
        .map_err(|_| SendError::permanent(format!("{what} {addr:?} is not a valid email address")))
}

/// The MIME message: multipart/alternative of the text and the HTML; with images, the HTML
/// part is a multipart/related of the HTML and the images (inline, by Content-ID). Addresses
/// are checked (no header can be smuggled in through one); the subject is one line.
pub fn mime(
    from: &str,
    to: &[String],
    subject: &str,
    text: &str,
    html: &str,
    images: &[InlineImage],
) -> Result<Vec<u8>, SendError> {
    let sender = checked("sender", from)?;
    if to.is_empty() {
        return Err(SendError::permanent("an email needs a recipient"));
    }
    let recipients = to
        .iter()
        .map(|a| checked("recipient", a))
        .collect::<Result<Vec<&str>, _>>()?;
    let text_part = MimePart::new("text/plain", text);
    let html_part = MimePart::new("text/html", html);
    let html_part = if images.is_empty() {
        html_part
    } else {
        let mut related = vec![html_part];
        for img in images {
            related.push(
                MimePart::new(img.content_type, img.data.as_slice())
                    .inline()
                    .cid(img.content_id.as_str()),
            );
        }
        MimePart::new("multipart/related", related)
    };
    MessageBuilder::new()
        .from(sender)
        .to(recipients)
        .subject(subject.replace(['\r', '\n'], " "))
        .body(MimePart::new(
            "multipart/alternative",
            vec![text_part, html_part],
        ))
        .write_to_vec()
        .map_err(|e| SendError::permanent(format!("cannot build the email: {e}")))
}

/// The email of `m` from `from` to `to`: the message's own HTML (or one rendered from its
/// text and fields) with its charts as inline PNGs, and the plain-text part. Header injection
/// is impossible: the subject is one line.
pub fn render(from: &str, to: &[String], m: &Message) -> Result<Email, SendError> {
    let subject = m.subject.replace(['\r', '\n'], " ");
    let html = m.html.clone().unwrap_or_else(|| render_html(m));
    let (html, images) = chart_png::inline_charts(&html);
    let raw = mime(from, to, &subject, &render_text(m), &html, &images)?;
    Ok(Email {
        from: from.to_owned(),
        to: to.to_vec(),
        subject,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use classy_sync_core::ports::{MessageKind, Severity};

    #[test]
    fn html_is_escaped_and_both_parts_present() {
        let m = Message {
            id: "1".into(),
            kind: MessageKind::Test,
            severity: Severity::Low,
            org_id: None,
            subject: "<b>Hi</b>".into(),
            text: "a < b\nline".into(),
            fields: vec![("k&".into(), "<v>".into())],
            html: None,
            slack_blocks: None,
        };
        let h = render_html(&m);
        assert!(h.contains("<h2>&lt;b&gt;Hi&lt;/b&gt;</h2>"));
        assert!(h.contains("a &lt; b<br>line"));
        assert!(h.contains("<th align=\"left\">k&amp;</th><td>&lt;v&gt;</td>"));
        let mail = render("ops@example.org", &["a@example.org".into()], &m).unwrap();
        let raw = String::from_utf8(mail.raw.clone()).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(
            !raw.contains("multipart/related"),
            "no images, no related part"
        );
        assert!(raw.contains("Subject: "));
        assert!(raw.contains("k&: <v>"));
        assert!(raw.contains("&lt;v&gt;"));
        let mut bad = m.clone();
        bad.subject = "Hi\r\nBcc: x@y.z".into();
        let to = ["a@example.org".to_string()];
        let raw = String::from_utf8(render("ops@example.org", &to, &bad).unwrap().raw).unwrap();
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(!headers.contains("\r\nBcc:"), "{headers}");
        assert!(render("not an address", &to, &m).is_err());
    }

    #[test]
    fn a_report_email_carries_its_chart_as_an_inline_png() {
        use classy_sync_core::domain::analytics::donors::DayPoint;
        use classy_sync_core::domain::report::chart::gifts_per_day_svg;
        let days: Vec<DayPoint> = (0..10)
            .map(|i| DayPoint {
                day: 1_790_000_000 + i * 86_400,
                gifts: 1,
                gross_cents: 500 * (i + 1),
            })
            .collect();
        let m = Message {
            id: "r".into(),
            kind: MessageKind::Report,
            severity: Severity::Info,
            org_id: None,
            subject: "Report".into(),
            text: "figures".into(),
            fields: vec![],
            html: Some(format!(
                "<html><body>{}</body></html>",
                gifts_per_day_svg("gifts-per-day-3", "Org", &days)
            )),
            slack_blocks: None,
        };
        let mail = render("ops@example.org", &["a@example.org".into()], &m).unwrap();
        let raw = String::from_utf8(mail.raw).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("multipart/related"));
        assert!(raw.contains("Content-Type: image/png"));
        assert!(raw.contains("Content-ID: <gifts-per-day-3-1@classy-sync>"));
        assert!(raw.contains("Content-Disposition: inline"));
        assert!(raw.contains("cid:gifts-per-day-3-1@classy-sync"));
        assert!(
            !raw.contains("<svg"),
            "the email shows the PNG, not the SVG"
        );
        // The recorded message is untouched: the PNG exists only in the email.
        assert!(m.html.as_deref().unwrap().contains("<svg"));
    }
}
