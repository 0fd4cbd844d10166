//! The analysis of one rollout step: the canary's counters against the
//! absolute limits and against the stable's, and the move it leads to. A
//! passed step whose pause is over leads to the next step (or promotion),
//! a breach to a roll-back, an unhealthy baseline to a pause. Service
//! rollouts (the splitter) and component canaries (the host) both move
//! this way.

use crate::metrics::VersionStats;
use crate::rollout::{Actor, Analysis, Pause, Phase, RolloutState, Transition};

/// Rates within this of their limit count as at the limit, which passes.
const TOLERANCE: f64 = 1e-9;

/// What a step's counters say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check had enough data and passed.
    Pass,
    /// Some check lacks data; nothing is decided yet.
    InsufficientData(String),
    /// The canary breaks a limit: roll back. Names the metric and numbers.
    Breach(String),
    /// The canary breaks an absolute limit, but the stable breaks it too and
    /// the canary is not worse than the stable by the relative margin: the
    /// canary is not to blame, and not to promote either.
    BaselineUnhealthy(String),
}

/// Judges a step. Each side needs `min_requests` requests before its
/// request-based checks run (shadow copies, for the shadow check); the
/// relative checks need both sides. A breach with enough data is reported
/// at once, whatever else still waits for data. Limits are inclusive.
pub fn evaluate(analysis: &Analysis, stable: &VersionStats, canary: &VersionStats) -> Verdict {
    let min = analysis.min_requests;
    let relative = analysis.max_error_rate_increase.is_some()
        || analysis.max_p99_ratio.is_some()
        || analysis.max_cost_per_request_ratio.is_some();
    let request_checks = relative
        || analysis.max_error_rate.is_some()
        || analysis.max_p99_ms.is_some()
        || analysis.max_cost_per_request.is_some();
    let (mut breaches, mut baseline, mut waiting) = (Vec::new(), Vec::new(), Vec::new());

    let canary_ready = canary.requests >= min;
    let stable_ready = stable.requests >= min;
    if !canary_ready && (request_checks || analysis.max_shadow_mismatch_rate.is_none()) {
        waiting.push(format!("canary has {} of {min} requests", canary.requests));
    }
    if canary_ready {
        let rate = canary.error_rate().unwrap_or(0.0);
        let stable_rate = stable.error_rate().unwrap_or(0.0);
        let p99 = canary.quantile_ms(0.99).unwrap_or(0);
        let stable_p99 = stable.quantile_ms(0.99).unwrap_or(0);
        let cost = canary.cost_per_request().unwrap_or(0.0);
        let stable_cost = stable.cost_per_request().unwrap_or(0.0);
        if let Some(max) = analysis.max_cost_per_request
            && above(cost, max)
        {
            breaches.push(format!(
                "cost per request {} > {} over {} requests",
                dollars(cost),
                dollars(max),
                canary.requests
            ));
        }
        if let Some(max) = analysis.max_error_rate
            && above(rate, max)
        {
            let margin = analysis.max_error_rate_increase.unwrap_or(0.0);
            if stable_ready && above(stable_rate, max) && !above(rate, stable_rate + margin) {
                baseline.push(format!(
                    "stable error rate {} > {} over {} requests (canary {})",
                    percent(stable_rate),
                    percent(max),
                    stable.requests,
                    percent(rate)
                ));
            } else {
                breaches.push(format!(
                    "error rate {} > {} over {} requests",
                    percent(rate),
                    percent(max),
                    canary.requests
                ));
            }
        }
        if let Some(max) = analysis.max_p99_ms
            && p99 > max
        {
            let ratio = analysis.max_p99_ratio.unwrap_or(1.0);
            if stable_ready
                && stable_p99 > max
                && !above(f64::from(p99), ratio * f64::from(stable_p99))
            {
                baseline.push(format!(
                    "stable p99 {} > {max} ms over {} requests (canary {})",
                    millis(stable_p99),
                    stable.requests,
                    millis(p99)
                ));
            } else {
                breaches.push(format!(
                    "p99 {} > {max} ms over {} requests",
                    millis(p99),
                    canary.requests
                ));
            }
        }
        if relative && !stable_ready {
            waiting.push(format!("stable has {} of {min} requests", stable.requests));
        }
        if relative && stable_ready {
            if let Some(increase) = analysis.max_error_rate_increase
                && above(rate, stable_rate + increase)
            {
                breaches.push(format!(
                    "error rate {} exceeds the stable's {} by more than {}",
                    percent(rate),
                    percent(stable_rate),
                    percent(increase)
                ));
            }
            if let Some(ratio) = analysis.max_p99_ratio
                && above(f64::from(p99), ratio * f64::from(stable_p99))
            {
                breaches.push(format!(
                    "p99 {} is more than {ratio} × the stable's {}",
                    millis(p99),
                    millis(stable_p99)
                ));
            }
            if let Some(ratio) = analysis.max_cost_per_request_ratio
                && above(cost, ratio * stable_cost)
            {
                breaches.push(format!(
                    "cost per request {} is more than {ratio} × the stable's {}",
                    dollars(cost),
                    dollars(stable_cost)
                ));
            }
        }
    }
    if let Some(max) = analysis.max_shadow_mismatch_rate {
        if canary.shadow_requests < min {
            waiting.push(format!(
                "canary has {} of {min} shadow copies",
                canary.shadow_requests
            ));
        } else {
            let rate = canary.shadow_mismatch_rate().unwrap_or(0.0);
            if above(rate, max) {
                breaches.push(format!(
                    "shadow mismatch rate {} > {} over {} copies",
                    percent(rate),
                    percent(max),
                    canary.shadow_requests
                ));
            }
        }
    }

    if !breaches.is_empty() {
        Verdict::Breach(breaches.join("; "))
    } else if !baseline.is_empty() {
        Verdict::BaselineUnhealthy(baseline.join("; "))
    } else if !waiting.is_empty() {
        Verdict::InsufficientData(waiting.join("; "))
    } else {
        Verdict::Pass
    }
}

