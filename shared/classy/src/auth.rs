//! OAuth2 access tokens, cached per application credential (client_id and a SHA-256 digest of
//! the client secret, never the secret itself): a token is shared by every organization the
//! application reads, and a rotated secret gets a token of its own at once. One async mutex
//! per credential makes refreshes single-flight: concurrent callers wait for the one refresh
//! in progress.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lifetime assumed when the token endpoint omits `expires_in`.
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3600);

pub(crate) struct CachedToken {
    pub access: SecretString,
    pub refresh_at: Instant,
}

impl CachedToken {
    /// `obtained` is when the token request was sent (conservative).
    pub fn new(access: SecretString, expires_in: Duration, obtained: Instant) -> Self {
        CachedToken {
            access,
            refresh_at: obtained + expires_in.saturating_sub(refresh_margin(expires_in)),
        }
    }

    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

/// How long before expiry a token is replaced: `max(60 s, 10 % of expires_in)`, but never
/// more than half the lifetime, so very short-lived tokens are still reused for a while.
pub(crate) fn refresh_margin(expires_in: Duration) -> Duration {
    (expires_in / 10)
        .max(Duration::from_secs(60))
        .min(expires_in / 2)
}

type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// What a token is cached under: the client id and a digest of the secret it was got with.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    client_id: String,
    secret_digest: [u8; 32],
}

impl CacheKey {
    pub fn new(client_id: &str, client_secret: &SecretString) -> Self {
        use sha2::{Digest, Sha256};
        CacheKey {
            client_id: client_id.to_string(),
            secret_digest: Sha256::digest(client_secret.expose_secret().as_bytes()).into(),
        }
    }
}

#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<CacheKey, Slot>>,
}

impl TokenCache {
    /// The credential's slot; lock it to read, refresh or drop its token. A new secret for a
    /// client id drops the slots of its older secrets.
    pub fn slot(&self, key: &CacheKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        slots.retain(|k, _| k.client_id != key.client_id);
        slots.entry(key.clone()).or_default().clone()
    }

    /// Drops the credential's token if it is still `failed` (a token another task has
    /// already refreshed is kept).
    pub async fn invalidate(&self, key: &CacheKey, failed: &SecretString) {
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        if guard
            .as_ref()
            .is_some_and(|t| t.access.expose_secret() == failed.expose_secret())
        {
            *guard = None;
        }
    }
}

/// `{"access_token","expires_in","token_type":"bearer"}`; `expires_in` as number or string.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default, deserialize_with = "lenient_secs")]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub fn lifetime(&self) -> Duration {
        self.expires_in
            .filter(|s| *s > 0)
            .map_or(DEFAULT_EXPIRES_IN, Duration::from_secs)
    }
}

fn lenient_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_margin_arithmetic() {
        let s = Duration::from_secs;
        assert_eq!(refresh_margin(s(3600)), s(360));
        assert_eq!(refresh_margin(s(7200)), s(720));
        assert_eq!(refresh_margin(s(43200)), s(4320));
        assert_eq!(refresh_margin(s(300)), s(60));
        assert_eq!(refresh_margin(s(120)), s(60));
        assert_eq!(refresh_margin(s(100)), s(50));
        assert_eq!(refresh_margin(s(2)), s(1));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn token_is_fresh_until_the_margin() {
        let t0 = Instant::now();
        let t = CachedToken::new(SecretString::from("tok"), Duration::from_secs(3600), t0);
        assert!(t.is_fresh(t0));
        assert!(t.is_fresh(t0 + Duration::from_secs(3239)));
        assert!(!t.is_fresh(t0 + Duration::from_secs(3240)));
        let short = CachedToken::new(SecretString::from("tok"), Duration::from_secs(2), t0);
        assert!(short.is_fresh(t0 + Duration::from_millis(900)));
        assert!(!short.is_fresh(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn token_response_forms() {
        let r: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":7200,"token_type":"bearer"}"#)
                .unwrap();
        assert_eq!(r.lifetime(), Duration::from_secs(7200));
        let r: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"43200"}"#).unwrap();
        assert_eq!(r.lifetime(), Duration::from_secs(43200));
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(r.lifetime(), DEFAULT_EXPIRES_IN);
        assert!(serde_json::from_str::<TokenResponse>(r#"{"expires_in":1}"#).is_err());
    }

    #[tokio::test]
    async fn invalidate_keeps_a_newer_token() {
        let cache = TokenCache::default();
        let app = CacheKey::new("app", &SecretString::from("s1"));
        let now = Instant::now();
        *cache.slot(&app).lock().await = Some(CachedToken::new(
            SecretString::from("new"),
            Duration::from_secs(3600),
            now,
        ));
        cache.invalidate(&app, &SecretString::from("old")).await;
        assert!(cache.slot(&app).lock().await.is_some());
        cache.invalidate(&app, &SecretString::from("new")).await;
        assert!(cache.slot(&app).lock().await.is_none());
    }

    #[tokio::test]
    async fn a_new_secret_has_its_own_slot_and_drops_the_old_one() {
        let cache = TokenCache::default();
        let old = CacheKey::new("app", &SecretString::from("s1"));
        let new = CacheKey::new("app", &SecretString::from("s2"));
        assert!(old != new);
        *cache.slot(&old).lock().await = Some(CachedToken::new(
            SecretString::from("tok"),
            Duration::from_secs(3600),
            Instant::now(),
        ));
        assert!(cache.slot(&new).lock().await.is_none());
        assert!(cache.slot(&old).lock().await.is_none(), "old slot dropped");
    }
}
