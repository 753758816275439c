//! The whole stack on moto_server, wired as `infra/template.yaml` wires it: the template is
//! transformed by the SAM translator, its resources (table, queues with their redrive
//! policies, event bus, the rules of the bus) are created on moto under the template's own
//! names, and every function is built by its composition root from the environment the
//! template gives it (names and literal values as the template has them; `Ref`s and
//! `GetAtt`s resolved to the moto resources; the Classy parameters pointed at the sandbox).
//! EventBridge rules whose target is a function deliver to a queue standing in for Lambda's
//! invocation, which the test hands to that function's handler.
//!
//! scheduled dispatch → SQS → sync-worker → SyncCompleted → (rule) plugin queue →
//! plugin-worker → Mailchimp sandbox; health-check → HealthChanged → (rule) alert → email
//! through SES and Slack to a local receiver; the report schedule → report → SES.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use classy_sandbox::SandboxConfig;
use classy_sync_core::channels::{ChannelConfig, ChannelKind, ChannelSecrets};
use classy_sync_core::domain::report::definition::{
    Recipients, ReportDefinition, ReportScope, Section,
};
use classy_sync_core::ports::destination::plugin_secret_name;
use classy_sync_core::ports::PluginConfig;
use classy_sync_functions::roots;
use classy_sync_functions::wiring::{Env, FunctionWiring};
use classy_sync_tests::moto::MotoServer;
use classy_sync_tests::template::{function, resources, transformed, Resolver};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The environment the template gives `w`'s function, resolved against the moto stack,
/// plus the one development switch the sandbox needs (its Classy API and the Slack
/// receiver are plain http on loopback), which a deployed stack never sets.
fn vars_of(r: &Resolver, binary: &str) -> BTreeMap<String, String> {
    let mut vars = r.function_env(binary);
    assert!(!vars.contains_key(classy_sync_http::ENV_ALLOW_DEV_URLS));
    vars.insert(classy_sync_http::ENV_ALLOW_DEV_URLS.into(), "1".into());
    vars
}

fn env_of(r: &Resolver, w: &'static FunctionWiring) -> Env {
    let vars = vars_of(r, w.binary);
    Env::from_lookup(w, move |n| vars.get(n).cloned())
}

/// Where a rule that invokes a function delivers on moto: a queue per function.
fn invocations_queue(binary: &str) -> String {
    format!("lambda-invoke-{binary}")
}

struct Stack {
    sqs: aws_sdk_sqs::Client,
    /// Queue URL by logical id (and by invocation queue name).
    queues: BTreeMap<String, String>,
}

