//! Classy (GoFundMe Pro) webhooks, delivered by Svix: the signature check and which
//! entities an event touches. Pure: the caller supplies the clock and the secret.
//!
//! Svix signs `"{svix-id}.{svix-timestamp}.{raw body}"` with HMAC-SHA256, keyed with the
//! base64-decoded part of the endpoint secret `whsec_<base64>`; `svix-signature` holds
//! space-separated `v1,<base64>` values (several during a secret rotation): any match wins.
//! A timestamp more than [`TOLERANCE_SECS`] away from now, either way, is refused.
//!
//! The payload schema is not public, so nothing here depends on it beyond an optional
//! top-level `type`: an absent or unknown one counts as a change to every webhook entity.

use super::Entity;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const ID_HEADER: &str = "svix-id";
pub const TIMESTAMP_HEADER: &str = "svix-timestamp";
pub const SIGNATURE_HEADER: &str = "svix-signature";
/// How far `svix-timestamp` may be from the receiver's clock.
pub const TOLERANCE_SECS: i64 = 300;
/// The largest body the receiver reads.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The entities Classy sends webhooks for (campaigns stay on their schedule).
pub const WEBHOOK_ENTITIES: [Entity; 3] = [
    Entity::Supporters,
    Entity::Transactions,
    Entity::RecurringPlans,
];

/// The three Svix headers, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SvixHeaders {
    pub id: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
}

impl SvixHeaders {
    /// Picks the Svix headers out of `(name, value)` pairs; names compare case-insensitively.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut h = SvixHeaders::default();
        for (name, value) in pairs {
            let slot = if name.eq_ignore_ascii_case(ID_HEADER) {
                &mut h.id
            } else if name.eq_ignore_ascii_case(TIMESTAMP_HEADER) {
                &mut h.timestamp
            } else if name.eq_ignore_ascii_case(SIGNATURE_HEADER) {
                &mut h.signature
            } else {
                continue;
            };
            *slot = Some(value.trim().to_owned());
        }
        h
    }
}

/// Why a delivery is refused. Messages carry no secret, signature or body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("svix-timestamp is not a unix time")]
    BadTimestamp,
    #[error("svix-timestamp is {0} s away from now, beyond the tolerance")]
    Stale(i64),
    #[error("the signing secret is not a whsec_<base64> value")]
    BadSecret,
    #[error("no signature matches the body")]
    Mismatch,
}

/// The HMAC key of a `whsec_<base64>` secret (a bare base64 value is accepted too).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let b64 = secret.trim();
    let b64 = b64.strip_prefix("whsec_").unwrap_or(b64);
    match STANDARD.decode(b64) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(VerifyError::BadSecret),
    }
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `v1,<base64>` signature of a delivery (what a sender puts in `svix-signature`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, VerifyError> {
    let key = secret_key(secret)?;
    let tag = mac(&key, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// Checks a delivery's signature and timestamp against `secret` at `now` (unix seconds).
/// Returns the `svix-id` (the delivery's dedup key).
pub fn verify<'h>(
    secret: &str,
    headers: &'h SvixHeaders,
    body: &[u8],
    now: i64,
) -> Result<&'h str, VerifyError> {
    let id = headers
        .id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingHeader(ID_HEADER))?;
    let ts = headers
        .timestamp
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingHeader(TIMESTAMP_HEADER))?;
    let sigs = headers
        .signature
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    let t: i64 = ts.parse().map_err(|_| VerifyError::BadTimestamp)?;
    let away = now.saturating_sub(t);
    if away.abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale(away));
    }
    let key = secret_key(secret)?;
    let expected = mac(&key, id, ts, body);
    for sig in sigs.split_whitespace() {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = STANDARD.decode(b64) else {
            continue;
        };
        // `verify_slice` compares in constant time.
        if expected.clone().verify_slice(&tag).is_ok() {
            return Ok(id);
        }
    }
    Err(VerifyError::Mismatch)
}

