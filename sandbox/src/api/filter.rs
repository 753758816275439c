//! Query parameters of list endpoints: paging, `filter={attr}{op}{value}` and
//! `sort={attr}:asc|desc`. Errors become 400 `{"errors":[...]}`.

use crate::data::record::{Kind, Record};
use crate::data::store::{Filter, Op, Operand, Sort};
use crate::data::time::{parse_date, parse_ts, TsError};

pub const DEFAULT_PER_PAGE: usize = 20;
pub const MAX_PER_PAGE: usize = 100;

/// Decoded query of a list request.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub page: usize,
    pub per_page: usize,
    pub filter: Option<String>,
    pub sort: Option<String>,
    /// Every parameter in request order (decoded once), to rebuild page URLs.
    pub params: Vec<(String, String)>,
}

/// Parses the raw query string (decoding it exactly once, as the framework does).
pub fn parse_query(raw: Option<&str>) -> Result<ListQuery, String> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let mut q = ListQuery {
        page: 1,
        per_page: DEFAULT_PER_PAGE,
        params,
        ..Default::default()
    };
    for (k, v) in &q.params {
        match k.as_str() {
            "page" => {
                let n: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("The page must be an integer (got {v:?})."))?;
                q.page = n.max(1);
            }
            "per_page" => {
                let n: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("The per page must be an integer (got {v:?})."))?;
                q.per_page = n.clamp(1, MAX_PER_PAGE);
            }
            "filter" => q.filter = Some(v.clone()),
            "sort" => q.sort = Some(v.clone()),
            _ => {}
        }
    }
    Ok(q)
}

fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn kind_of<R: Record>(field: &str) -> Option<Kind> {
    R::FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, k)| *k)
}

