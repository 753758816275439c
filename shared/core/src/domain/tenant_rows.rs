//! Rows of a tenant file (`org import`, `org update --file`, `org credentials rotate --file`),
//! checked whole before anything is written: every problem is reported with its line and
//! field, and a secret's value never appears in a message.

use super::OrgId;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::fmt;

/// The columns a tenant file may have, in the order the CSV header documents them.
pub const COLUMNS: &[&str] = &[
    "classy_org_id",
    "name",
    "client_id",
    "client_secret",
    "template",
    "timezone",
];

/// One row as read from the file: every value still text. `line` is the 1-based line of a
/// CSV file or the 1-based position of the object in a JSON array.
#[derive(Default)]
pub struct RawRow {
    pub line: usize,
    pub classy_org_id: Option<String>,
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub template: Option<String>,
    pub timezone: Option<String>,
}

impl fmt::Debug for RawRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRow")
            .field("line", &self.line)
            .field("classy_org_id", &self.classy_org_id)
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("template", &self.template)
            .field("timezone", &self.timezone)
            .finish()
    }
}

/// A checked row.
#[derive(Clone)]
pub struct TenantRow {
    pub line: usize,
    pub id: OrgId,
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub template: Option<String>,
    pub timezone: Option<String>,
}

impl fmt::Debug for TenantRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantRow")
            .field("line", &self.line)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("template", &self.template)
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

/// What a file must and may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// `org import`: id, name and credentials required.
    Import,
    /// `org update --file`: the id required; name, template and timezone optional; no
    /// credentials (those change only through `org credentials rotate`).
    Update,
    /// `org credentials rotate --file`: id and client secret required, client id optional.
    Rotate,
}

/// One problem, at one line and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.field, self.message)
    }
}

pub const MAX_NAME_CHARS: usize = 200;

