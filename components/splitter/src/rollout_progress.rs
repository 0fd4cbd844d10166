//! Moving a rollout on by itself, through the store: the step's counters
//! are read and [`advance`]d (see `upshift_model::analysis`).
//!
//! Any node may do this, lazily, when it reports an attempt. The move is a
//! compare-and-swap of the state key against the exact bytes the node read,
//! so among nodes racing on the same state exactly one moves it; the winner
//! appends the transition to the audit.

use crate::store::{Store, StoreError, counter};
use upshift_model::analysis::advance;
use upshift_model::metrics::{FIELDS, VersionStats};
use upshift_model::rollout::{Phase, RolloutState, Transition};
use upshift_model::{keys, rollout_log};

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
    let Some((bytes, state)) = rollout_log::read(store, service)? else {
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
    proposal: &Proposal,
) -> Result<bool, StoreError> {
    rollout_log::commit(
        store,
        &proposal.expected,
        &proposal.state,
        Some(&proposal.transition),
    )
}
