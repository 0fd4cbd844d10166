//! JSON Web Tokens (RFC 7519) signed with HS256, RS256 or ES256.
//!
//! A token names its credential by its `iss` claim or its `kid` header
//! (per route); the credential fixes the one algorithm and key its tokens
//! may use, so `none` and algorithm confusion (an RSA public key used as an
//! HMAC secret) are refused before any signature is checked. Times are the
//! caller's clock, so every node and every test decides alike.
//!
//! Signatures are checked with the RustCrypto crates (`hmac`, `rsa`,
//! `p256`), pure Rust for wasm32-wasip2, over keys parsed once per config
//! version.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use upshift_config::{Config, JwtAlgorithm, JwtAuth, JwtCredential, JwtKeyClaim, RequestHead};

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl TokenError {
    /// A short reason, for the error message.
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnknownKey => "unknown key",
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
    /// `None` when the configured key could not be read.
    key: Option<Key>,
}

/// A credential's key, parsed once per config version.
enum Key {
    Hmac(Vec<u8>),
    Rsa(Box<RsaPublicKey>),
    Ec(Box<p256::ecdsa::VerifyingKey>),
}

impl Key {
    fn read(credential: &JwtCredential) -> Option<Key> {
        match credential.algorithm {
            JwtAlgorithm::Hs256 => Some(Key::Hmac(credential.secret.as_ref()?.as_bytes().to_vec())),
            JwtAlgorithm::Rs256 => {
                let pem = credential.public_key.as_deref()?.trim();
                RsaPublicKey::from_public_key_pem(pem)
                    .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
                    .ok()
                    .map(|key| Key::Rsa(Box::new(key)))
            }
            JwtAlgorithm::Es256 => {
                let pem = credential.public_key.as_deref()?.trim();
                p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
                    .ok()
                    .map(|key| Key::Ec(Box::new(key)))
            }
        }
    }

    /// Whether `signature` signs `message` under this key.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Key::Hmac(secret) => Hmac::<Sha256>::new_from_slice(secret).is_ok_and(|mut mac| {
                mac.update(message);
                mac.verify_slice(signature).is_ok()
            }),
            Key::Rsa(key) => key
                .verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(message),
                    signature,
                )
                .is_ok(),
            // JWS carries ECDSA signatures as r ‖ s (RFC 7518 §3.4).
            Key::Ec(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
        }
    }
}

/// Every consumer's JWT credentials, by the `iss`/`kid` value naming them.
#[derive(Default)]
pub struct Credentials(HashMap<String, Credential>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
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
                        key: Key::read(credential),
                    });
            }
        }
        Credentials(credentials)
    }

    /// The consumer (index into the config's consumers) that `token` was
    /// issued to, if it is valid for `route` at `now_ms`.
    pub fn verify(&self, route: &JwtAuth, token: &str, now_ms: u64) -> Result<usize, TokenError> {
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
            .and_then(|name| self.0.get(name))
            .ok_or(TokenError::UnknownKey)?;
        if header.alg != credential.algorithm.name() {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let key = credential.key.as_ref().ok_or(TokenError::UnusableKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::BadSignature)?;
        if !key.verifies(message.as_bytes(), &signature) {
            return Err(TokenError::BadSignature);
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
        Ok(credential.consumer)
    }
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
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