/// The entities an event touches, from its top-level `type` (`supporter.*`,
/// `transaction.*`, `recurring_donation_plan.*`); anything else means all three.
pub fn entities_for(event: &serde_json::Value) -> Vec<Entity> {
    let kind = event.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let family = kind.split('.').next().unwrap_or("");
    match family {
        "supporter" => vec![Entity::Supporters],
        "transaction" => vec![Entity::Transactions],
        "recurring_donation_plan" => vec![Entity::RecurringPlans],
        _ => WEBHOOK_ENTITIES.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(sig: &str) -> SvixHeaders {
        SvixHeaders {
            id: Some(ID.into()),
            timestamp: Some(TS.to_string()),
            signature: Some(sig.into()),
        }
    }

    #[test]
    fn the_svix_test_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET, ID, TS, BODY).unwrap(), SIG);
        assert_eq!(verify(SECRET, &headers(SIG), BODY, TS + 10), Ok(ID));
    }

    #[test]
    fn any_matching_v1_value_wins() {
        let sigs = format!("v1,bm90IGl0 v2,whatever {SIG}");
        assert_eq!(verify(SECRET, &headers(&sigs), BODY, TS), Ok(ID));
    }

    #[test]
    fn a_changed_body_id_or_secret_is_refused() {
        let mismatch = Err(VerifyError::Mismatch);
        assert_eq!(
            verify(SECRET, &headers(SIG), br#"{"test": 2432232315}"#, TS),
            mismatch
        );
        let mut h = headers(SIG);
        h.id = Some("msg_other".into());
        assert_eq!(verify(SECRET, &h, BODY, TS), mismatch);
        assert_eq!(
            verify("whsec_c2VjcmV0LWtleQ==", &headers(SIG), BODY, TS),
            mismatch
        );
        assert_eq!(verify(SECRET, &headers("v1,"), BODY, TS), mismatch);
        assert_eq!(verify(SECRET, &headers("garbage"), BODY, TS), mismatch);
    }

    #[test]
    fn timestamps_beyond_five_minutes_either_way_are_refused() {
        assert_eq!(verify(SECRET, &headers(SIG), BODY, TS + 300), Ok(ID));
        assert_eq!(verify(SECRET, &headers(SIG), BODY, TS - 300), Ok(ID));
        assert_eq!(
            verify(SECRET, &headers(SIG), BODY, TS + 301),
            Err(VerifyError::Stale(301))
        );
        assert_eq!(
            verify(SECRET, &headers(SIG), BODY, TS - 301),
            Err(VerifyError::Stale(-301))
        );
        let mut h = headers(SIG);
        h.timestamp = Some("yesterday".into());
        assert_eq!(verify(SECRET, &h, BODY, TS), Err(VerifyError::BadTimestamp));
    }

    #[test]
    fn missing_headers_are_named() {
        let h = SvixHeaders::from_pairs([("Svix-Id", ID), ("SVIX-TIMESTAMP", "1614265330")]);
        assert_eq!(h.id.as_deref(), Some(ID));
        assert_eq!(
            verify(SECRET, &h, BODY, TS),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            verify(SECRET, &SvixHeaders::default(), BODY, TS),
            Err(VerifyError::MissingHeader(ID_HEADER))
        );
    }

    #[test]
    fn a_bad_secret_is_refused_without_echoing_it() {
        let e = verify("whsec_!!!", &headers(SIG), BODY, TS).unwrap_err();
        assert_eq!(e, VerifyError::BadSecret);
        assert!(!e.to_string().contains("!!!"));
    }

    #[test]
    fn event_types_pick_entities() {
        let of = |v: serde_json::Value| entities_for(&v);
        use serde_json::json;
        assert_eq!(
            of(json!({"type": "supporter.created"})),
            vec![Entity::Supporters]
        );
        assert_eq!(
            of(json!({"type": "transaction.updated"})),
            vec![Entity::Transactions]
        );
        assert_eq!(
            of(json!({"type": "recurring_donation_plan.updated"})),
            vec![Entity::RecurringPlans]
        );
        assert_eq!(of(json!({"type": "campaign.updated"})), WEBHOOK_ENTITIES);
        assert_eq!(of(json!({"data": {}})), WEBHOOK_ENTITIES);
        assert_eq!(of(json!([1, 2])), WEBHOOK_ENTITIES);
    }
}
