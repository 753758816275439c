//! In-memory audiences: members by subscriber hash, merge fields, tags (which Mailchimp also
//! serves as static segments). The upsert rules (compliance, update_existing, sync_tags, unknown
//! merge tags dropped) live here, free of HTTP.

use super::member::{subscriber_hash, valid_email, FieldError, Member, MemberInput, Status};
use super::view::ApiMember;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const DEFAULT_LIST_ID: &str = "sandboxlist";
pub const DEFAULT_LIST_NAME: &str = "Sandbox Audience";
pub const MAX_BATCH: usize = 500;
pub const MERGE_TYPES: [&str; 11] = [
    "text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown",
    "birthday", "zip",
];

#[derive(Clone, Debug)]
pub struct MergeField {
    pub merge_id: u64,
    pub tag: String,
    pub name: String,
    pub kind: String,
    pub required: bool,
    pub default_value: String,
    pub public: bool,
    pub display_order: u64,
    pub help_text: String,
}

impl MergeField {
    pub fn to_json(&self, list_id: &str) -> Value {
        json!({
            "merge_id": self.merge_id, "tag": self.tag, "name": self.name, "type": self.kind,
            "required": self.required, "default_value": self.default_value,
            "public": self.public, "display_order": self.display_order,
            "options": {}, "help_text": self.help_text, "list_id": list_id,
        })
    }

    /// Checks a value against the field type; numbers must be numeric (blank clears).
    fn accepts(&self, v: &Value) -> bool {
        match self.kind.as_str() {
            "number" => match v {
                Value::Number(_) | Value::Null => true,
                Value::String(s) => s.trim().is_empty() || s.trim().parse::<f64>().is_ok(),
                _ => false,
            },
            "address" => v.is_object() || v.is_string() || v.is_null(),
            _ => v.is_string() || v.is_number() || v.is_null(),
        }
    }
}

/// A tag of the list. Mailchimp serves every tag as a static segment with the same id.
#[derive(Clone, Debug)]
pub struct Tag {
    pub id: u64,
    pub name: String,
    pub created_at: String,
    /// When a member last gained or lost the tag.
    pub updated_at: String,
}

impl Tag {
    /// The segment form (`GET /lists/{id}/segments`); `member_count` is computed by the caller.
    pub fn segment_json(&self, list_id: &str, member_count: usize) -> Value {
        json!({
            "id": self.id, "name": self.name, "member_count": member_count,
            "type": "static", "created_at": self.created_at, "updated_at": self.updated_at,
            "options": {}, "list_id": list_id, "_links": [],
        })
    }
}

/// Marks a tag's membership as changed now (no-op for an unregistered name).
fn touch_tag(tags: &mut HashMap<String, Tag>, name: &str, now: &str) {
    if let Some(t) = tags.get_mut(name) {
        t.updated_at = now.to_string();
    }
}

/// What giving or taking one tag for a set of addresses did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagMembers {
    /// Ids of the members that gained (or lost) the tag, in request order.
    pub changed: Vec<String>,
    /// Addresses with no member on the list, as given.
    pub not_found: Vec<String>,
}

/// Why one member could not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpsertError {
    Invalid(FieldError),
    /// Unsubscribed or cleaned, and the request asked to opt them back in.
    Compliance {
        email: String,
    },
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
}

/// Which endpoint the write comes from: they differ in required fields and tag handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Put,
    Patch,
    Batch {
        update_existing: bool,
        sync_tags: bool,
    },
}

