//! The wiring contract: `infra/template.yaml`, transformed by the SAM translator as
//! CloudFormation receives it (Globals merged), gives every function what its composition
//! root declares (`classy_sync_functions::roots`): the environment (each root is built from
//! the template's environment and must read exactly what it declares), the IAM actions on
//! the resources it calls; every event source has a sample event in `events/` that its
//! handler accepts; every function has an Errors alarm and every queue that receives dead
//! letters has a not-empty alarm.

use classy_sync_core::channels::channel_secret_name;
use classy_sync_core::domain::organization::{classy_secret_name, webhook_secret_name};
use classy_sync_core::ports::destination::plugin_secret_name;
use classy_sync_functions::roots;
use classy_sync_functions::wiring::{Env, FunctionWiring, Resource};
use classy_sync_tests::template::{function, resources, transformed, Resolver};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

/// Builds the function as its binary does (the log filter, then the root) from `vars`; the
/// environment, which knows the names read.
fn init(w: &'static FunctionWiring, vars: BTreeMap<String, String>) -> Result<Env, String> {
    let env = Env::from_lookup(w, move |n| vars.get(n).cloned());
    classy_sync_functions::logging::filter(&env);
    let sdk = sdk();
    match w.binary {
        "dispatch" => roots::dispatch::init(&env, sdk).map(drop),
        "sync-worker" => roots::sync_worker::init(&env, sdk).map(drop),
        "plugin-worker" => roots::plugin_worker::init(&env, sdk).map(drop),
        "health-check" => roots::health_check::init(&env, sdk).map(drop),
        "alert" => roots::alert::init(&env, sdk).map(drop),
        "report" => roots::report::init(&env, sdk).map(drop),
        "webhook" => roots::webhook::init(&env, sdk).map(drop),
        other => panic!("no root for {other}"),
    }
    .map_err(|e| format!("{e:#}"))?;
    Ok(env)
}

fn wiring(binary: &str) -> &'static FunctionWiring {
    roots::ALL
        .iter()
        .find(|w| w.binary == binary)
        .unwrap_or_else(|| panic!("no wiring declares the binary {binary}"))
}

fn logical_of(v: &Value) -> Option<&str> {
    v.get("Ref")
        .and_then(Value::as_str)
        .or_else(|| v.get("Fn::GetAtt").and_then(|a| a[0].as_str()))
}

#[test]
fn every_function_of_the_template_is_declared_and_every_declared_one_deployed() {
    let t = transformed();
    let deployed: BTreeSet<String> = resources(t, "AWS::Lambda::Function")
        .iter()
        .map(|(id, f)| {
            f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} names no binary"))
                .to_owned()
        })
        .collect();
    let declared: BTreeSet<String> = roots::ALL.iter().map(|w| w.binary.to_owned()).collect();
    assert_eq!(deployed, declared);
}

