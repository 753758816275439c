//! Signed outgoing HTTP bodies: HMAC-SHA256 over a timestamp and the body, so a receiver can
//! prove a request came from us, was not altered, and is not an old one replayed.
//!
//! Header format (the same for every feature that signs, e.g. notification webhooks and the
//! change feed):
//!
//! ```text
//! X-Classy-Sync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//! X-Classy-Sync-Delivery:  <message id>   (stable across retries: receivers dedup on it)
//! ```
//!
//! A receiver recomputes the HMAC over `"<t>." + raw body bytes`, compares in constant time,
//! and refuses a `t` further than the tolerance (default 300 s) from its own clock, in the
//! past or the future. Several `v1=` entries may be present (secret rotation): any match wins.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Classy-Sync-Signature";
pub const DELIVERY_HEADER: &str = "X-Classy-Sync-Delivery";
/// How far a signature's timestamp may be from the receiver's clock.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("signature timestamp is {0} s away from now, beyond the tolerance")]
    Stale(i64),
    #[error("signature does not match the body")]
    Mismatch,
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The value of [`SIGNATURE_HEADER`] for `body` signed at unix time `t`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// Checks a [`SIGNATURE_HEADER`] value against `body` at unix time `now`: the timestamp must
/// be within `tolerance_secs` of `now` and one `v1` must match (compared in constant time).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut t: Option<i64> = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("expected key=value pairs"))?;
        match k {
            "t" => {
                t = Some(
                    v.parse()
                        .map_err(|_| SignatureError::Malformed("t is not unix seconds"))?,
                )
            }
            "v1" => candidates
                .push(hex::decode(v).map_err(|_| SignatureError::Malformed("v1 is not hex"))?),
            _ => {} // unknown schemes are ignored, so new ones can be added beside v1
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no t="))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1="));
    }
    let skew = now.saturating_sub(t);
    if skew.abs() > tolerance_secs {
        return Err(SignatureError::Stale(skew));
    }
    let expected = mac(secret, t, body);
    // `verify_slice` compares in constant time.
    if candidates
        .iter()
        .any(|c| expected.clone().verify_slice(c).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"m1","text":"hello"}"#;

    #[test]
    fn valid_signature_verifies() {
        let h = sign(SECRET, 1_700_000_000, BODY);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(h.len(), "t=1700000000,v1=".len() + 64);
        verify(SECRET, &h, BODY, 1_700_000_010, DEFAULT_TOLERANCE_SECS).unwrap();
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "1.body"), computed independently with Python's hmac module.
        let h = sign(b"key", 1, b"body");
        assert_eq!(
            h,
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }

    #[test]
    fn tampered_body_fails() {
        let h = sign(SECRET, 100, BODY);
        let err = verify(SECRET, &h, br#"{"id":"m1","text":"hellO"}"#, 100, 300).unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
    }

    #[test]
    fn wrong_secret_fails() {
        let h = sign(SECRET, 100, BODY);
        assert_eq!(
            verify(b"other", &h, BODY, 100, 300).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let h = sign(SECRET, 1000, BODY);
        assert_eq!(
            verify(SECRET, &h, BODY, 1301, 300).unwrap_err(),
            SignatureError::Stale(301)
        );
        assert_eq!(
            verify(SECRET, &h, BODY, 699, 300).unwrap_err(),
            SignatureError::Stale(-301)
        );
        verify(SECRET, &h, BODY, 1300, 300).unwrap();
        verify(SECRET, &h, BODY, 700, 300).unwrap();
    }

    #[test]
    fn changed_timestamp_fails() {
        let h = sign(SECRET, 1000, BODY).replace("t=1000", "t=1001");
        assert_eq!(
            verify(SECRET, &h, BODY, 1000, 300).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn rotation_any_v1_matches_and_malformed_is_refused() {
        let good = sign(SECRET, 5, BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=5,v1={},v1={v1}", "00".repeat(32));
        verify(SECRET, &header, BODY, 5, 300).unwrap();
        assert!(matches!(
            verify(SECRET, "v1=abcd", BODY, 5, 300),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(SECRET, "t=5", BODY, 5, 300),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(SECRET, "t=5,v1=zz", BODY, 5, 300),
            Err(SignatureError::Malformed(_))
        ));
    }
}