pub struct List {
    pub id: String,
    pub name: String,
    pub web_id: u64,
    pub date_created: String,
    pub members: HashMap<String, Member>,
    pub merge_fields: Vec<MergeField>,
    /// By name; ids are handed out when a tag is first used and never reused.
    tags: HashMap<String, Tag>,
    next_merge_id: u64,
    next_tag_id: u64,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

impl List {
    pub fn new(id: &str, name: &str, web_id: u64) -> List {
        let mut list = List {
            id: id.to_string(),
            name: name.to_string(),
            web_id,
            date_created: now_rfc3339(),
            members: HashMap::new(),
            merge_fields: Vec::new(),
            tags: HashMap::new(),
            next_merge_id: 1,
            next_tag_id: 1,
        };
        // Every new Mailchimp audience starts with these.
        for (tag, name, kind) in [
            ("FNAME", "First Name", "text"),
            ("LNAME", "Last Name", "text"),
            ("ADDRESS", "Address", "address"),
            ("PHONE", "Phone Number", "phone"),
            ("BIRTHDAY", "Birthday", "birthday"),
        ] {
            list.add_merge_field(Some(tag), name, kind, false, "")
                .expect("default merge fields are distinct");
        }
        list
    }

    /// Adds a merge field; the tag defaults to `MMERGE{n}`. Duplicate tags are refused.
    pub fn add_merge_field(
        &mut self,
        tag: Option<&str>,
        name: &str,
        kind: &str,
        required: bool,
        default_value: &str,
    ) -> Result<&MergeField, FieldError> {
        if name.trim().is_empty() {
            return Err(FieldError::new("name", "Merge field name is required"));
        }
        if !MERGE_TYPES.contains(&kind) {
            return Err(FieldError::new(
                "type",
                format!("Value {kind:?} is not a merge field type"),
            ));
        }
        let id = self.next_merge_id;
        let tag = match tag.map(str::trim) {
            Some(t) if !t.is_empty() => t.to_uppercase(),
            _ => format!("MMERGE{id}"),
        };
        if tag.len() > 10 || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(FieldError::new(
                "tag",
                "Merge tags are at most 10 letters, digits or underscores",
            ));
        }
        if self.merge_fields.iter().any(|m| m.tag == tag) {
            return Err(FieldError::new(
                "tag",
                format!("A Merge Field with the tag \"{tag}\" already exists for this list."),
            ));
        }
        self.next_merge_id += 1;
        self.merge_fields.push(MergeField {
            merge_id: id,
            tag,
            name: name.trim().to_string(),
            kind: kind.to_string(),
            required,
            default_value: default_value.to_string(),
            public: true,
            display_order: id,
            help_text: String::new(),
        });
        Ok(self.merge_fields.last().expect("just pushed"))
    }

    pub fn tag_id(&self, name: &str) -> u64 {
        self.tags.get(name).map(|t| t.id).unwrap_or(0)
    }

    pub fn tag_by_id(&self, id: u64) -> Option<&Tag> {
        self.tags.values().find(|t| t.id == id)
    }

