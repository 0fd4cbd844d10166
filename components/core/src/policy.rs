//! What the request path asks the policy components, as plain Rust.
//!
//! The types mirror the WIT records of `upshift:router`, `upshift:auth` and
//! `upshift:splitter` (see `wit/`); each lane converts its own bindings into
//! them. Per request the components answer with positions: of a route, a
//! consumer, a version and a target in the config version's
//! [`Tables`](crate::tables::Tables), which a lane reads once per version.
//! [`Policy`] is the part of those interfaces the phases call in order; the
//! rest (reports, the retry budget) the lanes call as their I/O goes.

use crate::error::GatewayError;

/// What a matched route asks the gateway to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Proxy to the route's service through the splitter.
    Proxy,
    /// Serve through the AI component.
    Ai,
}

/// The route that handles a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// Position of the route in the config document's `routes`.
    pub route: u32,
    /// Path and query to send upstream when the route changes them.
    pub upstream_path: Option<String>,
}

/// Where a request stands against its tightest rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub limit: u64,
    /// Requests left after this one.
    pub remaining: u64,
    /// Seconds until the window ends.
    pub reset_s: u64,
}

/// A request auth lets pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authenticated {
    /// Position of its consumer in the config document's `consumers`;
    /// `None` on public routes.
    pub consumer: Option<u32>,
    /// The limit to advertise.
    pub rate_limit: Option<RateLimit>,
}

/// A version and target of a service, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream {
    /// Position of the version in the service's `versions`.
    pub version: u32,
    /// Position of the target in the version's `targets`.
    pub target: u32,
}

/// How a request is retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further attempts allowed after the first.
    pub attempts: u32,
    /// Statuses that are retried (failures and timeouts always are).
    pub retry_on: Vec<u16>,
    /// Timeout of each attempt, when shorter than the route's.
    pub per_try_timeout_ms: Option<u32>,
}

/// A copy of the request for a shadow version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowCopy {
    /// Where the copy goes.
    pub upstream: Upstream,
    /// How long it may take, in milliseconds.
    pub timeout_ms: u32,
}

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

/// Where a request goes, by positions in its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The first attempt.
    pub primary: Upstream,
    /// Where retries go, in order.
    pub alternates: Vec<Upstream>,
    /// Where a copy goes.
    pub shadow: Option<ShadowCopy>,
    /// How to retry.
    pub retry: RetryPolicy,
    /// Why this version.
    pub reason: Reason,
}

impl Selection {
    /// The upstream of attempt `n` (0: the first): the primary, then the
    /// alternates in order, the last one taking any further attempts.
    pub fn candidate(&self, n: usize) -> Upstream {
        match n {
            0 => self.primary,
            n => self
                .alternates
                .get(n - 1)
                .or(self.alternates.last())
                .copied()
                .unwrap_or(self.primary),
        }
    }
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

/// One attempt at an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Where it went.
    pub upstream: Upstream,
    /// How it ended.
    pub outcome: Outcome,
    /// Time to the response head or the failure, in milliseconds.
    pub latency_ms: u32,
}

/// A counter increment the splitter asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// The counter's key.
    pub key: String,
    /// What to add.
    pub delta: i64,
}

/// The policy calls of the decision phases, in the order they run. A lane
/// implements it over its bindings; a call that cannot be made (a trapped
/// component) is a [`GatewayError::ComponentFailed`].
pub trait Policy {
    /// The route that handles the packed `head`, if any.
    fn resolve(&mut self, head: &str) -> Result<Option<RouteMatch>, GatewayError>;
    /// Who the caller of route `route` is, or why it may not pass.
    fn authenticate(
        &mut self,
        route: u32,
        head: &str,
        now_ms: u64,
    ) -> Result<Authenticated, GatewayError>;
    /// Where a request of route `route` goes (to `service`, or the route's own).
    fn choose(
        &mut self,
        route: u32,
        service: Option<&str>,
        head: &str,
        consumer: Option<u32>,
        now_ms: u64,
    ) -> Result<Selection, GatewayError>;
}
