//! The Classy client's exact wire format, checked against a tiny recording server:
//! token form, bearer header, query encoding (exactly once), envelope reading.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use classy_sync_classy::{ClassyClient, ClassyConfig};
use classy_sync_core::domain::Entity;
use classy_sync_core::ports::{AppCredentials, ClassySource, Filter, FilterOp, ListQuery, Sort};
use secrecy::SecretString;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Seen {
    token_bodies: Vec<String>,
    queries: Vec<String>,
    auth_headers: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

async fn token(State(seen): State<Shared>, body: Bytes) -> impl IntoResponse {
    seen.lock()
        .unwrap()
        .token_bodies
        .push(String::from_utf8_lossy(&body).into_owned());
    axum::Json(json!({"access_token":"tok-abc123","expires_in":3600,"token_type":"bearer"}))
}

async fn list(State(seen): State<Shared>, uri: Uri, headers: HeaderMap) -> impl IntoResponse {
    let mut s = seen.lock().unwrap();
    s.queries.push(uri.query().unwrap_or_default().to_string());
    s.auth_headers.push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    );
    (
        StatusCode::OK,
        axum::Json(json!({
            "current_page": 2, "last_page": 3, "total": 5, "per_page": 2, "from": 3, "to": 4,
            "next_page_url": "http://x/2.0/organizations/77/supporters?page=3",
            "data": [{"id": 3, "email_address": "a@b.org"}, {"id": 4}]
        })),
    )
}

async fn start() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route("/oauth2/auth", post(token))
        .route("/2.0/organizations/{org}/{entity}", get(list))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn wire_format_is_exact() {
    let (base, seen) = start().await;
    let c = ClassyClient::new(ClassyConfig {
        api_base_url: format!("{base}/2.0/"),
        auth_url: format!("{base}/oauth2/auth"),
        retry_base: Duration::from_millis(10),
        ..ClassyConfig::default()
    })
    .unwrap();
    let creds = AppCredentials {
        client_id: "app 1".into(),
        client_secret: SecretString::from("s+cret/=".to_string()),
    };
    let query = ListQuery {
        filter: Some(Filter::new(
            "updated_at",
            FilterOp::Ge,
            "2025-04-20T00:00:00+0000",
        )),
        sort: Some(Sort::asc("updated_at")),
        page: 2,
        per_page: 2,
    };
    let page = c
        .list_page(&creds, 77, Entity::Supporters, &query)
        .await
        .unwrap();
    c.list_page(&creds, 78, Entity::Supporters, &query)
        .await
        .unwrap();

    assert_eq!(page.records.len(), 2);
    // The record arrives untouched (key order is the server's serializer's business).
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(page.records[0].get()).unwrap(),
        json!({"id": 3, "email_address": "a@b.org"})
    );
    assert_eq!(
        (page.current_page, page.last_page, page.total, page.has_next),
        (2, 3, 5, true)
    );
    assert_eq!(c.calls_made(), 3);

    let s = seen.lock().unwrap();
    assert_eq!(
        s.token_bodies,
        vec!["grant_type=client_credentials&client_id=app%201&client_secret=s%2Bcret%2F%3D"]
    );
    let expected = "page=2&per_page=2&filter=updated_at%3E%3D2025-04-20T00%3A00%3A00%2B0000&sort=updated_at%3Aasc";
    assert_eq!(s.queries, vec![expected, expected]);
    assert_eq!(s.auth_headers, vec!["Bearer tok-abc123"; 2]);
}

/// A server whose list answers follow a script (then 200), and whose token endpoint
/// refuses any secret but `right-secret`.
#[derive(Default)]
struct Scripted {
    script: Mutex<std::collections::VecDeque<(u16, Option<&'static str>, &'static str)>>,
    token_calls: std::sync::atomic::AtomicU64,
}

async fn scripted_token(State(s): State<Arc<Scripted>>, body: Bytes) -> axum::response::Response {
    let n = s
        .token_calls
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if !String::from_utf8_lossy(&body).contains("client_secret=right-secret") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error":"invalid_client","error_description":"Client authentication failed"})),
        )
            .into_response();
    }
    axum::Json(json!({"access_token": format!("tok-secret-{n}"), "expires_in": 3600}))
        .into_response()
}

