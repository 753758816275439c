//! The API form of a member, serialized straight from the store (no intermediate JSON tree),
//! so a 500-member batch answer costs little time under the list lock.

use super::member::Member;
use super::store::List;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};

pub struct ApiMember<'a> {
    pub list: &'a List,
    pub member: &'a Member,
}

/// Every list merge field, blank when the member has no value (as Mailchimp answers).
struct MergeValues<'a>(&'a List, &'a Member);

impl Serialize for MergeValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.merge_fields.len()))?;
        for f in &self.0.merge_fields {
            match self.1.merge_fields.get(&f.tag) {
                Some(v) => map.serialize_entry(&f.tag, v)?,
                None => map.serialize_entry(&f.tag, "")?,
            }
        }
        map.end()
    }
}

struct Tags<'a>(&'a List, &'a Member);

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Tag<'b> {
            id: u64,
            name: &'b str,
        }
        s.collect_seq(self.1.tags.iter().map(|t| Tag {
            id: self.0.tag_id(t),
            name: t,
        }))
    }
}

impl Serialize for ApiMember<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (l, m) = (self.list, self.member);
        let text = |tag: &str| {
            m.merge_fields
                .get(tag)
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let full_name = format!("{} {}", text("FNAME"), text("LNAME"));
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &m.id)?;
        map.serialize_entry("email_address", &m.email_address)?;
        map.serialize_entry("unique_email_id", &m.unique_email_id)?;
        map.serialize_entry("contact_id", &m.unique_email_id)?;
        map.serialize_entry("full_name", full_name.trim())?;
        map.serialize_entry("web_id", &m.web_id)?;
        map.serialize_entry("email_type", "html")?;
        map.serialize_entry("status", m.status.as_str())?;
        map.serialize_entry("consents_to_one_to_one_messaging", &true)?;
        map.serialize_entry("merge_fields", &MergeValues(l, m))?;
        map.serialize_entry("interests", &json!({}))?;
        map.serialize_entry("stats", &json!({"avg_open_rate": 0, "avg_click_rate": 0}))?;
        map.serialize_entry("ip_signup", "")?;
        map.serialize_entry("timestamp_signup", &m.timestamp_signup)?;
        map.serialize_entry("ip_opt", "")?;
        map.serialize_entry("timestamp_opt", &m.timestamp_opt)?;
        map.serialize_entry("member_rating", &2)?;
        map.serialize_entry("last_changed", &m.last_changed)?;
        map.serialize_entry("language", "")?;
        map.serialize_entry("vip", &false)?;
        map.serialize_entry("email_client", "")?;
        map.serialize_entry(
            "location",
            &json!({"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0,
                    "country_code": "", "timezone": "", "region": ""}),
        )?;
        map.serialize_entry("source", "API - Generic")?;
        map.serialize_entry("tags_count", &m.tags.len())?;
        map.serialize_entry("tags", &Tags(l, m))?;
        map.serialize_entry("list_id", &l.id)?;
        map.end()
    }
}
