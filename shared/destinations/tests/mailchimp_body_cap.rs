//! The Mailchimp client reads answers with a size cap: a server sending more is refused with
//! a clear error (not buffered), and the refusal is not retried.

use axum::routing::get;
use axum::Router;
use classy_sync_destinations::mailchimp_api::{ClientOptions, MailchimpClient, MailchimpError};
use secrecy::SecretString;
use std::time::Duration;

#[tokio::test]
async fn an_oversized_answer_is_refused_with_a_clear_error() {
    // Valid JSON of about 17 MB: accepted before the cap existed.
    async fn huge() -> String {
        format!(
            "{{\"health_status\": \"{}\"}}",
            "x".repeat(17 * 1024 * 1024)
        )
    }
    async fn small() -> &'static str {
        "{\"health_status\": \"Everything's Chimpy!\"}"
    }
    let app = Router::new()
        .route("/3.0/ping", get(huge))
        .route("/ok/3.0/ping", get(small));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let opts = ClientOptions {
        retry_base: Duration::from_millis(5),
        retry_cap: Duration::from_millis(20),
        ..ClientOptions::default()
    };
    let key = || SecretString::from("0123456789abcdef0123456789abcdef-us1".to_string());

    let c = MailchimpClient::new(key(), Some(&format!("http://{addr}/3.0")), opts.clone()).unwrap();
    let err = c.ping().await.unwrap_err();
    assert!(matches!(err, MailchimpError::Decode(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("response body larger than 16777216 bytes"),
        "{err}"
    );
    assert_eq!(c.calls(), 1, "not retried");

    let c = MailchimpClient::new(key(), Some(&format!("http://{addr}/ok/3.0")), opts).unwrap();
    assert_eq!(
        c.ping().await.unwrap()["health_status"],
        "Everything's Chimpy!"
    );
}