async fn scripted_list(State(s): State<Arc<Scripted>>) -> axum::response::Response {
    let next = s.script.lock().unwrap().pop_front();
    match next {
        Some((status, retry_after, body)) => {
            let mut r = (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
                .into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        None => axum::Json(
            json!({"data": [{"id": 1}], "current_page": 1, "last_page": 1,
            "total": 1, "next_page_url": null}),
        )
        .into_response(),
    }
}

async fn start_scripted(
    steps: Vec<(u16, Option<&'static str>, &'static str)>,
) -> (ClassyClient, Arc<Scripted>) {
    let state = Arc::new(Scripted {
        script: Mutex::new(steps.into()),
        ..Scripted::default()
    });
    let app = Router::new()
        .route("/oauth2/auth", post(scripted_token))
        .route("/2.0/organizations/{org}/{entity}", get(scripted_list))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = ClassyClient::new(ClassyConfig {
        api_base_url: format!("http://{addr}/2.0"),
        auth_url: format!("http://{addr}/oauth2/auth"),
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(50),
        max_retries: 3,
        ..ClassyConfig::default()
    })
    .unwrap();
    (c, state)
}

fn creds(secret: &str) -> AppCredentials {
    AppCredentials {
        client_id: "app".into(),
        client_secret: SecretString::from(secret.to_string()),
    }
}

fn token_calls(s: &Scripted) -> u64 {
    s.token_calls.load(std::sync::atomic::Ordering::SeqCst)
}

const INVALID_TOKEN: &str = r#"{"error":"invalid_token","message":"The access token is invalid"}"#;

#[tokio::test]
async fn refused_token_is_replaced_once_then_unauthorized() {
    let (c, s) = start_scripted(vec![(401, None, INVALID_TOKEN)]).await;
    let q = ListQuery::default();
    c.list_page(&creds("right-secret"), 5, Entity::Campaigns, &q)
        .await
        .unwrap();
    assert_eq!(token_calls(&s), 2);
    assert_eq!(c.calls_made(), 4);

    s.script
        .lock()
        .unwrap()
        .extend([(401, None, INVALID_TOKEN), (401, None, INVALID_TOKEN)]);
    let err = c
        .list_page(&creds("right-secret"), 5, Entity::Campaigns, &q)
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        matches!(
            err,
            classy_sync_core::ports::SourceError::Unauthorized { .. }
        ),
        "{text}"
    );
    assert!(!text.contains("tok-secret"), "token leaked: {text}");
    assert!(!text.contains("right-secret"), "secret leaked: {text}");
}

#[tokio::test]
async fn wrong_secret_is_refused_without_retry_or_echo() {
    let (c, s) = start_scripted(vec![]).await;
    let err = c
        .list_page(
            &creds("wrong-secret-xyz"),
            5,
            Entity::Supporters,
            &ListQuery::default(),
        )
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        matches!(
            err,
            classy_sync_core::ports::SourceError::Unauthorized { .. }
        ),
        "{text}"
    );
    assert!(!text.contains("wrong-secret-xyz"), "secret leaked: {text}");
    assert_eq!(token_calls(&s), 1);
    assert_eq!(c.calls_made(), 1);
}

#[tokio::test]
async fn retry_after_header_is_honoured() {
    let (c, _) = start_scripted(vec![(503, Some("1"), r#"{"message":"down"}"#)]).await;
    let start = std::time::Instant::now();
    c.list_page(
        &creds("right-secret"),
        5,
        Entity::Supporters,
        &ListQuery::default(),
    )
    .await
    .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(c.calls_made(), 3);
}

#[tokio::test]
async fn not_found_and_bad_request_are_not_retried() {
    let (c, _) = start_scripted(vec![
        (404, None, r#"{"error":"The resource cannot be found"}"#),
        (400, None, r#"{"errors":["Invalid filter"]}"#),
    ])
    .await;
    let q = ListQuery::default();
    let err = c
        .list_page(&creds("right-secret"), 5, Entity::Transactions, &q)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, classy_sync_core::ports::SourceError::NotFound(_)),
        "{text}"
    );
    assert!(
        text.contains("org 5") && text.contains("transactions") && text.contains("cannot be found"),
        "{text}"
    );
    let err = c
        .list_page(&creds("right-secret"), 5, Entity::Transactions, &q)
        .await
        .unwrap_err();
    assert!(
        matches!(err, classy_sync_core::ports::SourceError::BadRequest(ref m) if m.contains("Invalid filter")),
        "{err}"
    );
    assert_eq!(c.calls_made(), 3);
}

#[tokio::test]
async fn unreadable_bodies_are_retried_then_a_decode_error() {
    let (c, s) = start_scripted(vec![
        (200, None, r#"{"data":[{"id":1},"#),
        (200, None, r#"{"unexpected":true}"#),
    ])
    .await;
    let q = ListQuery::default();
    c.list_page(&creds("right-secret"), 5, Entity::Supporters, &q)
        .await
        .unwrap();
    assert_eq!(c.calls_made(), 4);

    s.script
        .lock()
        .unwrap()
        .extend([(200, None, r#"{"data":"#); 4]);
    let err = c
        .list_page(&creds("right-secret"), 5, Entity::Supporters, &q)
        .await
        .unwrap_err();
    match err {
        classy_sync_core::ports::SourceError::Decode(m) => {
            assert!(m.contains("/2.0/organizations/5/supporters"), "{m}");
            assert!(!m.contains("per_page"), "query in {m}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert_eq!(c.calls_made(), 8);
}
