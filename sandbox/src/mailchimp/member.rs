//! List members: statuses, the fields a request may set, email checks and the JSON form.

use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Subscribed,
    Unsubscribed,
    Cleaned,
    Pending,
    Transactional,
    Archived,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "subscribed" => Status::Subscribed,
            "unsubscribed" => Status::Unsubscribed,
            "cleaned" => Status::Cleaned,
            "pending" => Status::Pending,
            "transactional" => Status::Transactional,
            "archived" => Status::Archived,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Subscribed => "subscribed",
            Status::Unsubscribed => "unsubscribed",
            Status::Cleaned => "cleaned",
            Status::Pending => "pending",
            Status::Transactional => "transactional",
            Status::Archived => "archived",
        }
    }

    /// The person left (or bounced): Mailchimp refuses to opt them back in through the API.
    pub fn in_compliance_state(self) -> bool {
        matches!(self, Status::Unsubscribed | Status::Cleaned)
    }

    pub fn opts_in(self) -> bool {
        matches!(self, Status::Subscribed | Status::Pending)
    }

    /// Statuses a client may ask for; cleaned and archived are Mailchimp's own doing.
    pub fn settable_by_api(self) -> bool {
        !matches!(self, Status::Cleaned | Status::Archived)
    }
}

/// MD5 of the lower-cased address: the member id and subscriber hash.
pub fn subscriber_hash(email: &str) -> String {
    hex::encode(Md5::digest(email.trim().to_lowercase().as_bytes()))
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= 254
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').count() >= 2
        && domain.split('.').all(|p| !p.is_empty())
}

/// A field-level validation error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a PUT, PATCH or batch entry asks for; absent fields are left alone.
#[derive(Clone, Debug, Default)]
pub struct MemberInput {
    pub email_address: Option<String>,
    pub status: Option<Status>,
    pub status_if_new: Option<Status>,
    pub merge_fields: Option<Map<String, Value>>,
    pub tags: Option<Vec<String>>,
}

fn status_field(obj: &Map<String, Value>, field: &str) -> Result<Option<Status>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match Status::parse(s) {
            Some(st) if st.settable_by_api() => Ok(Some(st)),
            _ => Err(FieldError::new(
                field,
                format!(
                    "Value {s:?} is not one of subscribed, unsubscribed, pending, transactional"
                ),
            )),
        },
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

