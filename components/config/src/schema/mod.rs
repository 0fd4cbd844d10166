//! The shape of the config document.
//!
//! Modeled on what Kong, APISIX and Gateway API users know: services with
//! versions and targets, routes that match requests and point at a service,
//! consumers with credentials.

use crate::ai::Ai;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Default whole-request upstream timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

/// Default timeout of a shadow copy.
pub const DEFAULT_SHADOW_TIMEOUT_MS: u32 = 5_000;

/// A whole config document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Upstream services and their versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Routes, matched most specific first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Known callers and their credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<Consumer>,
    /// The OpenAI-compatible AI API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<Ai>,
}

/// An upstream service, e.g. `orders`, with one or more versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique service name.
    pub name: String,
    /// Deployed versions; traffic is split between them by weight.
    pub versions: Vec<Version>,
    /// How a version's targets share its traffic.
    #[serde(default, skip_serializing_if = "is_default")]
    pub balancer: Balancer,
    /// When a failing target is taken out of rotation. On by default.
    #[serde(default, skip_serializing_if = "is_default")]
    pub outlier_detection: OutlierDetection,
}

/// How a version's targets share its traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balancer {
    /// The balancing policy.
    #[serde(default, skip_serializing_if = "is_default")]
    pub policy: BalancePolicy,
    /// What `consistent_hash` hashes on (required by it, refused by the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<RequestKey>,
}

/// A balancing policy between the targets of a version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalancePolicy {
    /// Each request independently, in proportion to the target weights.
    #[default]
    Weighted,
    /// In turn, in proportion to the target weights, over a shared counter.
    RoundRobin,
    /// The target with the fewest requests in flight relative to its weight.
    LeastOutstanding,
    /// The same `hash_on` value goes to the same target while it is healthy.
    ConsistentHash,
}

/// A value read from each request, to hash on: `consumer`, `client_ip`,
/// `header:<name>` or `cookie:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RequestKey {
    /// The authenticated consumer's name.
    Consumer,
    /// The address of the connecting peer.
    ClientIp,
    /// The first value of a request header (lower-case name).
    Header(String),
    /// The value of a cookie.
    Cookie(String),
}

impl TryFrom<String> for RequestKey {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "consumer" => Ok(RequestKey::Consumer),
            "client_ip" => Ok(RequestKey::ClientIp),
            _ => match text.split_once(':') {
                Some(("header", name)) if !name.is_empty() => Ok(RequestKey::Header(name.into())),
                Some(("cookie", name)) if !name.is_empty() => Ok(RequestKey::Cookie(name.into())),
                _ => Err(format!(
                    "{text:?} is not consumer, client_ip, header:<name> or cookie:<name>"
                )),
            },
        }
    }
}

impl From<RequestKey> for String {
    fn from(key: RequestKey) -> String {
        key.to_string()
    }
}

impl fmt::Display for RequestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestKey::Consumer => f.write_str("consumer"),
            RequestKey::ClientIp => f.write_str("client_ip"),
            RequestKey::Header(name) => write!(f, "header:{name}"),
            RequestKey::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

/// Passive health checking: a target with `failures` errors (5xx responses,
/// connection failures or timeouts) within `window_ms` is ejected for
/// `ejection_ms`. A version whose targets are all ejected has its circuit
/// open. `failures: 0` turns detection off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetection {
    /// Errors within the window that eject a target.
    #[serde(default = "default_outlier_failures")]
    pub failures: u32,
    /// Length of the counting window, in milliseconds.
    #[serde(default = "default_outlier_window")]
    pub window_ms: u32,
    /// How long an ejected target stays out, in milliseconds.
    #[serde(default = "default_ejection")]
    pub ejection_ms: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            failures: default_outlier_failures(),
            window_ms: default_outlier_window(),
            ejection_ms: default_ejection(),
        }
    }
}

/// One version of a service, e.g. `orders@v2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// Version name, unique within the service.
    pub name: String,
    /// Share of the service's traffic relative to the other versions' weights.
    /// When no version sets a weight, the first version takes all traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Instances serving this version.
    pub targets: Vec<Target>,
    /// Announces that this version goes away; its responses then carry
    /// `deprecation`, `sunset` and `link` headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation: Option<Deprecation>,
}

/// When a version was deprecated and when it goes away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deprecation {
    /// RFC 3339 timestamp, sent as `deprecation: @<unix seconds>` (RFC 9745).
    pub deprecated_at: String,
    /// RFC 3339 timestamp, sent as `sunset: <HTTP-date>` (RFC 8594).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<String>,
    /// Where the deprecation is explained, sent as `link: <url>; rel="deprecation"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One instance of a service version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Base URL: `http(s)://host[:port][/path-prefix]` for HTTP/1.1;
    /// `h2c://` for HTTP/2 in clear text (prior knowledge) and `h2://` for
    /// HTTP/2 over TLS (ALPN `h2`), as gRPC servers speak it.
    pub url: String,
    /// Share of the version's traffic relative to its other targets.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u32,
}

