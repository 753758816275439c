//! Health, alerts and failure recovery end to end, against the sandbox over real sockets,
//! the real SQLite store, secrets file and local queue, with a controllable clock.

use async_trait::async_trait;
use chrono::Utc;
use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::alerts::default_rules;
use classy_sync_core::domain::health::{CheckResult, HealthStatus};
use classy_sync_core::domain::Entity;
use classy_sync_core::engine::alerts::Alerts;
use classy_sync_core::engine::credentials::CredentialInfo;
use classy_sync_core::engine::health::{HealthCheck, HealthMonitor};
use classy_sync_core::engine::recovery::{dead_letters, replay_dead_letters};
use classy_sync_core::engine::scheduler::{run_scheduler, SchedulerOptions};
use classy_sync_core::engine::{RunControl, SyncOutcome, SyncReport};
use classy_sync_core::ports::{
    Clock, DeliveryReport, DeliveryStatus, JobQueue, ManualClock, Message, MessageKind, Notifier,
    NotifyError, OutMessage,
};
use classy_sync_local::local_queue::{LocalQueue, QueueOptions};
use classy_sync_runtime::local::LocalRoot;
use classy_sync_tests::Harness;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records every message it is asked to deliver (the channels are tested on their own).
#[derive(Default)]
struct Recorder(Mutex<Vec<(Message, Vec<String>)>>);

impl Recorder {
    fn messages(&self) -> Vec<Message> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }
}

