//! What came of an attempt: metric counters per route and version, the
//! rollout step's counters, outlier detection, the `least_outstanding`
//! gauge, and a lazy look at whether the rollout moves on.
//!
//! The counters an attempt adds to (its route and version's, its rollout
//! step's) are returned as [`Counts`] for the caller to add in one batch;
//! the rest is written here. Everything is best effort: a store error never
//! fails the request, it only loses a count.

use crate::choose::NamedUpstream;
use crate::health;
use crate::plan::{Plan, ServicePlan};
use crate::rollout_progress;
use crate::store::Store;
use upshift_model::BalancePolicy;
use upshift_model::keys;
use upshift_model::metrics::{
    AiAnswer, SHADOW_FAILURES, SHADOW_MISMATCHES, SHADOW_REQUESTS, attempt_fields, status_field,
};
pub use upshift_model::outcome::Outcome;
use upshift_model::rollout::{Phase, RolloutState};

/// One attempt at an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedAttempt<'a> {
    /// Where it went.
    pub upstream: NamedUpstream<'a>,
    /// How it ended.
    pub outcome: Outcome,
    /// Time to the response head (or to the failure), in milliseconds.
    pub latency_ms: u32,
}

/// How soon an attempt that went wrong on a rollout's canary makes its
/// analysis due again, in milliseconds.
pub const URGENT_INTERVAL_MS: u64 = 50;

/// Counter increments for the caller to add: `(key, delta)`.
pub type Counts = Vec<(String, i64)>;

impl Plan {
    /// Records an attempt of a `route` request to `service`; returns the
    /// counters it adds to.
    pub fn report<S: Store + ?Sized>(
        &self,
        store: &S,
        route: &str,
        service: &str,
        attempt: &NamedAttempt<'_>,
        now_ms: u64,
    ) -> Counts {
        let counts = attempt_fields(attempt.outcome.field(), attempt.latency_ms);
        let version = attempt.upstream.version;
        let target = attempt.upstream.target;
        let mut out = metric_counts(route, service, version, &counts);
        let Some(plan) = self.service(service) else {
            return out;
        };
        let rollout = self.live.rollout(store, plan).ok().flatten();
        if let Some(state) = &rollout {
            out.extend(step_counts(state, version, &counts));
        }
        let known = plan
            .versions
            .iter()
            .any(|v| v.target_index(target).is_some());
        if known && attempt.outcome.is_error() && plan.outliers.failures > 0 {
            let _ = health::count_error(store, service, target, &plan.outliers, now_ms);
        }
        if known && plan.policy == BalancePolicy::LeastOutstanding {
            let key = keys::outstanding(service, target);
            // Retries to alternates were never counted up; keep the gauge at 0.
            if let Ok(n) = store.increment(&key, -1)
                && n < 0
            {
                let _ = store.increment(&key, -n);
            }
        }
        if let Some(state) = rollout {
            let failed_canary = attempt.outcome.is_error() && version == state.spec.canary;
            self.analyse_if_due(store, plan, &state, now_ms, failed_canary);
        }
        out
    }

    /// The counters an AI call's `answer` from `version` of `service` (of
    /// a `route` request) adds to: its cost, and for a success its time to
    /// the first token, output, generation time and refusal; its own and,
    /// when `version` is a side of the running rollout, the step's. The
    /// attempt itself was reported with [`Plan::report`].
    pub fn report_answer<S: Store + ?Sized>(
        &self,
        store: &S,
        route: &str,
        service: &str,
        version: &str,
        answer: &AiAnswer,
    ) -> Counts {
        let counts = answer.fields();
        if counts.is_empty() {
            return Counts::new();
        }
        let mut out = metric_counts(route, service, version, &counts);
        if let Some(plan) = self.service(service)
            && let Ok(Some(state)) = self.live.rollout(store, plan)
        {
            out.extend(step_counts(&state, version, &counts));
        }
        out
    }

    /// Records a shadow copy of a `route` request to `service`, compared
    /// with the primary attempt it mirrored (a mismatch is another status
    /// class, or one side answered and the other did not); returns the
    /// counters it adds to.
    pub fn report_shadow<S: Store + ?Sized>(
        &self,
        store: &S,
        route: &str,
        service: &str,
        shadow: &NamedAttempt<'_>,
        primary: &NamedAttempt<'_>,
        now_ms: u64,
    ) -> Counts {
        let mismatch = match (shadow.outcome, primary.outcome) {
            (Outcome::Status(a), Outcome::Status(b)) => status_field(a) != status_field(b),
            (Outcome::Status(_), _) | (_, Outcome::Status(_)) => true,
            _ => false,
        };
        let failed = !matches!(shadow.outcome, Outcome::Status(_));
        let counts: Vec<(&str, i64)> = [
            Some((SHADOW_REQUESTS, 1)),
            mismatch.then_some((SHADOW_MISMATCHES, 1)),
            failed.then_some((SHADOW_FAILURES, 1)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let version = shadow.upstream.version;
        let mut out = metric_counts(route, service, version, &counts);
        let Some(plan) = self.service(service) else {
            return out;
        };
        if let Ok(Some(state)) = self.live.rollout(store, plan) {
            out.extend(step_counts(&state, version, &counts));
            self.analyse_if_due(store, plan, &state, now_ms, mismatch || failed);
        }
        out
    }

    /// Analyses the rollout of `plan`, at most once per analysis interval on
    /// this instance's clock, and writes the move it finds. An attempt that
    /// went wrong on the canary (`urgent`) makes it due after
    /// [`URGENT_INTERVAL_MS`] already, so that a failing canary is rolled
    /// back within a fraction of a second whatever the interval.
    pub(crate) fn analyse_if_due<S: Store + ?Sized>(
        &self,
        store: &S,
        plan: &ServicePlan,
        state: &RolloutState,
        now_ms: u64,
        urgent: bool,
    ) {
        if state.phase != Phase::Progressing {
            return;
        }
        let mut interval =
            u64::try_from(state.spec.analysis.interval.as_millis()).unwrap_or(u64::MAX);
        if urgent {
            interval = interval.min(URGENT_INTERVAL_MS);
        }
        {
            let mut analysed = self.analysed_ms.lock().unwrap_or_else(|e| e.into_inner());
            match analysed.get_mut(&plan.name) {
                // A clock that went back counts as due.
                Some(last) if now_ms >= *last && now_ms - *last < interval => return,
                Some(last) => *last = now_ms,
                None => {
                    analysed.insert(plan.name.clone(), now_ms);
                }
            }
        }
        if let Ok(Some(proposal)) = rollout_progress::propose(store, &plan.name, now_ms) {
            let _ = rollout_progress::commit(store, &proposal);
        }
    }
}

/// The metric counters of `version` of `service` serving `route` for `counts`.
fn metric_counts(route: &str, service: &str, version: &str, counts: &[(&str, i64)]) -> Counts {
    counts
        .iter()
        .map(|(field, n)| (keys::metric(route, service, version, field), *n))
        .collect()
}

/// The step counters for `counts` when `version` is a side of the active
/// rollout `state`; none otherwise.
pub(crate) fn step_counts(state: &RolloutState, version: &str, counts: &[(&str, i64)]) -> Counts {
    if !state.is_active() || (version != state.spec.stable && version != state.spec.canary) {
        return Counts::new();
    }
    counts
        .iter()
        .map(|(field, n)| {
            let key = keys::step_metric(&state.spec.service, &state.id, state.step, version, field);
            (key, *n)
        })
        .collect()
}