/// How a route's `paths` compare with the request path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    /// Segment-wise prefix: `/orders` matches `/orders` and `/orders/7`, not `/ordersx`.
    #[default]
    Prefix,
    /// The whole path, exactly.
    Exact,
}

/// What a route does with the requests it matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// Proxy to the route's service.
    #[default]
    Proxy,
    /// Serve the OpenAI-compatible AI API.
    Ai,
}

/// A route: which requests it takes and where they go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique route name.
    pub name: String,
    /// What the route does.
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: RouteKind,
    /// Host names (`api.example.com` or `*.example.com`); empty matches any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Paths, compared as `path_match` says; empty matches every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// How `paths` are compared.
    #[serde(default, skip_serializing_if = "is_default")]
    pub path_match: PathMatch,
    /// Methods (`GET`, `POST`, …); empty matches any method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Headers that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Service to proxy to (proxy routes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Replaces the matched path prefix before sending upstream; `""` or `/`
    /// strips it. Only for prefix routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix: Option<String>,
    /// Whole-request upstream timeout, in milliseconds.
    #[serde(
        default = "default_timeout",
        skip_serializing_if = "is_default_timeout"
    )]
    pub timeout_ms: u32,
    /// Credentials this route requires; absent means the route is public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RouteAuth>,
    /// Pins the route to one version of its service (versioned APIs: a `/v2`
    /// route, or a header-matched route for `v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How the route's requests are split between the service's versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Whether and how failed attempts are retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// How many requests the route serves per window, and per what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Who may use the route: consumers, tenants, tags and client IP
    /// ranges allowed or denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<RouteAccess>,
}

/// Allow and deny lists of a route. A caller on a deny list, or off a
/// non-empty allow list, gets `403 forbidden`; deny wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAccess {
    /// Who may use the route (empty lists: anyone).
    #[serde(default, skip_serializing_if = "AccessList::is_empty")]
    pub allow: AccessList,
    /// Who may not.
    #[serde(default, skip_serializing_if = "AccessList::is_empty")]
    pub deny: AccessList,
}

/// Callers named by consumer, tenant, tag or client IP range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessList {
    /// Consumer names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
    /// Tenants of consumers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// Tags of consumers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Client IP ranges in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`; a
    /// bare address is one host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
}

impl AccessList {
    /// Whether it names no one.
    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
            && self.tenants.is_empty()
            && self.tags.is_empty()
            && self.ips.is_empty()
    }

    /// Whether it names callers by who they are (not by IP).
    pub fn names_callers(&self) -> bool {
        !(self.consumers.is_empty() && self.tenants.is_empty() && self.tags.is_empty())
    }
}

/// A client IP range of an access list: CIDR notation, or a bare address.
pub fn parse_ip_range(text: &str) -> Option<ipnet::IpNet> {
    text.parse().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// How a route's requests are split between versions, beyond the weights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Match rules, tried in order; the first that matches picks the version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<SplitRule>,
    /// Keeps a caller on one version while the weights stay the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    /// Copies a share of the requests to another version, responses discarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Shadow>,
    /// Version that takes the requests when the chosen one's circuit is
    /// open, and the last retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Requests matching `match` go to `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRule {
    /// Conditions, all of which must hold.
    #[serde(rename = "match")]
    pub matches: Match,
    /// Version of the route's service.
    pub version: String,
}

/// Conditions on a request and its consumer. Every condition given must
/// hold; a list holds when any of its entries does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Headers (lower-case names) with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Cookies with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cookies: BTreeMap<String, String>,
    /// Query parameters with exactly these (undecoded) values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Consumer names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
    /// Tenants of the consumer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// Tags of the consumer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Match {
    /// Whether no condition is given.
    pub fn is_empty(&self) -> bool {
        *self == Match::default()
    }
}

/// What keeps a caller on one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sticky {
    /// The value hashed instead of the request id: `consumer`,
    /// `header:<name>`, `cookie:<name>` (or `client_ip`).
    pub on: RequestKey,
}

/// Copies of requests for another version, their responses compared with
/// the primary's and discarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shadow {
    /// Version the copies go to; never to the version serving the request.
    pub version: String,
    /// Share of requests copied, 0–100, may be fractional.
    pub percent: f64,
    /// How long a copy may take, in milliseconds.
    #[serde(
        default = "default_shadow_timeout",
        skip_serializing_if = "is_default_shadow_timeout"
    )]
    pub timeout_ms: u32,
}

