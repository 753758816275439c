//! Helpers for the Mailchimp stand-in's admin routes (`/admin/mailchimp/...`, no auth) and
//! for configuring the Mailchimp destination of an organization against the sandbox.
//!
//! An organization's settings can only name a real Mailchimp data center; the sandbox is
//! the deployment's `MAILCHIMP_API_BASE_URL` (as in `scripts/demo.sh`). That variable is
//! process-wide and every test has its own sandbox, so tests that push take turns:
//! [`Harness::use_mailchimp_sandbox`] points the variable at this harness's sandbox and the
//! guard it returns holds the turn.

use crate::Harness;
use classy_sync_core::domain::OrgId;
use classy_sync_core::ports::destination::plugin_secret_name;
use classy_sync_core::ports::PluginConfig;
use classy_sync_destinations::mailchimp::settings::BASE_URL_ENV;
use secrecy::SecretString;
use serde_json::{json, Value};

/// The turn of the test whose sandbox `MAILCHIMP_API_BASE_URL` points at.
static MAILCHIMP_ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// While alive, `MAILCHIMP_API_BASE_URL` is this test's sandbox.
#[must_use = "the variable points at this sandbox only while the guard lives"]
pub struct MailchimpEndpoint {
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Harness {
    /// Waits for the turn, then points `MAILCHIMP_API_BASE_URL` at this sandbox.
    pub async fn use_mailchimp_sandbox(&self) -> MailchimpEndpoint {
        let turn = MAILCHIMP_ENV.lock().await;
        std::env::set_var(BASE_URL_ENV, self.sandbox.mailchimp_api_base_url());
        MailchimpEndpoint { _turn: turn }
    }

    async fn mc_send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = self.admin(&format!("/mailchimp{path}"));
        let mut req = self.http.request(method.clone(), url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(
            status.is_success(),
            "{method} /admin/mailchimp{path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn mc_get(&self, path: &str) -> Value {
        self.mc_send(reqwest::Method::GET, path, None).await
    }

    pub async fn mc_post(&self, path: &str, body: Value) -> Value {
        self.mc_send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn mc_put(&self, path: &str, body: Value) -> Value {
        self.mc_send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn mc_patch(&self, path: &str, body: Value) -> Value {
        self.mc_send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn mc_delete(&self, path: &str) -> Value {
        self.mc_send(reqwest::Method::DELETE, path, None).await
    }

    /// The audience as the sandbox holds it, sorted by address.
    pub async fn mc_members(&self, list: &str) -> Vec<Value> {
        self.mc_get(&format!("/lists/{list}/members")).await["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn mc_counters(&self) -> Value {
        self.mc_get("/counters").await
    }

    pub async fn mc_reset_counters(&self) {
        self.mc_post("/counters/reset", json!({})).await;
    }

    /// Creates a list (idempotent).
    pub async fn mc_list(&self, id: &str, name: &str) {
        self.mc_post("/lists", json!({"id": id, "name": name}))
            .await;
    }

    /// Stores the sandbox's key as the organization's Mailchimp credential and configures
    /// the destination for `list` with `extra` settings merged in. Pushes reach the sandbox
    /// while a [`Harness::use_mailchimp_sandbox`] guard lives.
    pub async fn configure_mailchimp(&self, org: OrgId, list: &str, extra: Value) {
        let secret = plugin_secret_name(org, "mailchimp");
        self.root
            .secrets
            .put(
                &secret,
                SecretString::from(self.sandbox.mailchimp_api_key()),
            )
            .await
            .unwrap();
        let mut settings = json!({ "list_id": list });
        if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        self.plugins
            .put_plugin_config(
                org,
                PluginConfig {
                    plugin: "mailchimp".into(),
                    enabled: true,
                    settings,
                    secret_name: Some(secret),
                },
            )
            .await
            .unwrap();
    }
}
