//! Routes: what requests they match, where they send them (a service, a
//! split between services, a shadow copy) and with which timeouts, retries
//! and access lists.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{RateLimit, RequestKey, RouteAuth};
use crate::defaults::is_default;

/// Default whole-request upstream timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

/// Default timeout of a shadow copy.
pub const DEFAULT_SHADOW_TIMEOUT_MS: u32 = 5_000;

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
