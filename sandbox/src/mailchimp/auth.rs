//! API keys: HTTP basic auth with any user name and the key as password.

use std::collections::HashSet;
use std::sync::RwLock;

pub const DEFAULT_API_KEY: &str = "0123456789abcdef0123456789abcdef-us1";

pub struct Keys(RwLock<HashSet<String>>);

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Invalid,
}

impl Keys {
    pub fn new(first: &str) -> Keys {
        Keys(RwLock::new(HashSet::from([first.to_string()])))
    }

    pub fn add(&self, key: &str) -> bool {
        self.0.write().expect("keys lock").insert(key.to_string())
    }

    /// The accepted key named by an `Authorization` header value.
    pub fn check(&self, header: Option<&str>) -> Result<String, AuthError> {
        let header = header.map(str::trim).filter(|h| !h.is_empty());
        let Some((scheme, rest)) = header.and_then(|h| h.split_once(' ')) else {
            return Err(AuthError::Missing);
        };
        let key = if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64_decode(rest.trim()).ok_or(AuthError::Invalid)?;
            let text = String::from_utf8(decoded).map_err(|_| AuthError::Invalid)?;
            match text.split_once(':') {
                Some((_, key)) => key.to_string(),
                None => return Err(AuthError::Invalid),
            }
        } else if scheme.eq_ignore_ascii_case("apikey") || scheme.eq_ignore_ascii_case("bearer") {
            rest.trim().to_string()
        } else {
            return Err(AuthError::Missing);
        };
        if key.is_empty() {
            return Err(AuthError::Missing);
        }
        if self.0.read().expect("keys lock").contains(&key) {
            Ok(key)
        } else {
            Err(AuthError::Invalid)
        }
    }
}

/// Standard base64 (padding optional); `None` on any other character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth() {
        let keys = Keys::new("k-us1");
        // "anystring:k-us1"
        assert_eq!(
            keys.check(Some("Basic YW55c3RyaW5nOmstdXMx")),
            Ok("k-us1".into())
        );
        // "x:wrong"
        assert_eq!(
            keys.check(Some("Basic eDp3cm9uZw==")),
            Err(AuthError::Invalid)
        );
        assert_eq!(keys.check(None), Err(AuthError::Missing));
        assert_eq!(keys.check(Some("Basic !!")), Err(AuthError::Invalid));
        assert!(keys.add("other"));
        assert_eq!(keys.check(Some("apikey other")), Ok("other".into()));
        assert_eq!(base64_decode("YWI").unwrap(), b"ab");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
    }
}
