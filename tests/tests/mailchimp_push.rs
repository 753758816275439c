//! The Mailchimp destination against the sandbox over real sockets: after a sync and a push
//! the audience equals the consent-filtered truth computed here, independently, from the
//! sandbox's Classy records (admin API); consent is never violated; tags follow segments
//! both ways; refunds change giving fields; a killed push resumes; 429s and the in-flight
//! cap are survived; per-member errors are reported, not fatal.

use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::{Entity, Timestamp};
use classy_sync_core::engine::plugins::{PluginRun, PushOptions};
use classy_sync_core::engine::{EngineOptions, RunControl, SyncMode, SyncOutcome};
use classy_sync_core::ports::{ExpiryOnly, PushReport};
use classy_sync_tests::mailchimp::MailchimpEndpoint;
use classy_sync_tests::Harness;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LIST: &str = "sandboxlist";

fn config(supporters: usize, transactions: usize, seed: u64) -> SandboxConfig {
    SandboxConfig {
        seed,
        orgs: 1,
        apps: 1,
        supporters,
        campaigns: 5,
        transactions,
        plans: supporters / 8,
        ..SandboxConfig::default()
    }
}

async fn sync(h: &Harness, org: u64, mode: SyncMode) {
    for r in h.sync.sync_org(org, mode, &RunControl::default()).await {
        let r = r.unwrap();
        assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
    }
}

async fn push(h: &Harness, org: u64, opts: PushOptions) -> PushReport {
    let runs: Vec<PluginRun> = h.plugins.push_org(org, &opts).await.unwrap();
    assert_eq!(runs.len(), 1);
    runs[0]
        .result
        .clone()
        .unwrap_or_else(|e| panic!("push failed: {e}"))
}

/// A full reconcile.
fn full() -> PushOptions {
    PushOptions {
        full: true,
        ..Default::default()
    }
}

// ---- The truth, computed here from the sandbox's Classy records ----

/// The sandbox's (Mailchimp's) idea of a valid address, written out independently.
fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.contains("..")
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(char::is_whitespace)
}

fn amount(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.replace(',', "").parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn ts(v: &Value) -> Option<Timestamp> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| Timestamp::parse(s).unwrap())
}

#[derive(Debug, Clone, PartialEq)]
struct Want {
    supporter: u64,
    opt_in: bool,
    fields: BTreeMap<String, Value>,
    tags: BTreeSet<String>,
}

/// Per lower-cased address: the supporter that owns it (latest update, then highest id),
/// its consent, the merge fields and the default segment tags.
async fn truth(h: &Harness, org: u64) -> BTreeMap<String, Want> {
    let supporters = h.truth(org, Entity::Supporters).await;
    let txns = h.truth(org, Entity::Transactions).await;
    let plans = h.truth(org, Entity::RecurringPlans).await;
    let now = chrono::Utc::now().timestamp();
    // gross total, count, first, last, largest
    let mut giving: HashMap<u64, (f64, u64, i64, i64, f64)> = HashMap::new();
    for t in txns.iter().filter(|t| t["status"] == "success") {
        let Some(s) = t["supporter_id"].as_u64() else {
            continue;
        };
        let date = ts(&t["purchased_at"])
            .or(ts(&t["created_at"]))
            .or(ts(&t["updated_at"]))
            .unwrap()
            .unix();
        let g = amount(&t["total_gross_amount"]);
        let e = giving.entry(s).or_insert((0.0, 0, i64::MAX, i64::MIN, 0.0));
        e.0 += g;
        e.1 += 1;
        e.2 = e.2.min(date);
        e.3 = e.3.max(date);
        e.4 = e.4.max(g);
    }
    let active: BTreeSet<u64> = plans
        .iter()
        .filter(|p| p["status"] == "active")
        .filter_map(|p| p["supporter_id"].as_u64())
        .collect();
    let day = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let mut owners: BTreeMap<String, (i64, u64, &Value)> = BTreeMap::new();
    for s in &supporters {
        let Some(email) = s["email_address"].as_str().map(str::trim) else {
            continue;
        };
        if !valid_email(email) {
            continue;
        }
        let key = (
            ts(&s["updated_at"]).unwrap().unix(),
            s["id"].as_u64().unwrap(),
            s,
        );
        let slot = owners.entry(email.to_lowercase()).or_insert(key);
        if (key.0, key.1) > (slot.0, slot.1) {
            *slot = key;
        }
    }
    let mut out = BTreeMap::new();
    for (email, (_, id, s)) in owners {
        let (gross, count, first, last, largest) =
            giving.get(&id).copied().unwrap_or((0.0, 0, 0, 0, 0.0));
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        let text = |v: &Value| json!(v.as_str().unwrap_or("").trim());
        let fields = BTreeMap::from([
            ("FNAME".to_string(), text(&s["first_name"])),
            ("LNAME".to_string(), text(&s["last_name"])),
            ("LIFETIME".to_string(), json!(r2(gross))),
            ("GIFTCOUNT".to_string(), json!(count)),
            (
                "FIRSTGIFT".to_string(),
                json!(if count > 0 { day(first) } else { String::new() }),
            ),
            (
                "LASTGIFT".to_string(),
                json!(if count > 0 { day(last) } else { String::new() }),
            ),
            ("LARGEST".to_string(), json!(r2(largest))),
            (
                "RECURRING".to_string(),
                json!(if active.contains(&id) { "Yes" } else { "No" }),
            ),
        ]);
        let mut tags = BTreeSet::new();
        let days = (now - last).div_euclid(86_400);
        if count > 0 && gross >= 1000.0 - 1e-9 {
            tags.insert("Major Donor".to_string());
        }
        if active.contains(&id) {
            tags.insert("Recurring Donor".to_string());
        }
        if count == 1 && days < 365 {
            tags.insert("First-Time Donor".to_string());
        }
        if count > 0 && (365..730).contains(&days) {
            tags.insert("Lapsed".to_string());
        }
        if count > 0 && days >= 730 {
            tags.insert("Lost".to_string());
        }
        out.insert(
            email,
            Want {
                supporter: id,
                opt_in: s["opt_in"].as_bool().unwrap_or(false),
                fields,
                tags,
            },
        );
    }
    out
}

