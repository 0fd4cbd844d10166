//! Services: their versions, targets, load balancing, outlier detection
//! and deprecation notices.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::defaults::is_default;

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

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
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
