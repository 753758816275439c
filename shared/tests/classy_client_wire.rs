//! The Classy client's exact wire format, checked against a tiny recording server:
//! token form, bearer header, query encoding (exactly once), envelope reading.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use classy_sync::classy::{ClassyClient, ClassyConfig};
use classy_sync::domain::Entity;
use classy_sync::ports::{AppCredentials, ClassySource, Filter, FilterOp, ListQuery, Sort};
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
    assert_eq!(
        page.records[0].get(),
        r#"{"email_address":"a@b.org","id":3}"#
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