/// Parses `{attr}{op}{value}` against the fields of `R`. `strict` refuses fractional seconds.
pub fn parse_filter<R: Record>(raw: &str, strict: bool) -> Result<Filter, String> {
    if has_percent_escape(raw) {
        return Err(format!("The filter {raw:?} is still URL-encoded after decoding: encode the operand exactly once."));
    }
    let attr_len = raw
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let (field, rest) = raw.split_at(attr_len);
    if field.is_empty() {
        return Err(format!(
            "The filter {raw:?} must look like {{attribute}}{{operator}}{{value}}."
        ));
    }
    // Two-character operators first, so `<=` is not read as `<` followed by `=value`.
    let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix("<>") {
        (Op::Ne, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (Op::Ne, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (Op::Eq, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Op::Lt, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Op::Gt, v)
    } else {
        return Err(format!(
            "The filter {raw:?} has no valid operator (<= >= <> != = < >)."
        ));
    };
    let kind = kind_of::<R>(field)
        .ok_or_else(|| format!("The filter attribute {field:?} is not filterable."))?;
    let value = parse_operand(kind, value, strict)
        .map_err(|e| format!("The filter {raw:?} is invalid: {e}"))?;
    Ok(Filter {
        field: field.to_string(),
        op,
        value,
    })
}

fn parse_operand(kind: Kind, v: &str, strict: bool) -> Result<Operand, String> {
    if v.eq_ignore_ascii_case("null") {
        return Ok(Operand::Null);
    }
    match kind {
        Kind::Str => Ok(Operand::Str(v.to_string())),
        Kind::Int => v
            .parse::<i64>()
            .map(Operand::Int)
            .or_else(|_| v.parse::<f64>().map(Operand::Num))
            .map_err(|_| format!("{v:?} is not a number")),
        Kind::Num => v.parse::<f64>().map(Operand::Num).map_err(|_| format!("{v:?} is not a number")),
        Kind::Bool => match v {
            "true" | "1" => Ok(Operand::Bool(true)),
            "false" | "0" => Ok(Operand::Bool(false)),
            _ => Err(format!("{v:?} is not a boolean")),
        },
        Kind::Time => parse_ts(v, !strict).map(Operand::Time).map_err(|e| match e {
            TsError::Fraction => format!("{v:?}: timestamps must not carry fractional seconds"),
            TsError::Invalid if v.contains(' ') => format!(
                "{v:?} is not a timestamp (a '+' in the offset must be sent as %2B, or it decodes to a space)"
            ),
            TsError::Invalid => format!("{v:?} is not a timestamp like 2016-01-01T12:00:00+0000"),
        }),
        Kind::Date => parse_date(v).map(Operand::Date).ok_or_else(|| format!("{v:?} is not a date")),
    }
}

/// Parses `{attr}[:asc|:desc]`.
pub fn parse_sort<R: Record>(raw: &str) -> Result<Sort, String> {
    let (field, dir) = raw.split_once(':').unwrap_or((raw, "asc"));
    let desc = match dir.to_ascii_lowercase().as_str() {
        "asc" => false,
        "desc" => true,
        _ => return Err(format!("The sort direction {dir:?} must be asc or desc.")),
    };
    if kind_of::<R>(field).is_none() {
        return Err(format!("The sort attribute {field:?} is not sortable."));
    }
    Ok(Sort {
        field: field.to_string(),
        desc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::model::{Supporter, Transaction};
    use crate::data::record::Scalar;
    use crate::data::time::epoch;

    #[test]
    fn operators_two_char_first() {
        let f = parse_filter::<Supporter>("id<=5", false).unwrap();
        assert_eq!((f.op, f.value), (Op::Le, Operand::Int(5)));
        let f = parse_filter::<Supporter>("id>=5", false).unwrap();
        assert_eq!(f.op, Op::Ge);
        let f = parse_filter::<Supporter>("id<>5", false).unwrap();
        assert_eq!(f.op, Op::Ne);
        let f = parse_filter::<Supporter>("id!=5", false).unwrap();
        assert_eq!(f.op, Op::Ne);
        let f = parse_filter::<Supporter>("id<5", false).unwrap();
        assert_eq!(f.op, Op::Lt);
        let f = parse_filter::<Supporter>("email_address=a=b@example.org", false).unwrap();
        assert_eq!(
            (f.op, f.value),
            (Op::Eq, Operand::Str("a=b@example.org".into()))
        );
    }

    #[test]
    fn timestamps_and_errors() {
        let t = epoch(2025, 4, 20, 0, 0, 0);
        for v in [
            "2025-04-20T00:00:00+0000",
            "2025-04-20T00:00:00Z",
            "2025-04-20T00:00:00.000Z",
        ] {
            let f = parse_filter::<Supporter>(&format!("updated_at>{v}"), false).unwrap();
            assert_eq!(f.value, Operand::Time(t));
        }
        assert!(parse_filter::<Supporter>("updated_at>2025-04-20T00:00:00.000Z", true).is_err());
        assert!(parse_filter::<Supporter>("updated_at>2025-04-20T00:00:00%2B0000", false).is_err());
        assert!(parse_filter::<Supporter>("updated_at>2025-04-20T00:00:00 0000", false).is_err());
        assert!(parse_filter::<Supporter>("nonsense>1", false).is_err());
        assert!(parse_filter::<Supporter>("id~1", false).is_err());
        assert!(parse_filter::<Supporter>("id>abc", false).is_err());
    }

    #[test]
    fn compare_semantics() {
        let f = parse_filter::<Transaction>("total_gross_amount>=5000", false).unwrap();
        assert!(f.matches(Scalar::Num(5000.0)));
        assert!(!f.matches(Scalar::Num(4999.99)));
        assert!(!f.matches(Scalar::Null));
        let f = parse_filter::<Transaction>("recurring_donation_plan_id!=null", false).unwrap();
        assert!(f.matches(Scalar::Int(3)) && !f.matches(Scalar::Null));
        let f = parse_filter::<Transaction>("status<>success", false).unwrap();
        assert!(f.matches(Scalar::Str("refunded")) && !f.matches(Scalar::Str("success")));
        let f = parse_filter::<Supporter>("first_name!=Ana", false).unwrap();
        assert!(f.matches(Scalar::Null));
    }

    #[test]
    fn paging_params() {
        let q = parse_query(Some(
            "page=3&per_page=500&filter=id%3E5&sort=updated_at%3Aasc",
        ))
        .unwrap();
        assert_eq!((q.page, q.per_page), (3, 100));
        assert_eq!(q.filter.as_deref(), Some("id>5"));
        assert_eq!(q.sort.as_deref(), Some("updated_at:asc"));
        assert!(parse_query(Some("per_page=ten")).is_err());
        assert!(parse_query(Some("page=x")).is_err());
        assert_eq!(parse_query(None).unwrap().per_page, DEFAULT_PER_PAGE);
        assert!(parse_sort::<Supporter>("updated_at:sideways").is_err());
        assert!(parse_sort::<Supporter>("bogus:asc").is_err());
        assert_eq!(
            parse_sort::<Supporter>("updated_at:desc").unwrap(),
            Sort {
                field: "updated_at".into(),
                desc: true
            }
        );
    }
}
