//! Moving a rollout on by itself: the step's counters are analysed, and a
//! passed step whose pause is over leads to the next step (or promotion),
//! a breach to a roll-back, an unhealthy baseline to a pause.
//!
//! Any node may do this, lazily, when it reports an attempt. The move is a
//! compare-and-swap of the state key against the exact bytes the node read,
//! so among nodes racing on the same state exactly one moves it; the winner
//! appends the transition to the audit.

use crate::analysis::{Verdict, evaluate, summary};
use crate::store::{Store, StoreError, counter};
use upshift_config::keys;
use upshift_config::metrics::{FIELDS, VersionStats};
use upshift_config::rollout::{Actor, Analysis, Pause, Phase, RolloutState, Transition};

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

/// The counters of `version` in the current step of `state`.
pub fn step_stats<S: Store + ?Sized>(
    store: &S,
    state: &RolloutState,
    version: &str,
) -> Result<VersionStats, StoreError> {
    let keys: Vec<String> = FIELDS
        .iter()
        .map(|field| keys::step_metric(&state.spec.service, &state.id, state.step, version, field))
        .collect();
    let values = store.get_many(&keys)?;
    Ok(VersionStats::from_fields(
        FIELDS
            .iter()
            .zip(&values)
            .map(|(field, value)| (*field, counter(value.as_deref()))),
    ))
}

/// A move of a rollout, ready to be written over the bytes it came from.
#[derive(Debug)]
pub(crate) struct Proposal {
    expected: Vec<u8>,
    state: RolloutState,
    transition: Transition,
}

/// Reads the rollout state of `service` and its step's counters, and
/// proposes the move [`advance`] finds, if any.
pub(crate) fn propose<S: Store + ?Sized>(
    store: &S,
    service: &str,
    now_ms: u64,
) -> Result<Option<Proposal>, StoreError> {
    let Some(bytes) = store.get(&keys::rollout_state(service))? else {
        return Ok(None);
    };
    let Ok(state) = serde_json::from_slice::<RolloutState>(&bytes) else {
        return Ok(None);
    };
    if state.phase != Phase::Progressing {
        return Ok(None);
    }
    let stable = step_stats(store, &state, &state.spec.stable)?;
    let canary = step_stats(store, &state, &state.spec.canary)?;
    Ok(
        advance(&state, now_ms, &stable, &canary).map(|(next, transition)| Proposal {
            expected: bytes,
            state: next,
            transition,
        }),
    )
}

/// Writes `proposal` if the state is still the one it was made from, then
/// appends its transition to the audit. Returns whether it was written.
pub(crate) fn commit<S: Store + ?Sized>(
    store: &S,
    service: &str,
    proposal: &Proposal,
) -> Result<bool, StoreError> {
    let json = serde_json::to_vec(&proposal.state).expect("rollout state serializes");
    if !store.compare_and_swap(
        &keys::rollout_state(service),
        Some(&proposal.expected),
        &json,
    )? {
        return Ok(false);
    }
    let n = store.increment(&keys::rollout_audit_seq(service), 1)?;
    let entry = serde_json::to_vec(&proposal.transition).expect("transitions serialize");
    store.set(&keys::rollout_audit(service, n.unsigned_abs()), &entry)?;
    Ok(true)
}