/// A one-line account of a side's counters, for transition reasons.
pub fn summary(stats: &VersionStats) -> String {
    format!(
        "{} errors, p99 {} over {} requests",
        percent(stats.error_rate().unwrap_or(0.0)),
        stats
            .quantile_ms(0.99)
            .map_or_else(|| "-".to_owned(), millis),
        stats.requests
    )
}

fn above(value: f64, limit: f64) -> bool {
    value > limit + TOLERANCE
}

fn percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

fn dollars(usd: f64) -> String {
    format!("${usd:.6}")
}

fn millis(ms: u32) -> String {
    if ms == u32::MAX {
        "over 10000 ms".to_owned()
    } else {
        format!("{ms} ms")
    }
}

/// The next state of a progressing rollout at `now_ms`, given its current
/// step's counters, and the transition there; `None` when it stays.
///
/// A step's pause counts from `step_started_ms` on the caller's clock,
/// never negative: a node whose clock is behind waits longer rather than
/// moving early. A manual step waits for an operator, though its analysis
/// can still roll back or pause it.
pub fn advance(
    state: &RolloutState,
    now_ms: u64,
    stable: &VersionStats,
    canary: &VersionStats,
) -> Option<(RolloutState, Transition)> {
    if state.phase != Phase::Progressing {
        return None;
    }
    let step = state.current_step()?;
    let (stable_weight, canary_weight) = state.weights();
    let analysis = scoped(&state.spec.analysis, stable_weight, canary_weight);
    let mut next = state.clone();
    let transition = match evaluate(&analysis, stable, canary) {
        Verdict::InsufficientData(_) => return None,
        Verdict::Breach(why) => next.transition(
            Phase::RolledBack,
            state.step,
            now_ms,
            format!("canary {}: {why}", state.spec.canary),
            Actor::Auto,
        ),
        Verdict::BaselineUnhealthy(why) => next.transition(
            Phase::Paused,
            state.step,
            now_ms,
            format!("baseline unhealthy: {why}"),
            Actor::Auto,
        ),
        Verdict::Pass => {
            let Pause::For(pause) = step.pause else {
                return None;
            };
            let elapsed = now_ms.saturating_sub(state.step_started_ms);
            if u128::from(elapsed) < pause.as_millis() {
                return None;
            }
            let why = format!(
                "step {} of {} ({}%) passed: canary {}; stable {}",
                state.step + 1,
                state.spec.steps.len(),
                step.weight,
                summary(canary),
                summary(stable)
            );
            if state.at_last_step() {
                next.transition(Phase::Promoted, state.step, now_ms, why, Actor::Auto)
            } else {
                next.transition(Phase::Progressing, state.step + 1, now_ms, why, Actor::Auto)
            }
        }
    };
    Some((next, transition))
}

/// The checks a step's weights allow: without stable traffic there is
/// nothing to compare with; without canary traffic only shadow copies can
/// be judged, and without those nothing needs to be waited for.
fn scoped(analysis: &Analysis, stable_weight: u32, canary_weight: u32) -> Analysis {
    let mut scoped = analysis.clone();
    if stable_weight == 0 || canary_weight == 0 {
        scoped.max_error_rate_increase = None;
        scoped.max_p99_ratio = None;
    }
    if canary_weight == 0 {
        scoped.max_error_rate = None;
        scoped.max_p99_ms = None;
        if scoped.max_shadow_mismatch_rate.is_none() {
            scoped.min_requests = 0;
        }
    }
    scoped
}