    /// Every tag in id order with the number of members having it (counted now, in one pass).
    pub fn tags_with_counts(&self) -> Vec<(&Tag, usize)> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        // Mailchimp counts the segment's active subscribers.
        let subscribed = self
            .members
            .values()
            .filter(|m| m.status == Status::Subscribed);
        for t in subscribed.flat_map(|m| &m.tags) {
            *counts.entry(t.as_str()).or_default() += 1;
        }
        let mut out: Vec<(&Tag, usize)> = self
            .tags
            .values()
            .map(|t| (t, counts.get(t.name.as_str()).copied().unwrap_or(0)))
            .collect();
        out.sort_by_key(|(t, _)| t.id);
        out
    }

    fn register_tag(&mut self, name: &str) {
        if !self.tags.contains_key(name) {
            let now = now_rfc3339();
            let tag = Tag {
                id: self.next_tag_id,
                name: name.to_string(),
                created_at: now.clone(),
                updated_at: now,
            };
            self.tags.insert(name.to_string(), tag);
            self.next_tag_id += 1;
        }
    }

    pub fn api_member<'a>(&'a self, member: &'a Member) -> ApiMember<'a> {
        ApiMember { list: self, member }
    }

    /// The member as the API shows it, as bytes.
    pub fn member_bytes(&self, m: &Member) -> Vec<u8> {
        serde_json::to_vec(&self.api_member(m)).expect("member json")
    }

    /// Known merge tags only (matched case-insensitively), values checked against the type.
    fn known_merge_fields(
        &self,
        given: &Map<String, Value>,
    ) -> Result<Map<String, Value>, FieldError> {
        let mut out = Map::new();
        for (k, v) in given {
            let upper = k.to_uppercase();
            let Some(field) = self.merge_fields.iter().find(|m| m.tag == upper) else {
                continue;
            };
            if !field.accepts(v) {
                return Err(FieldError::new(
                    format!("merge_fields.{upper}"),
                    format!("Please enter a {} value for {upper}", field.kind),
                ));
            }
            out.insert(upper, v.clone());
        }
        Ok(out)
    }

    /// Writes one member following the rules of `mode`. `hash` is the path's subscriber hash
    /// (PUT, PATCH); a batch derives it from the address.
    pub fn upsert(
        &mut self,
        hash: Option<&str>,
        input: &MemberInput,
        mode: Mode,
    ) -> Result<(Written, String), UpsertError> {
        let invalid = |f: &str, m: &str| UpsertError::Invalid(FieldError::new(f, m));
        let email = input.email_address.as_deref();
        if let Some(e) = email {
            if !valid_email(e) {
                return Err(invalid(
                    "email_address",
                    &format!("{e} looks fake or invalid, please enter a real email address."),
                ));
            }
        }
        let id = match (hash, email) {
            (Some(h), Some(e)) => {
                let h = h.to_lowercase();
                if subscriber_hash(e) != h {
                    return Err(invalid(
                        "email_address",
                        "The subscriber hash in the path is not the MD5 of the lower-cased email_address",
                    ));
                }
                h
            }
            (Some(h), None) => h.to_lowercase(),
            (None, Some(e)) => subscriber_hash(e),
            (None, None) => return Err(invalid("email_address", "email_address is required")),
        };
        if mode == Mode::Put && input.status_if_new.is_none() {
            return Err(invalid("status_if_new", "status_if_new is required"));
        }
        let merge = match &input.merge_fields {
            Some(m) => Some(self.known_merge_fields(m).map_err(UpsertError::Invalid)?),
            None => None,
        };
        let now = now_rfc3339();
        // The status asked of an existing member: in a batch only with `update_existing` (the
        // spec: it "will change existing members' subscription status"); without it, an
        // existing member's data is written and its status left alone.
        let status_for_existing = match mode {
            Mode::Batch {
                update_existing: false,
                ..
            } => None,
            _ => input.status,
        };
        let written = if let Some(existing) = self.members.get(&id) {
            if let Some(st) = status_for_existing {
                if existing.status.in_compliance_state() && st.opts_in() {
                    return Err(UpsertError::Compliance {
                        email: existing.email_address.clone(),
                    });
                }
            }
            Written::Updated
        } else {
            if mode == Mode::Patch {
                return Err(UpsertError::NotFound);
            }
            let Some(email) = email else {
                return Err(invalid("email_address", "email_address is required"));
            };
            // A new member takes status_if_new when given (PUT); batch members carry only
            // `status` (the batch spec has no status_if_new).
            let status = match mode {
                Mode::Batch { .. } => input.status,
                _ => input.status_if_new.or(input.status),
            };
            let Some(status) = status else {
                return Err(invalid("status", "status is required for a new member"));
            };
            let m = Member {
                id: id.clone(),
                email_address: email.to_string(),
                unique_email_id: id[..10].to_string(),
                web_id: 100_000 + self.members.len() as u64,
                status,
                merge_fields: Map::new(),
                tags: Vec::new(),
                timestamp_signup: now.clone(),
                timestamp_opt: if status.opts_in() {
                    now.clone()
                } else {
                    String::new()
                },
                last_changed: now.clone(),
            };
            self.members.insert(id.clone(), m);
            Written::Created
        };
        let (sync_tags, tags) = match mode {
            Mode::Batch { sync_tags, .. } => (sync_tags, input.tags.clone()),
            _ => (false, None),
        };
        if let Some(tags) = &tags {
            for t in tags {
                self.register_tag(t);
            }
        }
        let m = self.members.get_mut(&id).expect("present");
        if written == Written::Updated {
            if let Some(st) = status_for_existing {
                if st != m.status && st.opts_in() {
                    m.timestamp_opt = now.clone();
                }
                m.status = st;
            }
        }
        if let Some(merge) = merge {
            m.merge_fields.extend(merge);
        }
        if let Some(tags) = tags {
            let before = m.tags.clone();
            if sync_tags {
                m.tags.clear();
            }
            for t in &tags {
                m.add_tag(t);
            }
            // Tags gained or lost (sync_tags re-adds kept ones: those did not change).
            let lost = before.iter().filter(|t| !m.tags.contains(t));
            let gained = m.tags.iter().filter(|t| !before.contains(t));
            for t in lost.chain(gained) {
                touch_tag(&mut self.tags, t, &now);
            }
        }
        m.last_changed = now;
        Ok((written, id))
    }

    /// Applies `{name, status: active|inactive}` changes to one member.
    pub fn set_tags(&mut self, hash: &str, changes: &[(String, bool)]) -> Result<(), UpsertError> {
        if !self.members.contains_key(hash) {
            return Err(UpsertError::NotFound);
        }
        for (name, active) in changes {
            if *active {
                self.register_tag(name);
            }
        }
        let m = self.members.get_mut(hash).expect("present");
        let now = now_rfc3339();
        let mut changed = false;
        for (name, active) in changes {
            let this = if *active {
                m.add_tag(name)
            } else {
                m.remove_tag(name)
            };
            if this {
                touch_tag(&mut self.tags, name, &now);
            }
            changed |= this;
        }
        if changed {
            m.last_changed = now;
        }
        Ok(())
    }

    /// Gives (`active`) or takes the tag `name` to or from each address's member, matched
    /// case-insensitively through the subscriber hash. Members that already have (or lack) it
    /// are left alone and not reported; addresses with no member are.
    pub fn tag_members(&mut self, name: &str, emails: &[String], active: bool) -> TagMembers {
        if active {
            self.register_tag(name);
        }
        let now = now_rfc3339();
        let mut out = TagMembers::default();
        for email in emails {
            let id = subscriber_hash(email);
            let Some(m) = self.members.get_mut(&id) else {
                out.not_found.push(email.clone());
                continue;
            };
            let changed = if active {
                m.add_tag(name)
            } else {
                m.remove_tag(name)
            };
            if changed {
                m.last_changed = now.clone();
                out.changed.push(id);
            }
        }
        if !out.changed.is_empty() {
            touch_tag(&mut self.tags, name, &now);
        }
        out
    }

    pub fn stats_json(&self) -> Value {
        let count = |s: Status| self.members.values().filter(|m| m.status == s).count();
        json!({
            "member_count": count(Status::Subscribed),
            "total_contacts": self.members.len(),
            "unsubscribe_count": count(Status::Unsubscribed),
            "cleaned_count": count(Status::Cleaned),
            "member_count_since_send": count(Status::Subscribed),
            "unsubscribe_count_since_send": 0,
            "cleaned_count_since_send": 0,
            "campaign_count": 0,
            "campaign_last_sent": "",
            "merge_field_count": self.merge_fields.len(),
            "avg_sub_rate": 0,
            "avg_unsub_rate": 0,
            "target_sub_rate": 0,
            "open_rate": 0,
            "click_rate": 0,
            "last_sub_date": "",
            "last_unsub_date": "",
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "web_id": self.web_id,
            "name": self.name,
            "contact": {"company": "Classy Sync Sandbox", "address1": "1 Sandbox Way",
                        "address2": "", "city": "Springfield", "state": "IL", "zip": "62701",
                        "country": "US", "phone": ""},
            "permission_reminder": "You gave to one of our campaigns.",
            "use_archive_bar": false,
            "campaign_defaults": {"from_name": "Sandbox", "from_email": "sandbox@example.org",
                                  "subject": "", "language": "en"},
            "notify_on_subscribe": "",
            "notify_on_unsubscribe": "",
            "date_created": self.date_created,
            "list_rating": 0,
            "email_type_option": false,
            "subscribe_url_short": "",
            "subscribe_url_long": "",
            "beamer_address": "",
            "visibility": "prv",
            "double_optin": false,
            "has_welcome": false,
            "marketing_permissions": false,
            "modules": [],
            "stats": self.stats_json(),
        })
    }
}

