//! The four Classy records classy-sync keeps, with Classy's field names. Deserialization is
//! tolerant (amounts as strings, missing emails, unknown fields ignored); serialization writes
//! Classy's own forms back, so exports read like the API.

use super::lenient;
use super::Timestamp;
use serde::{Deserialize, Serialize};

/// What every synced record offers the engine.
pub trait Record: serde::de::DeserializeOwned + Serialize + Send + Sync + 'static {
    fn id(&self) -> u64;
    fn updated_at(&self) -> Timestamp;
}

macro_rules! record {
    ($t:ty) => {
        impl Record for $t {
            fn id(&self) -> u64 {
                self.id
            }
            fn updated_at(&self) -> Timestamp {
                self.updated_at
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supporter {
    #[serde(deserialize_with = "lenient::id")]
    pub id: u64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub email_address: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub opt_in: bool,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub address1: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub address2: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub city: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub postal_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub country: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub member_id: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub origin: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub created_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}
record!(Supporter);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    #[serde(deserialize_with = "lenient::id")]
    pub id: u64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub internal_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_text")]
    pub campaign_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_amount")]
    pub goal: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub currency_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub started_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub created_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}
record!(Campaign);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    #[serde(deserialize_with = "lenient::id")]
    pub id: u64,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub supporter_id: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub campaign_id: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub recurring_donation_plan_id: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_amount")]
    pub total_gross_amount: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_amount")]
    pub donation_gross_amount: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_amount")]
    pub donation_net_amount: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_amount")]
    pub fees_amount: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub currency_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub frequency: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub payment_method: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub purchased_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub refunded_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub created_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}
record!(Transaction);

impl Transaction {
    /// Only successful gifts count towards giving totals.
    pub fn is_successful(&self) -> bool {
        self.status.as_deref() == Some("success")
    }

    /// When the gift happened: purchase time, else creation, else last update.
    pub fn gift_date(&self) -> Timestamp {
        self.purchased_at
            .or(self.created_at)
            .unwrap_or(self.updated_at)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecurringPlan {
    #[serde(deserialize_with = "lenient::id")]
    pub id: u64,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub supporter_id: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub campaign_id: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_amount")]
    pub donation_amount: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub currency_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub frequency: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub next_processing_date: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub started_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub canceled_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub created_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}
record!(RecurringPlan);

/// A plausible address: something@domain.tld, no spaces. Mailchimp is the final judge.
pub fn plausible_email(e: &str) -> bool {
    let e = e.trim();
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

impl Supporter {
    /// The consent rule of the Mailchimp push: a supporter who opted in and has a plausible
    /// address is the one it asks to be `subscribed`.
    pub fn mailchimp_consent(&self) -> bool {
        self.opt_in && self.email_address.as_deref().is_some_and(plausible_email)
    }
}

impl RecurringPlan {
    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some("active")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supporter_tolerates_missing_email_strings_and_unknown_fields() {
        let s: Supporter = serde_json::from_str(
            r#"{"id":"42","first_name":"Ana","opt_in":1,"updated_at":"2024-01-01T00:00:00Z","new_field":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(s.id, 42);
        assert_eq!(s.email_address, None);
        assert!(s.opt_in);
    }

    #[test]
    fn transaction_amounts_as_strings_or_numbers() {
        let t: Transaction = serde_json::from_str(
            r#"{"id":7,"total_gross_amount":"1,250.50","donation_net_amount":12,"status":"success",
               "updated_at":"2024-01-01T00:00:00.123+0000"}"#,
        )
        .unwrap();
        assert_eq!(t.total_gross_amount, Some(1250.5));
        assert_eq!(t.donation_net_amount, Some(12.0));
        assert!(t.is_successful());
    }

    #[test]
    fn mailchimp_consent_needs_opt_in_and_a_plausible_address() {
        let s = |opt_in: bool, email: &str| -> Supporter {
            serde_json::from_value(serde_json::json!({"id": 1, "opt_in": opt_in,
                "email_address": email, "updated_at": "2024-01-01T00:00:00Z"}))
            .unwrap()
        };
        assert!(s(true, " Ana@Example.org ").mailchimp_consent());
        assert!(!s(false, "ana@example.org").mailchimp_consent());
        for bad in [
            "",
            "ana",
            "ana@example",
            "@example.org",
            "a na@example.org",
            "ana@.org.",
        ] {
            assert!(!s(true, bad).mailchimp_consent(), "{bad}");
        }
    }

    #[test]
    fn wrong_types_are_rejected_with_the_field_name() {
        let e = serde_json::from_str::<Transaction>(
            r#"{"id":7,"total_gross_amount":"abc","updated_at":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("abc"), "{e}");
    }

    #[test]
    fn serializes_back_to_classy_forms() {
        let t: Transaction =
            serde_json::from_str(r#"{"id":1,"updated_at":"2024-01-01T00:00:00Z"}"#).unwrap();
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["updated_at"], "2024-01-01T00:00:00+0000");
    }
}
