//! Keeping credentials embedded in URLs (`https://user:password@host/`) out of messages.

/// `text` with the user-info part of every `scheme://user:password@host` in it replaced by
/// `[redacted]`, whether or not the URL parses (configuration errors quote what was given).
pub fn redact_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; its user info, if
        // any, ends at the last '@' inside it.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("[redacted]");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_removed_wherever_it_appears() {
        assert_eq!(
            redact_url_credentials(
                "CLASSY_API_BASE_URL=\"https://bob:hunter2@api.example.org/2.0\": bad"
            ),
            "CLASSY_API_BASE_URL=\"https://[redacted]@api.example.org/2.0\": bad"
        );
        assert_eq!(
            redact_url_credentials("a http://u:p@@h:1?x and smtp://tok@mail.example.org"),
            "a http://[redacted]@h:1?x and smtp://[redacted]@mail.example.org"
        );
        assert_eq!(
            redact_url_credentials("no credentials in https://example.org/a@b"),
            "no credentials in https://example.org/a@b"
        );
        assert_eq!(redact_url_credentials("plain text"), "plain text");
    }
}
