//! Who may call: consumers with their credentials, and the API-key and
//! JWT authentication of routes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::RateLimit;
use crate::defaults::is_default;

/// Credentials a route requires. With both `api_key` and `jwt`, either is
/// accepted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAuth {
    /// Accept a consumer's API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyAuth>,
    /// Accept a JSON Web Token signed with one of a consumer's JWT credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuth>,
}

/// Where a route reads API keys from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyAuth {
    /// Header carrying the key; `authorization` also accepts `Bearer <key>`.
    #[serde(default = "default_key_header")]
    pub header: String,
    /// Query parameter carrying the key, if keys may come in the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

fn default_key_header() -> String {
    "x-api-key".to_owned()
}

/// Where a route reads JSON Web Tokens from and what it requires of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtAuth {
    /// Header carrying the token; `authorization` takes `Bearer <token>`.
    #[serde(
        default = "default_jwt_header",
        skip_serializing_if = "is_default_jwt_header"
    )]
    pub header: String,
    /// Cookie carrying the token, tried when the header is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// Which part of the token names the credential (and so the consumer).
    #[serde(default, skip_serializing_if = "is_default")]
    pub key_claim: JwtKeyClaim,
    /// Required `iss` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Required `aud` claim: the token's audience must be or contain it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Clock skew allowed when checking `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway", skip_serializing_if = "is_default_leeway")]
    pub leeway_s: u32,
    /// Scopes a token must grant, all of them: in its `scope` claim (space
    /// separated, RFC 8693) or `scp` (a list or a string). A valid token
    /// without one is refused with 403.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Claims a token must carry with the given value (or, for a list
    /// claim, among its values); 403 otherwise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required_claims: BTreeMap<String, String>,
    /// Claims sent upstream as request headers: claim name → header name.
    /// The client's own copies of these headers are always removed, so an
    /// upstream can trust them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub forward_claims: BTreeMap<String, String>,
}

/// Default clock skew allowed on `exp` and `nbf`.
pub const DEFAULT_JWT_LEEWAY_S: u32 = 30;

fn default_jwt_header() -> String {
    "authorization".to_owned()
}

fn is_default_jwt_header(header: &str) -> bool {
    header == "authorization"
}

fn default_leeway() -> u32 {
    DEFAULT_JWT_LEEWAY_S
}

fn is_default_leeway(n: &u32) -> bool {
    *n == DEFAULT_JWT_LEEWAY_S
}

/// The part of a token that selects the consumer's JWT credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JwtKeyClaim {
    /// The `iss` claim of the payload.
    #[default]
    Iss,
    /// The `kid` parameter of the header.
    Kid,
}

/// A consumer's JWT credential: tokens naming `key` (as `iss` or `kid`) must
/// be signed with `algorithm` and this secret or key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtCredential {
    /// The `iss` or `kid` value that selects this credential; unique.
    pub key: String,
    /// The one algorithm tokens of this credential may use.
    pub algorithm: JwtAlgorithm,
    /// Shared secret (HS256, HS384, HS512), at least as long as the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Public key in PEM (the RSA, ECDSA and EdDSA algorithms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// A key set to take the public keys from instead, by the token's
    /// `kid` (the credential is then named by `iss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwksSource>,
}

/// A JSON Web Key Set published at a URL (RFC 7517), for keys that rotate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSource {
    /// Where the set is published (`https://…/.well-known/jwks.json`).
    pub url: String,
    /// Shortest time between two fetches, in seconds: a token naming a key
    /// the set lacks fetches it again at most this often.
    #[serde(
        default = "default_jwks_min_refresh",
        skip_serializing_if = "is_default_jwks_min_refresh"
    )]
    pub min_refresh_s: u32,
}

fn default_jwks_min_refresh() -> u32 {
    30
}

fn is_default_jwks_min_refresh(s: &u32) -> bool {
    *s == default_jwks_min_refresh()
}

/// A JWS algorithm a credential may use (RFC 7518 §3.1, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 over a shared secret.
    #[serde(rename = "HS256")]
    Hs256,
    /// HMAC with SHA-384 over a shared secret.
    #[serde(rename = "HS384")]
    Hs384,
    /// HMAC with SHA-512 over a shared secret.
    #[serde(rename = "HS512")]
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    #[serde(rename = "RS384")]
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    #[serde(rename = "RS512")]
    Rs512,
    /// RSASSA-PSS with SHA-256.
    #[serde(rename = "PS256")]
    Ps256,
    /// RSASSA-PSS with SHA-384.
    #[serde(rename = "PS384")]
    Ps384,
    /// RSASSA-PSS with SHA-512.
    #[serde(rename = "PS512")]
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// ECDSA on P-384 with SHA-384.
    #[serde(rename = "ES384")]
    Es384,
    /// Ed25519 (EdDSA).
    #[serde(rename = "EdDSA")]
    EdDsa,
}

/// The kind of key a [`JwtAlgorithm`] verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtKeyKind {
    /// A shared secret of at least `min_bytes` (the hash's output size,
    /// RFC 7518 §3.2).
    Secret {
        /// Shortest secret allowed.
        min_bytes: usize,
    },
    /// An RSA public key.
    Rsa,
    /// An elliptic-curve public key.
    Ec,
    /// An Ed25519 public key.
    Ed,
}

impl JwtAlgorithm {
    /// The name tokens carry in their `alg` header.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Hs384 => "HS384",
            JwtAlgorithm::Hs512 => "HS512",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Rs384 => "RS384",
            JwtAlgorithm::Rs512 => "RS512",
            JwtAlgorithm::Ps256 => "PS256",
            JwtAlgorithm::Ps384 => "PS384",
            JwtAlgorithm::Ps512 => "PS512",
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::Es384 => "ES384",
            JwtAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// The kind of key its signatures are checked with.
    pub fn key_kind(self) -> JwtKeyKind {
        match self {
            JwtAlgorithm::Hs256 => JwtKeyKind::Secret { min_bytes: 32 },
            JwtAlgorithm::Hs384 => JwtKeyKind::Secret { min_bytes: 48 },
            JwtAlgorithm::Hs512 => JwtKeyKind::Secret { min_bytes: 64 },
            JwtAlgorithm::Rs256
            | JwtAlgorithm::Rs384
            | JwtAlgorithm::Rs512
            | JwtAlgorithm::Ps256
            | JwtAlgorithm::Ps384
            | JwtAlgorithm::Ps512 => JwtKeyKind::Rsa,
            JwtAlgorithm::Es256 | JwtAlgorithm::Es384 => JwtKeyKind::Ec,
            JwtAlgorithm::EdDsa => JwtKeyKind::Ed,
        }
    }
}

/// A known caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    /// Unique consumer name.
    pub name: String,
    /// Tenant the consumer belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Labels usable by split and match rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// API keys identifying this consumer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<String>,
    /// JWT credentials identifying this consumer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt: Vec<JwtCredential>,
    /// The consumer's request budget over all routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}
