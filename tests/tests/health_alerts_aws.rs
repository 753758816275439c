//! The `health-check` and `alert` Lambda handlers on the real AWS wire protocol (moto_server:
//! DynamoDB, SQS, EventBridge) with the sandbox as Classy: HealthChanged only on transitions,
//! dead letters alert once (state in DynamoDB), replay through SQS redrive resolves it.

use async_trait::async_trait;
use classy_sandbox::SandboxConfig;
use classy_sync_aws::{AwsSettings, SqsQueue};
use classy_sync_classy::ClassyClient;
use classy_sync_core::domain::alerts::default_rules;
use classy_sync_core::engine::recovery::{dead_letters, replay_dead_letters};
use classy_sync_core::ports::{
    DeliveryReport, DeliveryStatus, Message, MessageKind, Notifier, NotifyError,
};
use classy_sync_functions::events::AlertTrigger;
use classy_sync_functions::services::FunctionSettings;
use classy_sync_functions::{alert, health_check, Services};
use classy_sync_runtime::aws::AwsRoot;
use classy_sync_tests::moto::{drain_json, MotoServer};
use classy_sync_tests::test_client_config;
use secrecy::SecretString;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Recorder(Mutex<Vec<Message>>);

#[async_trait]
impl Notifier for Recorder {
    async fn notify(
        &self,
        message: &Message,
        channels: &[String],
    ) -> Result<Vec<DeliveryReport>, NotifyError> {
        self.0.lock().unwrap().push(message.clone());
        Ok(channels
            .iter()
            .map(|c| DeliveryReport {
                message_id: message.id.clone(),
                channel: c.clone(),
                status: DeliveryStatus::Sent,
                attempts: 1,
                error: None,
                next_attempt_at: None,
                first_attempt_at: None,
            })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_changed_on_transitions_and_dead_letters_alert_once_on_aws() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let table = "classy-sync-health";
    classy_sync_tests::aws_setup::create_table(&moto.dynamodb().await, table)
        .await
        .unwrap();
    let sqs = moto.sqs().await;
    let (queue_url, dlq_url) = classy_sync_tests::aws_setup::create_queues(&sqs, "sync", 3, 2)
        .await
        .unwrap();
    let events_url = moto.bus_into_queue("bus", "events").await;
    let settings = AwsSettings {
        table: table.into(),
        queue_url,
        dlq_url: Some(dlq_url.clone()),
        event_bus: "bus".into(),
        secret_prefix: "classy-sync/".into(),
        secret_ttl: Duration::from_secs(300),
    };
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs: 2,
        supporters: 10,
        transactions: 10,
        campaigns: 2,
        plans: 2,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = ClassyClient::new(test_client_config(&sandbox)).unwrap();
    let queue = Arc::new(SqsQueue::from_settings(&sdk, &settings).with_wait_time(Duration::ZERO));
    let mut root = AwsRoot::from_sdk(sdk.clone(), settings.clone());
    root.queue = queue.clone();
    let data = root.data();
    for app in sandbox.apps() {
        for org in &app.organizations {
            data.add_org(
                root.secrets.as_ref(),
                *org as u64,
                &format!("Org {org}"),
                &app.client_id,
                SecretString::from(app.client_secret.clone()),
            )
            .await
            .unwrap();
        }
    }
    let services = Services::new(root, FunctionSettings::default()).with_classy(Arc::new(client));

    // Healthy: recorded, no event (nothing changed).
    let out = health_check::handle(&services).await.unwrap();
    assert_eq!(out["status"], "pass", "{out}");
    assert_eq!(out["changed"], false);
    assert!(drain_json(&sqs, &events_url).await.is_empty());

    // A dead letter: health warns once (one HealthChanged), the alert fires once.
    sqs.send_message()
        .queue_url(&dlq_url)
        .message_body(r#"{"org":1,"entity":"supporters","mode":"auto"}"#)
        .send()
        .await
        .unwrap();
    let out = health_check::handle(&services).await.unwrap();
    assert_eq!(out["status"], "warn", "{out}");
    assert_eq!(out["changed"], true);
    health_check::handle(&services).await.unwrap();
    let evs = drain_json(&sqs, &events_url).await;
    assert_eq!(evs.len(), 1, "{evs:#?}");
    assert_eq!(evs[0]["detail-type"], "HealthChanged");
    assert_eq!(evs[0]["detail"]["previous"], "pass");
    assert_eq!(evs[0]["detail"]["status"], "warn");
    assert_eq!(
        evs[0]["detail"]["problems"][0]["check"],
        "queue:deadLetters"
    );

    let recorder = Arc::new(Recorder::default());
    let trigger: AlertTrigger = serde_json::from_value(
        json!({"detail-type": "HealthChanged", "source": "classy-sync", "detail": {}}),
    )
    .unwrap();
    for _ in 0..2 {
        alert::handle(
            &services,
            recorder.clone(),
            default_rules(),
            trigger.clone(),
        )
        .await
        .unwrap();
    }
    let sent = recorder.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].kind, MessageKind::AlertFiring);
    assert!(sent[0].subject.contains("dead-letters"));

    // Replayed through SQS redrive: the alert resolves once, health changes back.
    let dead = dead_letters(queue.as_ref(), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(replay_dead_letters(queue.as_ref(), &[]).await.unwrap(), 1);
    let mut cleared = false;
    for _ in 0..50 {
        if dead_letters(queue.as_ref(), 10).await.unwrap().is_empty() {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cleared, "the redrive moved the dead letter");
    for _ in 0..2 {
        alert::handle(
            &services,
            recorder.clone(),
            default_rules(),
            trigger.clone(),
        )
        .await
        .unwrap();
    }
    let sent = recorder.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1].kind, MessageKind::AlertResolved);
    let out = health_check::handle(&services).await.unwrap();
    assert_eq!(out["changed"], true, "{out}");
    let evs = drain_json(&sqs, &events_url).await;
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["detail"]["status"], "pass");
}

