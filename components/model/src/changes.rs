//! What one config document changes against another: routes, services,
//! versions, weights, consumers… one line per change, found by walking the
//! two canonical documents side by side. Lists of named entries are matched
//! by name, so a reordered list is no change. Secrets (API keys, key
//! digests, signing keys) are never shown, only that they changed.

use std::fmt;

use serde_json::Value;

/// Fields whose values are secret.
const SECRET_FIELDS: [&str; 5] = ["api_keys", "secret", "secrets", "password", "token"];

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Where, e.g. `services.orders.versions.v2.weight`.
    pub path: String,
    /// What happened there.
    pub kind: ChangeKind,
}

/// What happened at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// Added, with this value.
    Added(String),
    /// Removed; it had this value.
    Removed(String),
    /// Changed from one value to another.
    Changed(String, String),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ChangeKind::Added(value) => write!(f, "+ {}: {value}", self.path),
            ChangeKind::Removed(value) => write!(f, "- {}: {value}", self.path),
            ChangeKind::Changed(before, after) => {
                write!(f, "~ {}: {before} -> {after}", self.path)
            }
        }
    }
}

/// What going from document `old` to `new` changes, in document order.
pub fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let mut found = Vec::new();
    walk("", old, new, false, &mut found);
    found
}

fn walk(path: &str, old: &Value, new: &Value, secret: bool, found: &mut Vec<Change>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, before) in a {
                let at = join(path, key);
                let secret = secret || SECRET_FIELDS.contains(&key.as_str());
                match b.get(key) {
                    Some(after) => walk(&at, before, after, secret, found),
                    None => found.push(removed(at, before, secret)),
                }
            }
            for (key, after) in b.iter().filter(|(key, _)| !a.contains_key(*key)) {
                let secret = secret || SECRET_FIELDS.contains(&key.as_str());
                found.push(added(join(path, key), after, secret));
            }
        }
        (Value::Array(a), Value::Array(b)) if !secret && named(a) && named(b) => {
            for before in a {
                let name = name_of(before);
                let at = join(path, name);
                match b.iter().find(|after| name_of(after) == name) {
                    Some(after) => walk(&at, before, after, secret, found),
                    None => found.push(removed(at, before, secret)),
                }
            }
            for after in b {
                let name = name_of(after);
                if !a.iter().any(|before| name_of(before) == name) {
                    found.push(added(join(path, name), after, secret));
                }
            }
        }
        _ => found.push(Change {
            path: path.to_owned(),
            kind: ChangeKind::Changed(shown(old, secret), shown(new, secret)),
        }),
    }
}

fn added(path: String, value: &Value, secret: bool) -> Change {
    Change {
        path,
        kind: ChangeKind::Added(shown(value, secret)),
    }
}

fn removed(path: String, value: &Value, secret: bool) -> Change {
    Change {
        path,
        kind: ChangeKind::Removed(shown(value, secret)),
    }
}

/// Whether every entry of a list is an object with a `name`.
fn named(list: &[Value]) -> bool {
    !list.is_empty() && list.iter().all(|v| v["name"].is_string())
}

fn name_of(value: &Value) -> &str {
    value["name"].as_str().unwrap_or_default()
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A value as shown: compact JSON, with every secret in it hidden.
fn shown(value: &Value, secret: bool) -> String {
    if secret {
        return match value {
            Value::Array(list) => format!("({} hidden)", list.len()),
            _ => "(hidden)".to_owned(),
        };
    }
    redacted(value).to_string()
}

fn redacted(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, v)| {
                    let v = if SECRET_FIELDS.contains(&key.as_str()) {
                        Value::String(shown(v, true))
                    } else {
                        redacted(v)
                    };
                    (key.clone(), v)
                })
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(old: Value, new: Value) -> Vec<String> {
        changes(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn named_entries_are_matched_by_name() {
        let old = json!({"services": [
            {"name": "orders", "versions": [{"name": "v1", "weight": 90}, {"name": "v2", "weight": 10}]},
            {"name": "gone", "versions": []}]});
        let new = json!({"services": [
            {"name": "orders", "versions": [{"name": "v2", "weight": 50}, {"name": "v1", "weight": 50}]},
            {"name": "new", "versions": []}]});
        assert_eq!(
            lines(old, new),
            [
                "~ services.orders.versions.v1.weight: 90 -> 50",
                "~ services.orders.versions.v2.weight: 10 -> 50",
                "- services.gone: {\"name\":\"gone\",\"versions\":[]}",
                "+ services.new: {\"name\":\"new\",\"versions\":[]}",
            ]
        );
    }

    #[test]
    fn secrets_are_never_shown() {
        let old = json!({"consumers": [{"name": "bob", "api_keys": ["old-key-123"]}]});
        let new = json!({"consumers": [
            {"name": "bob", "api_keys": ["new-key-456", "other-789"]},
            {"name": "eve", "api_keys": ["eve-key-000"], "tenant": "acme"}]});
        let shown = lines(old, new);
        assert_eq!(
            shown,
            [
                "~ consumers.bob.api_keys: (1 hidden) -> (2 hidden)",
                "+ consumers.eve: {\"api_keys\":\"(1 hidden)\",\"name\":\"eve\",\"tenant\":\"acme\"}",
            ]
        );
        assert!(!shown.concat().contains("key-"));
    }

    #[test]
    fn the_same_document_changes_nothing() {
        let doc = json!({"routes": [{"name": "r", "service": "s"}]});
        assert!(changes(&doc, &doc).is_empty());
    }
}
