//! The change feed's AWS path on the real wire protocol (moto_server): the hourly plugin
//! schedule (dispatch `{"plugins": true}`) enqueues one job per due organization×plugin on
//! the plugin queue (not twice while one is queued), plugin-worker consumes it and the
//! change-feed publishes every supporter and transaction to the customer's EventBridge bus,
//! read back through a rule that targets an SQS queue; a `SyncCompleted`-shaped job then
//! sends nothing new.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use classy_sandbox::SandboxConfig;
use classy_sync_aws::{AwsSettings, SqsQueue};
use classy_sync_classy::ClassyClient;
use classy_sync_core::domain::Entity;
use classy_sync_core::engine::{RunControl, SyncMode, SyncOutcome};
use classy_sync_core::ports::{JobQueue, PluginConfig};
use classy_sync_functions::services::FunctionSettings;
use classy_sync_functions::{plugin_dispatch, plugin_worker, Services};
use classy_sync_runtime::aws::AwsRoot;
use classy_sync_tests::moto::{drain_json, MotoServer, ACCESS_KEY, REGION, SECRET_KEY};
use classy_sync_tests::test_client_config;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

const CUSTOMER_BUS: &str = "customer-feed";

/// What the event source mapping does: receive, invoke plugin-worker, delete what succeeded.
async fn deliver(queue: &SqsQueue, services: &Services) -> (usize, usize) {
    let received = queue.receive(10, Duration::from_secs(60)).await.unwrap();
    let mut event = SqsEvent::default();
    for r in &received {
        let mut m = SqsMessage::default();
        m.message_id = Some(r.id.clone());
        m.receipt_handle = Some(r.receipt.clone());
        m.body = Some(r.body.clone());
        event.records.push(m);
    }
    let response = plugin_worker::handle(services, queue, event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    for r in &received {
        if !failed.contains(&r.id) {
            queue.delete(&r.receipt).await.unwrap();
        }
    }
    (received.len(), failed.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_dispatch_to_plugin_worker_publishes_each_change_once_on_the_customer_bus() {
    let moto = MotoServer::start();
    // The plugin builds its EventBridge client from the environment, as in Lambda. This
    // test binary holds only this test, so setting the process environment is safe.
    std::env::set_var("AWS_ENDPOINT_URL", moto.endpoint());
    std::env::set_var("AWS_REGION", REGION);
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let sdk = moto.sdk_config().await;
    let table = "classy-sync-feed";
    classy_sync_tests::aws_setup::create_table(&moto.dynamodb().await, table)
        .await
        .unwrap();
    let sqs = moto.sqs().await;
    let (sync_url, sync_dlq) = classy_sync_tests::aws_setup::create_queues(&sqs, "sync", 3, 2)
        .await
        .unwrap();
    let (plugin_url, plugin_dlq) =
        classy_sync_tests::aws_setup::create_queues(&sqs, "plugins", 3, 2)
            .await
            .unwrap();
    // The customer's bus, with a rule forwarding our events to a queue we can read.
    let feed_url = moto.bus_into_queue(CUSTOMER_BUS, "feed-events").await;

    let settings = AwsSettings {
        table: table.into(),
        queue_url: sync_url,
        dlq_url: Some(sync_dlq),
        event_bus: "default".into(),
        secret_prefix: "classy-sync/".into(),
        secret_ttl: Duration::from_secs(300),
    };
    let sandbox = classy_sandbox::start(SandboxConfig {
        seed: 11,
        orgs: 1,
        apps: 1,
        supporters: 70,
        campaigns: 3,
        transactions: 120,
        plans: 10,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let root = AwsRoot::from_sdk(sdk.clone(), settings.clone());
    let sync = root.sync(Arc::new(
        ClassyClient::new(test_client_config(&sandbox)).unwrap(),
    ));
    let app = &sandbox.apps()[0];
    let org = app.organizations[0] as u64;
    sync.data
        .add_org(
            root.secrets.as_ref(),
            org,
            "Feed org",
            &app.client_id,
            SecretString::from(app.client_secret.clone()),
        )
        .await
        .unwrap();
    for r in sync
        .sync_org(org, SyncMode::Full, &RunControl::default())
        .await
    {
        assert_eq!(r.unwrap().outcome, SyncOutcome::Succeeded);
    }
    root.plugins()
        .put_plugin_config(
            org,
            PluginConfig {
                plugin: "change-feed".into(),
                enabled: true,
                settings: json!({
                    "target": "eventbridge",
                    "event_bus": CUSTOMER_BUS,
                    "detail_type_prefix": "Acme."
                }),
                secret_name: None,
            },
        )
        .await
        .unwrap();
    let services = Services::new(
        root,
        FunctionSettings {
            deadline_margin: Duration::from_secs(30),
            marker_ttl: Duration::from_secs(3600),
            ..FunctionSettings::default()
        },
    );
    let plugin_queue =
        SqsQueue::new(sqs.clone(), &plugin_url, Some(plugin_dlq)).with_wait_time(Duration::ZERO);

    // The hourly schedule: one job; a second dispatch while it is queued adds none.
    let first = plugin_dispatch::handle(&services, &plugin_queue)
        .await
        .unwrap();
    assert_eq!(
        first["enqueued"],
        json!([{"org": org, "plugin": "change-feed"}])
    );
    let second = plugin_dispatch::handle(&services, &plugin_queue)
        .await
        .unwrap();
    assert_eq!(second["enqueued"], json!([]));
    assert_eq!(second["already_queued"].as_array().unwrap().len(), 1);

    assert_eq!(deliver(&plugin_queue, &services).await, (1, 0));
    let events = drain_json(&sqs, &feed_url).await;
    let mut seen: BTreeMap<(String, u64), u32> = BTreeMap::new();
    for e in &events {
        assert_eq!(e["source"], "classy-sync");
        let d = &e["detail"];
        assert_eq!(d["org_id"], json!(org));
        assert!(d["delivery"].as_str().unwrap().starts_with("cf-"));
        *seen
            .entry((
                e["detail-type"].as_str().unwrap().to_string(),
                d["entity_id"].as_u64().unwrap(),
            ))
            .or_insert(0) += 1;
    }
    let truth = |entity: Entity| {
        let url = format!(
            "{}/admin/orgs/{org}/{}",
            sandbox.base_url(),
            entity.api_path()
        );
        async move {
            let rows: Vec<Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
            rows.iter()
                .map(|r| r["id"].as_u64().unwrap())
                .collect::<BTreeSet<u64>>()
        }
    };
    let want: BTreeSet<(String, u64)> = truth(Entity::Supporters)
        .await
        .into_iter()
        .map(|id| ("Acme.SupporterChanged".to_string(), id))
        .chain(
            truth(Entity::Transactions)
                .await
                .into_iter()
                .map(|id| ("Acme.TransactionChanged".to_string(), id)),
        )
        .collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(
        seen.values().all(|n| *n == 1),
        "an event was published twice"
    );

    // Done: the marker is cleared and nothing is due within the hour.
    let third = plugin_dispatch::handle(&services, &plugin_queue)
        .await
        .unwrap();
    assert_eq!(third["enqueued"], json!([]));
    assert_eq!(third["already_queued"], json!([]));

    // A SyncCompleted rule's job (`{"org": n}`, every enabled plugin): nothing new to send.
    let mut job = classy_sync_core::ports::OutMessage::new(json!({"org": org}).to_string());
    job.dedup_id = None;
    plugin_queue.send_batch(vec![job]).await.unwrap();
    assert_eq!(deliver(&plugin_queue, &services).await, (1, 0));
    assert!(drain_json(&sqs, &feed_url).await.is_empty());

    // A malformed job is a batch item failure naming the field, not a crash.
    plugin_queue
        .send_batch(vec![classy_sync_core::ports::OutMessage::new(
            r#"{"organization": 1}"#,
        )])
        .await
        .unwrap();
    assert_eq!(deliver(&plugin_queue, &services).await, (1, 1));

    // Another worker is pushing the change feed right now (its lease is live): the job is
    // not a failure (no receive counted toward the redrive limit), it comes back later as
    // a new, delayed message.
    let data = services.plugins().data;
    let lease = classy_sync_core::ports::store::Item::json(
        classy_sync_core::domain::keys::org_pk(org),
        classy_sync_core::domain::keys::plugin_lease_sk("change-feed"),
        &json!({"owner": "push-other", "host": "elsewhere", "pid": 1}),
    )
    .with_expiry(data.clock.unix() + 600);
    data.store
        .put(lease, classy_sync_core::ports::store::Condition::Always)
        .await
        .unwrap();
    plugin_queue
        .send_batch(vec![classy_sync_core::engine::plugin_jobs::PluginJob {
            org,
            plugin: Some("change-feed".into()),
        }
        .to_message()])
        .await
        .unwrap();
    assert_eq!(deliver(&plugin_queue, &services).await, (1, 0));
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&plugin_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let delayed = attrs
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        })
        .cloned();
    assert_eq!(
        delayed.as_deref(),
        Some("1"),
        "one delayed copy of the busy job"
    );
    assert_eq!(
        plugin_queue.stats().await.unwrap().dead,
        0,
        "busy is not a failure"
    );
}
