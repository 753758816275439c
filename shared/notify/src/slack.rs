//! Slack incoming webhooks: Block Kit within Slack's limits (≤ 50 blocks, section text ≤ 3,000
//! characters, ≤ 10 fields of ≤ 2,000, header ≤ 150, context ≤ 10 elements), `text` as the
//! notification fallback.

use super::SendError;
use classy_sync_core::ports::{Message, MessageKind, Severity};
use classy_sync_http::post::post_honouring_429;
use classy_sync_http::url_guard::CheckedUrl;
use serde_json::{json, Value};
use std::time::Duration;

pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_TEXT: usize = 2000;
pub const MAX_HEADER_TEXT: usize = 150;
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Slack's own cap on `text` is 40,000; a notification fallback needs far less.
pub const MAX_FALLBACK_TEXT: usize = 3000;

/// Cuts `s` to at most `max` characters, ending with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// [`truncate`] for escaped text: never ends inside an `&amp;`/`&lt;`/`&gt;` entity.
pub fn truncate_escaped(s: &str, max: usize) -> String {
    let cut = truncate(s, max);
    if cut == s {
        return cut;
    }
    let body = cut.trim_end_matches('…');
    match body.rfind('&') {
        Some(i) if !body[i..].contains(';') => format!("{}…", &body[..i]),
        _ => cut,
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn severity_icon(s: Severity) -> &'static str {
    match s {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":information_source:",
    }
}

fn kind_label(k: MessageKind) -> &'static str {
    match k {
        MessageKind::AlertFiring => "alert firing",
        MessageKind::AlertResolved => "resolved",
        MessageKind::Report => "report",
        MessageKind::Test => "test",
    }
}

/// Blocks built from the message: header, text section, fields section, context.
fn own_blocks(m: &Message) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&m.subject, MAX_HEADER_TEXT), "emoji": true}
    })];
    if !m.text.trim().is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&escape_mrkdwn(&m.text), MAX_SECTION_TEXT)}
        }));
    }
    // Up to 10 fields per section; more fields go to further sections.
    for chunk in m.fields.chunks(MAX_FIELDS) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| {
                json!({"type": "mrkdwn", "text": truncate(
                    &format!("*{}*\n{}", escape_mrkdwn(k), escape_mrkdwn(v)),
                    MAX_FIELD_TEXT,
                )})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut context = format!(
        "{} *{}* · {}",
        severity_icon(m.severity),
        m.severity.as_str(),
        kind_label(m.kind)
    );
    if let Some(org) = &m.org_id {
        context.push_str(&format!(" · org {}", escape_mrkdwn(org)));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    blocks
}

fn clamp_text(obj: &mut Value, max: usize) {
    if let Some(t) = obj.get_mut("text").and_then(|t| t.get_mut("text")) {
        if let Some(s) = t.as_str() {
            *t = Value::String(truncate(s, max));
        }
    }
}

/// Brings one given block within Slack's limits.
fn clamp_block(mut b: Value) -> Value {
    match b.get("type").and_then(Value::as_str) {
        Some("header") => clamp_text(&mut b, MAX_HEADER_TEXT),
        Some("section") => {
            clamp_text(&mut b, MAX_SECTION_TEXT);
            if let Some(Value::Array(fields)) = b.get_mut("fields") {
                fields.truncate(MAX_FIELDS);
                for f in fields.iter_mut() {
                    if let Some(s) = f.get("text").and_then(Value::as_str) {
                        let t = truncate(s, MAX_FIELD_TEXT);
                        f["text"] = Value::String(t);
                    }
                }
            }
        }
        Some("context") => {
            if let Some(Value::Array(els)) = b.get_mut("elements") {
                els.truncate(MAX_CONTEXT_ELEMENTS);
            }
        }
        _ => {}
    }
    b
}

/// The webhook payload: `message.slack_blocks` when given (clamped), else blocks built from
/// the message; never more than [`MAX_BLOCKS`] (the last kept block says how many were cut).
pub fn payload(m: &Message) -> Value {
    let mut blocks: Vec<Value> = match &m.slack_blocks {
        Some(Value::Array(given)) => given.iter().cloned().map(clamp_block).collect(),
        Some(Value::Object(o)) if o.get("blocks").is_some_and(Value::is_array) => o["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .cloned()
            .map(clamp_block)
            .collect(),
        _ => own_blocks(m),
    };
    if blocks.len() > MAX_BLOCKS {
        let cut = blocks.len() - (MAX_BLOCKS - 1);
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("… {cut} more blocks not shown")}
        ]}));
    }
    // The fallback is mrkdwn too (notifications, clients without blocks): escaped, so a
    // subject or text cannot smuggle in <!channel>, <https://evil|link> or user mentions.
    let fallback = if m.text.trim().is_empty() {
        m.subject.clone()
    } else {
        format!("{}: {}", m.subject, m.text)
    };
    json!({"text": truncate_escaped(&escape_mrkdwn(&fallback), MAX_FALLBACK_TEXT), "blocks": blocks})
}

