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
        allow_http: true,
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
        allow_http: true,
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

/// Everything a listener received: method and path per request.
#[derive(Default)]
struct Received(Mutex<Vec<String>>);

async fn record(State(r): State<Arc<Received>>, req: axum::extract::Request) -> StatusCode {
    r.0.lock()
        .unwrap()
        .push(format!("{} {}", req.method(), req.uri()));
    StatusCode::OK
}

async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn wire_client(auth_base: &str, api_base: &str) -> ClassyClient {
    ClassyClient::new(ClassyConfig {
        api_base_url: format!("{api_base}/2.0"),
        auth_url: format!("{auth_base}/oauth2/auth"),
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(50),
        max_retries: 3,
        allow_http: true,
        ..ClassyConfig::default()
    })
    .unwrap()
}

/// A 307/308 from the token endpoint or the API is refused: the other host receives
/// nothing (neither the client secret nor the token) and the answer is not retried.
#[tokio::test]
async fn redirects_are_refused_and_the_other_host_receives_nothing() {
    let elsewhere = Arc::new(Received::default());
    let other = listen(Router::new().fallback(record).with_state(elsewhere.clone())).await;
    for status in [307u16, 308] {
        let to = format!("{other}/stolen");
        let redirect = move || {
            let to = to.clone();
            async move {
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("location", to)],
                    "",
                )
            }
        };
        // The token endpoint redirects.
        let bad_auth = listen(Router::new().route("/oauth2/auth", post(redirect.clone()))).await;
        let c = wire_client(&bad_auth, &bad_auth);
        let err = c
            .list_page(
                &creds("right-secret"),
                5,
                Entity::Supporters,
                &ListQuery::default(),
            )
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, classy_sync_core::ports::SourceError::Config(_)),
            "{text}"
        );
        assert!(text.contains("redirects are not followed"), "{text}");
        assert!(
            !text.contains("stolen") && !text.contains("right-secret"),
            "{text}"
        );
        assert_eq!(c.calls_made(), 1, "a redirect is not retried");

        // The API redirects (after a good token).
        let (good, _) = start().await;
        let bad_api =
            listen(Router::new().route("/2.0/organizations/{org}/{entity}", get(redirect.clone())))
                .await;
        let c = wire_client(&good, &bad_api);
        let err = c
            .list_page(
                &creds("right-secret"),
                5,
                Entity::Supporters,
                &ListQuery::default(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, classy_sync_core::ports::SourceError::Config(_)),
            "{err}"
        );
        assert_eq!(c.calls_made(), 2, "one token request, one refused call");
    }
    assert!(
        elsewhere.0.lock().unwrap().is_empty(),
        "the redirect target was reached: {:?}",
        elsewhere.0.lock().unwrap()
    );
}

/// Outside development the client speaks https only: http URLs are refused when the client
/// is built, before any request.
#[tokio::test]
async fn http_urls_are_refused_without_the_development_switch() {
    let (base, seen) = start().await;
    let err = ClassyClient::new(ClassyConfig {
        api_base_url: format!("{base}/2.0"),
        auth_url: format!("{base}/oauth2/auth"),
        ..ClassyConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("http is refused"), "{err}");
    assert!(seen.lock().unwrap().token_bodies.is_empty());
}

/// A rotated client secret is used at once: the token got with the old secret is not
/// reused for the new one.
#[tokio::test]
async fn a_rotated_secret_gets_a_new_token() {
    let (base, seen) = start().await;
    let c = wire_client(&base, &base);
    let q = ListQuery::default();
    let old = AppCredentials {
        client_id: "app".into(),
        client_secret: SecretString::from("old-secret".to_string()),
    };
    let new = AppCredentials {
        client_id: "app".into(),
        client_secret: SecretString::from("new-secret".to_string()),
    };
    c.list_page(&old, 5, Entity::Supporters, &q).await.unwrap();
    c.list_page(&old, 5, Entity::Supporters, &q).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().token_bodies.len(),
        1,
        "cached for one secret"
    );
    c.list_page(&new, 5, Entity::Supporters, &q).await.unwrap();
    c.list_page(&new, 6, Entity::Supporters, &q).await.unwrap();
    let s = seen.lock().unwrap();
    assert_eq!(s.token_bodies.len(), 2, "{:?}", s.token_bodies);
    assert!(s.token_bodies[1].contains("client_secret=new-secret"));
}

/// An answer larger than the cap is refused with a clear error, however it is sent.
#[tokio::test]
async fn an_oversized_page_is_refused_with_a_clear_error() {
    async fn huge() -> axum::response::Response {
        // A valid envelope of about 9 MB: accepted before the cap existed.
        let big = "x".repeat(9 * 1024 * 1024);
        axum::Json(json!({"data": [{"id": 1, "note": big}], "current_page": 1,
            "last_page": 1, "total": 1, "next_page_url": null}))
        .into_response()
    }
    let (good, _) = start().await;
    let api = listen(Router::new().route("/2.0/organizations/{org}/{entity}", get(huge))).await;
    let c = wire_client(&good, &api);
    let err = c
        .list_page(
            &creds("right-secret"),
            5,
            Entity::Supporters,
            &ListQuery::default(),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, classy_sync_core::ports::SourceError::Decode(_)),
        "{text}"
    );
    assert!(
        text.contains("response body larger than 8388608 bytes"),
        "{text}"
    );
    assert_eq!(c.calls_made(), 2, "not retried");
}