/// The consent model: who should be in the audience with which status. Addresses enter as
/// subscribed only with consent; a withdrawn consent unsubscribes; an unsubscribed or cleaned
/// member never comes back.
#[derive(Default)]
struct ConsentModel {
    status: BTreeMap<String, String>,
}

impl ConsentModel {
    /// What one push does to the model, given the current truth.
    fn push(&mut self, truth: &BTreeMap<String, Want>) {
        for (email, w) in truth {
            match self.status.get(email).map(String::as_str) {
                None if w.opt_in => {
                    self.status.insert(email.clone(), "subscribed".into());
                }
                Some("subscribed") if !w.opt_in => {
                    self.status.insert(email.clone(), "unsubscribed".into());
                }
                _ => {}
            }
        }
    }

    /// The person acted in Mailchimp.
    fn said_no(&mut self, email: &str, status: &str) {
        self.status.insert(email.to_string(), status.to_string());
    }
}

/// Asserts the audience equals the model's statuses and the truth's fields and tags.
async fn assert_audience(
    h: &Harness,
    list: &str,
    truth: &BTreeMap<String, Want>,
    model: &ConsentModel,
) {
    let members = h.mc_members(list).await;
    let got: BTreeMap<String, &Value> = members
        .iter()
        .map(|m| (m["email_address"].as_str().unwrap().to_lowercase(), m))
        .collect();
    assert_eq!(got.len(), members.len(), "one member per address");
    let want: BTreeSet<&String> = model.status.keys().collect();
    let have: BTreeSet<&String> = got.keys().collect();
    assert_eq!(have, want, "audience members");
    for (email, status) in &model.status {
        let m = got[email];
        assert_eq!(m["status"], json!(status), "{email} status");
        let w = &truth[email];
        for (tag, v) in &w.fields {
            let g = &m["merge_fields"][tag];
            let same = match (v, g) {
                (Value::Number(a), Value::Number(b)) => {
                    (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 0.005
                }
                _ => v == g,
            };
            assert!(same, "{email} {tag}: want {v}, got {g}");
        }
        let tags: BTreeSet<String> = m["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .filter(|t| !t.starts_with("Hand"))
            .collect();
        assert_eq!(tags, w.tags, "{email} tags");
    }
    // Consent: nobody subscribed without opt-in today.
    for (email, m) in &got {
        if m["status"] == "subscribed" {
            assert!(
                truth.get(email).is_some_and(|w| w.opt_in),
                "{email} subscribed without consent"
            );
        }
    }
}

/// A synced organization with Mailchimp configured; the guard keeps
/// `MAILCHIMP_API_BASE_URL` on this test's sandbox.
async fn setup(cfg: SandboxConfig) -> (Harness, u64, MailchimpEndpoint) {
    let h = Harness::start(cfg).await;
    let mc = h.use_mailchimp_sandbox().await;
    let org = h.orgs[0];
    sync(&h, org, SyncMode::Full).await;
    h.configure_mailchimp(org, LIST, json!({})).await;
    (h, org, mc)
}

/// The first push with fresh counters; the audience must equal the truth afterwards.
async fn first_push(h: &Harness, org: u64) -> (PushReport, BTreeMap<String, Want>, ConsentModel) {
    h.mc_reset_counters().await;
    let report = push(h, org, PushOptions::default()).await;
    let truth = truth(h, org).await;
    let mut model = ConsentModel::default();
    model.push(&truth);
    assert_audience(h, LIST, &truth, &model).await;
    (report, truth, model)
}

#[tokio::test]
async fn audience_equals_consent_filtered_truth_and_an_idle_push_costs_nothing() {
    let (h, org, _mc) = setup(config(700, 2000, 11)).await;
    let (report, _, model) = first_push(&h, org).await;
    let consented = model.status.len() as u64;
    assert_eq!(report.sent, consented, "{report:?}");
    assert_eq!(report.get("create"), consented);
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(report.get("skipped_no_consent") > 0 && report.get("skipped_no_email") > 0);

    // Calls: one batch per 500 members plus merge-field setup (read once, 8 creates).
    let c = h.mc_counters().await;
    let batches = c["by_route"]["POST /lists/{id}"].as_u64().unwrap();
    assert_eq!(batches, consented.div_ceil(500), "{c}");
    assert_eq!(
        c["by_route"]["GET /lists/{id}/merge-fields"],
        json!(1),
        "{c}"
    );
    assert_eq!(
        // The sandbox list starts with FNAME and LNAME: only the other six are created.
        c["by_route"]["POST /lists/{id}/merge-fields"],
        json!(6),
        "{c}"
    );

    // Nothing changed: nothing is sent, and merge fields are not checked again.
    h.mc_reset_counters().await;
    let again = push(&h, org, PushOptions::default()).await;
    assert_eq!(again.sent, 0, "{again:?}");
    let full = push(&h, org, full()).await;
    assert_eq!(full.sent, 0, "{full:?}");
    assert_eq!(full.unchanged, consented);
    assert_eq!(h.mc_counters().await["requests"], json!(0));
    let state = h.plugins.plugin_state(org, "mailchimp").await.unwrap();
    assert_eq!(state.consecutive_failures, 0);
    assert!(state.cursor_ms.is_some() && state.last_reconcile_at.is_some());
}

#[tokio::test]
async fn consent_is_never_violated_over_a_randomized_run() {
    let (h, org, _mc) = setup(config(500, 1200, 23)).await;
    push(&h, org, PushOptions::default()).await;
    let mut model = ConsentModel::default();
    model.push(&truth(&h, org).await);
    let mut rng = fastrand::Rng::with_seed(99);
    let mut compliance = 0;
    let mut toggled: Vec<String> = Vec::new();
    for round in 0..5 {
        let current = truth(&h, org).await;
        let emails: Vec<&String> = current.keys().collect();
        // Classy: consent toggled for a few supporters, and toggled back for some of the
        // previous round's (re-consent after an unsubscribe); names changed for others.
        let mut now_toggled: Vec<String> = toggled.iter().take(6).cloned().collect();
        for _ in 0..10 {
            now_toggled.push(emails[rng.usize(..emails.len())].clone());
        }
        now_toggled.sort();
        now_toggled.dedup();
        toggled = now_toggled.clone();
        for e in &now_toggled {
            let w = &current[e];
            h.patch(
                org,
                Entity::Supporters,
                w.supporter,
                json!({"opt_in": !w.opt_in}),
            )
            .await;
        }
        for _ in 0..5 {
            let e = emails[rng.usize(..emails.len())];
            let name = format!("Renamed{round}");
            h.patch(
                org,
                Entity::Supporters,
                current[e].supporter,
                json!({"first_name": name}),
            )
            .await;
        }
        // Mailchimp: some members unsubscribe or are cleaned there.
        let members = h.mc_members(LIST).await;
        for _ in 0..4 {
            let m = &members[rng.usize(..members.len())];
            let status = if rng.bool() {
                "unsubscribed"
            } else {
                "cleaned"
            };
            h.mc_patch(
                &format!("/lists/{LIST}/members/{}", m["id"].as_str().unwrap()),
                json!({"status": status}),
            )
            .await;
            model.said_no(&m["email_address"].as_str().unwrap().to_lowercase(), status);
        }
        sync(&h, org, SyncMode::Incremental).await;
        let report = push(&h, org, PushOptions::default()).await;
        assert_eq!(report.failed, 0, "{report:?}");
        compliance += report.get("compliance_skipped");
        let t = truth(&h, org).await;
        model.push(&t);
        assert_audience(&h, LIST, &t, &model).await;
        // A full reconcile changes nothing and subscribes nobody.
        let full = push(&h, org, full()).await;
        assert_eq!(full.sent, 0, "round {round}: {full:?}");
    }
    // Re-consent in Classy after an unsubscribe meets Mailchimp's compliance rule.
    assert!(
        compliance > 0,
        "the run should have exercised compliance refusals"
    );
    let c = h.mc_counters().await;
    assert_eq!(
        c["compliance_rejections"].as_u64().unwrap(),
        compliance,
        "{c}"
    );
}

#[tokio::test]
async fn withdrawn_consent_unsubscribes_and_a_mailchimp_unsubscribe_is_kept() {
    let (h, org, _mc) = setup(config(300, 600, 5)).await;
    push(&h, org, PushOptions::default()).await;
    let t = truth(&h, org).await;
    let mut subscribed = t.iter().filter(|(_, w)| w.opt_in);
    let (a_email, a) = subscribed.next().unwrap();
    let (b_email, b) = subscribed.next().unwrap();
    let b_hash = classy_sync_destinations::mailchimp_api::subscriber_hash(b_email);

    // A withdraws consent in Classy.
    h.patch(
        org,
        Entity::Supporters,
        a.supporter,
        json!({"opt_in": false}),
    )
    .await;
    // B unsubscribes in Mailchimp, and is renamed in Classy (still opted in there).
    h.mc_patch(
        &format!("/lists/{LIST}/members/{b_hash}"),
        json!({"status": "unsubscribed"}),
    )
    .await;
    h.patch(
        org,
        Entity::Supporters,
        b.supporter,
        json!({"first_name": "Bea"}),
    )
    .await;
    sync(&h, org, SyncMode::Incremental).await;

    let dry = push(
        &h,
        org,
        PushOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(dry.sent, 2, "{dry:?}");
    assert!(
        dry.diff
            .iter()
            .any(|l| l.starts_with("unsubscribe ") && l.to_lowercase().contains(a_email.as_str())),
        "{:?}",
        dry.diff
    );
    assert!(
        dry.diff
            .iter()
            .any(|l| l.contains("FNAME") && l.contains("Bea")),
        "{:?}",
        dry.diff
    );
    // The dry run wrote nothing.
    let members = h.mc_members(LIST).await;
    let a_member = members
        .iter()
        .find(|m| {
            m["email_address"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(a_email)
        })
        .unwrap();
    assert_eq!(a_member["status"], "subscribed");

    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.get("unsubscribe"), 1, "{report:?}");
    assert_eq!(report.get("compliance_skipped"), 0, "{report:?}");
    let members = h.mc_members(LIST).await;
    let find = |e: &str| {
        members
            .iter()
            .find(|m| m["email_address"].as_str().unwrap().eq_ignore_ascii_case(e))
            .unwrap()
            .clone()
    };
    assert_eq!(find(a_email)["status"], "unsubscribed");
    let bm = find(b_email);
    assert_eq!(
        bm["status"], "unsubscribed",
        "a Mailchimp unsubscribe is never overridden"
    );
    assert_eq!(
        bm["merge_fields"]["FNAME"], "Bea",
        "fields still follow Classy"
    );

    // A opts in again in Classy: Mailchimp refuses (compliance), counted, never an error.
    h.patch(
        org,
        Entity::Supporters,
        a.supporter,
        json!({"opt_in": true}),
    )
    .await;
    sync(&h, org, SyncMode::Incremental).await;
    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.get("compliance_skipped"), 1, "{report:?}");
    assert_eq!(report.failed, 0);
    // And is not asked again.
    let again = push(&h, org, full()).await;
    assert_eq!(
        (again.sent, again.get("compliance_skipped")),
        (0, 0),
        "{again:?}"
    );
}

#[tokio::test]
async fn segment_changes_move_tags_both_ways_and_refunds_change_giving_fields() {
    let (h, org, _mc) = setup(config(300, 600, 8)).await;
    push(&h, org, PushOptions::default()).await;
    let t = truth(&h, org).await;
    // A consented supporter who has never given and is not a duplicate address.
    let (email, w) = t
        .iter()
        .find(|(_, w)| w.opt_in && w.fields["GIFTCOUNT"] == json!(0))
        .expect("a consented non-donor");
    let hash = classy_sync_destinations::mailchimp_api::subscriber_hash(email);
    // A tag the nonprofit set by hand must survive.
    let key = h.sandbox.mailchimp_api_key();
    let r = h
        .http
        .post(format!(
            "{}/lists/{LIST}/members/{hash}/tags",
            h.sandbox.mailchimp_api_base_url()
        ))
        .basic_auth("x", Some(&key))
        .json(&json!({"tags": [{"name": "Hand Picked", "status": "active"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string();
    let gift = h
        .post(
            &format!("/orgs/{org}/transactions"),
            json!({"supporter_id": w.supporter, "status": "success", "total_gross_amount": 1500.0,
                   "donation_gross_amount": 1500.0, "donation_net_amount": 1450.0,
                   "purchased_at": now, "created_at": now}),
        )
        .await;
    sync(&h, org, SyncMode::Incremental).await;
    let report = push(&h, org, PushOptions::default()).await;
    assert!(report.sent >= 1, "{report:?}");
    let t = truth(&h, org).await;
    assert_eq!(
        t[email].tags,
        BTreeSet::from(["Major Donor".to_string(), "First-Time Donor".to_string()])
    );
    let mut model = ConsentModel::default();
    for m in h.mc_members(LIST).await {
        model.said_no(
            &m["email_address"].as_str().unwrap().to_lowercase(),
            m["status"].as_str().unwrap(),
        );
    }
    assert_audience(&h, LIST, &t, &model).await;

    // Refunded: the giving fields drop and both segment tags go; the hand-set tag stays.
    h.patch(
        org,
        Entity::Transactions,
        gift["id"].as_u64().unwrap(),
        json!({"status": "refunded"}),
    )
    .await;
    sync(&h, org, SyncMode::Incremental).await;
    h.mc_reset_counters().await;
    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.get("tags_removed"), 2, "{report:?}");
    let c = h.mc_counters().await;
    // One call per tag; the segment ids came back with the member written in the same run.
    assert_eq!(c["by_route"]["GET /lists/{id}/segments"], json!(0), "{c}");
    assert_eq!(
        c["by_route"]["POST /lists/{id}/segments/{segment_id}"],
        json!(2),
        "{c}"
    );
    let t = truth(&h, org).await;
    assert!(t[email].tags.is_empty());
    assert_eq!(t[email].fields["LIFETIME"], json!(0.0));
    assert_audience(&h, LIST, &t, &model).await;
    let m = h
        .mc_members(LIST)
        .await
        .into_iter()
        .find(|m| m["id"] == json!(hash))
        .unwrap();
    assert_eq!(m["tags"], json!(["Hand Picked"]));
    assert_eq!(m["merge_fields"]["GIFTCOUNT"], json!(0));
}

#[tokio::test]
async fn batches_fill_across_change_sets_and_tags_leave_500_members_per_call() {
    // 12,000 supporters: a reconcile hands the destination three change sets.
    let (h, org, _mc) = setup(config(12_000, 8_000, 5)).await;
    let (report, truth, model) = first_push(&h, org).await;
    let consented = model.status.len() as u64;
    assert!(consented > 5_000, "{consented}");
    let c = h.mc_counters().await;
    // Batches are filled across change sets: only the very last one is partly filled.
    assert_eq!(
        c["by_route"]["POST /lists/{id}"],
        json!(consented.div_ceil(500)),
        "{c}"
    );
    // Supporters sharing an address were settled before anything was sent: no member
    // changed hands, so no tag had to be taken off again.
    assert!(report.get("duplicate_address_skipped") > 0, "{report:?}");
    assert_eq!(report.get("tags_removed"), 0, "{report:?}");
    assert_eq!(
        c["requests"],
        c["by_route"]["POST /lists/{id}"].as_u64().unwrap() + 7,
        "{c}"
    );

    // Only "Major Donor" stays a segment: every other segment tag leaves its members
    // through the tag's segment, 500 members per call, never one call per member.
    let mut leaving: BTreeMap<String, u64> = BTreeMap::new();
    let mut changed = 0u64;
    for m in h.mc_members(LIST).await {
        let tags: Vec<&str> = m["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .filter(|t| *t != "Major Donor")
            .collect();
        changed += u64::from(!tags.is_empty());
        for t in tags {
            *leaving.entry(t.to_string()).or_default() += 1;
        }
    }
    assert!(leaving.values().any(|n| *n > 500), "{leaving:?}");
    let major_only =
        serde_json::to_value(&classy_sync_core::domain::segments::default_rules()[..1]).unwrap();
    h.configure_mailchimp(org, LIST, json!({ "segments": major_only }))
        .await;
    h.mc_reset_counters().await;
    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.get("tags_removed"), leaving.values().sum::<u64>());
    let c = h.mc_counters().await;
    let by_route = |r: &str| c["by_route"][r].as_u64().unwrap_or(0);
    assert_eq!(
        by_route("POST /lists/{id}/segments/{segment_id}"),
        leaving.values().map(|n| n.div_ceil(500)).sum::<u64>(),
        "{c}"
    );
    // The tags' segment ids come back with the members written in the same run: no lookup.
    assert_eq!(by_route("GET /lists/{id}/segments"), 0, "{c}");
    assert_eq!(by_route("POST /lists/{id}/members/{hash}/tags"), 0, "{c}");
    assert_eq!(by_route("POST /lists/{id}"), changed.div_ceil(500), "{c}");
    for m in h.mc_members(LIST).await {
        let email = m["email_address"].as_str().unwrap().to_lowercase();
        let want: Vec<&str> = if truth[&email].tags.contains("Major Donor") {
            vec!["Major Donor"]
        } else {
            vec![]
        };
        assert_eq!(m["tags"], json!(want), "{email}");
    }
    // Nothing is left half done: the next reconcile has nothing to send.
    let again = push(&h, org, full()).await;
    assert_eq!(again.sent + again.get("tags_removed"), 0, "{again:?}");
}

#[tokio::test]
async fn a_killed_push_resumes_without_duplicates_or_lost_updates() {
    let (h, org, _mc) = setup(config(1500, 2000, 31)).await;
    // A second process on the same data, with short leases (a killed holder's lease expires).
    let mut plugins = Harness::plugins_on(h.dir.path()).with_liveness(Arc::new(ExpiryOnly));
    plugins.data = plugins.data.with_options(EngineOptions {
        lease_ttl: Duration::from_secs(1),
        ..EngineOptions::default()
    });
    h.configure_mailchimp(org, LIST, json!({"batch_size": 50}))
        .await;
    h.mc_put("/faults", json!({"delay_ms": 150})).await;
    // Killed as soon as the first batches have landed.
    let task = {
        let plugins = plugins.clone();
        tokio::spawn(async move { plugins.push_org(org, &PushOptions::default()).await })
    };
    let started = std::time::Instant::now();
    while h.mc_members(LIST).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no batch landed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert!(
        task.await.unwrap_err().is_cancelled(),
        "the push was still running when killed"
    );
    h.mc_put("/faults", json!({})).await;
    let partial = h.mc_members(LIST).await.len();
    assert!(partial > 0, "some batches landed before the kill");
    // Meanwhile a supporter changes in Classy.
    let t = truth(&h, org).await;
    let (email, w) = t.iter().find(|(_, w)| w.opt_in).unwrap();
    h.patch(
        org,
        Entity::Supporters,
        w.supporter,
        json!({"last_name": "Resumed"}),
    )
    .await;
    sync(&h, org, SyncMode::Incremental).await;

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let runs = plugins
        .push_org(org, &PushOptions::default())
        .await
        .unwrap();
    let report = runs[0].result.clone().unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let t = truth(&h, org).await;
    let mut model = ConsentModel::default();
    model.push(&t);
    assert_audience(&h, LIST, &t, &model).await;
    assert!(partial < model.status.len(), "the kill left work to resume");
    let m = h
        .mc_members(LIST)
        .await
        .into_iter()
        .find(|m| {
            m["email_address"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(email)
        })
        .unwrap();
    assert_eq!(m["merge_fields"]["LNAME"], "Resumed");
    let again = plugins.push_org(org, &full()).await.unwrap();
    assert_eq!(again[0].result.as_ref().unwrap().sent, 0);
}

#[tokio::test]
async fn rate_limits_and_the_in_flight_cap_are_survived() {
    let (h, org, _mc) = setup(config(2000, 2500, 41)).await;
    h.configure_mailchimp(org, LIST, json!({"batch_size": 50}))
        .await;
    // Slow answers, so requests overlap as they do against the real API.
    h.mc_put("/faults", json!({"delay_ms": 40})).await;
    h.mc_reset_counters().await;
    push(&h, org, PushOptions::default()).await;
    let c = h.mc_counters().await;
    let max = c["max_in_flight"].as_u64().unwrap();
    assert!(max > 1 && max <= 10, "{c}");
    assert_eq!(c["rejected_concurrency"], json!(0), "{c}");

    // Another list, a stricter cap than ours and random 429s: everything still lands.
    h.mc_list("second", "Second").await;
    h.configure_mailchimp(org, "second", json!({"batch_size": 50}))
        .await;
    h.mc_put("/concurrency", json!({"limit": 3})).await;
    h.mc_put(
        "/faults",
        json!({"rate_429": 0.2, "seed": 5, "delay_ms": 40}),
    )
    .await;
    h.mc_reset_counters().await;
    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.failed, 0, "{report:?}");
    let c = h.mc_counters().await;
    assert!(c["rejected_concurrency"].as_u64().unwrap() > 0, "{c}");
    h.mc_put("/faults", json!({})).await;
    let t = truth(&h, org).await;
    let mut model = ConsentModel::default();
    model.push(&t);
    assert_audience(&h, "second", &t, &model).await;

    // A destination that keeps failing fails this plugin only, and is recorded.
    h.mc_post(
        "/faults/script",
        json!({"responses": [500, 500, 500, 500, 500, 500, 500, 500, 500, 500]}),
    )
    .await;
    let sup = t.values().find(|w| w.opt_in).unwrap().supporter;
    h.patch(
        org,
        Entity::Supporters,
        sup,
        json!({"first_name": "Failing"}),
    )
    .await;
    sync(&h, org, SyncMode::Incremental).await;
    let runs = h
        .plugins
        .push_org(org, &PushOptions::default())
        .await
        .unwrap();
    let err = runs[0].result.clone().unwrap_err();
    assert!(err.contains("500"), "{err}");
    assert!(
        !err.contains(&h.sandbox.mailchimp_api_key()),
        "the key never shows"
    );
    let state = h.plugins.plugin_state(org, "mailchimp").await.unwrap();
    assert_eq!(state.consecutive_failures, 1);
    h.mc_delete("/faults/script").await;
    // The change was not lost: the cursor stayed put.
    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.sent, 1, "{report:?}");
}

#[tokio::test]
async fn per_member_errors_are_reported_not_fatal() {
    let (h, org, _mc) = setup(config(200, 300, 3)).await;
    let bad = h
        .post(
            &format!("/orgs/{org}/supporters"),
            json!({"first_name": "Bad", "email_address": "bad.address@example..org", "opt_in": true}),
        )
        .await;
    sync(&h, org, SyncMode::Incremental).await;
    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.failed, 1, "{report:?}");
    assert!(
        report.errors[0].contains("bad.address@example..org"),
        "{:?}",
        report.errors
    );
    assert!(report.sent > 50);
    let t = truth(&h, org).await;
    let mut model = ConsentModel::default();
    model.push(&t);
    assert_audience(&h, LIST, &t, &model).await;
    assert!(bad["id"].as_u64().is_some());
}

/// Regression: the change feed keeps one `PLUGIN#change-feed#SENT#…` item per delivered
/// record, and they sort before `PLUGIN#mailchimp#CONFIG`. Plugin configurations used to be
/// read from the first 1,000 items under `PLUGIN#`, so after about 1,000 deliveries Mailchimp
/// silently dropped out of pushes, schedules, health checks and listings.
#[tokio::test]
async fn mailchimp_stays_configured_after_many_change_feed_deliveries() {
    use classy_sync_core::domain::keys::org_pk;
    use classy_sync_core::engine::health::DestinationProbe;
    use classy_sync_core::engine::plugin_health::PluginProbe;
    use classy_sync_core::ports::{Item, PluginConfig, WriteOp};
    use classy_sync_destinations::change_feed::{event::Kind, sent_sk};

    let (h, org, _mc) = setup(config(120, 300, 5)).await;
    h.plugins
        .put_plugin_config(
            org,
            PluginConfig {
                plugin: "change-feed".into(),
                enabled: true,
                settings: json!({"target": "eventbridge", "event_bus": "acme-feed"}),
                secret_name: None,
            },
        )
        .await
        .unwrap();
    // What 1,500 acknowledged change-feed deliveries leave behind.
    let pk = org_pk(org);
    let sent: Vec<WriteOp> = (0..1500u64)
        .map(|id| {
            WriteOp::Put(Item::new(
                &pk,
                sent_sk(Kind::Supporter, id),
                r#"{"digest":"x"}"#,
            ))
        })
        .collect();
    for chunk in sent.chunks(25) {
        h.data.store.batch_write(chunk.to_vec()).await.unwrap();
    }

    // Listed (what `org plugin show` prints).
    let names: Vec<String> = h
        .plugins
        .plugin_configs(org)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.plugin)
        .collect();
    assert_eq!(names, ["change-feed", "mailchimp"]);
    // Scheduled.
    let due = h.plugins.due_pushes().await.unwrap();
    assert!(due.contains(&(org, "mailchimp".to_string())), "{due:?}");
    // Health-checked.
    let health = PluginProbe(h.plugins.clone()).probe(org).await;
    let mc = health.iter().find(|d| d.name == "mailchimp");
    assert!(mc.is_some_and(|d| d.ok), "{health:?}");
    // Pushed.
    let report = push(
        &h,
        org,
        PushOptions {
            plugin: Some("mailchimp".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(report.sent > 0, "{report:?}");
}

/// Calls the sandbox's Mailchimp API (`/3.0`) with its key, as the nonprofit's own tools would.
async fn mc_api(h: &Harness, path: &str, body: Value) -> Value {
    let r = h
        .http
        .post(format!("{}{path}", h.sandbox.mailchimp_api_base_url()))
        .basic_auth("x", Some(h.sandbox.mailchimp_api_key()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// Issue 12, item 2: members Mailchimp refuses as "in a compliance state" (people who left
/// there before the first push) are counted as compliance-skipped once and never re-sent,
/// neither in the same push nor in the next; acknowledged members are not re-sent either; a
/// refused member whose data changes afterwards is sent again (its status left alone).
#[tokio::test]
async fn compliance_refusals_are_final_and_no_member_is_sent_twice() {
    let (h, org, _mc) = setup(config(2500, 3000, 17)).await;
    let t = truth(&h, org).await;
    let consented: Vec<(&String, &Want)> = t.iter().filter(|(_, w)| w.opt_in).collect();
    let n = consented.len() as u64;
    // Enough refusals that re-sending them would take one more call than the audience needs.
    let refused_n = (500 - n % 500 + 1) as usize;
    assert!(refused_n < consented.len() / 2, "{n}");
    let refused: Vec<(&String, &Want)> = consented.iter().rev().take(refused_n).copied().collect();
    // They unsubscribed in Mailchimp before classy-sync ever wrote to the audience.
    for chunk in refused.chunks(500) {
        let members: Vec<Value> = chunk
            .iter()
            .map(|(e, _)| json!({"email_address": e, "status": "unsubscribed"}))
            .collect();
        let v = mc_api(
            &h,
            &format!("/lists/{LIST}"),
            json!({"members": members, "update_existing": true}),
        )
        .await;
        assert_eq!(v["error_count"], json!(0), "{v}");
    }

    h.mc_reset_counters().await;
    let report = push(&h, org, PushOptions::default()).await;
    let c = h.mc_counters().await;
    let batches = c["by_route"]["POST /lists/{id}"].as_u64().unwrap();
    eprintln!(
        "compliance case: {n} members ({refused_n} refused) -> {batches} batch calls (want {})",
        n.div_ceil(500)
    );
    assert_eq!(batches, n.div_ceil(500), "no member is sent twice: {c}");
    assert_eq!(
        report.get("compliance_skipped"),
        refused_n as u64,
        "{report:?}"
    );
    assert_eq!(report.sent, n - refused_n as u64, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(c["compliance_rejections"], json!(refused_n), "{c}");
    let members = h.mc_members(LIST).await;
    let status = |members: &[Value], e: &str| -> Value {
        members
            .iter()
            .find(|m| m["email_address"].as_str().unwrap().eq_ignore_ascii_case(e))
            .map(|m| m["status"].clone())
            .unwrap_or(Value::Null)
    };
    for (e, _) in &refused {
        assert_eq!(status(&members, e), json!("unsubscribed"), "{e}");
    }
    let subscribed = members
        .iter()
        .filter(|m| m["status"] == "subscribed")
        .count();
    assert_eq!(subscribed as u64, n - refused_n as u64);

    // The next pushes, incremental and full: nothing is sent, refused or acknowledged.
    h.mc_reset_counters().await;
    let again = push(&h, org, PushOptions::default()).await;
    let full_again = push(&h, org, full()).await;
    for r in [&again, &full_again] {
        assert_eq!((r.sent, r.get("compliance_skipped")), (0, 0), "{r:?}");
    }
    assert_eq!(full_again.unchanged, n, "{full_again:?}");
    assert_eq!(h.mc_counters().await["requests"], json!(0));

    // Data changes in Classy for one refused and one acknowledged member: both are sent
    // again, in one call, and the refused one stays unsubscribed.
    let (refused_email, refused_w) = refused[0];
    let (acked_email, acked_w) = consented[0];
    for w in [refused_w, acked_w] {
        h.patch(
            org,
            Entity::Supporters,
            w.supporter,
            json!({"first_name": "Changed"}),
        )
        .await;
    }
    sync(&h, org, SyncMode::Incremental).await;
    h.mc_reset_counters().await;
    let changed = push(&h, org, PushOptions::default()).await;
    assert_eq!(
        (
            changed.sent,
            changed.get("update"),
            changed.get("compliance_skipped")
        ),
        (2, 2, 0),
        "{changed:?}"
    );
    let c = h.mc_counters().await;
    assert_eq!(c["by_route"]["POST /lists/{id}"], json!(1), "{c}");
    assert_eq!(c["compliance_rejections"], json!(0), "{c}");
    let members = h.mc_members(LIST).await;
    for (e, want) in [(refused_email, "unsubscribed"), (acked_email, "subscribed")] {
        let m = members
            .iter()
            .find(|m| m["email_address"].as_str().unwrap().eq_ignore_ascii_case(e))
            .unwrap();
        assert_eq!(m["status"], json!(want), "{e}");
        assert_eq!(m["merge_fields"]["FNAME"], json!("Changed"), "{e}");
    }
    let last = push(&h, org, full()).await;
    assert_eq!(last.sent, 0, "{last:?}");
}

/// A loopback listener that answers every request with `reply` (a whole HTTP response) and
/// counts the requests it received.
async fn listener(reply: String) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0;
            while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf[got..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = s.write_all(reply.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    (addr, hits)
}

const OK_PING: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";

/// Issue 12, item 9: an organization's `api_base_url` can only name a Mailchimp data center
/// (the API key goes there as Basic auth); a plain-http loopback URL is refused, naming the
/// field, and the listener behind it receives nothing, also when such a setting was stored
/// before the rule.
#[tokio::test]
async fn a_per_organization_base_url_other_than_mailchimp_is_refused_and_gets_nothing() {
    use classy_sync_core::domain::keys::{org_pk, plugin_config_sk};
    use classy_sync_core::ports::{Condition, Item, PluginConfig};
    let (h, org, _mc) = setup(config(40, 60, 7)).await;
    let (addr, hits) = listener(OK_PING.to_string()).await;
    let bad = PluginConfig {
        plugin: "mailchimp".into(),
        enabled: true,
        settings: json!({"list_id": LIST, "api_base_url": format!("http://{addr}/3.0")}),
        secret_name: Some(classy_sync_core::ports::destination::plugin_secret_name(
            org,
            "mailchimp",
        )),
    };
    let e = h
        .plugins
        .put_plugin_config(org, bad.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("api_base_url") && e.contains("https://<dc>.api.mailchimp.com"),
        "{e}"
    );
    assert!(
        !e.contains(&addr.to_string()),
        "the value is not echoed: {e}"
    );
    // Stored before the rule (written past the check): the push fails on the same rule.
    h.data
        .store
        .put(
            Item::json(org_pk(org), plugin_config_sk("mailchimp"), &bad),
            Condition::Always,
        )
        .await
        .unwrap();
    let runs = h
        .plugins
        .push_org(org, &PushOptions::default())
        .await
        .unwrap();
    let err = runs[0].result.clone().unwrap_err();
    assert!(err.contains("api_base_url"), "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the key went to the listener"
    );
}

/// Issue 12, item 9: the Mailchimp client follows no redirect (it would carry the key to
/// wherever the redirect points): a 307 fails the push and the target hears nothing.
#[tokio::test]
async fn a_mailchimp_redirect_is_not_followed() {
    let (h, org, _mc) = setup(config(40, 60, 7)).await;
    let (target, target_hits) = listener(OK_PING.to_string()).await;
    let (redirector, redirector_hits) = listener(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{target}/3.0/ping\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ))
    .await;
    // The deployment's override, as the sandbox is set (this test holds the variable's turn).
    std::env::set_var(
        classy_sync_destinations::mailchimp::settings::BASE_URL_ENV,
        format!("http://{redirector}/3.0"),
    );
    let runs = h
        .plugins
        .push_org(org, &PushOptions::default())
        .await
        .unwrap();
    let err = runs[0].result.clone().unwrap_err();
    assert!(err.contains("307"), "{err}");
    assert!(!err.contains(&h.sandbox.mailchimp_api_key()), "{err}");
    assert!(redirector_hits.load(Ordering::SeqCst) >= 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

/// Issue 15: three processes (three local roots on one data directory, each its own
/// semaphore instance) push three organizations that share one Mailchimp key, at once. The
/// key never has more than 4 requests in flight at the sandbox (the default of Mailchimp's
/// 10), none is refused, and every audience is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushers_sharing_a_key_never_exceed_its_in_flight_limit() {
    use classy_sandbox::mailchimp::counters::key_fingerprint;
    let h = Harness::start(SandboxConfig {
        orgs: 3,
        ..config(400, 600, 17)
    })
    .await;
    let _mc = h.use_mailchimp_sandbox().await;
    let orgs = h.orgs.clone();
    assert_eq!(orgs.len(), 3);
    for (i, org) in orgs.iter().enumerate() {
        sync(&h, *org, SyncMode::Full).await;
        let list = format!("shared{i}");
        h.mc_list(&list, &list).await;
        // Small batches: each push has many requests to overlap.
        h.configure_mailchimp(*org, &list, json!({"batch_size": 20}))
            .await;
    }
    // Slow answers, so requests overlap as they do against the real API.
    h.mc_put("/faults", json!({"delay_ms": 40})).await;
    h.mc_reset_counters().await;
    let processes = [
        h.plugins.clone(),
        Harness::plugins_on(h.dir.path()),
        Harness::plugins_on(h.dir.path()),
    ];
    let opts = PushOptions::default();
    let pushes = processes
        .iter()
        .zip(&orgs)
        .map(|(p, org)| p.push_org(*org, &opts));
    let runs = futures::future::join_all(pushes).await;
    let c = h.mc_counters().await;
    let key = &c["by_key"][key_fingerprint(&h.sandbox.mailchimp_api_key())];
    let peak = key["max_in_flight"].as_u64().unwrap();
    println!("peak in flight for the key: {peak}; {c}");
    assert!(peak <= 4, "{peak} requests in flight for one key: {c}");
    assert!(peak >= 2, "the pushes overlapped: {c}");
    assert_eq!(key["rejected_concurrency"], json!(0), "{c}");
    for (i, (org, r)) in orgs.iter().zip(runs).enumerate() {
        let r = r.unwrap();
        let report = r[0].result.clone().unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        assert!(report.get("api_calls") >= 5, "{report:?}");
        let t = truth(&h, *org).await;
        let mut model = ConsentModel::default();
        model.push(&t);
        assert_audience(&h, &format!("shared{i}"), &t, &model).await;
    }
    // Every place came back.
    use classy_sync_core::domain::keys::{mailchimp_semaphore_sk, SEMAPHORE_PK};
    use classy_sync_destinations::mailchimp_api::key_digest;
    let sk = mailchimp_semaphore_sk(&key_digest(&h.sandbox.mailchimp_api_key()));
    let item = h.data.store.get(SEMAPHORE_PK, &sk).await.unwrap().unwrap();
    let holders: classy_sync_core::domain::semaphore::Holders = item.parse().unwrap();
    assert!(holders.holders.is_empty(), "{holders:?}");
    assert!(!item.data.contains(&h.sandbox.mailchimp_api_key()));
    h.mc_put("/faults", json!({})).await;
}

/// Issue 15: a 429, an empty 403 and a 403 whose body is an HTML page (the network in front
/// of Mailchimp under load) are throttling: retried with backoff, and the push completes. A
/// 403 problem document (a real permission error) fails the push at once.
#[tokio::test]
async fn throttling_answers_are_retried_and_a_real_403_is_not() {
    let (h, org, _mc) = setup(config(200, 300, 23)).await;
    first_push(&h, org).await;
    let t = truth(&h, org).await;
    let changed: Vec<u64> = t
        .values()
        .filter(|w| w.opt_in)
        .take(3)
        .map(|w| w.supporter)
        .collect();
    for (i, sup) in changed.iter().enumerate() {
        h.patch(
            org,
            Entity::Supporters,
            *sup,
            json!({"first_name": format!("Throttled{i}")}),
        )
        .await;
    }
    sync(&h, org, SyncMode::Incremental).await;
    h.mc_reset_counters().await;
    h.mc_post(
        "/faults/script",
        json!({"responses": ["403-html", 429, 403, "403-html"]}),
    )
    .await;
    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.sent, 3, "{report:?}");
    assert_eq!(report.get("throttled"), 4, "{report:?}");
    // One batch, answered the fifth time.
    assert_eq!(h.mc_counters().await["requests"], json!(5));
    let t = truth(&h, org).await;
    let mut model = ConsentModel::default();
    model.push(&t);
    assert_audience(&h, LIST, &t, &model).await;

    // A real permission error is not retried: one call, and the push fails naming it.
    let sup = t.values().find(|w| w.opt_in).unwrap().supporter;
    h.patch(
        org,
        Entity::Supporters,
        sup,
        json!({"first_name": "Denied"}),
    )
    .await;
    sync(&h, org, SyncMode::Incremental).await;
    h.mc_post("/faults/script", json!({"responses": ["403-problem"]}))
        .await;
    h.mc_reset_counters().await;
    let runs = h
        .plugins
        .push_org(org, &PushOptions::default())
        .await
        .unwrap();
    let err = runs[0].result.clone().unwrap_err();
    assert!(err.contains("403") && err.contains("Forbidden"), "{err}");
    assert_eq!(h.mc_counters().await["requests"], json!(1));
    // The change was not lost.
    let report = push(&h, org, PushOptions::default()).await;
    assert_eq!(report.sent, 1, "{report:?}");
}
