//! Typed records with name-based field access. Records are plain structs (compact in memory,
//! fast to serialize); the `record!` macro adds JSON writing, filter access and JSON merging.

use super::time;
use serde_json::Value;
use std::sync::Arc;

/// Shared immutable string: generated data reuses one allocation for enum-like values.
pub type Str = Arc<str>;

/// Epoch seconds, serialized as `2016-01-01T12:00:00+0000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

/// Days since the epoch, serialized as `2016-01-01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Date(pub i32);

/// How a field compares in filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Num,
    Str,
    Bool,
    Time,
    Date,
}

/// A field value borrowed from a record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Int(i64),
    Num(f64),
    Str(&'a str),
    Bool(bool),
    Time(i64),
    Date(i32),
}

/// Serialization switches (quirk mode).
#[derive(Clone, Copy, Debug, Default)]
pub struct SerOpts {
    pub string_amounts: bool,
    pub missing_emails: bool,
}

impl SerOpts {
    pub fn any(&self) -> bool {
        self.string_amounts || self.missing_emails
    }
}

/// A type that can sit in a record field.
pub trait FieldType: Sized {
    const KIND: Kind;
    /// `as_string` asks numbers to be written as numeric strings (string_amounts quirk).
    fn write(&self, out: &mut Vec<u8>, as_string: bool);
    fn scalar(&self) -> Scalar<'_>;
    fn from_json(v: &Value) -> Result<Self, String>;
}

pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Fast path: most generated strings need no escaping.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("vec write");
    }
}

impl FieldType for i64 {
    const KIND: Kind = Kind::Int;
    fn write(&self, out: &mut Vec<u8>, _: bool) {
        use std::io::Write;
        write!(out, "{self}").expect("vec write");
    }
    fn scalar(&self) -> Scalar<'_> {
        Scalar::Int(*self)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
            Value::String(s) => s.parse().map_err(|_| format!("{s:?} is not an integer")),
            _ => Err(format!("{v} is not an integer")),
        }
    }
}

impl FieldType for f64 {
    const KIND: Kind = Kind::Num;
    fn write(&self, out: &mut Vec<u8>, as_string: bool) {
        if as_string {
            out.extend_from_slice(format!("\"{self:.2}\"").as_bytes());
        } else if self.is_finite() {
            serde_json::to_writer(&mut *out, self).expect("vec write");
        } else {
            out.extend_from_slice(b"null");
        }
    }
    fn scalar(&self) -> Scalar<'_> {
        Scalar::Num(*self)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
            Value::String(s) => s.parse().map_err(|_| format!("{s:?} is not a number")),
            _ => Err(format!("{v} is not a number")),
        }
    }
}

impl FieldType for Str {
    const KIND: Kind = Kind::Str;
    fn write(&self, out: &mut Vec<u8>, _: bool) {
        write_str(out, self);
    }
    fn scalar(&self) -> Scalar<'_> {
        Scalar::Str(self)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(Str::from(s.as_str())),
            Value::Number(n) => Ok(Str::from(n.to_string())),
            _ => Err(format!("{v} is not a string")),
        }
    }
}

impl FieldType for bool {
    const KIND: Kind = Kind::Bool;
    fn write(&self, out: &mut Vec<u8>, _: bool) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
    fn scalar(&self) -> Scalar<'_> {
        Scalar::Bool(*self)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(*b),
            _ => Err(format!("{v} is not a boolean")),
        }
    }
}

impl FieldType for Ts {
    const KIND: Kind = Kind::Time;
    fn write(&self, out: &mut Vec<u8>, _: bool) {
        out.push(b'"');
        time::write_ts(out, self.0);
        out.push(b'"');
    }
    fn scalar(&self) -> Scalar<'_> {
        Scalar::Time(self.0)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) => time::parse_ts(s, true)
                .map(Ts)
                .map_err(|_| format!("{s:?} is not a timestamp")),
            _ => Err(format!("{v} is not a timestamp")),
        }
    }
}

impl FieldType for Date {
    const KIND: Kind = Kind::Date;
    fn write(&self, out: &mut Vec<u8>, _: bool) {
        out.push(b'"');
        time::write_date(out, self.0);
        out.push(b'"');
    }
    fn scalar(&self) -> Scalar<'_> {
        Scalar::Date(self.0)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) => time::parse_date(s)
                .map(Date)
                .ok_or_else(|| format!("{s:?} is not a date")),
            _ => Err(format!("{v} is not a date")),
        }
    }
}