/// Posts the message to a Slack incoming webhook (200 `ok` is success).
pub async fn send(
    url: &CheckedUrl,
    m: &Message,
    timeout: Duration,
    max_429_wait: Duration,
) -> Result<(), SendError> {
    let client = url.client(timeout).map_err(|e| SendError {
        reason: format!("HTTP client: {}", e.without_url()),
        retry_after: None,
        permanent: false,
    })?;
    let body = serde_json::to_vec(&payload(m)).map_err(|e| SendError {
        reason: format!("payload does not serialize: {e}"),
        retry_after: None,
        permanent: true,
    })?;
    post_honouring_429(
        || {
            client
                .post(url.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        },
        max_429_wait,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            id: "m".into(),
            kind: MessageKind::AlertFiring,
            severity: Severity::High,
            org_id: Some("42".into()),
            subject: "S".repeat(400),
            text: "x<y>&".repeat(1000),
            fields: (0..25)
                .map(|i| (format!("k{i}"), "v".repeat(3000)))
                .collect(),
            html: None,
            slack_blocks: None,
        }
    }

    fn section_texts(p: &Value) -> Vec<String> {
        p["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"]["text"].as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn built_blocks_respect_limits() {
        let p = payload(&msg());
        let blocks = p["blocks"].as_array().unwrap();
        // header, text, 3 field sections (10+10+5), context
        assert_eq!(blocks.len(), 6);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(
            blocks[0]["text"]["text"].as_str().unwrap().chars().count(),
            MAX_HEADER_TEXT
        );
        let text = blocks[1]["text"]["text"].as_str().unwrap();
        assert_eq!(text.chars().count(), MAX_SECTION_TEXT);
        assert!(text.ends_with('…'));
        assert!(text.starts_with("x&lt;y&gt;&amp;"));
        for b in &blocks[2..5] {
            let f = b["fields"].as_array().unwrap();
            assert!(f.len() <= MAX_FIELDS);
            for x in f {
                assert!(x["text"].as_str().unwrap().chars().count() <= MAX_FIELD_TEXT);
            }
        }
        assert_eq!(blocks[4]["fields"].as_array().unwrap().len(), 5);
        assert_eq!(blocks[5]["type"], "context");
        assert!(p["text"].as_str().unwrap().chars().count() <= MAX_FALLBACK_TEXT);
        for t in section_texts(&p) {
            assert!(t.chars().count() <= MAX_SECTION_TEXT);
        }
    }

    #[test]
    fn given_blocks_are_clamped() {
        let mut m = msg();
        let many: Vec<Value> = (0..80)
            .map(|i| {
                json!({"type": "section", "text": {"type": "mrkdwn", "text": "y".repeat(5000 + i)},
                       "fields": (0..15).map(|_| json!({"type": "plain_text", "text": "z".repeat(2500)})).collect::<Vec<_>>()})
            })
            .collect();
        m.slack_blocks = Some(Value::Array(many));
        let p = payload(&m);
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert_eq!(
            blocks[49]["elements"][0]["text"],
            "… 31 more blocks not shown"
        );
        for b in &blocks[..49] {
            assert_eq!(
                b["text"]["text"].as_str().unwrap().chars().count(),
                MAX_SECTION_TEXT
            );
            assert_eq!(b["fields"].as_array().unwrap().len(), MAX_FIELDS);
            assert_eq!(
                b["fields"][0]["text"].as_str().unwrap().chars().count(),
                MAX_FIELD_TEXT
            );
        }
    }

    #[test]
    fn short_message_is_untouched() {
        let m = Message {
            id: "t".into(),
            kind: MessageKind::Test,
            severity: Severity::Info,
            org_id: None,
            subject: "Hello".into(),
            text: "All good".into(),
            fields: vec![("a".into(), "b".into())],
            html: None,
            slack_blocks: None,
        };
        let p = payload(&m);
        assert_eq!(p["text"], "Hello: All good");
        assert_eq!(p["text"].as_str().unwrap().chars().count(), 15);
        assert_eq!(p["blocks"][1]["text"]["text"], "All good");
        assert_eq!(p["blocks"][2]["fields"][0]["text"], "*a*\nb");
    }

    #[test]
    fn fallback_text_is_escaped() {
        let m = Message {
            id: "t".into(),
            kind: MessageKind::AlertFiring,
            severity: Severity::High,
            org_id: None,
            subject: "Sync failed <!channel>".into(),
            text: "donor <https://evil.example|click> & co".into(),
            fields: vec![],
            html: None,
            slack_blocks: None,
        };
        let p = payload(&m);
        assert_eq!(
            p["text"],
            "Sync failed &lt;!channel&gt;: donor &lt;https://evil.example|click&gt; &amp; co"
        );
        // Cut inside an entity: the entity goes whole.
        assert_eq!(truncate_escaped("ab&amp;cd", 5), "ab…");
        assert_eq!(truncate_escaped("ab&amp;cd", 8), "ab&amp;…");
        assert_eq!(truncate_escaped("abc", 8), "abc");
    }
}
