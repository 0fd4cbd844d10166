//! Where a request goes: the version (pin, match rule, rollout, weights,
//! then the circuit), the target, where retries and a shadow copy go, and
//! the headers the client gets.

use crate::balancer::{self, Usable};
use crate::hash::{hash, scale, unit, weighted_index};
use crate::health::Health;
use crate::live::Live;
use crate::plan::{Plan, RolloutView, RoutePlan, ServicePlan};
use crate::report;
use crate::request::{ConsumerIdentity, key_value};
use crate::retry;
use crate::store::{Store, StoreError};
use upshift_model::metrics::{FAILURES, REQUESTS};
pub use upshift_model::outcome::Reason;
use upshift_model::{BalancePolicy, DEFAULT_SHADOW_TIMEOUT_MS, RequestHead};

/// One destination: a version of the service and one of its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedUpstream<'a> {
    /// Version name.
    pub version: &'a str,
    /// Base URL of the target.
    pub target: &'a str,
}

/// How the gateway retries a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy<'a> {
    /// Further attempts allowed after the first.
    pub attempts: u32,
    /// Statuses that are retried (failures and timeouts always are).
    pub retry_on: &'a [u16],
    /// Timeout of each attempt, when shorter than the route's.
    pub per_try_timeout_ms: Option<u32>,
}

/// A copy of the request for a shadow version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowCopy<'a> {
    /// Where the copy goes.
    pub upstream: NamedUpstream<'a>,
    /// How long the copy may take, in milliseconds.
    pub timeout_ms: u32,
}

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    /// Service name.
    pub service: &'a str,
    /// The first attempt.
    pub primary: NamedUpstream<'a>,
    /// Where retries go, in order: other usable targets of the version, then
    /// the fallback version.
    pub alternates: Vec<NamedUpstream<'a>>,
    /// Where a copy of the request goes.
    pub shadow: Option<ShadowCopy<'a>>,
    /// How to retry.
    pub retry: RetryPolicy<'a>,
    /// Why this version.
    pub reason: Reason,
    /// Whether every attempt must be reported, not only the failed ones:
    /// a running rollout counts its step, `least_outstanding` its gauge.
    pub report_all: bool,
    /// Whether the service's rollout has webhooks with work.
    pub hooks_due: bool,
}

/// Why no selection could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooseError {
    /// The config has no such service.
    #[error("service {0:?} is not defined")]
    UnknownService(String),
    /// The live state could not be read.
    #[error("the split state could not be read: {0}")]
    Store(#[from] StoreError),
}

impl ChooseError {
    /// HTTP status to answer the request with.
    pub fn status(&self) -> u16 {
        match self {
            ChooseError::UnknownService(_) => 500,
            ChooseError::Store(_) => 503,
        }
    }

    /// Stable error code for the response.
    pub fn code(&self) -> &'static str {
        match self {
            ChooseError::UnknownService(_) => "unknown_service",
            ChooseError::Store(_) => "state_store_unavailable",
        }
    }
}

/// How the version was picked, which bounds where it may fall back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PickedBy {
    /// The request asked for this version (pin or rule): fall back only to
    /// the route's explicit fallback.
    Asked,
    /// By a rollout's weights: any healthy version will do.
    Rollout,
    /// By the config's weights: any healthy version will do.
    Weighted,
}