/// Every audience, by id.
pub struct Lists {
    pub lists: HashMap<String, List>,
    next_web_id: u64,
}

impl Default for Lists {
    fn default() -> Self {
        let mut l = Lists {
            lists: HashMap::new(),
            next_web_id: 1,
        };
        l.create(DEFAULT_LIST_ID, DEFAULT_LIST_NAME);
        l
    }
}

impl Lists {
    /// Creates the list unless it exists; true when it was created.
    pub fn create(&mut self, id: &str, name: &str) -> bool {
        if self.lists.contains_key(id) {
            return false;
        }
        let web_id = self.next_web_id;
        self.next_web_id += 1;
        self.lists
            .insert(id.to_string(), List::new(id, name, web_id));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: Value) -> MemberInput {
        MemberInput::from_json(&v, true).unwrap()
    }

    #[test]
    fn compliance_blocks_resubscribe_but_not_merge_fields() {
        let mut l = List::new("l", "L", 1);
        let (w, id) = l
            .upsert(
                None,
                &input(json!({"email_address": "a@x.org", "status": "subscribed"})),
                Mode::Batch {
                    update_existing: true,
                    sync_tags: false,
                },
            )
            .unwrap();
        assert_eq!(w, Written::Created);
        l.members.get_mut(&id).unwrap().status = Status::Unsubscribed;
        let e = l
            .upsert(
                Some(&id),
                &input(json!({"email_address": "a@x.org", "status_if_new": "subscribed", "status": "subscribed"})),
                Mode::Put,
            )
            .unwrap_err();
        assert!(matches!(e, UpsertError::Compliance { .. }));
        let (w, _) = l
            .upsert(
                Some(&id),
                &input(
                    json!({"email_address": "a@x.org", "status_if_new": "subscribed",
                              "merge_fields": {"fname": "Ann", "NOPE": 1}}),
                ),
                Mode::Put,
            )
            .unwrap();
        assert_eq!(w, Written::Updated);
        let m = &l.members[&id];
        assert_eq!(m.status, Status::Unsubscribed);
        assert_eq!(
            m.merge_fields,
            *json!({"FNAME": "Ann"}).as_object().unwrap()
        );
    }

