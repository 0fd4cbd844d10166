//! The shape of the config document.
//!
//! Modeled on what Kong, APISIX and Gateway API users know: services with
//! versions and targets, routes that match requests and point at a service,
//! consumers with credentials.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default whole-request upstream timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

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
}

/// One instance of a service version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Base URL: `http(s)://host[:port][/path-prefix]`.
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
}

/// Credentials a route requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAuth {
    /// Accept a consumer's API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyAuth>,
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
}

/// The AI section: model aliases clients can ask for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ai {
    /// Model aliases, e.g. `chat-default` → a provider's model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelAlias>,
}

/// A model name clients use, bound to a provider's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAlias {
    /// Name clients send as `model`.
    pub alias: String,
    /// Provider serving it, e.g. `openai`, `anthropic`.
    pub provider: String,
    /// The provider's model id.
    pub model: String,
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

fn default_key_header() -> String {
    "x-api-key".to_owned()
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
