//! Comparing a shadow copy's answer with the primary's, the way Diffy
//! does: JSON-aware (fields by path, their types and values), whole text
//! otherwise, and with the noise taken out, the fields that differ between
//! two answers of the stable version itself (ids, timestamps).
//!
//! Field paths are JSONPath-like: `$` for the whole body, `$.a.b` for
//! object members, `$.items[*].id` for a member of any array element
//! (array positions are not told apart, so that a field is one field
//! however long its array).

use serde_json::Value;
use std::collections::BTreeSet;

/// Bodies longer than this are not compared.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest value shown in a sample, in characters.
const SAMPLE_CHARS: usize = 120;

/// Member names whose values never appear in a sample.
const SECRET_NAMES: [&str; 9] = [
    "authorization",
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "cookie",
    "set-cookie",
    "private_key",
];

/// One field that differs, with both sides' values as shown in a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// Where: `$.a.b`, `$.items[*].id`, or `$` for a text body.
    pub path: String,
    /// The primary's value (JSON text, shortened; `[redacted]` for secrets;
    /// `(absent)` when missing).
    pub primary: String,
    /// The copy's value, shown the same way.
    pub copy: String,
}

/// The fields in which `copy` differs from `primary`, each path once,
/// leaving out `ignore`d paths and what is under them. Two JSON bodies
/// are compared member by member; anything else as text.
pub fn fields(primary: &[u8], copy: &[u8], ignore: &[String]) -> Vec<FieldDiff> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    match (
        serde_json::from_slice::<Value>(primary),
        serde_json::from_slice::<Value>(copy),
    ) {
        (Ok(a), Ok(b)) => walk("$".to_owned(), Some(&a), Some(&b), &mut found, &mut seen),
        _ if primary != copy => found.push(FieldDiff {
            path: "$".to_owned(),
            primary: shown_text(primary),
            copy: shown_text(copy),
        }),
        _ => {}
    }
    found.retain(|d| !ignored(&d.path, ignore));
    found
}

/// Whether `path` is one of `ignore` or under one.
fn ignored(path: &str, ignore: &[String]) -> bool {
    ignore.iter().any(|i| {
        path == i
            || path
                .strip_prefix(i.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

fn walk(
    path: String,
    a: Option<&Value>,
    b: Option<&Value>,
    found: &mut Vec<FieldDiff>,
    seen: &mut BTreeSet<String>,
) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let names: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for name in names {
                walk(
                    format!("{path}.{name}"),
                    x.get(name),
                    y.get(name),
                    found,
                    seen,
                );
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            let element = format!("{path}[*]");
            for i in 0..x.len().max(y.len()) {
                walk(element.clone(), x.get(i), y.get(i), found, seen);
            }
        }
        (x, y) if x != y && seen.insert(path.clone()) => {
            let secret = is_secret(&path);
            found.push(FieldDiff {
                primary: shown(x, secret),
                copy: shown(y, secret),
                path,
            });
        }
        _ => {}
    }
}

/// Whether the member a path ends with names a secret.
fn is_secret(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    let last = last.trim_end_matches("[*]").to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| last.contains(s))
}

fn shown(value: Option<&Value>, secret: bool) -> String {
    match value {
        None => "(absent)".to_owned(),
        Some(_) if secret => "[redacted]".to_owned(),
        Some(value) => shortened(value.to_string()),
    }
}

fn shown_text(body: &[u8]) -> String {
    shortened(String::from_utf8_lossy(body).into_owned())
}

fn shortened(text: String) -> String {
    match text.char_indices().nth(SAMPLE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(a: &str, b: &str, ignore: &[&str]) -> Vec<String> {
        let ignore: Vec<String> = ignore.iter().map(|s| s.to_string()).collect();
        fields(a.as_bytes(), b.as_bytes(), &ignore)
            .into_iter()
            .map(|d| d.path)
            .collect()
    }

    #[test]
    fn json_bodies_differ_by_field_type_and_presence() {
        let a = r#"{"id": 7, "price": 10, "tags": ["a", "b"], "owner": {"name": "x"}}"#;
        assert!(paths(a, a, &[]).is_empty());
        // Member order and whitespace do not matter.
        let reordered = r#"{ "owner": {"name": "x"}, "tags": ["a","b"], "price": 10, "id": 7 }"#;
        assert!(paths(a, reordered, &[]).is_empty());
        let b = r#"{"id": 8, "price": "10", "tags": ["a", "c", "d"], "owner": {}}"#;
        assert_eq!(
            paths(a, b, &[]),
            ["$.id", "$.owner.name", "$.price", "$.tags[*]"]
        );
        assert_eq!(paths(a, b, &["$.id", "$.owner"]), ["$.price", "$.tags[*]"]);
        // An ignored path does not hide its longer-named siblings.
        assert_eq!(
            paths(
                r#"{"id": 1, "idx": 1}"#,
                r#"{"id": 2, "idx": 2}"#,
                &["$.id"]
            ),
            ["$.idx"]
        );
    }

    #[test]
    fn array_elements_are_one_field() {
        let a = r#"{"items": [{"id": 1, "at": 5}, {"id": 2, "at": 6}]}"#;
        let b = r#"{"items": [{"id": 1, "at": 9}, {"id": 2, "at": 9}]}"#;
        assert_eq!(paths(a, b, &[]), ["$.items[*].at"]);
        assert!(paths(a, b, &["$.items[*].at"]).is_empty());
    }

    #[test]
    fn other_bodies_compare_as_text() {
        assert!(paths("plain", "plain", &[]).is_empty());
        let diff = fields(b"plain", b"other", &[]);
        assert_eq!(
            diff,
            [FieldDiff {
                path: "$".into(),
                primary: "plain".into(),
                copy: "other".into()
            }]
        );
        assert_eq!(paths("{}", "not json", &[]), ["$"]);
    }

    #[test]
    fn samples_hide_secrets_and_stay_short() {
        let a = r#"{"access_token": "s3cret-a", "user": {"Password": "p"}, "note": "x"}"#;
        let long = "y".repeat(500);
        let b = format!(
            r#"{{"access_token": "s3cret-b", "user": {{"Password": "q"}}, "note": "{long}"}}"#
        );
        let diff = fields(a.as_bytes(), b.as_bytes(), &[]);
        assert_eq!(diff[0].path, "$.access_token");
        assert_eq!(
            (diff[0].primary.as_str(), diff[0].copy.as_str()),
            ("[redacted]", "[redacted]")
        );
        assert_eq!(diff[2].path, "$.user.Password");
        assert_eq!(diff[2].copy, "[redacted]");
        assert_eq!(diff[1].copy.chars().count(), SAMPLE_CHARS + 1);
        let shown = format!("{diff:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("\"q\""),
            "{shown}"
        );
    }
}
