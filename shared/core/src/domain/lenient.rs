//! Serde helpers for what integrations really send: amounts as numbers or numeric strings,
//! ids as numbers or strings, empty strings where a value is missing.

use serde::{de, Deserialize, Deserializer};

/// A JSON number, string or boolean, as Classy sends one where another is documented.
enum NumOrString {
    Num(f64),
    Str(String),
    Bool(bool),
}

/// Read by type directly: an untagged enum buffered every value and built an error for each
/// string it first tried as a number, on every field of every record.
impl<'de> Deserialize<'de> for NumOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Any;
        impl de::Visitor<'_> for Any {
            type Value = NumOrString;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number, a string or a boolean")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumOrString, E> {
                Ok(NumOrString::Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumOrString, E> {
                Ok(NumOrString::Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumOrString, E> {
                Ok(NumOrString::Num(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NumOrString, E> {
                Ok(NumOrString::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<NumOrString, E> {
                Ok(NumOrString::Str(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<NumOrString, E> {
                Ok(NumOrString::Bool(v))
            }
        }
        d.deserialize_any(Any)
    }
}

/// `12.5`, `"12.5"`, `"1,200.00"`, `""` and `null` all accepted; `""`/`null` become `None`.
pub fn opt_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<NumOrString>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrString::Num(n)) => Ok(Some(n)),
        Some(NumOrString::Bool(_)) => Err(de::Error::custom("amount is a boolean")),
        Some(NumOrString::Str(s)) => {
            let t = s.trim().replace(',', "");
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<f64>()
                .map(Some)
                .map_err(|_| de::Error::custom(format!("amount {s:?} is not a number")))
        }
    }
}

/// Ids as integers or integer strings; `null`/`""` become `None`.
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<NumOrString>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrString::Num(n)) if n >= 0.0 && n.fract() == 0.0 => Ok(Some(n as u64)),
        Some(NumOrString::Num(n)) => {
            Err(de::Error::custom(format!("id {n} is not a whole number")))
        }
        Some(NumOrString::Bool(_)) => Err(de::Error::custom("id is a boolean")),
        Some(NumOrString::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(NumOrString::Str(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("id {s:?} is not a whole number"))),
    }
}

/// A required id, same leniency as [`opt_id`].
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    opt_id(d)?.ok_or_else(|| de::Error::custom("id is missing"))
}

/// Booleans as `true`, `1`, `"1"`, `"true"`; `null` is false (Classy omits opt_in at times).
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Option::<NumOrString>::deserialize(d)? {
        None => Ok(false),
        Some(NumOrString::Bool(b)) => Ok(b),
        Some(NumOrString::Num(n)) => Ok(n != 0.0),
        Some(NumOrString::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" | "" => Ok(false),
            _ => Err(de::Error::custom(format!("flag {s:?} is not a boolean"))),
        },
    }
}

/// Strings where empty means missing.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<NumOrString>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrString::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(NumOrString::Str(s)) => Ok(Some(s)),
        Some(NumOrString::Num(n)) => Ok(Some(if n.fract() == 0.0 {
            format!("{}", n as i64)
        } else {
            n.to_string()
        })),
        Some(NumOrString::Bool(b)) => Ok(Some(b.to_string())),
    }
}

/// Optional timestamps: `null`, `""` and the three Classy forms.
pub fn opt_timestamp<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<super::Timestamp>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => super::Timestamp::parse(&s)
            .map(Some)
            .map_err(de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Row {
        #[serde(default, deserialize_with = "opt_amount")]
        amount: Option<f64>,
        #[serde(default, deserialize_with = "opt_id")]
        id: Option<u64>,
        #[serde(default, deserialize_with = "flag")]
        opt_in: bool,
        #[serde(default, deserialize_with = "opt_text")]
        name: Option<String>,
    }

    fn row(json: &str) -> Result<Row, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_strings_and_booleans_are_read_leniently() {
        let r = row(r#"{"amount":"1,200.50","id":"42","opt_in":"1","name":7}"#).unwrap();
        assert_eq!(
            r,
            Row {
                amount: Some(1200.5),
                id: Some(42),
                opt_in: true,
                name: Some("7".into())
            }
        );
        let r = row(r#"{"amount":12,"id":42,"opt_in":true,"name":"Ada"}"#).unwrap();
        assert_eq!(
            r,
            Row {
                amount: Some(12.0),
                id: Some(42),
                opt_in: true,
                name: Some("Ada".into())
            }
        );
        let r = row(r#"{"amount":"","id":null,"opt_in":null,"name":"  "}"#).unwrap();
        assert_eq!(
            r,
            Row {
                amount: None,
                id: None,
                opt_in: false,
                name: None
            }
        );
        let r = row(r#"{"amount":-3.25,"id":"","opt_in":0,"name":1.5}"#).unwrap();
        assert_eq!(
            r,
            Row {
                amount: Some(-3.25),
                id: None,
                opt_in: false,
                name: Some("1.5".into())
            }
        );
    }

    #[test]
    fn values_of_the_wrong_kind_are_refused_naming_them() {
        assert!(row(r#"{"amount":"ten"}"#)
            .unwrap_err()
            .contains("\"ten\" is not a number"));
        assert!(row(r#"{"id":1.5}"#)
            .unwrap_err()
            .contains("id 1.5 is not a whole number"));
        assert!(row(r#"{"id":-1}"#)
            .unwrap_err()
            .contains("not a whole number"));
        assert!(row(r#"{"opt_in":"maybe"}"#)
            .unwrap_err()
            .contains("flag \"maybe\""));
        assert!(row(r#"{"amount":true}"#)
            .unwrap_err()
            .contains("amount is a boolean"));
        let nested = row(r#"{"name":{"first":"Ada"}}"#).unwrap_err();
        assert!(
            nested.contains("a number, a string or a boolean"),
            "{nested}"
        );
    }
}