impl Stack {
    /// Every JSON message waiting in the queue, received (no long polling) and deleted.
    async fn drain(&self, queue: &str) -> Vec<String> {
        let url = &self.queues[queue];
        let mut out = Vec::new();
        loop {
            let r = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let msgs = r.messages.unwrap_or_default();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                out.push(m.body().unwrap().to_owned());
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// What the SQS event source mapping does: each waiting message, as an SQS event.
    async fn sqs_events(&self, queue: &str) -> Vec<SqsEvent> {
        let arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue}");
        self.drain(queue)
            .await
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m-{i}"));
                m.body = Some(body);
                m.event_source_arn = Some(arn.clone());
                let mut e = SqsEvent::default();
                e.records.push(m);
                e
            })
            .collect()
    }

    /// The events EventBridge delivered for `binary` (its rules' targets).
    async fn invocations(&self, binary: &str) -> Vec<Value> {
        self.drain(&invocations_queue(binary))
            .await
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

/// Creates the template's queues, table, bus and bus rules on moto under their template
/// names; fills `r.overrides` with the moto queue URLs.
async fn create_stack(moto: &MotoServer, r: &mut Resolver<'_>) -> Stack {
    let t = transformed();
    let sqs = moto.sqs().await;
    let table = r.reference("Table").unwrap();
    classy_sync_tests::aws_setup::create_table(&moto.dynamodb().await, table.as_str().unwrap())
        .await
        .unwrap();
    let mut queues = BTreeMap::new();
    // Dead-letter queues first: the others' redrive policies name them.
    let mut all = resources(t, "AWS::SQS::Queue");
    all.sort_by_key(|(_, q)| q["Properties"].get("RedrivePolicy").is_some());
    for (id, q) in all {
        let props = &q["Properties"];
        let name = r.resolve_str(&props["QueueName"]).unwrap();
        let mut create = sqs.create_queue().queue_name(&name);
        if let Some(v) = props.get("VisibilityTimeout") {
            create = create.attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                r.resolve_str(v).unwrap(),
            );
        }
        if let Some(p) = props.get("RedrivePolicy") {
            create = create.attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                r.resolve(p).unwrap().to_string(),
            );
        }
        let url = create.send().await.unwrap().queue_url.unwrap();
        r.overrides
            .insert(id.to_owned(), Value::String(url.clone()));
        queues.insert(id.to_owned(), url.clone());
        queues.insert(name, url);
    }
    let eb = moto.eventbridge().await;
    let bus = r.reference("EventBus").unwrap();
    let bus = bus.as_str().unwrap();
    eb.create_event_bus().name(bus).send().await.unwrap();
    for (id, rule) in resources(t, "AWS::Events::Rule") {
        let props = &rule["Properties"];
        let on_bus = props
            .get("EventBusName")
            .map(|b| r.resolve_str(b).unwrap())
            .unwrap_or_else(|| "default".into());
        let Some(pattern) = props.get("EventPattern") else {
            continue; // schedules: the test invokes on their behalf
        };
        let pattern = r.resolve(pattern).unwrap();
        eb.put_rule()
            .name(id)
            .event_bus_name(&on_bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .unwrap();
        for target in props["Targets"].as_array().unwrap() {
            let logical = target["Arn"]["Fn::GetAtt"][0].as_str().unwrap();
            let mut arn = r.resolve_str(&target["Arn"]).unwrap();
            if t["Resources"][logical]["Type"] == "AWS::Lambda::Function" {
                // Lambda's asynchronous invocation, as a queue the test reads.
                let name = invocations_queue(
                    t["Resources"][logical]["Metadata"]["BuildProperties"]["Binary"]
                        .as_str()
                        .unwrap(),
                );
                if !queues.contains_key(&name) {
                    let url = sqs
                        .create_queue()
                        .queue_name(&name)
                        .send()
                        .await
                        .unwrap()
                        .queue_url
                        .unwrap();
                    queues.insert(name.clone(), url);
                }
                arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
            }
            let mut tb = aws_sdk_eventbridge::types::Target::builder()
                .id(target["Id"].as_str().unwrap())
                .arn(arn);
            if let Some(tr) = target.get("InputTransformer") {
                let paths: std::collections::HashMap<String, String> = tr["InputPathsMap"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                tb = tb.input_transformer(
                    aws_sdk_eventbridge::types::InputTransformer::builder()
                        .set_input_paths_map(Some(paths))
                        .input_template(tr["InputTemplate"].as_str().unwrap())
                        .build()
                        .unwrap(),
                );
            }
            eb.put_targets()
                .rule(id)
                .event_bus_name(&on_bus)
                .targets(tb.build().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    Stack { sqs, queues }
}

/// A Slack incoming webhook on a loopback port: every payload it accepted.
#[derive(Default)]
struct Slack(Mutex<Vec<Value>>);

async fn slack_hook(State(s): State<Arc<Slack>>, Json(v): Json<Value>) -> &'static str {
    s.0.lock().unwrap().push(v);
    "ok"
}

async fn serve_slack(s: Arc<Slack>) -> String {
    let app = Router::new()
        .route("/services/T000/B000/XXXX", post(slack_hook))
        .with_state(s);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/services/T000/B000/XXXX")
}

/// What SES on moto accepted.
async fn ses_messages(moto: &MotoServer) -> Vec<Value> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The notifier sends SES v2 Raw content: moto keeps each whole MIME message.
    data["ses"]["RawMessage"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A raw message's recipients (moto adds the message's To: header to the Destination given,
/// so the same address can appear twice).
fn recipients(mail: &Value) -> std::collections::BTreeSet<String> {
    mail["destinations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A raw message's Subject header, unfolded.
fn subject(mail: &Value) -> String {
    let raw = mail["raw_data"].as_str().unwrap_or_default();
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_owned()
}

/// The schedule's input (EventBridge Scheduler invokes the target with it).
fn schedule_input(logical: &str) -> Value {
    let s = &transformed()["Resources"][logical]["Properties"]["Target"];
    serde_json::from_str(s["Input"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_as_the_template_wires_it_syncs_pushes_alerts_and_reports() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let sandbox = classy_sandbox::start(SandboxConfig {
        seed: 12,
        orgs: 1,
        supporters: 60,
        campaigns: 3,
        transactions: 120,
        plans: 10,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    // The Mailchimp destination reads its sandbox override from the process environment
    // (this test binary holds only this test).
    std::env::set_var(
        classy_sync_destinations::mailchimp::settings::BASE_URL_ENV,
        sandbox.mailchimp_api_base_url(),
    );

    let t = transformed();
    let mut r = Resolver::new(t);
    // What a deployer passes for a stack against the sandbox.
    r.set_parameter("ClassyApiBaseUrl", &sandbox.api_base_url());
    r.set_parameter("ClassyAuthUrl", &sandbox.auth_url());
    r.set_parameter("ClassyRateLimitPerMinute", "0");
    let stack = create_stack(&moto, &mut r).await;

    // Every function, built by its own root from the template's environment.
    let dispatch = roots::dispatch::init(&env_of(&r, &roots::dispatch::WIRING), sdk.clone())
        .expect("dispatch from the template's environment");
    let worker = roots::sync_worker::init(&env_of(&r, &roots::sync_worker::WIRING), sdk.clone())
        .expect("sync-worker from the template's environment");
    let plugin_worker =
        roots::plugin_worker::init(&env_of(&r, &roots::plugin_worker::WIRING), sdk.clone())
            .expect("plugin-worker from the template's environment");
    let health = roots::health_check::init(&env_of(&r, &roots::health_check::WIRING), sdk.clone())
        .expect("health-check from the template's environment");
    let alert = roots::alert::init(&env_of(&r, &roots::alert::WIRING), sdk.clone())
        .expect("alert from the template's environment");
    let report = roots::report::init(&env_of(&r, &roots::report::WIRING), sdk.clone())
        .expect("report from the template's environment");

    // Onboarding, as `classy-sync --backend aws` does: the organization, its Mailchimp
    // destination, the SES identity of the template's sender, the ops channel.
    let data = dispatch.services.data.clone();
    let secrets = dispatch.services.root.secrets.clone();
    let app = &sandbox.apps()[0];
    let org = app.organizations[0] as u64;
    data.add_org(
        secrets.as_ref(),
        org,
        "Org",
        &app.client_id,
        SecretString::from(app.client_secret.clone()),
    )
    .await
    .unwrap();
    let mc_secret = plugin_secret_name(org, "mailchimp");
    secrets
        .put(&mc_secret, SecretString::from(sandbox.mailchimp_api_key()))
        .await
        .unwrap();
    plugin_worker
        .services
        .plugins()
        .put_plugin_config(
            org,
            PluginConfig {
                plugin: "mailchimp".into(),
                enabled: true,
                settings: json!({"list_id": sandbox.mailchimp_list_id()}),
                secret_name: Some(mc_secret),
            },
        )
        .await
        .unwrap();
    let sender = r.function_env("alert")["CLASSY_SYNC_EMAIL_FROM"].clone();
    assert_eq!(sender, r.function_env("report")["CLASSY_SYNC_EMAIL_FROM"]);
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    // The channels, as `classy-sync --backend aws notify channel add` stores them.
    let alert_vars = vars_of(&r, "alert");
    let ops = alert
        .services
        .root
        .notifier_from(|n| alert_vars.get(n).cloned())
        .unwrap();
    ops.add_channel(
        &ChannelConfig {
            name: "ops".into(),
            kind: ChannelKind::Email,
            to: vec!["oncall@example.org".into()],
            allow_http_loopback: false,
        },
        &ChannelSecrets::default(),
    )
    .await
    .unwrap();

    // ---- schedules → dispatch → sync queue → sync-worker
    for (id, _) in resources(t, "AWS::Scheduler::Schedule") {
        let target = logical_target(id);
        if target != "DispatchFunction" || schedule_input(id).get("entity").is_none() {
            continue;
        }
        let event: roots::dispatch::Event = serde_json::from_value(schedule_input(id)).unwrap();
        let out = dispatch.handle(event).await.unwrap();
        assert_eq!(out["enqueued"], json!([org]), "{id}: {out}");
    }
    let sync_queue = queue_name(&r, "SyncQueue");
    let jobs = stack.sqs_events(&sync_queue).await;
    assert_eq!(jobs.len(), 4, "one job per entity schedule");
    let deadline = SystemTime::now() + Duration::from_secs(900);
    for job in jobs {
        let out = classy_sync_functions::worker::handle(&worker, job, deadline).await;
        assert!(out.batch_item_failures.is_empty(), "{out:?}");
    }

    // ---- SyncCompleted → the rule → plugin queue → plugin-worker → Mailchimp
    let plugin_queue = queue_name(&r, "PluginQueue");
    let jobs = stack.sqs_events(&plugin_queue).await;
    assert_eq!(jobs.len(), 4, "one plugin job per SyncCompleted");
    assert_eq!(
        serde_json::from_str::<Value>(jobs[0].records[0].body.as_deref().unwrap()).unwrap(),
        json!({"org": org})
    );
    for job in jobs {
        let out = plugin_worker.handle(job).await;
        assert!(out.batch_item_failures.is_empty(), "{out:?}");
    }
    let members: Value = reqwest::get(format!(
        "{}/admin/mailchimp/lists/{}/members",
        sandbox.base_url(),
        sandbox.mailchimp_list_id()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let members = members["members"].as_array().unwrap();
    let supporters: Vec<Value> = reqwest::get(format!(
        "{}/admin/orgs/{org}/supporters",
        sandbox.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let emails: std::collections::BTreeSet<String> = supporters
        .iter()
        .filter_map(|s| s["email_address"].as_str().map(str::to_lowercase))
        .collect();
    assert!(!members.is_empty(), "Mailchimp got no member");
    for m in members {
        let e = m["email_address"].as_str().unwrap().to_lowercase();
        assert!(emails.contains(&e), "{e} is no supporter of {org}");
    }
    // Nothing else was delivered to a function yet: SyncCompleted does not wake alert.
    assert!(stack.invocations("alert").await.is_empty());

    // ---- health-check → HealthChanged → alert → email through SES
    let out = classy_sync_functions::health_check::handle(&health)
        .await
        .unwrap();
    assert_eq!(out["status"], "pass", "{out}");
    let dlq = queue_name(&r, "SyncDeadLetterQueue");
    stack
        .sqs
        .send_message()
        .queue_url(&stack.queues[&dlq])
        .message_body(json!({"org": org, "entity": "supporters", "mode": "auto"}).to_string())
        .send()
        .await
        .unwrap();
    let out = classy_sync_functions::health_check::handle(&health)
        .await
        .unwrap();
    assert_eq!(
        (&out["status"], &out["changed"]),
        (&json!("warn"), &json!(true)),
        "{out}"
    );
    let woken = stack.invocations("alert").await;
    assert_eq!(woken.len(), 1, "{woken:#?}");
    assert_eq!(woken[0]["detail-type"], "HealthChanged");
    let out = alert
        .handle(serde_json::from_value(woken[0].clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(out["failed_deliveries"], 0, "{out}");
    let mail = ses_messages(&moto).await;
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert_eq!(mail[0]["source"], sender.as_str());
    assert_eq!(
        recipients(&mail[0]),
        ["oncall@example.org".to_owned()].into()
    );
    assert!(subject(&mail[0]).contains("dead"), "{}", subject(&mail[0]));

    // ---- ops moves to Slack; the dead letter is handled → HealthChanged → alert → Slack
    let slack = Arc::new(Slack::default());
    let hook = serve_slack(slack.clone()).await;
    ops.remove_channel("ops").await.unwrap();
    ops.add_channel(
        &ChannelConfig {
            name: "ops".into(),
            kind: ChannelKind::Slack,
            to: vec![],
            allow_http_loopback: true,
        },
        &ChannelSecrets {
            url: Some(hook),
            ..ChannelSecrets::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(stack.drain(&dlq).await.len(), 1);
    let out = classy_sync_functions::health_check::handle(&health)
        .await
        .unwrap();
    assert_eq!(
        (&out["status"], &out["changed"]),
        (&json!("pass"), &json!(true)),
        "{out}"
    );
    let woken = stack.invocations("alert").await;
    assert_eq!(woken.len(), 1, "{woken:#?}");
    let out = alert
        .handle(serde_json::from_value(woken[0].clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(out["failed_deliveries"], 0, "{out}");
    let posted = slack.0.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "{posted:#?}");
    assert!(
        posted[0]["text"].as_str().unwrap().contains("dead"),
        "{}",
        posted[0]
    );

    // ---- the report schedule → report → SES
    let now = chrono::Utc::now().timestamp();
    dispatch
        .services
        .root
        .report_definitions()
        .add(&ReportDefinition {
            id: "board".into(),
            scope: ReportScope::Org(org),
            sections: vec![Section::Headline, Section::Donors],
            period: "90d".into(),
            schedule: "* * * * *".into(),
            timezone: "UTC".into(),
            recipients: Recipients {
                emails: vec!["board@example.org".into()],
                slack_channels: vec![],
            },
            created_at: now - 3600,
        })
        .await
        .unwrap();
    let event: roots::report::Event =
        serde_json::from_value(schedule_input("ReportSchedule")).unwrap();
    let out = report.handle(event).await.unwrap();
    assert_eq!(out["sent"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["failed_deliveries"], 0, "{out}");
    let mail = ses_messages(&moto).await;
    assert_eq!(mail.len(), 2, "{mail:#?}");
    assert_eq!(mail[1]["source"], sender.as_str());
    assert_eq!(
        recipients(&mail[1]),
        ["board@example.org".to_owned()].into()
    );
    let _ = function(t, "report");
}

fn logical_target(schedule: &str) -> String {
    transformed()["Resources"][schedule]["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

fn queue_name(r: &Resolver, logical: &str) -> String {
    r.resolve_str(&transformed()["Resources"][logical]["Properties"]["QueueName"])
        .unwrap()
}
