//! What the request path asks the policy components, as plain Rust.
//!
//! The types mirror the WIT records of `upshift:router`, `upshift:auth` and
//! `upshift:splitter` (see `wit/`); each lane converts its own bindings into
//! them. Per request the components answer with positions: of a route, a
//! consumer, a version and a target in the config version's
//! [`Tables`](crate::tables::Tables), which a lane reads once per version.
//! [`Policy`] is the part of those interfaces the phases call in order; the
//! rest (reports, the retry budget) the lanes call as their I/O goes.

pub use upshift_model::outcome::{Outcome, Reason};
use upshift_model::{keys, metrics};

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
    /// Request headers for the upstream from the caller's token: each
    /// named header is removed from the client's request, then set to the
    /// value when there is one.
    pub upstream_headers: Vec<(String, Option<String>)>,
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
    /// Whether every attempt goes to the splitter's `report` (a running
    /// rollout, `least_outstanding` balancing), not only the failed ones.
    pub report_all: bool,
    /// Whether the service's rollout has webhooks with work (see
    /// [`hooks`](crate::hooks)).
    pub hooks_due: bool,
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

/// One attempt at an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamAttempt {
    /// Where it went.
    pub upstream: Upstream,
    /// How it ended.
    pub outcome: Outcome,
    /// Time to the response head or the failure, in milliseconds.
    pub latency_ms: u32,
}

impl UpstreamAttempt {
    /// Whether the splitter's `report` must see it, for a request with
    /// `selection`: always when the selection says so, and every failed
    /// attempt (outlier detection).
    pub fn reported(&self, selection: &Selection) -> bool {
        selection.report_all || self.outcome.is_error()
    }

    /// The route and version counters it adds to, as `report` returns them:
    /// for the attempts `report` need not see.
    pub fn counts(&self, route: &str, service: &str, version: &str) -> Vec<Count> {
        metrics::attempt_fields(self.outcome.field(), self.latency_ms)
            .into_iter()
            .map(|(field, delta)| Count {
                key: keys::metric(route, service, version, field),
                delta,
            })
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: Outcome, latency_ms: u32) -> UpstreamAttempt {
        UpstreamAttempt {
            upstream: Upstream {
                version: 1,
                target: 0,
            },
            outcome,
            latency_ms,
        }
    }

    #[test]
    fn only_failed_attempts_need_the_splitter_unless_it_asks_for_all() {
        let mut selection = Selection {
            primary: attempt(Outcome::Failed, 0).upstream,
            alternates: Vec::new(),
            shadow: None,
            retry: RetryPolicy::default(),
            reason: Reason::Weight,
            report_all: false,
            hooks_due: false,
        };
        assert!(!attempt(Outcome::Status(200), 3).reported(&selection));
        assert!(!attempt(Outcome::Status(404), 3).reported(&selection));
        for failed in [Outcome::Status(503), Outcome::Failed, Outcome::TimedOut] {
            assert!(attempt(failed, 3).reported(&selection), "{failed:?}");
        }
        selection.report_all = true;
        assert!(attempt(Outcome::Status(200), 3).reported(&selection));
    }

    #[test]
    fn counted_attempts_add_to_the_keys_report_would() {
        let counts = attempt(Outcome::Status(201), 42).counts("orders", "orders-svc", "v2");
        let counts: Vec<(&str, i64)> = counts.iter().map(|c| (c.key.as_str(), c.delta)).collect();
        assert_eq!(
            counts,
            [
                ("metrics/orders/orders-svc/v2/requests", 1),
                ("metrics/orders/orders-svc/v2/status_2xx", 1),
                ("metrics/orders/orders-svc/v2/latency_bucket_3", 1),
                ("metrics/orders/orders-svc/v2/latency_ms_sum", 42),
            ]
        );
        let timed_out = attempt(Outcome::TimedOut, 5000).counts("r", "s", "v");
        assert_eq!(timed_out[1].key, "metrics/r/s/v/timeouts");
    }
}
