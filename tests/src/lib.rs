//! Test harness: a sandbox on a loopback port, the services of the local root on a temporary
//! data directory with the real SQLite store, secrets file and HTTP client, and independent
//! readers of the sandbox's truth.

pub mod aws_setup;
pub mod cli;
pub mod mailchimp;
pub mod moto;
pub mod smtp_sink;
pub mod template;

use classy_sandbox::{RunningSandbox, SandboxConfig};
use classy_sync_classy::{ClassyClient, ClassyConfig};
use classy_sync_core::domain::{Entity, OrgId, Timestamp};
use classy_sync_core::engine::export::Row;
use classy_sync_core::engine::{Datastore, PluginService, SyncService};
use classy_sync_runtime::local::LocalRoot;
use secrecy::SecretString;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub struct Harness {
    pub sandbox: RunningSandbox,
    /// The local root over `dir`.
    pub root: LocalRoot,
    /// The store and the clock.
    pub data: Datastore,
    /// Syncs from the sandbox.
    pub sync: SyncService,
    pub plugins: PluginService,
    pub client: ClassyClient,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub orgs: Vec<OrgId>,
}

/// A client tuned for tests: no rate limit, fast retries.
pub fn test_client_config(sandbox: &RunningSandbox) -> ClassyConfig {
    ClassyConfig {
        api_base_url: sandbox.api_base_url(),
        auth_url: sandbox.auth_url(),
        requests_per_minute: 0,
        retry_base: Duration::from_millis(5),
        retry_cap: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(2),
        max_retries: 8,
        request_timeout: Duration::from_secs(10),
        // The sandbox speaks plain http.
        allow_http: true,
        ..ClassyConfig::default()
    }
}

impl Harness {
    pub async fn start(config: SandboxConfig) -> Harness {
        let sandbox = classy_sandbox::start(config).await.expect("sandbox starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let client = ClassyClient::new(test_client_config(&sandbox)).expect("client");
        let root = LocalRoot::open(dir.path()).expect("data dir");
        let mut orgs = Vec::new();
        for app in sandbox.apps() {
            for org in &app.organizations {
                root.data()
                    .add_org(
                        root.secrets.as_ref(),
                        *org as u64,
                        &format!("Org {org}"),
                        &app.client_id,
                        SecretString::from(app.client_secret.clone()),
                    )
                    .await
                    .expect("onboard");
                orgs.push(*org as u64);
            }
        }
        Harness {
            sandbox,
            data: root.data(),
            sync: Self::sync_on(dir.path(), &client),
            plugins: root.plugins(),
            root,
            client,
            dir,
            http: reqwest::Client::new(),
            orgs,
        }
    }

    /// Syncs over the data directory `dir` (another one, as a second process would have).
    pub fn sync_on(dir: &std::path::Path, client: &ClassyClient) -> SyncService {
        LocalRoot::open(dir)
            .expect("data dir")
            .sync(Arc::new(client.clone()))
    }

    /// The plugins over the data directory `dir` (another one, as a second process would
    /// have).
    pub fn plugins_on(dir: &std::path::Path) -> PluginService {
        LocalRoot::open(dir).expect("data dir").plugins()
    }

    /// Onboards organization `id` with the sandbox application's credentials.
    pub async fn add_org(
        &self,
        id: OrgId,
        name: &str,
        client_id: &str,
        secret: SecretString,
    ) -> Result<classy_sync_core::domain::Organization, classy_sync_core::engine::EngineError> {
        self.data
            .add_org(self.root.secrets.as_ref(), id, name, client_id, secret)
            .await
    }

    pub fn admin(&self, path: &str) -> String {
        format!("{}/admin{}", self.sandbox.base_url(), path)
    }

    /// Every record the sandbox holds, straight from its admin API.
    pub async fn truth(&self, org: OrgId, entity: Entity) -> Vec<Value> {
        let url = self.admin(&format!("/orgs/{org}/{}", entity.api_path()));
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn stored(&self, org: OrgId, entity: Entity) -> Vec<Row> {
        let mut rows = Vec::new();
        self.data
            .export(org, entity, |r| {
                rows.push(r);
                Ok(())
            })
            .await
            .expect("export");
        rows
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.admin(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn patch(&self, org: OrgId, entity: Entity, id: u64, body: Value) -> Value {
        let url = self.admin(&format!("/orgs/{org}/{}/{id}", entity.api_path()));
        let r = self.http.patch(url).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "PATCH {id}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn put(&self, path: &str, body: Value) {
        let r = self
            .http
            .put(self.admin(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT {path}: {}", r.status());
    }

    pub async fn counters(&self) -> Value {
        self.http
            .get(self.admin("/counters"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn reset_counters(&self) {
        self.post("/counters/reset", Value::Null).await;
    }

    /// Asserts the store holds exactly the sandbox's records, field by field.
    pub async fn assert_matches_truth(&self, org: OrgId, entity: Entity) {
        let truth = self.truth(org, entity).await;
        let stored = self.stored(org, entity).await;
        assert_same_records(entity, &truth, &stored);
    }
}

/// Compares, independently of the client's parser, every field the store keeps against
/// the sandbox's JSON: timestamps as instants, numbers as numbers, `""` as missing.
pub fn assert_same_records(entity: Entity, truth: &[Value], stored: &[Row]) {
    let by_id: BTreeMap<u64, &Value> = truth
        .iter()
        .map(|t| (t["id"].as_u64().expect("numeric id"), t))
        .collect();
    assert_eq!(
        stored.len(),
        by_id.len(),
        "{entity}: stored {} records, the sandbox has {}",
        stored.len(),
        by_id.len()
    );
    let computed = classy_sync_core::engine::export::computed_fields(entity);
    for row in stored {
        let id = row["id"].as_u64().expect("stored id");
        let t = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("{entity} {id} stored but not in the sandbox"));
        for (k, v) in row {
            if computed.contains(&k.as_str()) {
                continue;
            }
            let expected = t.get(k).unwrap_or(&Value::Null);
            assert!(
                same_value(expected, v),
                "{entity} {id} field {k}: sandbox {expected}, stored {v}"
            );
        }
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    let blank = |v: &Value| v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty());
    if blank(a) || blank(b) {
        return blank(a) && blank(b);
    }
    if a.is_number() || b.is_number() {
        return matches!((number(a), number(b)), (Some(x), Some(y)) if (x - y).abs() < 1e-9);
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        if let (Ok(p), Ok(q)) = (Timestamp::parse(x), Timestamp::parse(y)) {
            if x.contains('T') && y.contains('T') {
                return p == q;
            }
        }
        return x == y;
    }
    a == b
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The sandbox's current second, as the admin API stamps updates.
pub fn now_classy() -> String {
    Timestamp(chrono::Utc::now()).to_classy()
}
