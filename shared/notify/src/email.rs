//! Email rendering shared by SMTP and SES: a multipart/alternative MIME message with a text
//! part and an HTML part (the message's own HTML, or one rendered from text and fields).

use classy_sync_core::ports::{Email, Message};
use html_escape::encode_text;

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

/// The email of `m` from `from` to `to`: the message's own HTML (or one rendered from its
/// text and fields) and the plain-text part. Header injection is impossible: the subject is
/// one line.
pub fn render(from: &str, to: &[String], m: &Message) -> Email {
    Email {
        from: from.to_owned(),
        to: to.to_vec(),
        subject: m.subject.replace(['\r', '\n'], " "),
        text: render_text(m),
        html: m.html.clone().unwrap_or_else(|| render_html(m)),
    }
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
        let mail = render("ops@example.org", &["a@example.org".into()], &m);
        assert_eq!(mail.html, h);
        assert!(mail.text.starts_with("a < b\nline"));
        assert!(mail.text.contains("k&: <v>"));
    }
}