impl Plan {
    /// Picks the version and target of `service` for a request of `route`:
    /// reads the live state ([`Plan::live`]), then [`Plan::decide`]s.
    pub fn choose<S: Store + ?Sized>(
        &self,
        store: &S,
        route: &str,
        service: &str,
        head: &RequestHead<'_>,
        consumer: Option<&ConsumerIdentity>,
        now_ms: u64,
    ) -> Result<Selection<'_>, ChooseError> {
        let plan = self.known(service)?;
        let live = self.live.read(store, plan)?;
        Ok(self.decide_for(store, &live, route, plan, head, consumer, now_ms))
    }

    /// Reads the rollout state and ejected targets of `service`: one batch
    /// read, parsed again only when the bytes changed.
    pub fn live<S: Store + ?Sized>(&self, store: &S, service: &str) -> Result<Live, ChooseError> {
        let plan = self.known(service)?;
        Ok(self.live.read(store, plan)?)
    }

    /// Picks the version and target for a request, given the live state.
    /// Touches the store only to count, best effort: balancer counters
    /// (`round_robin`, `least_outstanding`), a retryable request for the
    /// retry budget, and a request a rollout side could not take because
    /// its circuit is open (a failure in the step's counters).
    #[allow(clippy::too_many_arguments)]
    pub fn decide<S: Store + ?Sized>(
        &self,
        store: &S,
        live: &Live,
        route: &str,
        service: &str,
        head: &RequestHead<'_>,
        consumer: Option<&ConsumerIdentity>,
        now_ms: u64,
    ) -> Result<Selection<'_>, ChooseError> {
        let plan = self.known(service)?;
        Ok(self.decide_for(store, live, route, plan, head, consumer, now_ms))
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_for<'p, S: Store + ?Sized>(
        &'p self,
        store: &S,
        live: &Live,
        route: &str,
        plan: &'p ServicePlan,
        head: &RequestHead<'_>,
        consumer: Option<&ConsumerIdentity>,
        now_ms: u64,
    ) -> Selection<'p> {
        let route_plan = self.route(route, plan);
        let rollout = live
            .rollout
            .as_deref()
            .and_then(|s| RolloutView::of(s, plan));
        let health = &*live.health;
        let open = |v: usize| health.all_ejected(plan.versions[v].urls(), now_ms);
        // With every version's circuit open, ejections are ignored.
        let respect = !(0..plan.versions.len()).all(open);
        let circuit_open = |v: usize| respect && open(v);

        let request_hash = hash(&[head.request_id().as_bytes()]);
        let (mut version, mut reason, picked) =
            pick_version(plan, route_plan, rollout, head, consumer, request_hash);
        if circuit_open(version) {
            let explicit = route_plan.and_then(|r| r.fallback);
            let fallback = match picked {
                PickedBy::Asked => explicit.filter(|f| !circuit_open(*f)),
                PickedBy::Rollout | PickedBy::Weighted => explicit
                    .into_iter()
                    .chain(rollout.map(|r| r.stable))
                    .find(|f| *f != version && !circuit_open(*f))
                    .or_else(|| plan.heaviest(|v| v != version && !circuit_open(v))),
            };
            if let Some(fallback) = fallback {
                if let (PickedBy::Rollout, Some(rollout)) = (picked, rollout) {
                    // The rollout's side could not take its request: that
                    // counts against it, so an ejected canary is rolled
                    // back rather than starved of the data to judge it.
                    let name = &plan.versions[version].name;
                    let counts = [(REQUESTS, 1), (FAILURES, 1)];
                    for (key, n) in report::step_counts(rollout.state, name, &counts) {
                        // Best effort: a lost count only delays the judgement.
                        let _ = store.increment(&key, n);
                    }
                    if version == rollout.canary {
                        self.analyse_if_due(store, plan, rollout.state, now_ms, true);
                    }
                }
                version = fallback;
                reason = Reason::CircuitOpen;
            }
        }

        let usable = Usable::new(&plan.versions[version], health, now_ms);
        let hash_on = plan.hash_on(head, consumer);
        let primary = balancer::pick(store, plan, &usable, request_hash, hash_on);
        let name = plan.versions[version].name.as_str();
        let mut alternates: Vec<NamedUpstream<'_>> = usable
            .version
            .targets
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != primary && usable.allows(*i))
            .map(|(_, t)| NamedUpstream {
                version: name,
                target: &t.url,
            })
            .collect();
        let fallback = route_plan
            .and_then(|r| r.fallback)
            .filter(|f| *f != version)
            .or_else(|| rollout.filter(|r| r.canary == version).map(|r| r.stable))
            .filter(|f| !circuit_open(*f));
        if let Some(fallback) = fallback {
            alternates.push(upstream(plan, fallback, health, now_ms, request_hash));
        }

        let retries = route_plan.map_or(&self.default_retries, |r| &r.retries);
        let retryable = retries.methods.iter().any(|m| m == head.method());
        let mut attempts = if retryable { retries.attempts } else { 0 };
        if retryable && fallback.is_some() {
            attempts = attempts.max(1);
        }
        if attempts > 0 {
            // Best effort: a lost count only makes the budget a little looser.
            let _ = retry::count_request(store, route, now_ms);
        }

        // A rollout step's mirror copies to its canary; otherwise the
        // route's shadow.
        let route_shadow = route_plan.and_then(|r| r.shadow.as_ref());
        let mirror = rollout.and_then(|r| {
            r.mirror().map(|percent| {
                (
                    r.canary,
                    percent,
                    route_shadow.map_or(DEFAULT_SHADOW_TIMEOUT_MS, |s| s.timeout_ms),
                )
            })
        });
        let shadow = mirror
            .or_else(|| route_shadow.map(|s| (s.version, s.percent, s.timeout_ms)))
            .filter(|(to, _, _)| *to != version && !circuit_open(*to))
            .filter(|(_, percent, _)| {
                unit(hash(&[head.request_id().as_bytes(), b"shadow"])) * 100.0 < *percent
            })
            .map(|(to, _, timeout_ms)| ShadowCopy {
                upstream: upstream(plan, to, health, now_ms, request_hash),
                timeout_ms,
            });

        Selection {
            service: &plan.name,
            primary: NamedUpstream {
                version: name,
                target: &usable.version.targets[primary].url,
            },
            alternates,
            shadow,
            retry: RetryPolicy {
                attempts,
                retry_on: &retries.retry_on,
                per_try_timeout_ms: retries.per_try_timeout_ms,
            },
            reason,
            report_all: live.rollout.as_deref().is_some_and(|s| s.is_active())
                || plan.policy == BalancePolicy::LeastOutstanding,
            hooks_due: live.rollout.as_deref().is_some_and(|s| s.hooks_due()),
        }
    }

    fn known(&self, service: &str) -> Result<&ServicePlan, ChooseError> {
        self.service(service)
            .ok_or_else(|| ChooseError::UnknownService(service.to_owned()))
    }
}

