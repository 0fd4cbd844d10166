//! JSON Web Key Sets (RFC 7517) fetched from a credential's `jwks.url`.
//!
//! Auth reads the set from the store; it never fetches. When a token names
//! a key (`kid`) the stored set lacks, and the set was last checked longer
//! ago than the credential's `min_refresh_s`, auth refuses with
//! [`KEYS_WANTED`] and the URL in [`JWKS_URL_HEADER`]. The lane serving the
//! request then fetches the set, stores it with [`JwksRecord::refreshed`],
//! and asks auth again. A failed fetch keeps the keys it had, so tokens
//! signed with known keys keep passing through an outage of the endpoint.

use serde::{Deserialize, Serialize};

/// The code of auth's refusal that asks the lane to fetch a key set.
pub const KEYS_WANTED: &str = "keys_wanted";

/// The header of that refusal naming the key set's URL.
pub const JWKS_URL_HEADER: &str = "x-upshift-jwks-url";

/// Largest key set read, in bytes.
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// What the store holds for one key set URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwksRecord {
    /// Where the set is published.
    pub url: String,
    /// When it was last fetched or tried, in Unix milliseconds: refreshes
    /// are at least the credential's `min_refresh_s` apart.
    pub checked_ms: u64,
    /// When the keys held were fetched; `None` before any fetch succeeded.
    #[serde(default)]
    pub fetched_ms: Option<u64>,
    /// The last key set fetched: a JSON object with a `keys` list.
    #[serde(default)]
    pub keys: Option<serde_json::Value>,
    /// Why the last try failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

impl JwksRecord {
    /// The record after fetching `url` at `now_ms` gave `fetched` (the body,
    /// or why there is none): the new set, or the `previous` keys kept with
    /// the failure noted.
    pub fn refreshed(
        previous: Option<JwksRecord>,
        url: &str,
        now_ms: u64,
        fetched: Result<Vec<u8>, String>,
    ) -> JwksRecord {
        let set = fetched.and_then(|body| {
            let set: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| format!("the key set is not JSON: {e}"))?;
            if set.get("keys").is_some_and(serde_json::Value::is_array) {
                Ok(set)
            } else {
                Err("the document has no `keys` list".to_owned())
            }
        });
        let (fetched_ms, keys) = previous.map(|p| (p.fetched_ms, p.keys)).unwrap_or_default();
        match set {
            Ok(set) => JwksRecord {
                url: url.to_owned(),
                checked_ms: now_ms,
                fetched_ms: Some(now_ms),
                keys: Some(set),
                error: None,
            },
            Err(error) => JwksRecord {
                url: url.to_owned(),
                checked_ms: now_ms,
                fetched_ms,
                keys,
                error: Some(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fetch_keeps_the_keys_it_had() {
        let url = "https://id.example.com/jwks";
        let first = JwksRecord::refreshed(None, url, 10, Ok(br#"{"keys":[{"kid":"a"}]}"#.to_vec()));
        assert_eq!((first.checked_ms, first.fetched_ms), (10, Some(10)));
        for failure in [
            Err("connection refused".to_owned()),
            Ok(b"<html>".to_vec()),
            Ok(br#"{"keys":{}}"#.to_vec()),
        ] {
            let kept = JwksRecord::refreshed(Some(first.clone()), url, 20, failure);
            assert_eq!((kept.checked_ms, kept.fetched_ms), (20, Some(10)));
            assert_eq!(kept.keys, first.keys);
            assert!(kept.error.is_some());
        }
        let never = JwksRecord::refreshed(None, url, 5, Err("timeout".into()));
        assert_eq!((never.keys, never.fetched_ms), (None, None));
    }
}
