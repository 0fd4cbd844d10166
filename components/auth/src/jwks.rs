//! Keys from JSON Web Key Sets (RFC 7517), as the store holds them (see
//! [`upshift_model::jwks`]): parsed once per fetched set, and found by the
//! token's `kid`.

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use std::collections::HashMap;
use std::sync::Mutex;
use upshift_model::JwtAlgorithm;
use upshift_model::jwks::JwksRecord;

use crate::jwt::TokenError;

/// How long a set is used before it is fetched again although every
/// token's key is in it, so that keys the issuer withdrew stop working.
pub const MAX_SET_AGE_MS: u64 = 15 * 60 * 1000;

/// A credential's key set: where it is published and how often it may be
/// fetched.
#[derive(Debug, Clone)]
pub struct SetSource {
    /// The set's URL.
    pub url: String,
    /// Shortest time between two fetches.
    pub min_refresh_ms: u64,
}

/// The keys of one fetched set that fit a credential's algorithm.
struct Parsed {
    /// When the store's record was last checked (it names the version).
    checked_ms: u64,
    /// Keys by `kid`.
    by_kid: HashMap<String, DecodingKey>,
    /// The key of a set with a single key, for tokens without `kid`.
    only: Option<DecodingKey>,
}

impl Parsed {
    fn new(record: &JwksRecord, algorithm: JwtAlgorithm) -> Parsed {
        let keys: Vec<(Option<String>, DecodingKey)> = record
            .keys
            .as_ref()
            .and_then(|set| set.get("keys"))
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            // One key the library cannot read does not spoil the others.
            .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
            .filter(|jwk| fits(jwk, algorithm))
            .filter_map(|jwk| Some((jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk).ok()?)))
            .collect();
        let only = match keys.as_slice() {
            [(_, key)] => Some(key.clone()),
            _ => None,
        };
        Parsed {
            checked_ms: record.checked_ms,
            by_kid: keys
                .into_iter()
                .filter_map(|(kid, key)| Some((kid?, key)))
                .collect(),
            only,
        }
    }

    fn find(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => self.only.as_ref(),
        }
    }
}

/// Whether `jwk` may verify tokens of `algorithm`: a key that names
/// another algorithm, or is meant for encryption, may not.
fn fits(jwk: &Jwk, algorithm: JwtAlgorithm) -> bool {
    use jsonwebtoken::jwk::PublicKeyUse;
    // The library's names are the JOSE names (`RS256`, `EdDSA`, …).
    let named = jwk
        .common
        .key_algorithm
        .is_none_or(|alg| format!("{alg:?}") == algorithm.name());
    let for_signatures = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
    named && for_signatures
}

/// The sets parsed so far, by URL (per policy, so per config version).
#[derive(Default)]
pub struct KeySets(Mutex<HashMap<String, Parsed>>);

impl KeySets {
    /// The key of `source`'s set named `kid` for `algorithm`, reading the
    /// set from `read` when the parsed one lacks it or is old: or
    /// [`TokenError::KeysWanted`] when the set is to be fetched first.
    pub fn key(
        &self,
        source: &SetSource,
        algorithm: JwtAlgorithm,
        kid: Option<&str>,
        now_ms: u64,
        read: &dyn Fn(&str) -> Option<JwksRecord>,
    ) -> Result<DecodingKey, TokenError> {
        let mut sets = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = |parsed: &Parsed| now_ms < parsed.checked_ms.saturating_add(MAX_SET_AGE_MS);
        if let Some(parsed) = sets.get(&source.url)
            && fresh(parsed)
            && let Some(key) = parsed.find(kid)
        {
            return Ok(key.clone());
        }
        // Another node (or an earlier request) may have fetched it since.
        if let Some(record) = read(&source.url)
            && sets
                .get(&source.url)
                .is_none_or(|parsed| parsed.checked_ms != record.checked_ms)
        {
            sets.insert(source.url.clone(), Parsed::new(&record, algorithm));
        }
        let parsed = sets.get(&source.url);
        let may_fetch =
            parsed.is_none_or(|p| now_ms >= p.checked_ms.saturating_add(source.min_refresh_ms));
        match parsed.and_then(|p| p.find(kid)) {
            Some(key) if !may_fetch || parsed.is_some_and(fresh) => Ok(key.clone()),
            _ if may_fetch => Err(TokenError::KeysWanted(source.url.clone())),
            _ => Err(TokenError::UnknownKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey};
    use serde_json::json;

    fn record(checked_ms: u64, kids: &[&str]) -> JwksRecord {
        let key = EncodingKey::from_rsa_pem(include_bytes!("../testdata/rsa-private.pem")).unwrap();
        let keys: Vec<_> = kids
            .iter()
            .map(|kid| {
                let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
                jwk.common.key_id = Some(kid.to_string());
                jwk
            })
            .collect();
        JwksRecord {
            url: "https://id/jwks".into(),
            checked_ms,
            fetched_ms: Some(checked_ms),
            keys: Some(json!({ "keys": keys })),
            error: None,
        }
    }

    const SOURCE: fn() -> SetSource = || SetSource {
        url: "https://id/jwks".into(),
        min_refresh_ms: 1_000,
    };

    #[test]
    fn keys_are_found_by_kid_and_fetched_again_at_most_once_per_floor() {
        let sets = KeySets::default();
        let key = |kid, now_ms, stored: Option<JwksRecord>| {
            sets.key(&SOURCE(), JwtAlgorithm::Rs256, kid, now_ms, &|_| {
                stored.clone()
            })
            .map(|_| ())
        };
        let wanted = Err(TokenError::KeysWanted("https://id/jwks".into()));
        assert_eq!(key(Some("k1"), 500, None), wanted, "nothing stored yet");
        let stored = Some(record(1_000, &["k1", "k2"]));
        assert_eq!(key(Some("k1"), 1_500, stored.clone()), Ok(()));
        assert_eq!(key(Some("k2"), 1_500, None), Ok(()), "parsed once, kept");
        assert_eq!(
            key(Some("k9"), 1_500, stored.clone()),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            key(None, 1_500, stored.clone()),
            Err(TokenError::UnknownKey),
            "two keys: kid needed"
        );
        assert_eq!(
            key(Some("k9"), 2_000, stored.clone()),
            wanted,
            "the floor has passed"
        );
        let old = 1_000 + MAX_SET_AGE_MS;
        assert_eq!(
            key(Some("k1"), old, stored),
            wanted,
            "an old set is fetched again"
        );
        let refreshed = Some(record(old, &["k3"]));
        assert_eq!(
            key(Some("k1"), old + 1, refreshed.clone()),
            Err(TokenError::UnknownKey),
            "k1 was withdrawn"
        );
        assert_eq!(
            key(None, old + 1, refreshed),
            Ok(()),
            "the only key serves tokens without kid"
        );
    }

    #[test]
    fn keys_for_other_algorithms_or_encryption_are_left_out() {
        let mut stored = record(1_000, &["k1", "k2"]);
        let keys = stored.keys.as_mut().unwrap()["keys"]
            .as_array_mut()
            .unwrap();
        keys[0]["alg"] = json!("PS256");
        keys[1]["use"] = json!("enc");
        keys.push(json!({ "kty": "unknown", "kid": "k3" }));
        let sets = KeySets::default();
        for kid in ["k1", "k2", "k3"] {
            let found = sets.key(&SOURCE(), JwtAlgorithm::Rs256, Some(kid), 1_500, &|_| {
                Some(stored.clone())
            });
            assert_eq!(found.map(|_| ()), Err(TokenError::UnknownKey), "{kid}");
        }
    }
}
