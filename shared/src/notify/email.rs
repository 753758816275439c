//! Email rendering shared by SMTP and SES: a multipart/alternative MIME message with a text
//! part and an HTML part (the message's own HTML, or one rendered from text and fields).

use super::SendError;
use crate::ports::Message;
use html_escape::encode_text;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};

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

fn bad_address(what: &str, addr: &str) -> SendError {
    SendError {
        reason: format!("{what} {addr:?} is not a valid email address"),
        retry_after: None,
        permanent: true,
    }
}

/// The MIME message from `from` to `to`.
pub fn build(from: &str, to: &[String], m: &Message) -> Result<lettre::Message, SendError> {
    let from: Mailbox = from.parse().map_err(|_| bad_address("sender", from))?;
    let mut b = lettre::Message::builder()
        .from(from)
        .subject(m.subject.replace(['\r', '\n'], " "))
        .message_id(None);
    for addr in to {
        b = b.to(addr.parse().map_err(|_| bad_address("recipient", addr))?);
    }
    let html = m.html.clone().unwrap_or_else(|| render_html(m));
    b.multipart(
        MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(render_text(m)),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html),
            ),
    )
    .map_err(|e| SendError {
        reason: format!("cannot build the email: {e}"),
        retry_after: None,
        permanent: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MessageKind, Severity};

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
        let mime = build("ops@example.org", &["a@example.org".into()], &m).unwrap();
        let raw = String::from_utf8(mime.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
        assert!(build("not an address", &[], &m).is_err());
    }
}