/// moto (DynamoDB, SQS, EventBridge) and the sandbox as Classy with `orgs` organizations, all
/// added; the services carry a Classy client (the health-check function's).
struct Stack {
    _moto: MotoServer,
    sqs: aws_sdk_sqs::Client,
    dlq_url: String,
    sandbox: classy_sandbox::RunningSandbox,
    root: AwsRoot,
    services: Services,
}

async fn stack(orgs: usize, clock: Option<Arc<classy_sync_core::ports::ManualClock>>) -> Stack {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let table = "classy-sync-alerts";
    classy_sync_tests::aws_setup::create_table(&moto.dynamodb().await, table)
        .await
        .unwrap();
    let sqs = moto.sqs().await;
    let (queue_url, dlq_url) = classy_sync_tests::aws_setup::create_queues(&sqs, "sync", 3, 2)
        .await
        .unwrap();
    moto.bus_into_queue("bus", "events").await;
    let settings = AwsSettings {
        table: table.into(),
        queue_url,
        dlq_url: Some(dlq_url.clone()),
        event_bus: "bus".into(),
        secret_prefix: "classy-sync/".into(),
        secret_ttl: Duration::from_secs(300),
    };
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs,
        supporters: 10,
        transactions: 10,
        campaigns: 2,
        plans: 2,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = ClassyClient::new(test_client_config(&sandbox)).unwrap();
    let queue = Arc::new(SqsQueue::from_settings(&sdk, &settings).with_wait_time(Duration::ZERO));
    let mut root = AwsRoot::from_sdk(sdk.clone(), settings.clone());
    root.queue = queue;
    if let Some(c) = clock {
        root.clock = c;
    }
    let data = root.data();
    for app in sandbox.apps() {
        for org in &app.organizations {
            data.add_org(
                root.secrets.as_ref(),
                *org as u64,
                &format!("Org {org}"),
                &app.client_id,
                SecretString::from(app.client_secret.clone()),
            )
            .await
            .unwrap();
        }
    }
    let services =
        Services::new(root.clone(), FunctionSettings::default()).with_classy(Arc::new(client));
    Stack {
        _moto: moto,
        sqs,
        dlq_url,
        sandbox,
        root,
        services,
    }
}