    #[test]
    fn a_batch_changes_an_existing_status_only_with_update_existing() {
        let mut l = List::new("l", "L", 1);
        let batch = |update_existing| Mode::Batch {
            update_existing,
            sync_tags: false,
        };
        // A new member takes `status`; status_if_new is not part of a batch.
        let e = l
            .upsert(
                None,
                &input(json!({"email_address": "a@x.org", "status_if_new": "subscribed"})),
                batch(true),
            )
            .unwrap_err();
        assert!(matches!(e, UpsertError::Invalid(f) if f.field == "status"));
        let (_, id) = l
            .upsert(
                None,
                &input(json!({"email_address": "a@x.org", "status": "unsubscribed"})),
                batch(false),
            )
            .unwrap();
        // Without update_existing the member's data is written, its status kept: no
        // compliance refusal, no "already a member" error.
        let (w, _) = l
            .upsert(
                None,
                &input(json!({"email_address": "a@x.org", "status": "subscribed",
                              "merge_fields": {"FNAME": "Ann"}, "tags": ["Donor"]})),
                batch(false),
            )
            .unwrap();
        assert_eq!(w, Written::Updated);
        let m = &l.members[&id];
        assert_eq!(m.status, Status::Unsubscribed);
        assert_eq!(m.merge_fields["FNAME"], json!("Ann"));
        assert_eq!(m.tags, ["Donor"]);
        // With it, the status is asked for: refused for a member who left.
        let e = l
            .upsert(
                None,
                &input(json!({"email_address": "a@x.org", "status": "subscribed"})),
                batch(true),
            )
            .unwrap_err();
        assert!(matches!(e, UpsertError::Compliance { .. }));
        l.upsert(
            None,
            &input(json!({"email_address": "a@x.org", "status": "transactional"})),
            batch(true),
        )
        .unwrap();
        assert_eq!(l.members[&id].status, Status::Transactional);
    }