/// Retries of failed attempts, bounded by a budget per route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retries {
    /// Further attempts after the first.
    #[serde(default, skip_serializing_if = "is_default")]
    pub attempts: u32,
    /// Statuses that are retried; connection failures and timeouts always are.
    #[serde(
        default = "default_retry_on",
        skip_serializing_if = "is_default_retry_on"
    )]
    pub retry_on: Vec<u16>,
    /// Methods that are retried (idempotent ones by default).
    #[serde(
        default = "default_retry_methods",
        skip_serializing_if = "is_default_retry_methods"
    )]
    pub methods: Vec<String>,
    /// Timeout of each attempt, in milliseconds, when shorter than the route's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout_ms: Option<u32>,
    /// Retries allowed as a percentage of the route's requests, per 10 s.
    #[serde(
        default = "default_budget_percent",
        skip_serializing_if = "is_default_budget_percent"
    )]
    pub budget_percent: u32,
    /// Retries allowed per second whatever the percentage says.
    #[serde(
        default = "default_min_per_second",
        skip_serializing_if = "is_default_min_per_second"
    )]
    pub min_per_second: u32,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            attempts: 0,
            retry_on: default_retry_on(),
            methods: default_retry_methods(),
            per_try_timeout_ms: None,
            budget_percent: default_budget_percent(),
            min_per_second: default_min_per_second(),
        }
    }
}

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

/// A request budget: `requests` per `per`, counted separately for each
/// value of `by`, over a sliding window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u64,
    /// Length of the window.
    pub per: RatePeriod,
    /// What requests are counted by (a consumer's own limit counts by consumer).
    #[serde(default, skip_serializing_if = "is_default")]
    pub by: RateLimitBy,
}

/// Length of a rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RatePeriod {
    /// One second.
    #[serde(rename = "1s")]
    Second,
    /// One minute.
    #[serde(rename = "1m")]
    Minute,
    /// One hour.
    #[serde(rename = "1h")]
    Hour,
    /// One day.
    #[serde(rename = "1d")]
    Day,
}

impl RatePeriod {
    /// Length in milliseconds.
    pub fn millis(self) -> u64 {
        match self {
            RatePeriod::Second => 1_000,
            RatePeriod::Minute => 60_000,
            RatePeriod::Hour => 3_600_000,
            RatePeriod::Day => 86_400_000,
        }
    }

    /// Length in seconds.
    pub fn seconds(self) -> u64 {
        self.millis() / 1_000
    }
}

/// What a rate limit counts requests by: `consumer`, `ip`, `route` or
/// `header:<name>`. `consumer` and `header:<name>` count by the client's
/// address when the request has no consumer or no such header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RateLimitBy {
    /// The authenticated consumer.
    #[default]
    Consumer,
    /// The address of the connecting peer.
    Ip,
    /// Nothing: all requests of the route share one budget.
    Route,
    /// The first value of a request header (lower-case name).
    Header(String),
}

impl TryFrom<String> for RateLimitBy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "consumer" => Ok(RateLimitBy::Consumer),
            "ip" => Ok(RateLimitBy::Ip),
            "route" => Ok(RateLimitBy::Route),
            _ => match text.split_once(':') {
                Some(("header", name)) if !name.is_empty() => Ok(RateLimitBy::Header(name.into())),
                _ => Err(format!(
                    "{text:?} is not consumer, ip, route or header:<name>"
                )),
            },
        }
    }
}

impl From<RateLimitBy> for String {
    fn from(by: RateLimitBy) -> String {
        by.to_string()
    }
}

impl fmt::Display for RateLimitBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimitBy::Consumer => f.write_str("consumer"),
            RateLimitBy::Ip => f.write_str("ip"),
            RateLimitBy::Route => f.write_str("route"),
            RateLimitBy::Header(name) => write!(f, "header:{name}"),
        }
    }
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

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}

fn is_default_timeout(n: &u32) -> bool {
    *n == DEFAULT_TIMEOUT_MS
}

fn default_shadow_timeout() -> u32 {
    DEFAULT_SHADOW_TIMEOUT_MS
}

fn is_default_shadow_timeout(n: &u32) -> bool {
    *n == DEFAULT_SHADOW_TIMEOUT_MS
}

fn default_outlier_failures() -> u32 {
    5
}

fn default_outlier_window() -> u32 {
    10_000
}

fn default_ejection() -> u32 {
    30_000
}

fn default_retry_on() -> Vec<u16> {
    vec![502, 503, 504]
}

fn is_default_retry_on(statuses: &[u16]) -> bool {
    statuses == default_retry_on()
}

fn default_retry_methods() -> Vec<String> {
    ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]
        .map(String::from)
        .to_vec()
}

fn is_default_retry_methods(methods: &[String]) -> bool {
    methods == default_retry_methods()
}

fn default_budget_percent() -> u32 {
    20
}

fn is_default_budget_percent(n: &u32) -> bool {
    *n == default_budget_percent()
}

fn default_min_per_second() -> u32 {
    3
}

fn is_default_min_per_second(n: &u32) -> bool {
    *n == default_min_per_second()
}

fn default_key_header() -> String {
    "x-api-key".to_owned()
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

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
