//! Usage analytics against what really happened: real syncs, a failing sync, a Mailchimp push,
//! a report, a Classy health check and webhook deliveries run against the sandbox over real
//! sockets; the usage read back from the store (what `classy-sync usage --json` prints)
//! counts the runs, records and errors the operations returned, and the Classy and Mailchimp
//! calls the sandbox itself counted on the other side of the wire.

use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::organization::webhook_secret_name;
use classy_sync_core::domain::report::{Recipients, ReportDefinition, ReportScope, Section};
use classy_sync_core::domain::usage::{Operation, Percentiles, Usage, UsageRow, BUDGET_PER_DAY};
use classy_sync_core::domain::webhook::{sign, SvixHeaders};
use classy_sync_core::domain::{Entity, Timestamp};
use classy_sync_core::engine::health::HealthMonitor;
use classy_sync_core::engine::plugins::PushOptions;
use classy_sync_core::engine::webhooks::{WebhookOutcome, WebhookReceiver};
use classy_sync_core::engine::{ReportService, RunControl, SyncMode, SyncOutcome, SyncReport};
use classy_sync_notify::{NotificationService, NotifySettings};
use classy_sync_tests::Harness;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const LIST: &str = "usagelist";

fn row<'a>(rows: &'a [UsageRow], op: Operation, subject: Option<&str>) -> &'a UsageRow {
    rows.iter()
        .find(|r| r.operation == op && r.subject.as_deref() == subject)
        .unwrap_or_else(|| panic!("no {op} {subject:?} row in {rows:#?}"))
}