    #[test]
    fn tag_members_adds_and_removes_by_address() {
        let mut l = List::new("l", "L", 1);
        let batch = Mode::Batch {
            update_existing: true,
            sync_tags: false,
        };
        for e in ["a@x.org", "b@x.org"] {
            let m = input(json!({"email_address": e, "status": "subscribed", "tags": ["Donor"]}));
            l.upsert(None, &m, batch).unwrap();
        }
        let donor = l.tag_id("Donor");
        assert_eq!(l.tag_by_id(donor).map(|t| t.name.as_str()), Some("Donor"));
        let counts = |l: &List| -> Vec<(String, usize)> {
            l.tags_with_counts()
                .into_iter()
                .map(|(t, n)| (t.name.clone(), n))
                .collect()
        };
        assert_eq!(counts(&l), [("Donor".to_string(), 2)]);

        let emails = |v: &[&str]| -> Vec<String> { v.iter().map(|e| e.to_string()).collect() };
        let a = subscriber_hash("a@x.org");
        l.members.get_mut(&a).unwrap().last_changed = "then".into();
        let out = l.tag_members("Donor", &emails(&["A@X.org", "ghost@x.org"]), false);
        assert_eq!(out.changed, std::slice::from_ref(&a));
        assert_eq!(out.not_found, ["ghost@x.org"]);
        assert!(l.members[&a].tags.is_empty());
        assert_ne!(l.members[&a].last_changed, "then");
        assert_eq!(counts(&l), [("Donor".to_string(), 1)]);

        // Already without (remove) or already with (add): nothing changes.
        let out = l.tag_members("Donor", &emails(&["a@x.org"]), false);
        assert_eq!(out, TagMembers::default());
        let out = l.tag_members("Donor", &emails(&["b@x.org", "a@x.org", "a@x.org"]), true);
        assert_eq!(out.changed, std::slice::from_ref(&a));
        // A tag given only this way is registered with the next id; it stays at zero members.
        l.tag_members("Lapsed", &emails(&["a@x.org"]), true);
        l.tag_members("Lapsed", &emails(&["a@x.org"]), false);
        assert!(l.tag_id("Lapsed") > donor);
        assert_eq!(
            counts(&l),
            [("Donor".to_string(), 2), ("Lapsed".to_string(), 0)]
        );
        // Only subscribed members count, as in Mailchimp.
        l.members.get_mut(&a).unwrap().status = Status::Unsubscribed;
        assert_eq!(
            counts(&l),
            [("Donor".to_string(), 1), ("Lapsed".to_string(), 0)]
        );
    }

    #[test]
    fn merge_field_rules() {
        let mut l = List::new("l", "L", 1);
        assert_eq!(
            l.add_merge_field(Some("fname"), "Again", "text", false, "")
                .unwrap_err()
                .field,
            "tag"
        );
        assert_eq!(
            l.add_merge_field(None, "Lifetime", "number", false, "")
                .unwrap()
                .tag,
            "MMERGE6"
        );
        let e = l
            .upsert(
                None,
                &input(json!({"email_address": "a@x.org", "status": "subscribed",
                              "merge_fields": {"MMERGE6": "lots"}})),
                Mode::Batch {
                    update_existing: true,
                    sync_tags: false,
                },
            )
            .unwrap_err();
        assert!(matches!(e, UpsertError::Invalid(f) if f.field == "merge_fields.MMERGE6"));
    }
}