#[test]
fn every_function_is_built_from_the_templates_environment_reading_exactly_what_it_declares() {
    let t = transformed();
    let r = Resolver::new(t);
    let mut problems = Vec::new();
    let all_envs: Vec<BTreeMap<String, String>> = roots::ALL
        .iter()
        .map(|w| r.function_env(w.binary))
        .collect();
    // What every function gets (Globals) is shared on purpose; anything set on one
    // function alone must be something it reads.
    let common: BTreeSet<&String> = all_envs[0]
        .keys()
        .filter(|k| all_envs.iter().all(|e| e.contains_key(*k)))
        .collect();
    for (w, vars) in roots::ALL.iter().zip(&all_envs) {
        for name in w.required() {
            if vars.get(name).is_none_or(|v| v.trim().is_empty()) {
                problems.push(format!("{}: the template does not set {name}", w.binary));
            }
        }
        for name in vars.keys() {
            if !common.contains(name) && !w.declares(name) {
                problems.push(format!(
                    "{}: the template sets {name}, which the function does not read",
                    w.binary
                ));
            }
        }
        match init(w, vars.clone()) {
            Err(e) => problems.push(format!("{}: the root fails: {e}", w.binary)),
            Ok(env) => {
                let declared: BTreeSet<String> = w.vars().map(|v| v.name.to_owned()).collect();
                let read = env.read();
                for unread in declared.difference(&read) {
                    problems.push(format!(
                        "{}: declares {unread}, which its root never reads",
                        w.binary
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_root_refuses_an_undeclared_read_and_a_missing_required_variable() {
    // The alert root without a sender address: every email alert would fail.
    let t = transformed();
    let r = Resolver::new(t);
    let mut vars = r.function_env("report");
    vars.remove("CLASSY_SYNC_EMAIL_FROM");
    let e = init(wiring("report"), vars).err().expect("refused");
    assert!(e.contains("CLASSY_SYNC_EMAIL_FROM"), "{e}");
    // A variable read that the wiring does not declare is refused by name.
    let env = Env::from_lookup(wiring("report"), |_| Some("x".into()));
    assert_eq!(env.var("CLASSY_API_BASE_URL"), None);
    let e = env.finish().unwrap_err();
    assert!(e.to_string().contains("CLASSY_API_BASE_URL"), "{e}");
}

// ---------- IAM ----------

/// IAM's wildcard match (`*`, `?`), case-sensitive.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// The Allow statements of a role (inline policies and unconditional role policies),
/// resolved.
fn role_statements(r: &Resolver, role: &str) -> Vec<Value> {
    let t = transformed();
    let mut docs = Vec::new();
    for p in t["Resources"][role]["Properties"]["Policies"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        docs.push(p["PolicyDocument"].clone());
    }
    for ty in ["AWS::IAM::RolePolicy", "AWS::IAM::Policy"] {
        for (_, p) in resources(t, ty) {
            if p.get("Condition").is_some() {
                continue;
            }
            let props = &p["Properties"];
            let mut roles: Vec<&Value> = props["Roles"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            if let Some(n) = props.get("RoleName") {
                roles.push(n);
            }
            if roles.iter().any(|v| logical_of(v) == Some(role)) {
                docs.push(props["PolicyDocument"].clone());
            }
        }
    }
    let mut out = Vec::new();
    for d in docs {
        let d = r.resolve(&d).unwrap_or_else(|e| panic!("{role}: {e}"));
        for s in d["Statement"].as_array().cloned().unwrap_or_default() {
            if s["Effect"] == "Allow" {
                out.push(s);
            }
        }
    }
    out
}

fn allowed(statements: &[Value], action: &str, arns: &[String]) -> bool {
    statements.iter().any(|s| {
        as_list(&s["Action"])
            .iter()
            .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
            && as_list(&s["Resource"])
                .iter()
                .any(|res| arns.iter().any(|arn| glob(res, arn)))
    })
}

fn role_of(f: &Value) -> String {
    logical_of(&f["Properties"]["Role"])
        .expect("a function's Role is a GetAtt of a role in the template")
        .to_owned()
}

/// The ARNs a declared resource stands for, for the function `binary`.
fn resource_arns(r: &Resolver, binary: &str, resource: Resource) -> Vec<String> {
    let t = transformed();
    let secret = |name: String| {
        vec![format!(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"
        )]
    };
    // The resource behind the variable the code reads it from.
    let by_var = |var: &str| -> Vec<String> {
        let raw = resources(t, "AWS::Lambda::Function")
            .into_iter()
            .find_map(|(_, f)| {
                f["Properties"]["Environment"]["Variables"]
                    .get(var)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no function sets {var}"));
        let id = logical_of(&raw).unwrap_or_else(|| panic!("{var} is not a Ref"));
        let arn = r.attribute(id, "Arn").unwrap();
        vec![arn.as_str().unwrap().to_owned()]
    };
    match resource {
        Resource::Table => by_var("CLASSY_SYNC_TABLE"),
        Resource::SyncQueue => by_var("CLASSY_SYNC_QUEUE_URL"),
        Resource::SyncDeadLetterQueue => by_var("CLASSY_SYNC_DLQ_URL"),
        Resource::PluginQueue => by_var("CLASSY_SYNC_PLUGIN_QUEUE_URL"),
        Resource::EventBus => by_var("CLASSY_SYNC_EVENT_BUS"),
        Resource::ClassySecret => secret(classy_secret_name(4021)),
        Resource::PluginSecret => secret(plugin_secret_name(4021, "mailchimp")),
        Resource::ChannelSecret => secret(channel_secret_name("ops")),
        Resource::WebhookSecret => secret(webhook_secret_name(4021)),
        Resource::EmailIdentity => {
            let Some(from) = r
                .function_env(binary)
                .get("CLASSY_SYNC_EMAIL_FROM")
                .cloned()
            else {
                return vec![format!("(no CLASSY_SYNC_EMAIL_FROM on {binary})")];
            };
            let domain = from.split('@').nth(1).unwrap_or_default().to_owned();
            vec![
                format!("arn:aws:ses:us-east-1:123456789012:identity/{from}"),
                format!("arn:aws:ses:us-east-1:123456789012:identity/{domain}"),
            ]
        }
    }
}

#[test]
fn every_function_may_call_what_it_declares_and_what_its_triggers_need() {
    let t = transformed();
    let r = Resolver::new(t);
    let mut problems = Vec::new();
    for w in roots::ALL {
        let (id, f) = function(t, w.binary);
        let statements = role_statements(&r, &role_of(f));
        for a in w.access {
            let arns = resource_arns(&r, w.binary, a.resource);
            for action in a.actions {
                if !allowed(&statements, action, &arns) {
                    problems.push(format!("{}: {action} on {arns:?} is not allowed", w.binary));
                }
            }
        }
        // Lambda sends failed asynchronous invocations with the function's role.
        if let Some(dlq) = f["Properties"]["DeadLetterConfig"].get("TargetArn") {
            let arn = r.resolve_str(dlq).unwrap();
            if !allowed(&statements, "sqs:SendMessage", std::slice::from_ref(&arn)) {
                problems.push(format!("{id}: may not send to its dead-letter queue {arn}"));
            }
        }
    }
    // The SQS event source mappings poll with the function's role.
    for (id, m) in resources(t, "AWS::Lambda::EventSourceMapping") {
        let f = logical_of(&m["Properties"]["FunctionName"]).unwrap();
        let queue = r.resolve_str(&m["Properties"]["EventSourceArn"]).unwrap();
        let statements = role_statements(&r, &role_of(&t["Resources"][f]));
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ] {
            if !allowed(&statements, action, std::slice::from_ref(&queue)) {
                problems.push(format!("{id}: {f} may not {action} on {queue}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------- events ----------

fn samples() -> BTreeMap<String, Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "json").then(|| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                (name, v)
            })
        })
        .collect()
}

/// EventBridge's matching for the patterns the template uses: lists of exact values.
fn matches(pattern: &Value, event: &Value) -> bool {
    pattern
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, want)| match want {
            Value::Array(options) => match &event[k] {
                Value::Array(have) => have.iter().any(|h| options.contains(h)),
                have => options.contains(have),
            },
            Value::Object(_) => matches(want, &event[k]),
            _ => false,
        })
}

fn json_path<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches("$.")
        .split('.')
        .fold(v, |v, k| &v[k])
}

fn binary_of(t: &Value, logical: &str) -> String {
    t["Resources"][logical]["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_else(|| panic!("{logical} is not a function with a binary"))
        .to_owned()
}

fn sqs_event(queue_arn: &str, body: &str) -> Value {
    json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "r-1", "body": body,
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"
    }]})
}

#[test]
fn every_event_source_has_a_sample_event_its_handler_accepts() {
    let t = transformed();
    let r = Resolver::new(t);
    let samples = samples();
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    let mut unchecked = Vec::new();
    let mut check = |source: String, binary: &str, found: Vec<(String, Value)>| {
        if found.is_empty() {
            problems.push(format!("{source} → {binary}: no sample event in events/"));
        }
        for (name, event) in found {
            if let Err(e) = (wiring(binary).accepts)(event) {
                problems.push(format!("{source} → {binary}: {name} is refused: {e:#}"));
            }
            used.insert(name);
        }
    };
    // SQS queues → functions.
    let mut consumers = BTreeMap::new();
    for (id, m) in resources(t, "AWS::Lambda::EventSourceMapping") {
        let f = logical_of(&m["Properties"]["FunctionName"]).unwrap();
        let arn = r.resolve_str(&m["Properties"]["EventSourceArn"]).unwrap();
        consumers.insert(arn.clone(), binary_of(t, f));
        let found = samples
            .iter()
            .filter(|(_, e)| {
                e["Records"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().all(|x| x["eventSourceARN"] == arn.as_str()))
            })
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        check(id.to_owned(), &binary_of(t, f), found);
    }
    // EventBridge rules: schedules and patterns, into functions or queues.
    for (id, rule) in resources(t, "AWS::Events::Rule") {
        let props = &rule["Properties"];
        for target in props["Targets"].as_array().cloned().unwrap_or_default() {
            let arn = r.resolve_str(&target["Arn"]).unwrap();
            let logical = logical_of(&target["Arn"]).unwrap();
            let ty = t["Resources"][logical]["Type"].as_str().unwrap_or_default();
            let candidates: Vec<(String, Value)> = if props.get("ScheduleExpression").is_some() {
                let binary = binary_of(t, logical);
                samples
                    .iter()
                    .filter(|(n, e)| {
                        n.starts_with(&format!("{binary}-"))
                            && e["detail-type"] == "Scheduled Event"
                    })
                    .map(|(n, e)| (n.clone(), e.clone()))
                    .collect()
            } else {
                let pattern = r.resolve(&props["EventPattern"]).unwrap();
                samples
                    .iter()
                    .filter(|(_, e)| e.get("detail-type").is_some() && matches(&pattern, e))
                    .map(|(n, e)| (n.clone(), e.clone()))
                    .collect()
            };
            match ty {
                "AWS::Lambda::Function" => check(id.to_owned(), &binary_of(t, logical), candidates),
                "AWS::SQS::Queue" => {
                    // What the rule puts on the queue, as its consumer receives it.
                    let consumer = consumers
                        .get(&arn)
                        .unwrap_or_else(|| panic!("{id}: no function consumes {arn}"))
                        .clone();
                    let shaped = candidates
                        .into_iter()
                        .map(|(n, e)| {
                            let body = match target.get("InputTransformer") {
                                Some(tr) => {
                                    let mut body = tr["InputTemplate"].as_str().unwrap().to_owned();
                                    for (k, path) in tr["InputPathsMap"].as_object().unwrap() {
                                        let v = json_path(&e, path.as_str().unwrap());
                                        let v = match v {
                                            Value::String(s) => s.clone(),
                                            v => v.to_string(),
                                        };
                                        body = body.replace(&format!("<{k}>"), &v);
                                    }
                                    body
                                }
                                None => e.to_string(),
                            };
                            (n, sqs_event(&arn, &body))
                        })
                        .collect();
                    check(id.to_owned(), &consumer, shaped)
                }
                other => unchecked.push(format!("{id}: a target of type {other} is not checked")),
            }
        }
    }
    // EventBridge Scheduler: the schedule's input is the event.
    for (id, s) in resources(t, "AWS::Scheduler::Schedule") {
        let target = &s["Properties"]["Target"];
        let logical = logical_of(&target["Arn"]).unwrap();
        let input: Value = target["Input"]
            .as_str()
            .map(|i| serde_json::from_str(i).unwrap_or_else(|e| panic!("{id} Input: {e}")))
            .unwrap_or(Value::Null);
        let found = samples
            .iter()
            .filter(|(_, e)| **e == input)
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        check(id.to_owned(), &binary_of(t, logical), found);
    }
    // Function URLs: HTTP requests, in samples named after the function's binary.
    for (id, u) in resources(t, "AWS::Lambda::Url") {
        let logical = logical_of(&u["Properties"]["TargetFunctionArn"]).unwrap();
        let binary = binary_of(t, logical);
        let found = samples
            .iter()
            .filter(|(n, e)| {
                n.starts_with(&format!("{binary}-")) && e.get("requestContext").is_some()
            })
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        check(id.to_owned(), &binary, found);
    }
    problems.extend(unchecked);
    // A sample that no source sends is stale, unless it is an invocation a person makes
    // (one report by id, one plugin job by hand, the classic scheduled-rule shape).
    let by_hand = [
        "report-one.json",
        "plugin-worker-one-job.json",
        "dispatch-scheduled-event.json",
        "sync-worker-one-job.json",
    ];
    for name in samples.keys() {
        if !used.contains(name) && !by_hand.contains(&name.as_str()) {
            problems.push(format!("events/{name} belongs to no event source"));
        }
    }
    for name in by_hand {
        let binary = ["dispatch", "sync-worker", "plugin-worker", "report"]
            .into_iter()
            .find(|b| name.starts_with(b))
            .unwrap();
        if let Err(e) = (wiring(binary).accepts)(samples[name].clone()) {
            problems.push(format!("{binary}: {name} is refused: {e:#}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_handler_refuses_an_event_that_is_not_its_own() {
    let s = samples();
    // A sync job is not a plugin job's queue message, and vice versa.
    assert!((wiring("dispatch").accepts)(s["health-changed.json"].clone()).is_err());
    assert!((wiring("sync-worker").accepts)(s["plugin-worker-one-job.json"].clone()).is_err());
    assert!((wiring("report").accepts)(json!({"report_id": 7})).is_err());
}

// ---------- alarms ----------

fn alarms(t: &Value) -> Vec<&Value> {
    resources(t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| &a["Properties"])
        .collect()
}

fn has_actions(a: &Value) -> bool {
    a["AlarmActions"].as_array().is_some_and(|x| !x.is_empty())
}

#[test]
fn every_function_has_an_errors_alarm_and_every_dead_letter_queue_a_not_empty_alarm() {
    let t = transformed();
    let mut problems = Vec::new();
    for (id, _) in resources(t, "AWS::Lambda::Function") {
        let ok = alarms(t).iter().any(|a| {
            a["Namespace"] == "AWS/Lambda"
                && a["MetricName"] == "Errors"
                && has_actions(a)
                && a["Dimensions"].as_array().is_some_and(|d| {
                    d.iter()
                        .any(|d| d["Name"] == "FunctionName" && logical_of(&d["Value"]) == Some(id))
                })
        });
        if !ok {
            problems.push(format!("{id}: no Errors alarm"));
        }
    }
    // Every queue something dead-letters into.
    let mut dead: BTreeSet<String> = BTreeSet::new();
    let mut take = |v: &Value| {
        if let Some(id) = logical_of(v) {
            dead.insert(id.to_owned());
        }
    };
    for (_, q) in resources(t, "AWS::SQS::Queue") {
        take(&q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]);
    }
    for (_, f) in resources(t, "AWS::Lambda::Function") {
        take(&f["Properties"]["DeadLetterConfig"]["TargetArn"]);
    }
    for (_, c) in resources(t, "AWS::Lambda::EventInvokeConfig") {
        take(&c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]);
    }
    for (_, s) in resources(t, "AWS::Scheduler::Schedule") {
        take(&s["Properties"]["Target"]["DeadLetterConfig"]["Arn"]);
    }
    for (_, rule) in resources(t, "AWS::Events::Rule") {
        for target in rule["Properties"]["Targets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            take(&target["DeadLetterConfig"]["Arn"]);
        }
    }
    assert!(dead.contains("ReportDeadLetterQueue"), "{dead:?}");
    for q in &dead {
        let ok = alarms(t).iter().any(|a| {
            a["Namespace"] == "AWS/SQS"
                && a["MetricName"] == "ApproximateNumberOfMessagesVisible"
                && a["ComparisonOperator"] == "GreaterThanThreshold"
                && a["Threshold"] == json!(0)
                && has_actions(a)
                && a["Dimensions"].as_array().is_some_and(|d| {
                    d.iter().any(|d| {
                        d["Name"] == "QueueName"
                            && d["Value"] == json!({"Fn::GetAtt": [q, "QueueName"]})
                    })
                })
        });
        if !ok {
            problems.push(format!(
                "{q}: receives dead letters but has no not-empty alarm"
            ));
        }
    }
    // A function that Lambda retries asynchronously keeps what still fails.
    for (id, c) in resources(t, "AWS::Lambda::EventInvokeConfig") {
        let retries = c["Properties"]["MaximumRetryAttempts"]
            .as_u64()
            .unwrap_or(2);
        let f = logical_of(&c["Properties"]["FunctionName"]).unwrap();
        let has_dlq = t["Resources"][f]["Properties"]
            .get("DeadLetterConfig")
            .is_some()
            || c["Properties"]["DestinationConfig"]
                .get("OnFailure")
                .is_some();
        if retries > 0 && !has_dlq {
            problems.push(format!("{id}: {f} is retried but has no dead-letter queue"));
        }
    }
    let (_, alert) = function(t, "alert");
    if alert["Properties"].get("DeadLetterConfig").is_none() {
        problems.push("the alert function has no dead-letter queue".into());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