/// Checks every row and returns them all, or every problem found (not just the first).
pub fn check_rows(rows: Vec<RawRow>, kind: RowKind) -> Result<Vec<TenantRow>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    let mut first_line: HashMap<OrgId, usize> = HashMap::new();
    for row in rows {
        let line = row.line;
        let mut err = |field: &str, message: String| {
            errors.push(FieldError {
                line,
                field: field.to_string(),
                message,
            })
        };
        let id = match row.classy_org_id.as_deref().map(str::trim) {
            None | Some("") => {
                err("classy_org_id", "is required".into());
                None
            }
            Some(s) => match s.parse::<OrgId>() {
                Ok(0) | Err(_) => {
                    err(
                        "classy_org_id",
                        format!("{s:?} is not a Classy organization id (a positive integer)"),
                    );
                    None
                }
                Ok(id) => match first_line.get(&id) {
                    Some(first) => {
                        err(
                            "classy_org_id",
                            format!("organization {id} is also on line {first}"),
                        );
                        None
                    }
                    None => {
                        first_line.insert(id, line);
                        Some(id)
                    }
                },
            },
        };
        let name = non_empty(row.name);
        match (&name, kind) {
            (None, RowKind::Import) => err("name", "is required".into()),
            (Some(n), _) => {
                if n.chars().count() > MAX_NAME_CHARS {
                    err(
                        "name",
                        format!("is longer than {MAX_NAME_CHARS} characters"),
                    );
                } else if n.chars().any(char::is_control) {
                    err("name", "contains a control character".into());
                }
            }
            _ => {}
        }
        let client_id = non_empty(row.client_id);
        match (&client_id, kind) {
            (None, RowKind::Import) => err("client_id", "is required".into()),
            (Some(_), RowKind::Update) => err(
                "client_id",
                "credentials change only with `org credentials rotate`".into(),
            ),
            (Some(c), _) if c.chars().any(|ch| ch.is_whitespace() || ch.is_control()) => {
                err("client_id", "must not contain spaces".into())
            }
            _ => {}
        }
        let secret = row
            .client_secret
            .filter(|s| !s.expose_secret().trim().is_empty());
        match (&secret, kind) {
            (None, RowKind::Import | RowKind::Rotate) => err("client_secret", "is required".into()),
            (Some(_), RowKind::Update) => err(
                "client_secret",
                "credentials change only with `org credentials rotate`".into(),
            ),
            (Some(s), _) if s.expose_secret().trim().chars().any(char::is_whitespace) => {
                // Never the value: only what is wrong with it.
                err("client_secret", "must not contain spaces".into())
            }
            _ => {}
        }
        let template = non_empty(row.template);
        if let Some(t) = &template {
            if kind == RowKind::Rotate {
                err("template", "is not used by a rotation".into());
            } else if let Err(m) = check_template_name(t) {
                err("template", m);
            }
        }
        let timezone = non_empty(row.timezone);
        if let Some(tz) = &timezone {
            if kind == RowKind::Rotate {
                err("timezone", "is not used by a rotation".into());
            } else if tz.parse::<chrono_tz::Tz>().is_err() {
                err(
                    "timezone",
                    format!("{tz:?} is not an IANA time zone (e.g. America/New_York)"),
                );
            }
        }
        if kind == RowKind::Rotate && name.is_some() {
            err("name", "is not used by a rotation".into());
        }
        if let Some(id) = id {
            out.push(TenantRow {
                line,
                id,
                name,
                client_id,
                client_secret: secret.map(|s| SecretString::from(s.expose_secret().trim())),
                template,
                timezone,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Template names: lower-case letters, digits and `-`, 1 to 64 characters.
pub fn check_template_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a template name (lower-case letters, digits and '-')"
        ))
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: usize, id: &str, name: &str, client: &str, secret: &str) -> RawRow {
        RawRow {
            line,
            classy_org_id: Some(id.into()),
            name: Some(name.into()),
            client_id: Some(client.into()),
            client_secret: Some(SecretString::from(secret)),
            ..RawRow::default()
        }
    }

    #[test]
    fn a_good_import_passes_trimmed() {
        let rows = check_rows(
            vec![row(2, " 42 ", " Save the Owls ", "app-1", " s3cret ")],
            RowKind::Import,
        )
        .unwrap();
        assert_eq!(rows[0].id, 42);
        assert_eq!(rows[0].name.as_deref(), Some("Save the Owls"));
        assert_eq!(
            rows[0].client_secret.as_ref().unwrap().expose_secret(),
            "s3cret"
        );
    }

    #[test]
    fn every_problem_is_listed_by_line_and_field_without_the_secret() {
        let mut bad_tz = row(5, "7", "Seven", "app", "pw-seven");
        bad_tz.timezone = Some("Mars/Olympus".into());
        bad_tz.template = Some("Not A Name".into());
        let errors = check_rows(
            vec![
                row(2, "abc", "", "app", "pw-one"),
                row(3, "5", "Five", "", ""),
                row(4, "5", "Again", "app id", "pw two"),
                bad_tz,
            ],
            RowKind::Import,
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expect = [
            "line 2, classy_org_id: \"abc\" is not",
            "line 2, name: is required",
            "line 3, client_id: is required",
            "line 3, client_secret: is required",
            "line 4, classy_org_id: organization 5 is also on line 3",
            "line 4, client_id: must not contain spaces",
            "line 4, client_secret: must not contain spaces",
            "line 5, template: \"Not A Name\" is not a template name",
            "line 5, timezone: \"Mars/Olympus\" is not an IANA time zone",
        ];
        for e in expect {
            assert!(
                text.iter().any(|t| t.starts_with(e)),
                "missing {e:?} in {text:#?}"
            );
        }
        assert_eq!(text.len(), expect.len(), "{text:#?}");
        for t in &text {
            assert!(!t.contains("pw"), "a secret leaked: {t}");
        }
    }

    #[test]
    fn update_rows_refuse_credentials_and_rotation_rows_need_a_secret() {
        let e = check_rows(vec![row(2, "9", "Nine", "app", "pw")], RowKind::Update).unwrap_err();
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["client_id", "client_secret"]);
        let e = check_rows(
            vec![RawRow {
                line: 2,
                classy_org_id: Some("9".into()),
                ..RawRow::default()
            }],
            RowKind::Rotate,
        )
        .unwrap_err();
        assert_eq!(e[0].to_string(), "line 2, client_secret: is required");
        let ok = check_rows(
            vec![RawRow {
                line: 2,
                classy_org_id: Some("9".into()),
                timezone: Some("Europe/Berlin".into()),
                ..RawRow::default()
            }],
            RowKind::Update,
        )
        .unwrap();
        assert_eq!(ok[0].timezone.as_deref(), Some("Europe/Berlin"));
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let r = row(2, "1", "One", "app", "topsecretvalue");
        assert!(!format!("{r:?}").contains("topsecretvalue"));
        let t = check_rows(vec![r], RowKind::Import).unwrap();
        assert!(!format!("{t:?}").contains("topsecretvalue"));
    }
}
