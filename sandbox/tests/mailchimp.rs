//! The Mailchimp stand-in over real sockets: what the shared contract checker does not cover
//! (compliance, the in-flight cap, faults, tags, segments, merge fields, admin routes, counters).

mod common;

use classy_sandbox::{RunningSandbox, SandboxConfig};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Mc {
    sandbox: RunningSandbox,
    http: reqwest::Client,
    key: String,
    list: String,
}

/// A sandbox with a token amount of Classy data: only the Mailchimp side is exercised here.
async fn start() -> Mc {
    let sandbox = classy_sandbox::start(SandboxConfig {
        orgs: 1,
        supporters: 5,
        transactions: 5,
        plans: 1,
        campaigns: 1,
        ..Default::default()
    })
    .await
    .expect("sandbox starts");
    Mc {
        http: common::http(),
        key: sandbox.mailchimp_api_key(),
        list: sandbox.mailchimp_list_id().to_string(),
        sandbox,
    }
}

/// Status, content type and parsed body (Null when empty).
type Reply = (u16, String, Value);

fn hash(email: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(email.to_lowercase().as_bytes()))
}

impl Mc {
    async fn send(
        &self,
        key: Option<&str>,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, url);
        if let Some(k) = key {
            req = req.basic_auth("anystring", Some(k));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = r.bytes().await.expect("body");
        (
            status,
            ctype,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}{path}", self.sandbox.mailchimp_api_base_url());
        self.send(Some(&self.key), method, url, body).await
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}/admin/mailchimp{path}", self.sandbox.base_url());
        self.send(None, method, url, body).await
    }

    async fn put_member(&self, email: &str, body: Value) -> Reply {
        let path = format!("/lists/{}/members/{}", self.list, hash(email));
        self.api(Method::PUT, &path, Some(body)).await
    }

    async fn batch(&self, body: Value) -> Value {
        let (st, _, v) = self
            .api(Method::POST, &format!("/lists/{}", self.list), Some(body))
            .await;
        assert_eq!(st, 200, "{v}");
        v
    }

    /// The admin view of one member.
    async fn truth(&self, email: &str) -> Value {
        let (st, _, v) = self
            .admin(Method::GET, &format!("/lists/{}/members", self.list), None)
            .await;
        assert_eq!(st, 200);
        v["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["email_address"] == email)
            .cloned()
            .unwrap_or(Value::Null)
    }

    async fn set_status(&self, email: &str, status: &str) {
        let path = format!("/lists/{}/members/{}", self.list, hash(email));
        let (st, _, v) = self
            .admin(Method::PATCH, &path, Some(json!({"status": status})))
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["status"], status);
    }

    async fn counters(&self) -> Value {
        self.admin(Method::GET, "/counters", None).await.2
    }
}

fn assert_problem(r: &Reply, status: u16, title: &str) {
    assert_eq!(r.0, status, "{}", r.2);
    assert!(r.1.starts_with("application/problem+json"), "{}", r.1);
    assert_eq!(r.2["status"], status);
    assert_eq!(r.2["title"], title, "{}", r.2);
    for f in ["type", "detail", "instance"] {
        assert!(r.2[f].is_string(), "{f} missing in {}", r.2);
    }
}

