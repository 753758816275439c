//! Shared helpers: start a sandbox on 127.0.0.1:0 and talk to it over real sockets.
#![allow(dead_code)]

use classy_sandbox::{RunningSandbox, SandboxConfig};
use serde_json::Value;

pub struct Harness {
    pub sandbox: RunningSandbox,
    pub http: reqwest::Client,
    pub client_id: String,
    pub secret: String,
    pub org: i64,
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

pub async fn start(config: SandboxConfig) -> Harness {
    let sandbox = classy_sandbox::start(config).await.expect("sandbox starts");
    let app = sandbox.apps()[0].clone();
    Harness {
        http: http(),
        client_id: app.client_id,
        secret: app.client_secret,
        org: app.organizations[0],
        sandbox,
    }
}

impl Harness {
    pub fn base(&self) -> String {
        self.sandbox.base_url()
    }

    pub async fn token_for(&self, id: &str, secret: &str) -> String {
        let r = self
            .http
            .post(self.sandbox.auth_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .expect("auth request");
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.expect("token json");
        v["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn token(&self) -> String {
        self.token_for(&self.client_id, &self.secret).await
    }

    /// GET `{api_base}{path}` with a bearer token; returns status and parsed body.
    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.sandbox.api_base_url()))
            .bearer_auth(token)
            .send()
            .await
            .expect("api request");
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/admin{path}", self.base()))
            .send()
            .await
            .expect("admin request");
        assert!(r.status().is_success(), "admin GET {path}: {}", r.status());
        r.json().await.expect("admin json")
    }

    pub async fn admin_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}/admin{path}", self.base()))
            .json(&body)
            .send()
            .await
            .expect("admin request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Follows `next_page_url` from `first_path` and returns all records.
    pub async fn page_all(&self, token: &str, first_path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let (status, mut body) = self.get(token, first_path).await;
        assert_eq!(status, 200, "{first_path}: {body}");
        loop {
            out.extend(body["data"].as_array().expect("data").iter().cloned());
            let Some(next) = body["next_page_url"].as_str() else {
                break;
            };
            let r = self
                .http
                .get(next)
                .bearer_auth(token)
                .send()
                .await
                .expect("next page");
            assert_eq!(r.status(), 200);
            body = r.json().await.expect("page json");
        }
        out
    }
}