fn signed(id: &str, ts: i64, body: &[u8]) -> SvixHeaders {
    SvixHeaders {
        id: Some(id.into()),
        timestamp: Some(ts.to_string()),
        signature: Some(sign(SECRET, id, ts, body).unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_runs_records_errors_and_the_calls_the_sandbox_saw() {
    let h = Harness::start(SandboxConfig {
        seed: 21,
        orgs: 1,
        apps: 1,
        supporters: 150,
        campaigns: 4,
        transactions: 260,
        plans: 12,
        ..SandboxConfig::default()
    })
    .await;
    let org = h.orgs[0];
    let from_ms = h.data.clock.now().timestamp_millis() - 1000;
    h.mc_list(LIST, "Usage").await;
    h.configure_mailchimp(org, LIST, json!({})).await;
    let _mc = h.use_mailchimp_sandbox().await;
    // Onboarding's credential check is not an operation: count from here.
    h.reset_counters().await;
    h.mc_reset_counters().await;

    // Syncs: a full one of every entity, then an incremental one.
    let mut runs: Vec<SyncReport> = Vec::new();
    for mode in [SyncMode::Full, SyncMode::Incremental] {
        for r in h.sync.sync_org(org, mode, &RunControl::default()).await {
            let r = r.unwrap();
            assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
            runs.push(r);
        }
    }
    // A sync Classy refuses (400, not retried): a failed run.
    h.post("/faults/script", json!({"next": [{"status": 400}]}))
        .await;
    let failed = h
        .sync
        .sync_entity(
            org,
            Entity::Campaigns,
            SyncMode::Incremental,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!(failed.outcome, SyncOutcome::Failed, "{failed:?}");
    // The refused request is one of the run's Classy calls.
    assert_eq!(failed.api_calls, 1, "{failed:?}");
    runs.push(failed);

    // One push to Mailchimp.
    let pushed = h
        .plugins
        .push_org(org, &PushOptions::default())
        .await
        .unwrap();
    assert_eq!(pushed.len(), 1);
    let push_report = pushed[0].result.clone().unwrap();
    assert!(push_report.sent > 0, "{push_report:?}");

    // One Classy health check of the organization.
    HealthMonitor::new(
        h.data.clone(),
        h.root.secrets.clone(),
        Arc::new(h.client.clone()),
    )
    .run(Some("classy"))
    .await;

    // Webhooks: one accepted delivery, its redelivery (a duplicate) and a forged one; only
    // the accepted one is an operation.
    h.root
        .secrets
        .put(
            &webhook_secret_name(org),
            SecretString::from(SECRET.to_string()),
        )
        .await
        .unwrap();
    let mut receiver = WebhookReceiver::new(
        h.data.clone(),
        h.root.secrets.clone(),
        h.root.job_queue().unwrap(),
    );
    receiver.options.debounce = Duration::from_millis(10);
    let now = h.data.clock.unix();
    let body = json!({"type": "supporter.updated", "data": {"id": 1}}).to_string();
    let headers = signed("msg_usage_1", now, body.as_bytes());
    let first = receiver
        .receive(&org.to_string(), &headers, body.as_bytes())
        .await;
    assert!(
        matches!(first, WebhookOutcome::Accepted { .. }),
        "{first:?}"
    );
    let again = receiver
        .receive(&org.to_string(), &headers, body.as_bytes())
        .await;
    assert_eq!(again, WebhookOutcome::Duplicate);
    let mut forged = signed("msg_usage_2", now, body.as_bytes());
    forged.signature = Some("v1,AAAA".into());
    let refused = receiver
        .receive(&org.to_string(), &forged, body.as_bytes())
        .await;
    assert_eq!(refused.status(), 401);

    // One report, emailed to a real SMTP sink.
    let sink = classy_sync_tests::smtp_sink::SmtpSink::start(0);
    let notifier = NotificationService::new(
        h.data.store.clone(),
        h.root.secrets.clone(),
        h.data.clock.clone(),
        NotifySettings {
            email_from: Some("reports@example.org".into()),
            ..NotifySettings::default()
        }
        .with_email(Arc::new(
            classy_sync_local::SmtpMailer::parse(&sink.url()).unwrap(),
        )),
    );
    let def = ReportDefinition {
        id: "usage-weekly".into(),
        scope: ReportScope::Org(org),
        sections: Section::ALL.to_vec(),
        period: "30d".into(),
        schedule: "0 9 * * 1".into(),
        timezone: "UTC".into(),
        recipients: Recipients {
            emails: vec!["board@example.org".into()],
            slack_channels: vec![],
        },
        created_at: now,
    };
    h.root.report_definitions().add(&def).await.unwrap();
    let deliveries = ReportService::new(h.data.clone(), Arc::new(notifier))
        .send_report(
            &def,
            "report:usage-weekly:1".into(),
            Timestamp(h.data.clock.now()),
        )
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    sink.wait_for(1, Duration::from_secs(10)).await;

    // What the sandbox saw, counted on its side of the wire.
    let classy_seen = h.counters().await["total"].as_u64().unwrap();
    let mailchimp_seen = h.mc_counters().await["requests"].as_u64().unwrap();
    assert!(classy_seen > 0 && mailchimp_seen > 0);

    let to_ms = h.data.clock.now().timestamp_millis();
    let usage: Usage = h.data.usage(None, from_ms, to_ms).await.unwrap();
    // Through JSON, as `usage --json` prints it.
    let json: Value = serde_json::to_value(&usage).unwrap();
    for r in json["by_org"].as_array().unwrap() {
        for p in ["p50", "p95", "p99"] {
            assert!(r["duration_ms"][p].is_u64(), "{r}");
        }
    }

    // Syncs: runs, records and errors per entity as the runs returned them.
    for e in Entity::ALL {
        let mine: Vec<&SyncReport> = runs.iter().filter(|r| r.entity == e).collect();
        let r = row(&usage.by_org, Operation::Sync, Some(e.name()));
        assert_eq!(r.org, Some(org));
        assert_eq!(r.runs, mine.len() as u64, "{e}");
        assert_eq!(r.records, Some(mine.iter().map(|r| r.fetched).sum()), "{e}");
        assert_eq!(
            r.classy_calls,
            Some(mine.iter().map(|r| r.api_calls).sum()),
            "{e}"
        );
        assert_eq!(r.mailchimp_calls, Some(0));
        let errors = mine
            .iter()
            .filter(|r| r.outcome == SyncOutcome::Failed)
            .count() as u64;
        assert_eq!(r.errors, errors, "{e}");
        assert!((r.error_rate - errors as f64 / mine.len() as f64).abs() < 1e-12);
        // Nearest rank, from the runs' own durations.
        let mut d: Vec<u64> = mine.iter().map(|r| r.duration_ms).collect();
        d.sort_unstable();
        let rank = |p: usize| d[(p * d.len()).div_ceil(100) - 1];
        assert_eq!(
            r.duration_ms,
            Percentiles {
                p50: Some(rank(50)),
                p95: Some(rank(95)),
                p99: Some(rank(99))
            }
        );
    }
    let sync = row(&usage.by_operation, Operation::Sync, None);
    assert_eq!(sync.runs, 9);
    assert_eq!(sync.errors, 1);
    assert_eq!(sync.records, Some(runs.iter().map(|r| r.fetched).sum()));
    assert!(sync.records.unwrap() >= 150 + 4 + 260 + 12);

    // The push: the records it sent and every Mailchimp call the sandbox saw.
    let push = row(&usage.by_org, Operation::Push, Some("mailchimp"));
    assert_eq!((push.runs, push.errors), (1, 0));
    assert_eq!(push.records, Some(push_report.sent));
    assert_eq!(push.classy_calls, Some(0));
    assert_eq!(push.mailchimp_calls, Some(mailchimp_seen));

    // The health check's Classy calls, the accepted webhook, the report.
    let health = row(&usage.by_org, Operation::Health, Some("classy"));
    assert_eq!((health.runs, health.errors), (1, 0));
    assert!(health.classy_calls.unwrap() >= 1);
    let webhook = row(&usage.by_org, Operation::Webhook, Some("supporters"));
    assert_eq!((webhook.runs, webhook.errors), (1, 0));
    assert_eq!(
        (webhook.classy_calls, webhook.mailchimp_calls),
        (Some(0), Some(0))
    );
    let report = row(&usage.by_org, Operation::Report, Some("usage-weekly"));
    assert_eq!((report.runs, report.errors), (1, 0));
    assert_eq!(report.records, None);
    assert_eq!(usage.by_operation.len(), 5);

    // Every Classy call the sandbox saw is accounted for, and per day against the budget.
    let classy_total: u64 = usage
        .by_operation
        .iter()
        .map(|r| r.classy_calls.unwrap_or(0))
        .sum();
    assert_eq!(classy_total, classy_seen);
    let days: u64 = usage
        .classy_calls_per_day
        .iter()
        .map(|d| d.classy_calls)
        .sum();
    assert_eq!(days, classy_seen);
    let d = &usage.classy_calls_per_day[0];
    assert_eq!(d.org, org);
    assert!((d.budget_share - d.classy_calls as f64 / BUDGET_PER_DAY as f64).abs() < 1e-15);
    // One application reads the organization: the same calls against its budget (a row
    // per UTC day; one unless the test runs across midnight).
    let apps = &usage.classy_calls_per_application_day;
    let client_id = &h.sandbox.apps()[0].client_id;
    assert!(apps
        .iter()
        .all(|a| &a.application == client_id && a.orgs == vec![org]));
    assert_eq!(
        apps.iter().map(|a| a.classy_calls).sum::<u64>(),
        classy_seen
    );
    let b = d.busiest_minute.as_ref().unwrap();
    assert!(b.at_least <= b.at_most && b.at_most <= classy_seen, "{b:?}");

    // One organization, and a period that starts after everything: nothing.
    let one = h.data.usage(Some(org), from_ms, to_ms).await.unwrap();
    assert_eq!(one.by_org.len(), usage.by_org.len());
    let later = h.data.usage(None, to_ms + 1, to_ms + 2).await.unwrap();
    assert!(later.by_org.is_empty() && later.classy_calls_per_day.is_empty());
}
