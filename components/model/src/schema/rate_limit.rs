//! Rate limits: how many requests per period, counted by what.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::defaults::is_default;

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