impl MemberInput {
    /// Reads a member object; `tags` (an array of strings) only where the endpoint takes it.
    pub fn from_json(v: &Value, allow_tags: bool) -> Result<MemberInput, FieldError> {
        let Some(obj) = v.as_object() else {
            return Err(FieldError::new("", "the member must be a JSON object"));
        };
        let email_address = match obj.get("email_address") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => return Err(FieldError::new("email_address", "must be a string")),
        };
        let merge_fields = match obj.get("merge_fields") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => return Err(FieldError::new("merge_fields", "must be an object")),
        };
        let tags = match obj.get("tags") {
            Some(Value::Array(items)) if allow_tags => {
                let mut tags = Vec::with_capacity(items.len());
                for t in items {
                    match t.as_str().map(str::trim) {
                        Some(s) if !s.is_empty() => tags.push(s.to_string()),
                        _ => {
                            return Err(FieldError::new(
                                "tags",
                                "must be an array of non-empty strings",
                            ))
                        }
                    }
                }
                Some(tags)
            }
            None | Some(Value::Null) => None,
            Some(_) if allow_tags => {
                return Err(FieldError::new("tags", "must be an array of strings"))
            }
            Some(_) => None,
        };
        Ok(MemberInput {
            email_address,
            status: status_field(obj, "status")?,
            status_if_new: status_field(obj, "status_if_new")?,
            merge_fields,
            tags,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub email_address: String,
    pub unique_email_id: String,
    pub web_id: u64,
    pub status: Status,
    /// Only tags the list defines are kept.
    pub merge_fields: Map<String, Value>,
    /// Tag names in the order they were added.
    pub tags: Vec<String>,
    pub timestamp_signup: String,
    pub timestamp_opt: String,
    pub last_changed: String,
}

impl Member {
    pub fn add_tag(&mut self, name: &str) -> bool {
        if self.tags.iter().any(|t| t == name) {
            return false;
        }
        self.tags.push(name.to_string());
        true
    }

    pub fn remove_tag(&mut self, name: &str) -> bool {
        let before = self.tags.len();
        self.tags.retain(|t| t != name);
        before != self.tags.len()
    }

    fn merge_str(&self, tag: &str) -> &str {
        self.merge_fields
            .get(tag)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The API form: every list merge field (blank when unset), tags with their ids.
    pub fn to_api_json(
        &self,
        list_id: &str,
        merge_tags: &[&str],
        tag_id: &dyn Fn(&str) -> u64,
    ) -> Value {
        let mut merge = Map::with_capacity(merge_tags.len());
        for tag in merge_tags {
            let v = self
                .merge_fields
                .get(*tag)
                .cloned()
                .unwrap_or_else(|| Value::String(String::new()));
            merge.insert((*tag).to_string(), v);
        }
        let full_name = format!("{} {}", self.merge_str("FNAME"), self.merge_str("LNAME"))
            .trim()
            .to_string();
        let tags: Vec<Value> = self
            .tags
            .iter()
            .map(|t| json!({"id": tag_id(t), "name": t}))
            .collect();
        json!({
            "id": self.id,
            "email_address": self.email_address,
            "unique_email_id": self.unique_email_id,
            "contact_id": self.unique_email_id,
            "full_name": full_name,
            "web_id": self.web_id,
            "email_type": "html",
            "status": self.status.as_str(),
            "consents_to_one_to_one_messaging": true,
            "merge_fields": merge,
            "interests": {},
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": "",
            "timestamp_signup": self.timestamp_signup,
            "ip_opt": "",
            "timestamp_opt": self.timestamp_opt,
            "member_rating": 2,
            "last_changed": self.last_changed,
            "language": "",
            "vip": false,
            "email_client": "",
            "location": {"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0,
                         "country_code": "", "timezone": "", "region": ""},
            "source": "API - Generic",
            "tags_count": self.tags.len(),
            "tags": tags,
            "list_id": list_id,
        })
    }

    /// The admin (ground truth) form: stored merge fields only, tag names.
    pub fn to_admin_json(&self) -> Value {
        json!({
            "id": self.id,
            "email_address": self.email_address,
            "status": self.status.as_str(),
            "merge_fields": self.merge_fields,
            "tags": self.tags,
            "last_changed": self.last_changed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_md5_of_lowercase() {
        assert_eq!(
            subscriber_hash("Urist.McVankab@FreddieMacs.com"),
            subscriber_hash("urist.mcvankab@freddiemacs.com")
        );
        // md5("test@example.com")
        assert_eq!(
            subscriber_hash("test@example.com"),
            "55502f40dc8b7c769880b10874abc9d0"
        );
    }

    #[test]
    fn emails() {
        assert!(valid_email("a.b@example.org"));
        assert!(!valid_email("not-an-email"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("a b@example.org"));
        assert!(!valid_email("@example.org"));
        assert!(!valid_email("a@@example.org"));
        assert!(!valid_email("a@example..org"));
    }

    #[test]
    fn input_rejects_bad_status_and_tags() {
        let e = MemberInput::from_json(&json!({"status": "cleaned"}), true).unwrap_err();
        assert_eq!(e.field, "status");
        let e = MemberInput::from_json(&json!({"tags": [1]}), true).unwrap_err();
        assert_eq!(e.field, "tags");
        let ok = MemberInput::from_json(&json!({"tags": "x"}), false).unwrap();
        assert!(ok.tags.is_none());
    }
}
