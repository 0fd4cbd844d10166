//! JSON Web Tokens (RFC 7519) signed with any of the algorithms of
//! [`JwtAlgorithm`]: HMAC (HS256/384/512), RSA (RS256/384/512,
//! PS256/384/512), ECDSA (ES256, ES384) and EdDSA (Ed25519).
//!
//! A token names its credential by its `iss` claim or its `kid` header
//! (per route); the credential fixes the one algorithm and key its tokens
//! may use, so `none` and algorithm confusion (an RSA public key used as an
//! HMAC secret) are refused before any signature is checked. Times are the
//! caller's clock, so every node and every test decides alike.
//!
//! Keys and signatures are the `jsonwebtoken` crate's, on its RustCrypto
//! backend (pure Rust, for wasm32-wasip2); keys are read once per config
//! version.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use upshift_model::jwks::JwksRecord;
use upshift_model::{
    Config, JwtAlgorithm, JwtAuth, JwtCredential, JwtKeyClaim, JwtKeyKind, RequestHead,
};

use crate::jwks::{KeySets, SetSource};

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or claims of the wrong type.
    Malformed,
    /// No credential has the token's `iss` (or `kid`).
    UnknownKey,
    /// The token's `alg` is not its credential's (`none` included).
    AlgorithmNotAllowed,
    /// The signature does not verify with the credential's key.
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` has not come yet (beyond the leeway).
    NotYetValid,
    /// `iss` is not the route's issuer.
    WrongIssuer,
    /// `aud` does not name the route's audience.
    WrongAudience,
    /// The credential's public key could not be read.
    UnusableKey,
    /// The token's key is not in its credential's key set as the store
    /// holds it, which is old enough to fetch again from this URL.
    KeysWanted(String),
}

impl TokenError {
    /// A short reason, for the error message.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnknownKey | TokenError::KeysWanted(_) => "unknown key",
            TokenError::AlgorithmNotAllowed => "algorithm not allowed",
            TokenError::BadSignature => "bad signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not yet valid",
            TokenError::WrongIssuer => "wrong issuer",
            TokenError::WrongAudience => "wrong audience",
            TokenError::UnusableKey => "unusable key",
        }
    }
}

/// One consumer's credential, ready to verify with.
struct Credential {
    consumer: usize,
    /// The one `alg` its tokens may carry.
    algorithm: JwtAlgorithm,
    /// Where its key comes from.
    key: KeySource,
}

/// A credential's key: configured, or from a key set.
enum KeySource {
    /// A secret or public key; `None` when it could not be read.
    Fixed(Option<DecodingKey>),
    /// The key a set holds under the token's `kid`.
    Set(SetSource),
}

/// The key of `credential`, read once per config version.
fn read_key(credential: &JwtCredential) -> Option<DecodingKey> {
    let pem = || {
        credential
            .public_key
            .as_deref()
            .map(|k| k.trim().as_bytes())
    };
    match credential.algorithm.key_kind() {
        JwtKeyKind::Secret { .. } => Some(DecodingKey::from_secret(
            credential.secret.as_ref()?.as_bytes(),
        )),
        JwtKeyKind::Rsa => DecodingKey::from_rsa_pem(pem()?).ok(),
        JwtKeyKind::Ec => DecodingKey::from_ec_pem(pem()?).ok(),
        JwtKeyKind::Ed => DecodingKey::from_ed_pem(pem()?).ok(),
    }
}

/// The `jsonwebtoken` name of `algorithm`.
fn library_algorithm(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::Hs256 => Algorithm::HS256,
        JwtAlgorithm::Hs384 => Algorithm::HS384,
        JwtAlgorithm::Hs512 => Algorithm::HS512,
        JwtAlgorithm::Rs256 => Algorithm::RS256,
        JwtAlgorithm::Rs384 => Algorithm::RS384,
        JwtAlgorithm::Rs512 => Algorithm::RS512,
        JwtAlgorithm::Ps256 => Algorithm::PS256,
        JwtAlgorithm::Ps384 => Algorithm::PS384,
        JwtAlgorithm::Ps512 => Algorithm::PS512,
        JwtAlgorithm::Es256 => Algorithm::ES256,
        JwtAlgorithm::Es384 => Algorithm::ES384,
        JwtAlgorithm::EdDsa => Algorithm::EdDSA,
    }
}

/// A token that verified: whose it is, and its claims when the route looks
/// at more than the registered ones.
#[derive(Debug)]
pub struct Verified {
    /// The consumer (index into the config's consumers).
    pub consumer: usize,
    /// Every claim, for routes with scopes, required or forwarded claims.
    pub claims: Option<Map<String, Value>>,
}

/// Every consumer's JWT credentials, by the `iss`/`kid` value naming them,
/// and the key sets they read.
#[derive(Default)]
pub struct Credentials {
    by_name: HashMap<String, Credential>,
    sets: KeySets,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_name.keys()).finish()
    }
}

impl Credentials {
    /// The JWT credentials of `config`'s consumers.
    pub fn new(config: &Config) -> Self {
        let mut credentials = HashMap::new();
        for (consumer, c) in config.consumers.iter().enumerate() {
            for credential in &c.jwt {
                credentials
                    .entry(credential.key.clone())
                    .or_insert_with(|| Credential {
                        consumer,
                        algorithm: credential.algorithm,
                        key: match &credential.jwks {
                            Some(jwks) => KeySource::Set(SetSource {
                                url: jwks.url.clone(),
                                min_refresh_ms: u64::from(jwks.min_refresh_s) * 1000,
                            }),
                            None => KeySource::Fixed(read_key(credential)),
                        },
                    });
            }
        }
        Credentials {
            by_name: credentials,
            sets: KeySets::default(),
        }
    }

    /// Whom `token` was issued to, if it is valid for `route` at `now_ms`.
    /// Key sets are read with `read_set` (by URL) when a token's key is not
    /// among those read before.
    pub fn verify(
        &self,
        route: &JwtAuth,
        token: &str,
        now_ms: u64,
        read_set: &dyn Fn(&str) -> Option<JwksRecord>,
    ) -> Result<Verified, TokenError> {
        let (message, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = message.split_once('.').ok_or(TokenError::Malformed)?;
        let header = decode_part(header)?;
        let header: Header<'_> =
            serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
        if header.crit.is_some() {
            // No extension is understood, so none can be critical (RFC 7515 §4.1.11).
            return Err(TokenError::Malformed);
        }
        let payload = decode_part(payload)?;
        let claims: Claims<'_> =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        let name = match route.key_claim {
            JwtKeyClaim::Iss => claims.iss.as_deref(),
            JwtKeyClaim::Kid => header.kid.as_deref(),
        };
        let credential = name
            .and_then(|name| self.by_name.get(name))
            .ok_or(TokenError::UnknownKey)?;
        if header.alg != credential.algorithm.name() {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let from_set;
        let key = match &credential.key {
            KeySource::Fixed(key) => key.as_ref().ok_or(TokenError::UnusableKey)?,
            KeySource::Set(source) => {
                from_set = self.sets.key(
                    source,
                    credential.algorithm,
                    header.kid.as_deref(),
                    now_ms,
                    read_set,
                )?;
                &from_set
            }
        };
        let algorithm = library_algorithm(credential.algorithm);
        match jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, algorithm) {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::BadSignature),
            Err(e) => {
                return Err(match e.kind() {
                    ErrorKind::InvalidKeyFormat
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidEddsaKey => TokenError::UnusableKey,
                    _ => TokenError::BadSignature,
                });
            }
        }
        claims.check_times(now_ms, route.leeway_s)?;
        if let Some(issuer) = &route.issuer
            && claims.iss.as_deref() != Some(issuer.as_str())
        {
            return Err(TokenError::WrongIssuer);
        }
        if let Some(audience) = &route.audience {
            let named = match &claims.aud {
                Some(Audience::One(aud)) => aud == audience,
                Some(Audience::Many(auds)) => auds.iter().any(|a| a == audience),
                None => false,
            };
            if !named {
                return Err(TokenError::WrongAudience);
            }
        }
        let looks_further = !(route.scopes.is_empty()
            && route.required_claims.is_empty()
            && route.forward_claims.is_empty());
        let claims = if looks_further {
            Some(serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?)
        } else {
            None
        };
        Ok(Verified {
            consumer: credential.consumer,
            claims,
        })
    }
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

/// Why `claims` do not give what `route` requires (its scopes and required
/// claims), in words; `None` when they do.
pub fn lacks(route: &JwtAuth, claims: &Map<String, Value>) -> Option<String> {
    let granted = granted_scopes(claims);
    if let Some(scope) = route
        .scopes
        .iter()
        .find(|s| !granted.iter().any(|g| g == s))
    {
        return Some(format!("the token does not grant the scope {scope:?}"));
    }
    route
        .required_claims
        .iter()
        .find(|(name, wanted)| !claim_has(claims.get(*name), wanted))
        .map(|(name, wanted)| format!("the token's claim {name:?} is not {wanted:?}"))
}

/// The scopes `claims` grant: `scope` (space separated, RFC 8693 §4.2)
/// and `scp` (a list, or a space-separated string).
fn granted_scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut granted = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => granted.extend(s.split_whitespace()),
            Some(Value::Array(all)) => granted.extend(all.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    granted
}

/// Whether `claim` is `wanted`, or a list holding it.
fn claim_has(claim: Option<&Value>, wanted: &str) -> bool {
    match claim {
        Some(Value::Array(all)) => all.iter().any(|v| claim_has(Some(v), wanted)),
        Some(Value::String(s)) => s == wanted,
        Some(Value::Number(n)) => wanted.parse::<serde_json::Number>().is_ok_and(|w| w == *n),
        Some(Value::Bool(b)) => wanted == if *b { "true" } else { "false" },
        _ => false,
    }
}

/// `claim` as a header value: strings as they are, numbers and booleans
/// written out, lists of those joined with commas, objects as JSON. `None`
/// for a value no header can carry (control characters).
pub fn header_value(claim: &Value) -> Option<String> {
    let text = match claim {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(all) if all.iter().all(|v| !v.is_array() && !v.is_object()) => all
            .iter()
            .map(header_value)
            .collect::<Option<Vec<_>>>()?
            .join(","),
        other => other.to_string(),
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

/// The JOSE header fields looked at.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The registered claims looked at; others are ignored.
#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(default, borrow)]
    iss: Option<Cow<'a, str>>,
    #[serde(default)]
    aud: Option<Audience>,
    /// NumericDate: seconds, possibly fractional.
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
}

/// `aud`: one audience or a list of them.
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Audience {
    // By hand rather than `untagged`, which buffers the value first.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Audience;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience::One(v.to_owned()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Audience, A::Error> {
                let mut all = Vec::new();
                while let Some(aud) = seq.next_element()? {
                    all.push(aud);
                }
                Ok(Audience::Many(all))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Claims<'_> {
    /// `exp` and `nbf`, when present, with `leeway_s` either way.
    fn check_times(&self, now_ms: u64, leeway_s: u32) -> Result<(), TokenError> {
        let now = now_ms as f64 / 1000.0;
        let leeway = f64::from(leeway_s);
        if let Some(exp) = self.exp
            && now >= exp + leeway
        {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = self.nbf
            && now + leeway < nbf
        {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }
}

/// The token `head` carries for a route with `settings`: a bearer token in
/// the configured header, else the configured cookie.
pub fn presented_token<'h>(settings: &JwtAuth, head: &RequestHead<'h>) -> Option<&'h str> {
    let from_header = head.header(&settings.header).and_then(|value| {
        let value = value.trim();
        match bearer(value) {
            Some(token) => Some(token),
            // `authorization` carries other schemes too; other headers carry the bare token.
            None if settings.header == "authorization" => None,
            None => Some(value),
        }
    });
    from_header.filter(|t| !t.is_empty()).or_else(|| {
        let name = settings.cookie.as_deref()?;
        cookie(head, name).filter(|t| !t.is_empty())
    })
}

/// The credentials of `Bearer <credentials>` (the scheme is case-insensitive).
pub(crate) fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The value of cookie `name`, from any `cookie` header.
fn cookie<'h>(head: &RequestHead<'h>, name: &str) -> Option<&'h str> {
    head.header_values("cookie")
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then(|| v.trim_matches('"'))
        })
}

/// Whether `token` has the shape of a JWS compact serialization: three
/// dot-separated parts.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(scopes: &[&str], required: &[(&str, &str)]) -> JwtAuth {
        let mut route: JwtAuth = serde_json::from_value(json!({})).unwrap();
        route.scopes = scopes.iter().map(|s| s.to_string()).collect();
        route.required_claims = required
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        route
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn scopes_come_from_scope_or_scp_and_all_are_needed() {
        let route = route(&["a", "b"], &[]);
        assert_eq!(lacks(&route, &claims(json!({ "scope": "b  a c" }))), None);
        assert_eq!(lacks(&route, &claims(json!({ "scp": ["a", "b"] }))), None);
        assert_eq!(
            lacks(&route, &claims(json!({ "scope": "a", "scp": "b" }))),
            None
        );
        assert_eq!(
            lacks(&route, &claims(json!({ "scope": "a ab" }))),
            Some("the token does not grant the scope \"b\"".into())
        );
        assert!(lacks(&route, &claims(json!({ "scope": ["a b"] }))).is_some());
    }

    #[test]
    fn required_claims_match_a_value_or_a_member_of_a_list() {
        let route = route(
            &[],
            &[("tenant", "acme"), ("level", "3"), ("admin", "true")],
        );
        let good = json!({ "tenant": ["x", "acme"], "level": 3, "admin": true });
        assert_eq!(lacks(&route, &claims(good)), None);
        for bad in [
            json!({ "tenant": "acmex", "level": 3, "admin": true }),
            json!({ "tenant": "acme", "level": "4", "admin": true }),
            json!({ "tenant": "acme", "level": 3 }),
            json!({ "tenant": { "acme": true }, "level": 3, "admin": true }),
        ] {
            assert!(lacks(&route, &claims(bad.clone())).is_some(), "{bad}");
        }
    }

    #[test]
    fn claims_become_header_values_without_control_characters() {
        assert_eq!(header_value(&json!("u-1")), Some("u-1".into()));
        assert_eq!(header_value(&json!(42)), Some("42".into()));
        assert_eq!(
            header_value(&json!(["a", 1, true])),
            Some("a,1,true".into())
        );
        assert_eq!(header_value(&json!({ "a": 1 })), Some("{\"a\":1}".into()));
        assert_eq!(header_value(&json!([["a"]])), Some("[[\"a\"]]".into()));
        assert_eq!(header_value(&json!(null)), None);
        assert_eq!(header_value(&json!("a\r\nx-admin: 1")), None);
    }
}