impl<T: FieldType> FieldType for Option<T> {
    const KIND: Kind = T::KIND;
    fn write(&self, out: &mut Vec<u8>, as_string: bool) {
        match self {
            Some(v) => v.write(out, as_string),
            None => out.extend_from_slice(b"null"),
        }
    }
    fn scalar(&self) -> Scalar<'_> {
        match self {
            Some(v) => v.scalar(),
            None => Scalar::Null,
        }
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_json(v).map(Some),
        }
    }
}

/// Reads one field of a record, resolved once per query.
pub type Accessor<R> = fn(&R) -> Scalar<'_>;

/// What every served entity offers the store and the API.
pub trait Record: SkipFields + Clone + Send + Sync + 'static {
    /// Field names in serialization order with their filter kinds.
    const FIELDS: &'static [(&'static str, Kind)];
    fn id(&self) -> i64;
    fn set_id(&mut self, id: i64);
    fn created_at(&self) -> i64;
    fn updated_at(&self) -> i64;
    fn set_created_at(&mut self, t: i64);
    fn set_updated_at(&mut self, t: i64);
    fn accessor(name: &str) -> Option<Accessor<Self>>;
    /// Sets one field from JSON; unknown fields and wrong types are errors.
    fn set_json(&mut self, name: &str, v: &Value) -> Result<(), String>;
    fn write_json(&self, out: &mut Vec<u8>, opts: &SerOpts);
    fn to_value(&self) -> Value {
        let mut v = Vec::with_capacity(512);
        self.write_json(&mut v, &SerOpts::default());
        serde_json::from_slice(&v).expect("records serialize to valid JSON")
    }
}

/// Per-entity hook: fields a quirk drops from a record (e.g. missing emails).
pub trait SkipFields {
    fn skip_field(&self, _name: &str, _opts: &SerOpts) -> bool {
        false
    }
}

/// Amount-like numeric fields the string_amounts quirk turns into strings.
pub fn is_amount(name: &str) -> bool {
    name.contains("amount") || name.ends_with("goal")
}

pub fn write_key(out: &mut Vec<u8>, name: &str, first: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Declares a record struct; `id`, `created_at` and `updated_at` must be present
/// (`updated_at` as `Ts`, `created_at` as `Ts`). `field as "json_name"` renames.
#[macro_export]
macro_rules! record {
    ($(#[$m:meta])* $name:ident { $( $f:ident $(as $k:literal)? : $t:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default)]
        pub struct $name { $( pub $f: $t ),* }

        impl $crate::data::record::Record for $name {
            const FIELDS: &'static [(&'static str, $crate::data::record::Kind)] = &[
                $( ($crate::record!(@key $f $($k)?), <$t as $crate::data::record::FieldType>::KIND) ),*
            ];
            fn id(&self) -> i64 { self.id }
            fn set_id(&mut self, id: i64) { self.id = id; }
            fn created_at(&self) -> i64 { self.created_at.0 }
            fn updated_at(&self) -> i64 { self.updated_at.0 }
            fn set_created_at(&mut self, t: i64) { self.created_at = $crate::data::record::Ts(t); }
            fn set_updated_at(&mut self, t: i64) { self.updated_at = $crate::data::record::Ts(t); }
            fn accessor(name: &str) -> Option<$crate::data::record::Accessor<Self>> {
                match name {
                    $( $crate::record!(@key $f $($k)?) => Some(|r: &Self| {
                        <$t as $crate::data::record::FieldType>::scalar(&r.$f)
                    }), )*
                    _ => None,
                }
            }
            fn set_json(&mut self, name: &str, v: &serde_json::Value) -> Result<(), String> {
                match name {
                    $( $crate::record!(@key $f $($k)?) => {
                        self.$f = <$t as $crate::data::record::FieldType>::from_json(v)
                            .map_err(|e| format!("{name}: {e}"))?;
                        Ok(())
                    } )*
                    _ => Err(format!("unknown field {name}")),
                }
            }
            fn write_json(&self, out: &mut Vec<u8>, opts: &$crate::data::record::SerOpts) {
                let mut first = true;
                out.push(b'{');
                $(
                    let key = $crate::record!(@key $f $($k)?);
                    if !(opts.any() && $crate::data::record::SkipFields::skip_field(self, key, opts)) {
                        $crate::data::record::write_key(out, key, &mut first);
                        let as_string = opts.string_amounts
                            && <$t as $crate::data::record::FieldType>::KIND == $crate::data::record::Kind::Num
                            && $crate::data::record::is_amount(key);
                        <$t as $crate::data::record::FieldType>::write(&self.$f, out, as_string);
                    }
                )*
                out.push(b'}');
            }
        }
    };
    (@key $f:ident $k:literal) => { $k };
    (@key $f:ident) => { stringify!($f) };
}
