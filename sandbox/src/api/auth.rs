//! OAuth2 client-credentials tokens and bearer checks.

use super::{json_response, Shared};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rand::Rng;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Token {
    client_id: String,
    expires_at: Instant,
}

/// Issued tokens; lifetime applies to tokens issued after it changes.
pub struct Tokens {
    tokens: Mutex<HashMap<String, Token>>,
    lifetime_secs: AtomicU64,
}

/// Who is calling, attached to authorized requests.
#[derive(Clone, Debug)]
pub struct Caller {
    pub client_id: String,
    pub token: String,
}

impl Tokens {
    pub fn new(lifetime_secs: u64) -> Self {
        Tokens {
            tokens: Mutex::new(HashMap::new()),
            lifetime_secs: AtomicU64::new(lifetime_secs),
        }
    }

    pub fn set_lifetime(&self, secs: u64) {
        self.lifetime_secs.store(secs, Ordering::SeqCst);
    }

    pub fn lifetime(&self) -> u64 {
        self.lifetime_secs.load(Ordering::SeqCst)
    }

    pub fn issue(&self, client_id: &str) -> (String, u64) {
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let lifetime = self.lifetime();
        let mut map = self.tokens.lock().expect("tokens lock");
        // Drop expired tokens now and then so long runs do not grow without bound.
        if map.len() > 10_000 {
            let now = Instant::now();
            map.retain(|_, t| t.expires_at > now);
        }
        map.insert(
            token.clone(),
            Token {
                client_id: client_id.to_string(),
                expires_at: Instant::now() + Duration::from_secs(lifetime),
            },
        );
        (token, lifetime)
    }

    /// The client owning a live token, or the reason it is refused.
    pub fn check(&self, token: &str) -> Result<String, &'static str> {
        let map = self.tokens.lock().expect("tokens lock");
        match map.get(token) {
            None => Err("The access token is invalid or has been revoked"),
            Some(t) if t.expires_at <= Instant::now() => Err("The access token has expired"),
            Some(t) => Ok(t.client_id.clone()),
        }
    }

    pub fn revoke(&self, token: &str) {
        self.tokens.lock().expect("tokens lock").remove(token);
    }

    /// Revokes the tokens of one client (its secret was regenerated).
    pub fn revoke_client(&self, client_id: &str) -> usize {
        let mut map = self.tokens.lock().expect("tokens lock");
        let n = map.len();
        map.retain(|_, t| t.client_id != client_id);
        n - map.len()
    }

    pub fn revoke_all(&self) -> usize {
        let mut map = self.tokens.lock().expect("tokens lock");
        let n = map.len();
        map.clear();
        n
    }
}

pub fn invalid_token(description: &str) -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "invalid_token", "error_description": description}),
    )
}

/// Validates the `Authorization: Bearer` header.
pub fn authenticate(state: &Shared, headers: &HeaderMap) -> Result<Caller, Response> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = match header.and_then(|h| h.split_once(' ')) {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim().to_string()
        }
        _ => {
            return Err(invalid_token(
                "The request is missing a bearer access token",
            ))
        }
    };
    match state.tokens.check(&token) {
        Ok(client_id) => Ok(Caller { client_id, token }),
        Err(why) => Err(invalid_token(why)),
    }
}

/// `POST /oauth2/auth`: client credentials, form-encoded or JSON.
pub async fn token(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let params: HashMap<String, String> = if is_json {
        match serde_json::from_slice::<HashMap<String, serde_json::Value>>(&body) {
            Ok(m) => m
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect(),
            Err(_) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "invalid_request", "error_description": "The request body is not valid JSON"}),
                )
            }
        }
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    match params.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "unsupported_grant_type",
                        "error_description": "The authorization grant type is not supported by the authorization server."}),
            )
        }
        None => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_request",
                        "error_description": "The request is missing a required parameter: grant_type"}),
            )
        }
    }
    let id = params.get("client_id").map(String::as_str).unwrap_or("");
    let secret = params
        .get("client_secret")
        .map(String::as_str)
        .unwrap_or("");
    let known = state
        .store
        .apps
        .iter()
        .any(|a| a.client_id == id && state.client_secret(a) == secret);
    if !known {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        );
    }
    let (token, expires_in) = state.tokens.issue(id);
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "expires_in": expires_in, "token_type": "bearer"}),
    )
}