/// Requests the sandbox has answered so far (token and API calls).
async fn classy_requests(sandbox: &classy_sandbox::RunningSandbox) -> u64 {
    let v: serde_json::Value = reqwest::get(format!("{}/admin/counters", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["total"].as_u64().unwrap()
}

fn trigger(detail_type: &str) -> AlertTrigger {
    serde_json::from_value(
        json!({"detail-type": detail_type, "source": "classy-sync", "detail": {}}),
    )
    .unwrap()
}

/// During an outage many `SyncFailed` events reach the alert function: it applies the rules to
/// the recorded health report (the queue and sync state checked afresh) and spends no Classy
/// request, so the only Classy health run is the health-check function's, every 5 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sync_failed_events_spend_no_classy_request_beyond_the_recorded_health_run() {
    let s = stack(3, None).await;
    let before = classy_requests(&s.sandbox).await;
    let out = health_check::handle(&s.services).await.unwrap();
    assert_eq!(out["status"], "pass", "{out}");
    let health_run = classy_requests(&s.sandbox).await - before;
    assert!(health_run >= 3, "one call per organization: {health_run}");

    // Something for the rules to see, checked afresh by the alert function: a dead letter.
    s.sqs
        .send_message()
        .queue_url(&s.dlq_url)
        .message_body(r#"{"org":1,"entity":"supporters","mode":"auto"}"#)
        .send()
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let before = classy_requests(&s.sandbox).await;
    for _ in 0..50 {
        let out = alert::handle(
            &s.services,
            recorder.clone(),
            default_rules(),
            trigger("SyncFailed"),
        )
        .await
        .unwrap();
        assert_eq!(out["trigger"], "SyncFailed");
    }
    let during = classy_requests(&s.sandbox).await - before;
    eprintln!(
        "MEASURE Classy requests during 50 SyncFailed events: {during} (one health run: {health_run})"
    );
    assert_eq!(during, 0, "the alert function called Classy");
    let sent = recorder.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(
        sent[0].subject.contains("dead-letters"),
        "{}",
        sent[0].subject
    );

    // The alert function needs no Classy client at all.
    let no_classy = Services::new(s.root.clone(), FunctionSettings::default());
    let out = alert::handle(
        &no_classy,
        recorder.clone(),
        default_rules(),
        trigger("SyncFailed"),
    )
    .await
    .unwrap();
    assert_eq!(out["health"], "warn", "{out}");
}

/// Without a recent recorded report (the health-check function stopped), the alert function
/// says so: `health:recorded` fails and the critical-component rule fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_health_record_fires_the_critical_alert() {
    let clock = Arc::new(classy_sync_core::ports::ManualClock::new(chrono::Utc::now()));
    let s = stack(1, Some(clock.clone())).await;
    let services = Services::new(s.root.clone(), FunctionSettings::default());
    let recorder = Arc::new(Recorder::default());
    health_check::handle(&s.services).await.unwrap();
    alert::handle(
        &services,
        recorder.clone(),
        default_rules(),
        trigger("SyncFailed"),
    )
    .await
    .unwrap();
    assert!(recorder.0.lock().unwrap().is_empty());
    clock.advance(chrono::Duration::minutes(16));
    let out = alert::handle(
        &services,
        recorder.clone(),
        default_rules(),
        trigger("Scheduled Event"),
    )
    .await
    .unwrap();
    assert_eq!(out["health"], "fail", "{out}");
    let sent = recorder.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(
        sent[0].subject.contains("health:recorded"),
        "{}",
        sent[0].subject
    );
}

/// A failed alert delivery (the SMTP server answers 451) is retried by the alert function's
/// next scheduled invocation after its backoff, not by each event of a burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_alert_delivery_is_retried_by_the_next_scheduled_alert_run() {
    use classy_sync_notify::channel::{ChannelConfig, ChannelKind, ChannelSecrets};
    use classy_sync_notify::{NotificationService, NotifySettings};
    let clock = Arc::new(classy_sync_core::ports::ManualClock::new(chrono::Utc::now()));
    let s = stack(1, Some(clock.clone())).await;
    let services = Services::new(s.root.clone(), FunctionSettings::default());
    let sink = classy_sync_tests::smtp_sink::SmtpSink::start(1);
    let notifier = Arc::new(NotificationService::new(
        s.root.store.clone(),
        s.root.secrets.clone(),
        clock.clone(),
        NotifySettings {
            email_from: Some("alerts@example.org".into()),
            ..NotifySettings::default()
        }
        .with_email(Arc::new(
            classy_sync_local::SmtpMailer::parse(&sink.url()).unwrap(),
        )),
    ));
    notifier
        .add_channel(
            &ChannelConfig {
                name: classy_sync_core::domain::alerts::DEFAULT_CHANNEL.into(),
                kind: ChannelKind::Email,
                to: vec!["ops@example.org".into()],
                allow_http_loopback: false,
            },
            &ChannelSecrets::default(),
        )
        .await
        .unwrap();
    s.sqs
        .send_message()
        .queue_url(&s.dlq_url)
        .message_body(r#"{"org":1,"entity":"supporters","mode":"auto"}"#)
        .send()
        .await
        .unwrap();
    health_check::handle(&s.services).await.unwrap();
    let out = alert::handle(
        &services,
        notifier.clone(),
        default_rules(),
        trigger("SyncFailed"),
    )
    .await
    .unwrap();
    assert_eq!(out["failed_deliveries"], 1, "{out}");
    // Past the backoff, an event does not retry (a burst would); the schedule does.
    clock.advance(chrono::Duration::seconds(120));
    let out = alert::handle(
        &services,
        notifier.clone(),
        default_rules(),
        trigger("SyncFailed"),
    )
    .await
    .unwrap();
    assert_eq!(out["retried_deliveries"], 0, "{out}");
    assert!(sink.messages().is_empty());
    let out = alert::handle(
        &services,
        notifier.clone(),
        default_rules(),
        trigger("Scheduled Event"),
    )
    .await
    .unwrap();
    assert_eq!(out["retried_deliveries"], 1, "{out}");
    assert_eq!(out["retries_failed"], 0, "{out}");
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].to_string().contains("dead-letters"));
}