#[tokio::test]
async fn put_and_patch_refuse_to_resubscribe_a_member_in_compliance_state() {
    let mc = start().await;
    let email = "Ann.Lee@Example.org";
    let r = mc
        .put_member(
            email,
            json!({"email_address": email, "status_if_new": "subscribed"}),
        )
        .await;
    assert_eq!(r.0, 200);
    assert_eq!(r.2["status"], "subscribed");

    mc.set_status(email, "unsubscribed").await;
    let r = mc
        .put_member(
            email,
            json!({"email_address": email, "status_if_new": "subscribed", "status": "subscribed"}),
        )
        .await;
    assert_problem(&r, 400, "Member In Compliance State");
    assert!(r.2["detail"].as_str().unwrap().contains(email));

    // status_if_new does not touch an existing member, so merge fields may still change.
    let r = mc
        .put_member(
            email,
            json!({"email_address": email, "status_if_new": "subscribed",
                   "merge_fields": {"FNAME": "Ann"}}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(r.2["status"], "unsubscribed");
    assert_eq!(r.2["merge_fields"]["FNAME"], "Ann");

    mc.set_status(email, "cleaned").await;
    let path = format!("/lists/{}/members/{}", mc.list, hash(email));
    let r = mc
        .api(Method::PATCH, &path, Some(json!({"status": "pending"})))
        .await;
    assert_problem(&r, 400, "Member In Compliance State");
    // Unsubscribing someone already gone is not an opt-in: allowed.
    let r = mc
        .api(
            Method::PATCH,
            &path,
            Some(json!({"status": "unsubscribed"})),
        )
        .await;
    assert_eq!(r.0, 200);
    assert_eq!(mc.truth(email).await["status"], "unsubscribed");
    assert_eq!(mc.counters().await["compliance_rejections"], 2);

    // PATCH of an unknown member is a 404, and the API cannot set "cleaned" itself.
    let other = format!("/lists/{}/members/{}", mc.list, hash("nobody@example.org"));
    let r = mc
        .api(Method::PATCH, &other, Some(json!({"status": "subscribed"})))
        .await;
    assert_problem(&r, 404, "Resource Not Found");
    let r = mc
        .api(Method::PATCH, &path, Some(json!({"status": "cleaned"})))
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    assert_eq!(r.2["errors"][0]["field"], "status");
    // A hash that does not match the address is refused.
    let r = mc
        .put_member(
            "x@example.org",
            json!({"email_address": email, "status_if_new": "subscribed"}),
        )
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    mc.sandbox.shutdown().await;
}

#[tokio::test]
async fn batch_reports_each_failure_and_goes_on() {
    let mc = start().await;
    let members: Vec<Value> = ["a", "b", "c"]
        .iter()
        .map(|n| json!({"email_address": format!("{n}@example.org"), "status": "subscribed"}))
        .collect();
    let v = mc.batch(json!({"members": members})).await;
    assert_eq!(
        (v["total_created"].as_u64(), v["error_count"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(v["new_members"][0]["id"], hash("a@example.org"));

    mc.set_status("b@example.org", "cleaned").await;
    mc.set_status("c@example.org", "unsubscribed").await;
    let v = mc
        .batch(json!({"update_existing": true, "members": [
            {"email_address": "a@example.org", "status": "subscribed", "merge_fields": {"LNAME": "A"}},
            {"email_address": "b@example.org", "status": "subscribed"},
            {"email_address": "c@example.org", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Cee"}},
            {"email_address": "d@example.org", "status": "pending"},
            {"email_address": "no at sign", "status": "subscribed"},
            {"email_address": "e@example.org"},
        ]}))
        .await;
    assert_eq!(v["total_created"], 1, "{v}");
    assert_eq!(v["total_updated"], 2, "{v}");
    assert_eq!(v["error_count"], 3, "{v}");
    let errors = v["errors"].as_array().unwrap();
    let by_email = |e: &str| {
        errors
            .iter()
            .find(|x| x["email_address"] == e)
            .unwrap()
            .clone()
    };
    let b = by_email("b@example.org");
    assert!(
        b["error"].as_str().unwrap().contains("compliance state"),
        "{b}"
    );
    assert_eq!(b["error_code"], "ERROR_GENERIC");
    assert_eq!(by_email("no at sign")["field"], "email_address");
    assert_eq!(by_email("e@example.org")["field"], "status");
    assert_eq!(mc.truth("b@example.org").await["status"], "cleaned");
    let c = mc.truth("c@example.org").await;
    assert_eq!(
        (c["status"].as_str(), c["merge_fields"]["FNAME"].as_str()),
        (Some("unsubscribed"), Some("Cee"))
    );
    assert_eq!(mc.truth("d@example.org").await["status"], "pending");
    assert_eq!(mc.counters().await["compliance_rejections"], 1);

    // update_existing false: existing members' data is written and their status left
    // alone (no compliance refusal for one who left); new ones take `status`, and
    // status_if_new is no batch field.
    let v = mc
        .batch(json!({"members": [
            {"email_address": "a@example.org", "status": "unsubscribed", "merge_fields": {"FNAME": "Ay"}},
            {"email_address": "c@example.org", "status": "subscribed", "merge_fields": {"FNAME": "Cecil"}},
            {"email_address": "f@example.org", "status": "subscribed"},
            {"email_address": "g@example.org", "status_if_new": "subscribed"},
        ]}))
        .await;
    assert_eq!(
        (
            v["total_created"].as_u64(),
            v["total_updated"].as_u64(),
            v["error_count"].as_u64()
        ),
        (Some(1), Some(2), Some(1)),
        "{v}"
    );
    assert_eq!(v["errors"][0]["email_address"], "g@example.org");
    assert_eq!(v["errors"][0]["field"], "status");
    let a = mc.truth("a@example.org").await;
    assert_eq!(
        (a["status"].as_str(), a["merge_fields"]["FNAME"].as_str()),
        (Some("subscribed"), Some("Ay"))
    );
    let c = mc.truth("c@example.org").await;
    assert_eq!(
        (c["status"].as_str(), c["merge_fields"]["FNAME"].as_str()),
        (Some("unsubscribed"), Some("Cecil"))
    );
    assert_eq!(mc.counters().await["compliance_rejections"], 1);
    // Written members show their tags as {id, name}, the id being the tag's static segment.
    let v = mc
        .batch(json!({"update_existing": true, "members": [
            {"email_address": "a@example.org", "status": "subscribed", "tags": ["Major Donor"]},
        ]}))
        .await;
    let tag = &v["updated_members"][0]["tags"][0];
    assert_eq!(tag["name"], "Major Donor", "{v}");
    let segments = mc
        .api(
            Method::GET,
            &format!("/lists/{}/segments?type=static", mc.list),
            None,
        )
        .await;
    let segment = segments.2["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Major Donor")
        .unwrap()
        .clone();
    assert_eq!(tag["id"], segment["id"], "{segments:?}");

    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({"email_address": format!("m{i}@example.org"), "status": "subscribed"}))
        .collect();
    let r = mc
        .api(
            Method::POST,
            &format!("/lists/{}", mc.list),
            Some(json!({"members": too_many})),
        )
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    let r = mc
        .api(
            Method::POST,
            &format!("/lists/{}", mc.list),
            Some(json!({"members": "x"})),
        )
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    let r = mc
        .api(Method::POST, "/lists/nope", Some(json!({"members": []})))
        .await;
    assert_problem(&r, 404, "Resource Not Found");

    // Ground truth is sorted by address; the list's stats follow the statuses.
    let (_, _, all) = mc
        .admin(Method::GET, &format!("/lists/{}/members", mc.list), None)
        .await;
    let emails: Vec<&str> = all["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email_address"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "a@example.org",
            "b@example.org",
            "c@example.org",
            "d@example.org",
            "f@example.org"
        ]
    );
    let (_, _, list) = mc
        .api(Method::GET, &format!("/lists/{}", mc.list), None)
        .await;
    assert_eq!(list["stats"]["member_count"], 2);
    assert_eq!(list["stats"]["unsubscribe_count"], 1);
    assert_eq!(list["stats"]["cleaned_count"], 1);
    assert_eq!(list["stats"]["total_contacts"], 5);
    mc.sandbox.shutdown().await;
}

#[tokio::test]
async fn tags_add_unless_sync_tags_replaces_them() {
    let mc = start().await;
    let e = "t@example.org";
    let tags = |v: &Value| -> Vec<String> {
        v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    mc.batch(json!({"members": [{"email_address": e, "status": "subscribed", "tags": ["Donor"]}]}))
        .await;
    mc.batch(json!({"update_existing": true, "members": [{"email_address": e, "tags": ["Major Donor", "Donor"]}]}))
        .await;
    assert_eq!(tags(&mc.truth(e).await), ["Donor", "Major Donor"]);
    mc.batch(json!({"update_existing": true, "sync_tags": false, "members": [{"email_address": e, "tags": ["Monthly"]}]}))
        .await;
    assert_eq!(
        tags(&mc.truth(e).await),
        ["Donor", "Major Donor", "Monthly"]
    );
    mc.batch(json!({"update_existing": true, "sync_tags": true, "members": [{"email_address": e, "tags": ["Lapsed"]}]}))
        .await;
    assert_eq!(tags(&mc.truth(e).await), ["Lapsed"]);

    let tag_path = format!("/lists/{}/members/{}/tags", mc.list, hash(e));
    let r = mc
        .api(
            Method::POST,
            &tag_path,
            Some(json!({"tags": [
            {"name": "Lapsed", "status": "inactive"}, {"name": "Donor", "status": "active"}]})),
        )
        .await;
    assert_eq!((r.0, r.2.clone()), (204, Value::Null));
    assert_eq!(tags(&mc.truth(e).await), ["Donor"]);
    // The API form carries tag ids and a count.
    let (_, _, m) = mc
        .api(
            Method::GET,
            &format!("/lists/{}/members/{}", mc.list, hash(e)),
            None,
        )
        .await;
    assert_eq!(m["tags_count"], 1);
    assert_eq!(m["tags"][0]["name"], "Donor");
    assert!(m["tags"][0]["id"].as_u64().unwrap() > 0);

    let r = mc
        .api(
            Method::POST,
            &tag_path,
            Some(json!({"tags": [{"name": "X", "status": "on"}]})),
        )
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    let missing = format!(
        "/lists/{}/members/{}/tags",
        mc.list,
        hash("ghost@example.org")
    );
    let r = mc
        .api(
            Method::POST,
            &missing,
            Some(json!({"tags": [{"name": "X", "status": "active"}]})),
        )
        .await;
    assert_problem(&r, 404, "Resource Not Found");
    mc.sandbox.shutdown().await;
}

#[tokio::test]
async fn segments_list_tags_and_take_one_from_many_members() {
    let mc = start().await;
    let segs = format!("/lists/{}/segments", mc.list);
    mc.batch(json!({"members": [
        {"email_address": "s1@example.org", "status": "subscribed", "tags": ["Donor", "Lapsed"]},
        {"email_address": "s2@example.org", "status": "subscribed", "tags": ["Lapsed"]}]}))
        .await;
    let (st, _, v) = mc.api(Method::GET, &segs, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["list_id"].as_str(), v["total_items"].as_u64()),
        (Some(mc.list.as_str()), Some(2))
    );
    assert_eq!(v["_links"], json!([]));
    let lapsed = v["segments"][1].clone();
    assert_eq!(v["segments"][0]["name"], "Donor");
    assert_eq!(v["segments"][0]["member_count"], 1);
    assert_eq!(lapsed["name"], "Lapsed");
    assert_eq!(lapsed["member_count"], 2);
    assert_eq!(lapsed["type"], "static");
    assert_eq!(lapsed["options"], json!({}));
    assert_eq!(lapsed["list_id"], mc.list.as_str());
    for f in ["created_at", "updated_at"] {
        assert!(
            lapsed[f].as_str().is_some_and(|s| s.contains('T')),
            "{lapsed}"
        );
    }
    let id = lapsed["id"].as_u64().expect("integer id");
    let donor = v["segments"][0]["id"].as_u64().expect("integer id");
    assert!(id > donor, "id order");
    // The segment id is the tag id members carry.
    let (_, _, m) = mc
        .api(
            Method::GET,
            &format!("/lists/{}/members/{}", mc.list, hash("s2@example.org")),
            None,
        )
        .await;
    assert_eq!(m["tags"], json!([{"id": id, "name": "Lapsed"}]));

    let seg = format!("{segs}/{id}");
    let (st, _, v) = mc
        .api(
            Method::POST,
            &seg,
            Some(json!({"members_to_remove": ["S1@Example.ORG", "ghost@example.org"]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["total_removed"].as_u64(), v["total_added"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(v["error_count"], 1);
    assert_eq!(
        v["errors"][0]["email_addresses"],
        json!(["ghost@example.org"])
    );
    assert!(v["errors"][0]["error"].is_string());
    assert_eq!(v["members_removed"][0]["email_address"], "s1@example.org");
    assert_eq!(
        v["members_removed"][0]["tags"],
        json!([{"id": donor, "name": "Donor"}])
    );
    assert_eq!(
        (v["members_added"].clone(), v["_links"].clone()),
        (json!([]), json!([]))
    );
    let tag_names = |m: &Value| -> Vec<String> {
        m["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    for (e, want) in [
        ("s1@example.org", vec!["Donor"]),
        ("s2@example.org", vec!["Lapsed"]),
    ] {
        let (_, _, m) = mc
            .api(
                Method::GET,
                &format!("/lists/{}/members/{}", mc.list, hash(e)),
                None,
            )
            .await;
        assert_eq!(tag_names(&m), want, "{e}");
    }
    let (_, _, v) = mc.api(Method::GET, &segs, None).await;
    assert_eq!(v["segments"][1]["member_count"], 1);

    // Adding back: only members without the tag count; removing an absent one counts nothing.
    let (_, _, v) = mc
        .api(
            Method::POST,
            &seg,
            Some(json!({"members_to_add": ["s1@example.org", "s2@example.org"]})),
        )
        .await;
    assert_eq!(
        (v["total_added"].as_u64(), v["error_count"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(v["errors"], json!([]));
    let (_, _, v) = mc
        .api(
            Method::POST,
            &seg,
            Some(json!({"members_to_remove": [], "members_to_add": null})),
        )
        .await;
    assert_eq!(
        (v["total_added"].as_u64(), v["total_removed"].as_u64()),
        (Some(0), Some(0))
    );

    // Limits and errors.
    let many: Vec<String> = (0..501).map(|i| format!("x{i}@example.org")).collect();
    for field in ["members_to_add", "members_to_remove"] {
        let r = mc
            .api(Method::POST, &seg, Some(json!({ field: many })))
            .await;
        assert_problem(&r, 400, "Invalid Resource");
        assert_eq!(r.2["errors"][0]["field"], field);
        let r = mc
            .api(Method::POST, &seg, Some(json!({ field: "a@example.org" })))
            .await;
        assert_eq!(r.2["errors"][0]["field"], field, "{}", r.2);
        let r = mc
            .api(Method::POST, &seg, Some(json!({ field: [1] })))
            .await;
        assert_eq!(r.2["errors"][0]["field"], field, "{}", r.2);
    }
    let r = mc
        .api(Method::POST, &format!("{segs}/9999"), Some(json!({})))
        .await;
    assert_problem(&r, 404, "Resource Not Found");
    let r = mc
        .api(Method::POST, &format!("{segs}/abc"), Some(json!({})))
        .await;
    assert_problem(&r, 404, "Resource Not Found");
    let r = mc
        .api(
            Method::POST,
            &format!("/lists/nope/segments/{id}"),
            Some(json!({})),
        )
        .await;
    assert_problem(&r, 404, "Resource Not Found");
    let r = mc.api(Method::GET, "/lists/nope/segments", None).await;
    assert_problem(&r, 404, "Resource Not Found");
    let (_, _, v) = mc
        .api(Method::GET, &format!("{segs}?type=saved"), None)
        .await;
    assert_eq!(
        (v["segments"].clone(), v["total_items"].as_u64()),
        (json!([]), Some(0))
    );
    let (_, _, v) = mc
        .api(
            Method::GET,
            &format!("{segs}?type=static&count=1&offset=1"),
            None,
        )
        .await;
    assert_eq!(
        (v["segments"][0]["name"].as_str(), v["total_items"].as_u64()),
        (Some("Lapsed"), Some(2))
    );
    let r = mc
        .api(Method::GET, &format!("{segs}?type=dynamic"), None)
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    assert_eq!(r.2["errors"][0]["field"], "type");
    let r = mc
        .api(Method::GET, &format!("{segs}?count=ten"), None)
        .await;
    assert_eq!(r.2["errors"][0]["field"], "count", "{}", r.2);

    // Faults reach these routes like every other /3.0 route.
    mc.admin(
        Method::POST,
        "/faults/script",
        Some(json!({"responses": [503]})),
    )
    .await;
    let r = mc
        .api(
            Method::POST,
            &seg,
            Some(json!({"members_to_remove": ["s2@example.org"]})),
        )
        .await;
    assert_problem(&r, 503, "Service Unavailable");
    assert_eq!(mc.truth("s2@example.org").await["tags"], json!(["Lapsed"]));

    let c = mc.counters().await;
    assert_eq!(c["by_route"]["GET /lists/{id}/segments"], 7, "{c}");
    assert_eq!(
        c["by_route"]["POST /lists/{id}/segments/{segment_id}"], 13,
        "{c}"
    );
    mc.sandbox.shutdown().await;
}

#[tokio::test]
async fn merge_fields_unknown_tags_are_dropped_and_types_checked() {
    let mc = start().await;
    let mf = format!("/lists/{}/merge-fields", mc.list);
    let r = mc
        .api(
            Method::POST,
            &mf,
            Some(json!({"tag": "LIFETIME", "name": "Lifetime giving", "type": "number"})),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(
        (r.2["tag"].as_str(), r.2["type"].as_str()),
        (Some("LIFETIME"), Some("number"))
    );
    assert!(r.2["merge_id"].as_u64().is_some());
    let r = mc
        .api(
            Method::POST,
            &mf,
            Some(json!({"tag": "lifetime", "name": "Again", "type": "text"})),
        )
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    let r = mc
        .api(Method::POST, &mf, Some(json!({"name": "No type"})))
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    let r = mc
        .api(
            Method::POST,
            &mf,
            Some(json!({"name": "Odd", "type": "colour"})),
        )
        .await;
    assert_problem(&r, 400, "Invalid Resource");

    // Listing is paged like Mailchimp's: 10 by default, total_items tells the rest.
    for i in 0..6 {
        let r = mc
            .api(
                Method::POST,
                &mf,
                Some(json!({"name": format!("Extra {i}"), "type": "text"})),
            )
            .await;
        assert_eq!(r.0, 200);
    }
    let (_, _, page) = mc.api(Method::GET, &mf, None).await;
    assert_eq!(page["total_items"], 12);
    assert_eq!(page["merge_fields"].as_array().unwrap().len(), 10);
    let (_, _, all) = mc.api(Method::GET, &format!("{mf}?count=100"), None).await;
    assert_eq!(all["merge_fields"].as_array().unwrap().len(), 12);

    let e = "mf@example.org";
    let r = mc
        .put_member(e, json!({"email_address": e, "status_if_new": "subscribed",
                              "merge_fields": {"FNAME": "Mo", "LIFETIME": 125.5, "NOSUCHTAG": "x"}}))
        .await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert!(r.2["merge_fields"].get("NOSUCHTAG").is_none());
    assert_eq!(
        mc.truth(e).await["merge_fields"],
        json!({"FNAME": "Mo", "LIFETIME": 125.5})
    );
    let r = mc
        .put_member(
            e,
            json!({"email_address": e, "status_if_new": "subscribed",
                              "merge_fields": {"LIFETIME": "a lot"}}),
        )
        .await;
    assert_problem(&r, 400, "Invalid Resource");
    assert_eq!(r.2["errors"][0]["field"], "merge_fields.LIFETIME");
    assert_eq!(mc.truth(e).await["merge_fields"]["LIFETIME"], 125.5);
    mc.sandbox.shutdown().await;
}

#[tokio::test]
async fn ten_requests_in_flight_per_key_then_429() {
    let mc = start().await;
    let (st, _, _) = mc
        .admin(Method::PUT, "/faults", Some(json!({"delay_ms": 1500})))
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = mc
        .admin(
            Method::POST,
            "/keys",
            Some(json!({"key": "second-key-us2"})),
        )
        .await;
    assert_eq!(st, 200);
    let mc = std::sync::Arc::new(mc);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..31 {
        let mc = mc.clone();
        tasks.push(tokio::spawn(async move {
            // The last one uses another key, which has slots of its own.
            let key = if i == 30 {
                "second-key-us2".to_string()
            } else {
                mc.key.clone()
            };
            let url = format!("{}/ping", mc.sandbox.mailchimp_api_base_url());
            mc.send(Some(&key), Method::GET, url, None).await
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "the 30 requests did not overlap: {elapsed:?}"
    );
    let ok = replies[..30].iter().filter(|r| r.0 == 200).count();
    let limited: Vec<&Reply> = replies[..30].iter().filter(|r| r.0 == 429).collect();
    assert_eq!((ok, limited.len()), (10, 20));
    assert_problem(limited[0], 429, "Too Many Requests");
    assert_eq!(replies[30].0, 200, "the second key has its own slots");
    let c = mc.counters().await;
    assert_eq!(c["max_in_flight"], 10);
    assert_eq!(c["rejected_concurrency"], 20);
    assert_eq!(c["by_route"]["GET /ping"], 31);

    // Slots are given back: a lower cap applies to the next burst.
    mc.admin(Method::PUT, "/faults", Some(json!({"delay_ms": 600})))
        .await;
    let (st, _, v) = mc
        .admin(Method::PUT, "/concurrency", Some(json!({"limit": 2})))
        .await;
    assert_eq!((st, v["limit"].as_u64()), (200, Some(2)));
    let burst = (0..5).map(|_| {
        let mc = mc.clone();
        tokio::spawn(async move { mc.api(Method::GET, "/ping", None).await.0 })
    });
    let mut statuses = Vec::new();
    for t in burst.collect::<Vec<_>>() {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    mc.admin(Method::PUT, "/faults", Some(json!({}))).await;
}

#[tokio::test]
async fn scripted_and_seeded_faults() {
    let mc = start().await;
    let (st, _, v) = mc
        .admin(
            Method::POST,
            "/faults/script",
            Some(json!({"responses": [429, 500, "ok", 503, 403]})),
        )
        .await;
    assert_eq!((st, v["queued"].as_u64()), (200, Some(5)));
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(mc.api(Method::GET, "/ping", None).await);
    }
    let statuses: Vec<u16> = got.iter().map(|r| r.0).collect();
    assert_eq!(statuses, [429, 500, 200, 503, 403, 200]);
    assert_problem(&got[0], 429, "Too Many Requests");
    assert_problem(&got[1], 500, "Internal Server Error");
    assert_problem(&got[3], 503, "Service Unavailable");
    assert_eq!(got[4].2, Value::Null, "403 comes with an empty body");
    assert_eq!(got[2].2["health_status"], "Everything's Chimpy!");

    mc.admin(
        Method::POST,
        "/faults/script",
        Some(json!({"responses": [500, 500]})),
    )
    .await;
    let (_, _, v) = mc.admin(Method::DELETE, "/faults/script", None).await;
    assert_eq!(v["cleared"], 2);
    assert_eq!(mc.api(Method::GET, "/ping", None).await.0, 200);
    let (st, _, _) = mc
        .admin(
            Method::POST,
            "/faults/script",
            Some(json!({"responses": [302]})),
        )
        .await;
    assert_eq!(st, 400);

    // The same seed replays the same faults.
    let rates = json!({"rate_500": 0.3, "rate_429": 0.2, "seed": 11});
    let run = || async {
        let (st, _, _) = mc.admin(Method::PUT, "/faults", Some(rates.clone())).await;
        assert_eq!(st, 200);
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(mc.api(Method::GET, "/ping", None).await.0);
        }
        out
    };
    let (a, b) = (run().await, run().await);
    assert_eq!(a, b);
    let failed = a.iter().filter(|s| **s != 200).count();
    assert!(
        (8..35).contains(&failed),
        "{failed} of 40 failed at a 50% rate"
    );
    assert!(a.contains(&500) && a.contains(&429));
    let (st, _, _) = mc
        .admin(
            Method::PUT,
            "/faults",
            Some(json!({"rate_500": 0.8, "rate_503": 0.8})),
        )
        .await;
    assert_eq!(st, 400);
    mc.admin(Method::PUT, "/faults", Some(json!({}))).await;
    for _ in 0..10 {
        assert_eq!(mc.api(Method::GET, "/ping", None).await.0, 200);
    }
    mc.sandbox.shutdown().await;
}

#[tokio::test]
async fn auth_lists_admin_and_counters() {
    let mc = start().await;
    let base = mc.sandbox.mailchimp_api_base_url();
    let r = mc
        .send(None, Method::GET, format!("{base}/ping"), None)
        .await;
    assert_problem(&r, 401, "API Key Missing");
    let r = mc
        .send(Some("wrong-us1"), Method::GET, format!("{base}/ping"), None)
        .await;
    assert_problem(&r, 401, "API Key Invalid");
    mc.admin(Method::POST, "/keys", Some(json!({"key": "wrong-us1"})))
        .await;
    let r = mc
        .send(Some("wrong-us1"), Method::GET, format!("{base}/ping"), None)
        .await;
    assert_eq!(r.0, 200);

    let (st, _, v) = mc
        .admin(
            Method::POST,
            "/lists",
            Some(json!({"id": "donors", "name": "Donors"})),
        )
        .await;
    assert_eq!((st, v["name"].as_str()), (201, Some("Donors")));
    let (st, _, _) = mc
        .admin(
            Method::POST,
            "/lists",
            Some(json!({"id": "donors", "name": "Donors"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = mc
        .admin(Method::POST, "/lists", Some(json!({"name": "No id"})))
        .await;
    assert_eq!(st, 400);
    let (st, _, v) = mc.api(Method::GET, "/lists/donors", None).await;
    assert_eq!((st, v["stats"]["member_count"].as_u64()), (200, Some(0)));

    let mf = "/lists/donors/merge-fields";
    mc.api(
        Method::POST,
        mf,
        Some(json!({"tag": "LASTGIFT", "name": "Last gift", "type": "date"})),
    )
    .await;
    let members: Vec<Value> = (0..3)
        .map(|i| json!({"email_address": format!("p{i}@example.org"), "status": "subscribed"}))
        .collect();
    let (st, _, _) = mc
        .api(
            Method::POST,
            "/lists/donors",
            Some(json!({"members": members})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, v) = mc
        .admin(Method::DELETE, "/lists/donors/members", None)
        .await;
    assert_eq!((st, v["deleted"].as_u64()), (200, Some(3)));
    let (_, _, v) = mc.admin(Method::GET, "/lists/donors/members", None).await;
    assert_eq!(v["members"], json!([]));
    let (_, _, v) = mc.api(Method::GET, &format!("{mf}?count=50"), None).await;
    assert!(
        v["merge_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["tag"] == "LASTGIFT"),
        "merge fields stay"
    );
    let (st, _, _) = mc.admin(Method::GET, "/lists/nope/members", None).await;
    assert_eq!(st, 404);

    let c = mc.counters().await;
    assert_eq!(c["requests"], 7, "{c}");
    assert_eq!(c["by_route"]["GET /ping"], 3);
    assert_eq!(c["by_route"]["GET /lists/{id}"], 1);
    assert_eq!(c["by_route"]["POST /lists/{id}"], 1);
    assert_eq!(c["by_route"]["POST /lists/{id}/merge-fields"], 1);
    assert_eq!(c["by_route"]["GET /lists/{id}/merge-fields"], 1);
    assert_eq!(c["by_route"]["PUT /lists/{id}/members/{hash}"], 0);
    assert_eq!(c["max_in_flight"], 1);
    let (_, _, c) = mc.admin(Method::POST, "/counters/reset", None).await;
    assert_eq!(
        (c["requests"].as_u64(), c["by_route"]["GET /ping"].as_u64()),
        (Some(0), Some(0))
    );
    mc.sandbox.shutdown().await;
}

/// 20,000 members in batches of 500 (debug build): each batch must stay well under a second.
#[tokio::test]
async fn batches_of_500_are_fast() {
    let mc = start().await;
    let mut times = Vec::new();
    for b in 0..40 {
        let members: Vec<Value> = (0..500)
            .map(|i| {
                json!({"email_address": format!("donor{}@example.org", b * 500 + i),
                            "status": "subscribed", "merge_fields": {"FNAME": "D", "LNAME": "N"},
                            "tags": ["Donor"]})
            })
            .collect();
        let t = Instant::now();
        let v = mc
            .batch(json!({"members": members, "update_existing": true}))
            .await;
        times.push(t.elapsed());
        assert_eq!(v["total_created"], 500);
    }
    times.sort();
    eprintln!(
        "batch of 500 (debug build, incl. HTTP): median {:?}, max {:?}",
        times[20], times[39]
    );
    assert!(times[39] < Duration::from_secs(2), "{:?}", times[39]);
    let (_, _, list) = mc
        .api(Method::GET, &format!("/lists/{}", mc.list), None)
        .await;
    assert_eq!(list["stats"]["member_count"], 20_000);
    mc.sandbox.shutdown().await;
}