/// The version by pin, then match rules, then a rollout's weights, then the
/// config's weights.
fn pick_version<'p>(
    plan: &'p ServicePlan,
    route: Option<&'p RoutePlan>,
    rollout: Option<RolloutView<'_>>,
    head: &RequestHead<'_>,
    consumer: Option<&ConsumerIdentity>,
    request_hash: u64,
) -> (usize, Reason, PickedBy) {
    if let Some(route) = route {
        if let Some(pinned) = route.pinned {
            return (pinned, Reason::Pinned, PickedBy::Asked);
        }
        if let Some(rule) = route
            .rules
            .iter()
            .find(|r| r.conditions.hold(head, consumer))
        {
            return (rule.version, Reason::Rule(rule.index), PickedBy::Asked);
        }
    }
    // A sticky caller hashes the same whatever the request, so it keeps its
    // version while the weights stay; when the canary's share grows, only
    // callers in the grown part move (the canary's range ends at the top).
    let sticky = route
        .and_then(|r| r.sticky.as_ref())
        .and_then(|key| key_value(key, head, consumer))
        .map(|value| hash(&[plan.name.as_bytes(), value.as_bytes()]));
    let point_hash = sticky.unwrap_or(request_hash);
    if let Some(rollout) = rollout {
        if rollout.header_routed(head) {
            return (rollout.canary, Reason::Rollout, PickedBy::Rollout);
        }
        let (stable, canary) = rollout.state.weights();
        let point = scale(point_hash, 100);
        let version = match weighted_index(point, [u64::from(stable), u64::from(canary)]) {
            Some(1) => rollout.canary,
            _ => rollout.stable,
        };
        return (version, Reason::Rollout, PickedBy::Rollout);
    }
    if plan.single() {
        let only = plan.weights.iter().position(|w| *w > 0).unwrap_or(0);
        return (only, Reason::OnlyVersion, PickedBy::Weighted);
    }
    let point = scale(point_hash, plan.total_weight);
    let version = weighted_index(point, plan.weights.iter().map(|w| u64::from(*w))).unwrap_or(0);
    let reason = if sticky.is_some() {
        Reason::Sticky
    } else {
        Reason::Weight
    };
    (version, reason, PickedBy::Weighted)
}

/// A usable target of `version`, by weight.
fn upstream<'p>(
    plan: &'p ServicePlan,
    version: usize,
    health: &Health,
    now_ms: u64,
    request_hash: u64,
) -> NamedUpstream<'p> {
    let usable = Usable::new(&plan.versions[version], health, now_ms);
    let target = usable.weighted(request_hash.rotate_left(17));
    NamedUpstream {
        version: &usable.version.name,
        target: &usable.version.targets[target].url,
    }
}
