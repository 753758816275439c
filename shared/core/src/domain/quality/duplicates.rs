//! Duplicate supporters. Exact: the same normalized email (trimmed, lower-cased; no Gmail
//! dot or plus folding, since that would merge distinct mailboxes on other domains). Likely:
//! the same normalized first name, last name and postal code with different emails. Keys are
//! built here; the engine sorts them (bounded memory) and feeds groups back in key order.

use crate::domain::{OrgId, Supporter};
use serde::{Deserialize, Serialize};

pub fn normalize_email(e: &str) -> String {
    e.trim().to_lowercase()
}

fn normalize_name(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Upper-cased without spaces or dashes; US ZIP+4 reduced to its five digits.
pub fn normalize_postal(p: &str) -> String {
    let s: String = p
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    if s.len() == 9 && s.chars().all(|c| c.is_ascii_digit()) {
        s[..5].to_string()
    } else {
        s
    }
}

/// Sort keys of one supporter: `E\x1f<email>` and `N\x1f<first|last|postal>`, each followed by
/// `\x1f<org>\x1f<id>`; the value is the normalized email (empty when there is none).
pub fn duplicate_keys(org: OrgId, s: &Supporter, email_valid: bool) -> Vec<(String, String)> {
    let (email, name) = duplicate_parts(s, email_valid);
    keys_from_parts(org, s.id, email, &name)
}

/// What the keys of a supporter are made of: the normalized email (empty unless valid) and
/// `first|last|postal` (empty unless all three are present).
pub fn duplicate_parts(s: &Supporter, email_valid: bool) -> (String, String) {
    let email = s
        .email_address
        .as_deref()
        .filter(|_| email_valid)
        .map(normalize_email)
        .unwrap_or_default();
    let part = |v: &Option<String>, f: fn(&str) -> String| v.as_deref().map(f).unwrap_or_default();
    let first = part(&s.first_name, normalize_name);
    let last = part(&s.last_name, normalize_name);
    let postal = part(&s.postal_code, normalize_postal);
    let name = if !first.is_empty() && !last.is_empty() && !postal.is_empty() {
        format!("{first}|{last}|{postal}")
    } else {
        String::new()
    };
    (email, name)
}

/// The sort keys of [`duplicate_keys`] from their parts.
pub fn keys_from_parts(org: OrgId, id: u64, email: String, name: &str) -> Vec<(String, String)> {
    let tail = format!("\x1f{org:020}\x1f{id:020}");
    let mut out = Vec::with_capacity(2);
    if !email.is_empty() {
        out.push((format!("E\x1f{email}{tail}"), email.clone()));
    }
    if !name.is_empty() {
        out.push((format!("N\x1f{name}{tail}"), email));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateKind {
    /// Same normalized email.
    Email,
    /// Same normalized name and postal code, different emails.
    NamePostal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateGroup {
    pub kind: DuplicateKind,
    /// The shared key: the normalized email, or `first|last|postal`.
    pub key: String,
    /// (organization, supporter id), in key order.
    pub members: Vec<(OrgId, u64)>,
}

impl DuplicateGroup {
    pub fn orgs(&self) -> usize {
        let mut o: Vec<OrgId> = self.members.iter().map(|m| m.0).collect();
        o.dedup();
        o.len()
    }
}

/// Collects groups from keys offered in sorted order. Yields, per group key, the groups
/// within each organization (two or more members there) and the cross-organization group
/// (members in two or more organizations; email groups only).
#[derive(Default)]
pub struct Grouper {
    current: Option<(DuplicateKind, String)>,
    members: Vec<(OrgId, u64, String)>,
}

pub struct Grouped {
    pub within_org: Vec<DuplicateGroup>,
    pub cross_org: Option<DuplicateGroup>,
}

fn parse_key(k: &str) -> Option<(DuplicateKind, String, OrgId, u64)> {
    let mut parts = k.rsplitn(3, '\x1f');
    let id = parts.next()?.parse().ok()?;
    let org = parts.next()?.parse().ok()?;
    let head = parts.next()?;
    let (kind, key) = head.split_once('\x1f')?;
    let kind = match kind {
        "E" => DuplicateKind::Email,
        "N" => DuplicateKind::NamePostal,
        _ => return None,
    };
    Some((kind, key.to_string(), org, id))
}

impl Grouper {
    /// Offers the next sorted key; returns the groups completed by it, if any.
    pub fn offer(&mut self, sort_key: &str, email: String) -> Option<Grouped> {
        let (kind, key, org, id) = parse_key(sort_key)?;
        let done = match &self.current {
            Some((k, v)) if *k == kind && *v == key => None,
            _ => self.flush(),
        };
        if self.current.is_none() {
            self.current = Some((kind, key));
        }
        self.members.push((org, id, email));
        done
    }

    pub fn flush(&mut self) -> Option<Grouped> {
        let (kind, key) = self.current.take()?;
        let members = std::mem::take(&mut self.members);
        if members.len() < 2 {
            return None;
        }
        let mut within_org = Vec::new();
        let mut i = 0;
        while i < members.len() {
            let org = members[i].0;
            let j = members[i..]
                .iter()
                .position(|m| m.0 != org)
                .map_or(members.len(), |p| i + p);
            let group = &members[i..j];
            let distinct_emails = match kind {
                DuplicateKind::Email => true,
                // Same email too: already an email duplicate, not reported twice.
                DuplicateKind::NamePostal => {
                    let mut e: Vec<&str> = group.iter().map(|m| m.2.as_str()).collect();
                    e.sort_unstable();
                    e.dedup();
                    e.len() > 1 || e.first().is_some_and(|x| x.is_empty())
                }
            };
            if group.len() > 1 && distinct_emails {
                within_org.push(DuplicateGroup {
                    kind,
                    key: key.clone(),
                    members: group.iter().map(|m| (m.0, m.1)).collect(),
                });
            }
            i = j;
        }
        let cross = DuplicateGroup {
            kind,
            key,
            members: members.iter().map(|m| (m.0, m.1)).collect(),
        };
        let cross_org = (kind == DuplicateKind::Email && cross.orgs() > 1).then_some(cross);
        Some(Grouped {
            within_org,
            cross_org,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: u64, email: &str, first: &str, last: &str, postal: &str) -> Supporter {
        serde_json::from_value(serde_json::json!({"id": id, "email_address": email,
            "first_name": first, "last_name": last, "postal_code": postal,
            "updated_at": "2024-01-01T00:00:00Z"}))
        .unwrap()
    }

    #[test]
    fn groups_within_and_across_orgs() {
        let mut keys = Vec::new();
        keys.extend(duplicate_keys(
            1,
            &s(1, "Ann@X.org ", "Ann", "Lee", "92101"),
            true,
        ));
        keys.extend(duplicate_keys(
            1,
            &s(2, "ann@x.org", "Bob", "Ray", "1"),
            true,
        ));
        keys.extend(duplicate_keys(2, &s(3, "ANN@x.org", "Cy", "Do", "2"), true));
        keys.extend(duplicate_keys(
            1,
            &s(4, "other@x.org", "ann", "LEE", "92101-1234"),
            true,
        ));
        keys.extend(duplicate_keys(
            1,
            &s(5, "solo@x.org", "Eve", "Fay", "3"),
            true,
        ));
        keys.sort();
        let mut g = Grouper::default();
        let mut within = Vec::new();
        let mut cross = Vec::new();
        for (k, e) in keys {
            if let Some(done) = g.offer(&k, e) {
                within.extend(done.within_org);
                cross.extend(done.cross_org);
            }
        }
        if let Some(done) = g.flush() {
            within.extend(done.within_org);
            cross.extend(done.cross_org);
        }
        assert_eq!(within.len(), 2, "{within:?}");
        assert_eq!(within[0].members, vec![(1, 1), (1, 2)]);
        assert_eq!(within[1].kind, DuplicateKind::NamePostal);
        assert_eq!(within[1].members, vec![(1, 1), (1, 4)]);
        assert_eq!(cross.len(), 1);
        assert_eq!(cross[0].members, vec![(1, 1), (1, 2), (2, 3)]);
    }
}