#[async_trait]
impl Notifier for Recorder {
    async fn notify(
        &self,
        message: &Message,
        channels: &[String],
    ) -> Result<Vec<DeliveryReport>, NotifyError> {
        self.0
            .lock()
            .unwrap()
            .push((message.clone(), channels.to_vec()));
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

fn small(orgs: usize) -> SandboxConfig {
    SandboxConfig {
        seed: 5,
        orgs,
        apps: 1,
        supporters: 20,
        campaigns: 2,
        transactions: 30,
        plans: 4,
        ..SandboxConfig::default()
    }
}

/// A root over the harness's data directory whose time the test moves.
fn root_with_clock(h: &Harness, clock: Arc<ManualClock>) -> LocalRoot {
    let mut root = LocalRoot::open(h.dir.path()).unwrap();
    root.clock = clock;
    root
}

/// The health monitor over `root` and the sandbox (no destinations configured here).
fn monitor(h: &Harness, root: &LocalRoot) -> HealthMonitor {
    HealthMonitor::new(
        root.data(),
        root.secrets.clone(),
        Arc::new(h.client.clone()),
    )
}

/// One pass of the local scheduler: runs every due job, returns once idle.
async fn run_due(h: &Harness, root: &LocalRoot, queue: Arc<dyn JobQueue>) -> Vec<SyncReport> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    run_scheduler(
        root.sync(Arc::new(h.client.clone())),
        root.plugins(),
        queue,
        SchedulerOptions {
            tick: Duration::from_millis(50),
            concurrency: 4,
            visibility: Duration::from_secs(300),
            exit_when_idle: true,
            plugins: false,
        },
        RunControl::default(),
        tx,
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    while let Ok(r) = rx.try_recv() {
        out.push(r.expect("jobs run (their failures are in the report)"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_disable_alert_once_then_reset_recovers_and_resolves_once() {
    let h = Harness::start(small(1)).await;
    let org = h.orgs[0];
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let root = root_with_clock(&h, clock.clone());
    let queue: Arc<dyn JobQueue> = Arc::new(
        LocalQueue::open(
            h.dir.path().join("queue.db"),
            QueueOptions::default(),
            clock.clone(),
        )
        .unwrap(),
    );
    let recorder = Arc::new(Recorder::default());
    let monitor = monitor(&h, &root).with_queue(queue.clone());
    let alerts = Alerts::new(root.data(), recorder.clone(), default_rules());

    // Every Classy API answer is a 500 from now on.
    h.put("/faults", json!({"seed": 1, "error_500_rate": 1.0}))
        .await;
    let waits = [0i64, 5, 10, 20, 20];
    for (i, wait) in waits.iter().enumerate() {
        if *wait > 0 {
            clock.advance(chrono::Duration::minutes(wait - 1));
            assert!(
                root.data().due_jobs(None).await.unwrap().is_empty(),
                "attempt {}: nothing is due before the {wait}-minute backoff",
                i + 1
            );
            clock.advance(chrono::Duration::minutes(1));
        }
        let reports = run_due(&h, &root, queue.clone()).await;
        assert_eq!(
            reports.len(),
            4,
            "attempt {}: every entity ran once: {reports:#?}",
            i + 1
        );
        assert!(reports.iter().all(|r| r.outcome == SyncOutcome::Failed));
        for e in Entity::ALL {
            let f = root.data().load_failures(org, e).await.unwrap();
            assert_eq!(f.consecutive_failures, i as u32 + 1, "{e}");
            assert_eq!(f.is_disabled(), i == 4, "{e} after {} failures", i + 1);
        }
        let report = monitor.run(None).await;
        alerts.evaluate(&report).await.unwrap();
        if i < 4 {
            assert!(
                recorder.messages().is_empty(),
                "no alert before the 5th failure: {:?}",
                recorder.messages()
            );
        }
    }
    // Disabled: never due again, however long we wait, and alerted exactly once.
    for _ in 0..6 {
        clock.advance(chrono::Duration::minutes(30));
        assert!(root.data().due_jobs(None).await.unwrap().is_empty());
        let report = monitor.run(None).await;
        assert_eq!(report.status, HealthStatus::Warn, "org failures only warn");
        alerts.evaluate(&report).await.unwrap();
    }
    let sent = recorder.messages();
    assert_eq!(sent.len(), 1, "one alert, not five: {sent:#?}");
    let fired = &sent[0];
    assert_eq!(fired.kind, MessageKind::AlertFiring);
    assert_eq!(fired.org_id.as_deref(), Some(org.to_string().as_str()));
    assert_eq!(
        fired.text.matches("failure-streak").count(),
        4,
        "the four entities grouped in one message: {}",
        fired.text
    );
    let listed = root.data().failing_pairs(None).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|p| p.failures.is_disabled()));

    // The fault clears and the operator resets: it recovers and resolves once.
    h.put("/faults", json!({"seed": 1})).await;
    let reset = root.data().reset_failures(org, None).await.unwrap();
    assert_eq!(reset.len(), 4);
    let reports = run_due(&h, &root, queue.clone()).await;
    assert_eq!(reports.len(), 4);
    assert!(
        reports.iter().all(|r| r.outcome == SyncOutcome::Succeeded),
        "{reports:#?}"
    );
    for _ in 0..3 {
        let report = monitor.run(None).await;
        assert_eq!(report.status, HealthStatus::Pass, "{report:#?}");
        alerts.evaluate(&report).await.unwrap();
        clock.advance(chrono::Duration::minutes(1));
    }
    let sent = recorder.messages();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1].kind, MessageKind::AlertResolved);
    assert_eq!(sent[1].text.matches("RESOLVED").count(), 4);
    assert!(root.data().failing_pairs(None).await.unwrap().is_empty());
    let history = alerts.history(100).await.unwrap();
    assert_eq!(
        history.iter().filter(|h| h.what == "fire").count(),
        4,
        "{history:#?}"
    );
    assert_eq!(history.iter().filter(|h| h.what == "resolve").count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_expiry_alerts_at_30_7_1_days_and_expiry_each_once() {
    let h = Harness::start(small(1)).await;
    let org = h.orgs[0];
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let root = root_with_clock(&h, clock.clone());
    let recorder = Arc::new(Recorder::default());
    let monitor = monitor(&h, &root);
    let alerts = Alerts::new(root.data(), recorder.clone(), default_rules());
    root.data()
        .set_credential_info(
            org,
            &CredentialInfo {
                expires_at: Some(start + chrono::Duration::days(45)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut events = Vec::new();
    // Every 6 hours for 50 days.
    for _ in 0..(50 * 4) {
        let report = monitor.run(Some("credential")).await;
        events.extend(alerts.evaluate(&report).await.unwrap().events);
        clock.advance(chrono::Duration::hours(6));
    }
    let stages: Vec<String> = recorder
        .messages()
        .iter()
        .map(|m| {
            assert_eq!(m.kind, MessageKind::AlertFiring);
            m.fields
                .iter()
                .find(|(k, _)| k == "stage")
                .map(|(_, v)| v.clone())
                .expect("stage field")
        })
        .collect();
    assert_eq!(stages, ["30d", "7d", "1d", "expired"]);
    let severities: Vec<_> = recorder.messages().iter().map(|m| m.severity).collect();
    use classy_sync_core::ports::Severity::*;
    assert_eq!(severities, [Medium, High, Critical, Critical]);
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.detail_type == "CredentialExpiring"));
    assert_eq!(events[3].detail["stage"], "expired");

    // Rotated: the alert resolves once.
    root.data()
        .set_credential_info(
            org,
            &CredentialInfo {
                rotated_at: Some(clock.now()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let report = monitor.run(Some("credential")).await;
        alerts.evaluate(&report).await.unwrap();
    }
    let sent = recorder.messages();
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[4].kind, MessageKind::AlertResolved);
}

/// A check that never answers.
struct Hangs;

#[async_trait]
impl HealthCheck for Hangs {
    fn key(&self) -> String {
        "hanging:responseTime".into()
    }
    async fn run(&self) -> Vec<CheckResult> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        vec![]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_of_100_organizations_within_2s_and_a_hanging_check_only_costs_its_timeout() {
    let h = Harness::start(small(100)).await;
    assert_eq!(h.orgs.len(), 100);
    let queue: Arc<dyn JobQueue> =
        Arc::new(LocalQueue::in_memory(QueueOptions::default(), h.data.clock.clone()).unwrap());
    let monitor = monitor(&h, &h.root).with_queue(queue.clone());
    let mut timings = Vec::new();
    for round in 0..3 {
        h.reset_counters().await;
        let t0 = Instant::now();
        let report = monitor.run(None).await;
        let took = t0.elapsed();
        timings.push(took.as_millis());
        let classy: Vec<_> = report.checks["classy:responseTime"].iter().collect();
        assert_eq!(classy.len(), 100);
        assert!(
            classy.iter().all(|c| c.status == HealthStatus::Pass),
            "{classy:#?}"
        );
        // One minimal call per organization (plus a token on the first round).
        let calls = h.counters().await["total"].as_u64().unwrap();
        assert!((100..=102).contains(&calls), "round {round}: {calls} calls");
        assert!(
            took <= Duration::from_secs(2),
            "round {round}: health of 100 organizations took {took:?}"
        );
    }
    eprintln!("BENCH health of 100 organizations: {timings:?} ms (cold, warm, warm)");

    let hanging = HealthMonitor {
        timeout: Duration::from_millis(1500),
        ..monitor.clone()
    }
    .with_check(Arc::new(Hangs));
    let t0 = Instant::now();
    let report = hanging.run(None).await;
    let took = t0.elapsed();
    eprintln!(
        "BENCH with a hanging check (timeout 1.5 s): {} ms",
        took.as_millis()
    );
    assert!(took >= Duration::from_millis(1500));
    assert!(took < Duration::from_millis(2300), "{took:?}");
    let hung = &report.checks["hanging:responseTime"][0];
    assert_eq!(hung.status, HealthStatus::Fail);
    assert!(hung
        .output
        .as_deref()
        .unwrap()
        .contains("timed out after 1500 ms"));
    assert_eq!(report.checks["classy:responseTime"].len(), 100);
    assert!(report.checks["classy:responseTime"]
        .iter()
        .all(|c| c.status == HealthStatus::Pass));
    assert_eq!(
        report.status,
        HealthStatus::Warn,
        "a non-critical check failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_alert_and_replay() {
    let h = Harness::start(small(1)).await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let root = root_with_clock(&h, clock.clone());
    let queue: Arc<dyn JobQueue> = Arc::new(
        LocalQueue::open(
            h.dir.path().join("queue.db"),
            QueueOptions { max_receives: 2 },
            clock.clone(),
        )
        .unwrap(),
    );
    queue
        .send_batch(vec![OutMessage::new("not a job")])
        .await
        .unwrap();
    // Received and never acknowledged, until it is dead.
    for _ in 0..3 {
        for m in queue.receive(10, Duration::from_secs(1)).await.unwrap() {
            let _ = m;
        }
        clock.advance(chrono::Duration::seconds(2));
    }
    let dead = dead_letters(queue.as_ref(), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].job.is_none());

    let recorder = Arc::new(Recorder::default());
    let monitor = monitor(&h, &root).with_queue(queue.clone());
    let alerts = Alerts::new(root.data(), recorder.clone(), default_rules());
    let report = monitor.run(Some("queue")).await;
    assert_eq!(
        report.checks["queue:deadLetters"][0].status,
        HealthStatus::Warn
    );
    alerts.evaluate(&report).await.unwrap();
    alerts.evaluate(&report).await.unwrap();
    assert_eq!(recorder.messages().len(), 1);
    assert!(recorder.messages()[0].subject.contains("dead-letters"));

    assert_eq!(replay_dead_letters(queue.as_ref(), &[]).await.unwrap(), 1);
    assert_eq!(replay_dead_letters(queue.as_ref(), &[]).await.unwrap(), 0);
    assert_eq!(queue.stats().await.unwrap().visible, 1);
    let report = monitor.run(Some("queue")).await;
    alerts.evaluate(&report).await.unwrap();
    let sent = recorder.messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].kind, MessageKind::AlertResolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_failed_mid_walk_waits_for_its_backoff_before_resuming() {
    let h = Harness::start(SandboxConfig {
        supporters: 300,
        ..small(1)
    })
    .await;
    let org = h.orgs[0];
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let root = root_with_clock(&h, clock.clone());
    // The high-water read and the first page answer; every later request fails.
    let mut script = vec![json!({"status": 200}), json!({"status": 200})];
    script.extend((0..40).map(|_| json!({"status": 500})));
    h.post("/faults/script", json!({ "next": script })).await;
    let r = root
        .sync(Arc::new(h.client.clone()))
        .sync_entity(
            org,
            Entity::Supporters,
            classy_sync_core::engine::SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, SyncOutcome::Failed, "{r:?}");
    assert_eq!(r.pages, 1);
    let (cursor, _) = root
        .data()
        .load_cursor(org, Entity::Supporters)
        .await
        .unwrap();
    assert!(cursor.in_progress.is_some(), "a checkpoint to resume from");
    let due = |jobs: Vec<classy_sync_core::engine::jobs::SyncJob>| {
        jobs.iter().any(|j| j.entity == Entity::Supporters)
    };
    assert!(
        !due(root.data().due_jobs(None).await.unwrap()),
        "backoff first"
    );
    clock.advance(chrono::Duration::minutes(5));
    assert!(
        due(root.data().due_jobs(None).await.unwrap()),
        "then it resumes"
    );
}

/// Status of the organization's `destination:complianceErrors` check in `report`.
fn compliance_status(report: &classy_sync_core::domain::health::HealthReport) -> HealthStatus {
    report.checks["destination:complianceErrors"]
        .iter()
        .map(|c| c.status)
        .next()
        .expect("one compliance check per organization")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_of_destination_compliance_refusals_fires_the_alert_once_then_clears() {
    let h = Harness::start(small(1)).await;
    let org = h.orgs[0];
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let root = root_with_clock(&h, clock.clone());
    let recorder = Arc::new(Recorder::default());
    let monitor = monitor(&h, &root);
    let alerts = Alerts::new(root.data(), recorder.clone(), default_rules());

    // Below the spike (10 in the current and previous hour): nothing fires.
    root.data().count_compliance_refusals(org, 9).await.unwrap();
    let report = monitor.run(Some("destination")).await;
    assert_eq!(compliance_status(&report), HealthStatus::Pass);
    alerts.evaluate(&report).await.unwrap();
    assert!(recorder.messages().is_empty());

    // Three more refusals, as a push reports them: the check fails, the alert fires once.
    root.data().count_compliance_refusals(org, 3).await.unwrap();
    for _ in 0..2 {
        let report = monitor.run(Some("destination")).await;
        assert_eq!(compliance_status(&report), HealthStatus::Fail);
        alerts.evaluate(&report).await.unwrap();
    }
    let firing: Vec<_> = recorder
        .messages()
        .into_iter()
        .filter(|m| m.kind == MessageKind::AlertFiring)
        .collect();
    assert_eq!(firing.len(), 1, "{firing:#?}");
    assert!(
        firing[0].text.contains("12 compliance refusals"),
        "{}",
        firing[0].text
    );

    // Two hours on, both counted hours are behind: the check passes again.
    clock.advance(chrono::Duration::hours(2));
    let report = monitor.run(Some("destination")).await;
    assert_eq!(compliance_status(&report), HealthStatus::Pass);
    alerts.evaluate(&report).await.unwrap();
    assert_eq!(
        recorder
            .messages()
            .iter()
            .filter(|m| m.kind == MessageKind::AlertFiring)
            .count(),
        1
    );
}

/// The reproduction from review: two supporters Classy sends malformed (an object where a
/// name belongs, a word where a boolean belongs) in an organization of 400 used to fail its
/// supporter sync on every run, with no good supporter stored. Now they are quarantined, the
/// rest is stored, the count shows on the run and in status, one alert fires once without
/// quoting donor values, and fixed versions release them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_quarantined_and_the_rest_is_synced() {
    let h = Harness::start(SandboxConfig {
        supporters: 400,
        ..small(1)
    })
    .await;
    let org = h.orgs[0];
    let ids: Vec<u64> = h
        .truth(org, Entity::Supporters)
        .await
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 400);
    let (bad_name, bad_flag) = (ids[17], ids[301]);
    let corrupt = |id: u64| h.admin(&format!("/orgs/{org}/supporters/{id}/corrupt"));
    for (id, fields) in [
        (
            bad_name,
            json!({"first_name": {"given": "Rosalind", "family": "Franklin"}}),
        ),
        (bad_flag, json!({"opt_in": "perhaps-tomorrow"})),
    ] {
        let r = h.http.put(corrupt(id)).json(&fields).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    let hr = &h;
    let run = |mode| async move {
        hr.sync
            .sync_entity(org, Entity::Supporters, mode, &RunControl::default())
            .await
            .unwrap()
    };
    let first = run(classy_sync_core::engine::SyncMode::Auto).await;
    assert_eq!(first.outcome, SyncOutcome::Succeeded, "{first:?}");
    assert_eq!(first.quarantined, 2, "{first:?}");
    assert_eq!(first.created, 398, "{first:?}");
    let status = h.data.status(Some(org)).await.unwrap();
    let supporters = status
        .iter()
        .find(|s| s.entity == Entity::Supporters)
        .unwrap();
    assert_eq!(supporters.quarantined, 2);
    let kept =
        classy_sync_core::engine::quarantine::list(h.data.store.as_ref(), org, Entity::Supporters)
            .await
            .unwrap();
    let mut kept_ids: Vec<u64> = kept.iter().filter_map(|q| q.id).collect();
    kept_ids.sort_unstable();
    assert_eq!(kept_ids, vec![bad_name, bad_flag]);
    assert!(kept.iter().any(|q| q.raw.contains("Rosalind")), "raw kept");
    for q in &kept {
        assert!(
            !q.reason.contains("Rosalind") && !q.reason.contains("perhaps"),
            "{}",
            q.reason
        );
    }

    // Health warns, the alert fires once (not again on the next evaluation).
    let recorder = Arc::new(Recorder::default());
    let alerts = Alerts::new(h.root.data(), recorder.clone(), default_rules());
    let mon = monitor(&h, &h.root);
    for _ in 0..2 {
        let report = mon.run(None).await;
        let q: Vec<CheckResult> = report
            .results()
            .filter(|r| r.key == "sync:quarantinedRecords" && r.status != HealthStatus::Pass)
            .collect();
        assert_eq!(q.len(), 1, "{q:?}");
        alerts.evaluate(&report).await.unwrap();
    }
    let fired: Vec<Message> = recorder
        .messages()
        .into_iter()
        .filter(|m| m.subject.contains("quarantined") || m.text.contains("do not decode"))
        .collect();
    assert_eq!(fired.len(), 1, "{:#?}", recorder.messages());
    for m in recorder.messages() {
        let all = format!("{m:?}");
        assert!(
            !all.contains("Rosalind") && !all.contains("perhaps-tomorrow"),
            "{all}"
        );
    }

    // Classy sends versions that decode: they are stored and released.
    for id in [bad_name, bad_flag] {
        let r = h.http.delete(corrupt(id)).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    h.post(
        &format!("/orgs/{org}/supporters/touch"),
        json!({"ids": [bad_name, bad_flag]}),
    )
    .await;
    let second = run(classy_sync_core::engine::SyncMode::Auto).await;
    assert_eq!(second.outcome, SyncOutcome::Succeeded, "{second:?}");
    assert_eq!(second.quarantined, 0, "{second:?}");
    let status = h.data.status(Some(org)).await.unwrap();
    assert!(status.iter().all(|s| s.quarantined == 0), "{status:?}");
    h.assert_matches_truth(org, Entity::Supporters).await;
    let report = mon.run(None).await;
    assert!(report
        .results()
        .filter(|r| r.key == "sync:quarantinedRecords")
        .all(|r| r.status == HealthStatus::Pass));
}
