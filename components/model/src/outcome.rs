//! The words the splitter and both lanes share about one request: why it
//! went to its version, and how an attempt at an upstream ended.

use crate::metrics;

/// Why a request goes to its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The route pins the version.
    Pinned,
    /// Match rule number n of the route's split.
    Rule(u32),
    /// A running rollout's weights.
    Rollout,
    /// The caller's sticky key, over the weights.
    Sticky,
    /// The config's weights.
    Weight,
    /// The one version with weight.
    OnlyVersion,
    /// Every target of the chosen version is ejected: a fallback.
    CircuitOpen,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response head arrived with this status.
    Status(u16),
    /// No response: refused, reset, or a protocol error.
    Failed,
    /// No response head in time.
    TimedOut,
}

impl Outcome {
    /// Whether it counts against its target (a 5xx, a failure or a
    /// timeout): outlier detection must see it.
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Status(status) if status < 500)
    }

    /// The metrics field it adds to.
    pub fn field(self) -> &'static str {
        match self {
            Outcome::Status(status) => metrics::status_field(status),
            Outcome::Failed => metrics::FAILURES,
            Outcome::TimedOut => metrics::TIMEOUTS,
        }
    }
}
