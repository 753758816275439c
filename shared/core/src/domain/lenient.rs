//! Serde helpers for what integrations really send: amounts as numbers or numeric strings,
//! ids as numbers or strings, empty strings where a value is missing.

use serde::{de, Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(f64),
    Str(String),
    Bool(bool),
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
