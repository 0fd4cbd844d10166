//! Moving a rollout on from the verdict of its current step: the next
//! step, promotion, roll-back or pause.

use super::{Verdict, evaluate, summary};
use crate::metrics::VersionStats;
use crate::rollout::{Actor, Analysis, Gate, Pause, Phase, RolloutState, Transition};

/// The next state of a progressing rollout at `now_ms`, given its current
/// step's counters, and the transition there; `None` when it stays.
///
/// A step's pause and its analysis's initial delay count from
/// `step_started_ms` on the caller's clock, never negative: a node whose
/// clock is behind waits longer rather than moving early. A manual step
/// waits for an operator, though its analysis can still roll back or
/// pause it. The analysis runs during the pause as well as at its end:
/// a breach rolls back at once (after `failure_limit` tolerated breaches
/// in a row), a pass moves on when the pause is over, and an
/// inconclusive step runs on past its pause for up to
/// `inconclusive_limit`, then pauses with the reason. A `dry_run`
/// records each change of verdict and moves on the pauses alone.
pub fn advance(
    state: &RolloutState,
    now_ms: u64,
    stable: &VersionStats,
    canary: &VersionStats,
) -> Option<(RolloutState, Transition)> {
    if state.phase != Phase::Progressing || state.awaiting == Some(Gate::PreRollout) {
        return None;
    }
    let step = state.current_step()?;
    let spec = &state.spec.analysis;
    let elapsed = u128::from(now_ms.saturating_sub(state.step_started_ms));
    if elapsed < spec.initial_delay.as_millis() {
        return None;
    }
    let verdict = judge(state, stable, canary);
    // A manual step with confirm hooks lets them stand in for its operator.
    let pause_over = match step.pause {
        Pause::For(pause) => elapsed >= pause.as_millis(),
        Pause::Manual => !state.hooks(state.confirm_kind()).is_empty(),
    };
    // Once at the confirm gate, only a breach or an unhealthy baseline moves.
    let at_gate = state.awaiting == Some(Gate::Confirm);
    let mut next = state.clone();
    let here = state.step;
    let canary_name = &state.spec.canary;

    if spec.dry_run {
        if at_gate {
            return None;
        }
        if pause_over {
            let why = format!(
                "dry run, pause over ({}): {}; canary {}; stable {}",
                verdict.kind(),
                verdict.detail(),
                summary(canary),
                summary(stable)
            );
            return Some(move_on(next, now_ms, why));
        }
        if next.dry_run_verdict == verdict.kind() {
            return None;
        }
        next.dry_run_verdict = verdict.kind().to_owned();
        let why = format!("dry run, {}: {}", verdict.kind(), verdict.detail());
        let transition = next.transition(Phase::Progressing, here, now_ms, why, Actor::Auto);
        return Some((next, transition));
    }

    let transition = match verdict {
        Verdict::Breach(why) if state.breaches < spec.failure_limit => {
            next.breaches += 1;
            let why = format!(
                "breach {} of {} tolerated in a row: canary {canary_name}: {why}",
                next.breaches, spec.failure_limit
            );
            next.transition(Phase::Progressing, here, now_ms, why, Actor::Auto)
        }
        Verdict::Breach(why) => next.transition(
            Phase::RolledBack,
            here,
            now_ms,
            format!("canary {canary_name}: {why}"),
            Actor::Auto,
        ),
        Verdict::BaselineUnhealthy(why) => next.transition(
            Phase::Paused,
            here,
            now_ms,
            format!("baseline unhealthy: {why}"),
            Actor::Auto,
        ),
        _ if state.breaches > 0 => {
            next.breaches = 0;
            let why = format!(
                "breaches cleared after {} in a row: {}",
                state.breaches,
                verdict.detail()
            );
            next.transition(Phase::Progressing, here, now_ms, why, Actor::Auto)
        }
        Verdict::Inconclusive(why) => {
            let Pause::For(pause) = step.pause else {
                return None;
            };
            let limit = pause.saturating_add(spec.inconclusive_limit);
            if elapsed < limit.as_millis() {
                return None;
            }
            let why = format!(
                "held: the analysis stayed inconclusive {} past the step's pause: {why}",
                crate::rollout::format_duration(spec.inconclusive_limit)
            );
            next.transition(Phase::Paused, here, now_ms, why, Actor::Auto)
        }
        Verdict::Pass(why) => {
            if !pause_over || at_gate {
                return None;
            }
            let why = format!(
                "passed: {why}; canary {}; stable {}",
                summary(canary),
                summary(stable)
            );
            return Some(move_on(next, now_ms, why));
        }
    };
    Some((next, transition))
}

/// Moves `state` past its current step, or to the confirm gate before
/// that when the rollout has hooks to confirm the move.
fn move_on(mut state: RolloutState, now_ms: u64, why: String) -> (RolloutState, Transition) {
    let kind = state.confirm_kind();
    let names: Vec<&str> = state.hooks(kind).iter().map(|h| h.name.as_str()).collect();
    if names.is_empty() {
        return next_step(state, now_ms, why);
    }
    let why = format!(
        "step {} of {} {why}; awaiting the {} hooks: {}",
        state.step + 1,
        state.spec.steps.len(),
        kind.name(),
        names.join(", ")
    );
    let here = state.step;
    let transition = state.transition(Phase::Progressing, here, now_ms, why, Actor::Auto);
    state.awaiting = Some(Gate::Confirm);
    (state, transition)
}

/// Moves `state` past its current step (promoted after the last), saying
/// what the step showed.
fn next_step(mut state: RolloutState, now_ms: u64, why: String) -> (RolloutState, Transition) {
    let step = state.step;
    let weight = state.current_step().map_or(0, |s| s.weight);
    let why = format!(
        "step {} of {} ({weight}%) {why}",
        step + 1,
        state.spec.steps.len(),
    );
    let transition = if state.at_last_step() {
        state.transition(Phase::Promoted, step, now_ms, why, Actor::Auto)
    } else {
        state.transition(Phase::Progressing, step + 1, now_ms, why, Actor::Auto)
    };
    (state, transition)
}

/// The verdict on the current step of `state`: [`evaluate`] with the
/// checks its weights allow.
pub fn judge(state: &RolloutState, stable: &VersionStats, canary: &VersionStats) -> Verdict {
    let (stable_weight, canary_weight) = state.weights();
    evaluate(
        &scoped(&state.spec.analysis, stable_weight, canary_weight),
        stable,
        canary,
    )
}

/// The checks a step's weights allow: without stable traffic there is
/// nothing to compare with, nor copies to judge; without canary traffic
/// only shadow copies can be judged, and without those nothing needs to be
/// waited for.
fn scoped(analysis: &Analysis, stable_weight: u32, canary_weight: u32) -> Analysis {
    let mut scoped = analysis.clone();
    if stable_weight == 0 || canary_weight == 0 {
        scoped.max_error_rate_increase = None;
        scoped.max_latency_increase = None;
        scoped.max_p99_ratio = None;
        scoped.max_ttft_ratio = None;
    }
    if stable_weight == 0 {
        // No primary on the stable to copy to the canary.
        scoped.max_shadow_mismatch_rate = None;
        scoped.max_shadow_diff_rate = None;
    }
    if canary_weight == 0 {
        scoped.max_error_rate = None;
        scoped.max_p99_ms = None;
        scoped.max_ttft_ms = None;
        scoped.min_tokens_per_second = None;
        scoped.max_refusal_rate = None;
        if scoped.max_shadow_mismatch_rate.is_none() && scoped.max_shadow_diff_rate.is_none() {
            scoped.min_requests = 0;
        }
    }
    scoped
}
