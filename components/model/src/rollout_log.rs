//! A service's rollout state and its audit trail in the store: moves
//! written with a compare-and-swap of the exact bytes read, transitions
//! appended in order, and read back by revision.

use crate::keys;
use crate::rollout::{RolloutState, Transition};
use crate::store::{Store, StoreError, counter};

/// How far back [`since`] looks in the audit trail.
const LOOKBACK: u64 = 500;

/// The rollout state of `service` and the bytes it was read from; `None`
/// when there is none or it cannot be read.
pub fn read<S: Store + ?Sized>(
    store: &S,
    service: &str,
) -> Result<Option<(Vec<u8>, RolloutState)>, StoreError> {
    let Some(bytes) = store.get(&keys::rollout_state(service))? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&bytes)
        .ok()
        .map(|state| (bytes, state)))
}

/// Writes `state` over `expected`, the bytes it was read from, and appends
/// `transition` to the audit trail if there is one. Returns whether it
/// wrote: `false` when another writer moved the state first.
pub fn commit<S: Store + ?Sized>(
    store: &S,
    expected: &[u8],
    state: &RolloutState,
    transition: Option<&Transition>,
) -> Result<bool, StoreError> {
    let service = &state.spec.service;
    let json = serde_json::to_vec(state).expect("rollout state serializes");
    if !store.compare_and_swap(&keys::rollout_state(service), Some(expected), &json)? {
        return Ok(false);
    }
    if let Some(transition) = transition {
        append(store, service, transition)?;
    }
    Ok(true)
}

/// Appends `transition` to the audit trail of `service`; returns its
/// number.
pub fn append<S: Store + ?Sized>(
    store: &S,
    service: &str,
    transition: &Transition,
) -> Result<u64, StoreError> {
    let n = store.increment(&keys::rollout_audit_seq(service), 1)?;
    let n = u64::try_from(n).map_err(|_| StoreError("audit sequence is negative".into()))?;
    let entry = serde_json::to_vec(transition).expect("transitions serialize");
    store.set(&keys::rollout_audit(service, n), &entry)?;
    Ok(n)
}

/// The transitions of rollout `state` after revision `after`, oldest
/// first, as far as their revisions follow on without a gap (a move whose
/// state is written but whose entry is not yet ends the list). Looks back
/// at most [`LOOKBACK`] entries.
pub fn since<S: Store + ?Sized>(
    store: &S,
    state: &RolloutState,
    after: u64,
) -> Result<Vec<Transition>, StoreError> {
    let service = &state.spec.service;
    let newest = counter(store.get(&keys::rollout_audit_seq(service))?.as_deref());
    let oldest = newest.saturating_sub(LOOKBACK - 1).max(1);
    let numbers: Vec<String> = (oldest..=newest)
        .rev()
        .map(|n| keys::rollout_audit(service, n))
        .collect();
    let mut found = Vec::new();
    for bytes in store.get_many(&numbers)?.into_iter().flatten() {
        let Ok(transition) = serde_json::from_slice::<Transition>(&bytes) else {
            continue;
        };
        if transition.rollout != state.id {
            continue;
        }
        if transition.revision <= after {
            break;
        }
        found.push(transition);
    }
    found.sort_by_key(|t| t.revision);
    let contiguous = found
        .iter()
        .zip(after + 1..)
        .take_while(|(t, revision)| t.revision == *revision)
        .count();
    found.truncate(contiguous);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{Phase, RolloutSpec};
    use crate::store::MemoryStore;

    fn spec() -> RolloutSpec {
        serde_json::from_str(r#"{"service":"s","canary":"v2","stable":"v1"}"#).unwrap()
    }

    #[test]
    fn moves_are_read_back_by_revision() {
        let store = MemoryStore::default();
        let (mut state, started) = RolloutState::start(spec(), "r1", 10);
        store
            .set(
                &keys::rollout_state("s"),
                &serde_json::to_vec(&state).unwrap(),
            )
            .unwrap();
        append(&store, "s", &started).unwrap();
        let (bytes, read_back) = read(&store, "s").unwrap().unwrap();
        assert_eq!(read_back, state);
        let paused = state.pause(20, "look").unwrap();
        assert!(commit(&store, &bytes, &state, Some(&paused)).unwrap());
        assert!(
            !commit(&store, &bytes, &state, None).unwrap(),
            "stale bytes"
        );

        let all = since(&store, &state, 0).unwrap();
        assert_eq!(all.iter().map(|t| t.revision).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(all[1].to_phase, Phase::Paused);
        assert_eq!(
            since(&store, &state, 1).unwrap(),
            std::slice::from_ref(&paused)
        );
        assert!(since(&store, &state, 2).unwrap().is_empty());

        // A number taken and never written is passed over.
        store.increment(&keys::rollout_audit_seq("s"), 1).unwrap();
        let resumed = state.resume(30).unwrap();
        append(&store, "s", &resumed).unwrap();
        assert_eq!(since(&store, &state, 1).unwrap(), [paused, resumed]);

        // Another rollout's entries are not this one's.
        let (other, _) = RolloutState::start(spec(), "r2", 40);
        assert!(since(&store, &other, 0).unwrap().is_empty());
    }
}
