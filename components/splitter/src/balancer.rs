//! Which target of a version takes a request, by the service's policy,
//! among the targets that are not ejected (all of them when every one is).

use crate::hash::{hash, open_unit, scale, weighted_index};
use crate::health::Health;
use crate::plan::{ServicePlan, VersionPlan};
use crate::store::{Store, counter};
use upshift_model::BalancePolicy;

/// The targets of one version that may take traffic now.
pub(crate) struct Usable<'p, 'h> {
    pub(crate) version: &'p VersionPlan,
    health: &'h Health,
    now_ms: u64,
    /// False when every target is ejected: then all are used.
    respect: bool,
}

impl<'p, 'h> Usable<'p, 'h> {
    pub(crate) fn new(version: &'p VersionPlan, health: &'h Health, now_ms: u64) -> Self {
        let respect = !health.all_ejected(version.urls(), now_ms);
        Usable {
            version,
            health,
            now_ms,
            respect,
        }
    }

    /// Whether target `i` may take traffic.
    pub(crate) fn allows(&self, i: usize) -> bool {
        !self.respect
            || !self
                .health
                .is_ejected(&self.version.targets[i].url, self.now_ms)
    }

    /// Weight of target `i`, 0 when it may not take traffic.
    fn weight(&self, i: usize) -> u64 {
        if self.allows(i) {
            u64::from(self.version.targets[i].weight)
        } else {
            0
        }
    }

    fn total_weight(&self) -> u64 {
        (0..self.version.targets.len())
            .map(|i| self.weight(i))
            .sum()
    }

    /// The target at `point` of the usable weights, `point` in `0..total`.
    fn at(&self, point: impl FnOnce(u64) -> u64) -> usize {
        let total = self.total_weight();
        if total == 0 {
            return (0..self.version.targets.len())
                .find(|i| self.allows(*i))
                .unwrap_or(0);
        }
        let weights = (0..self.version.targets.len()).map(|i| self.weight(i));
        weighted_index(point(total), weights).unwrap_or(0)
    }

    /// A target in proportion to the weights, from `hash`.
    pub(crate) fn weighted(&self, hash: u64) -> usize {
        self.at(|total| scale(hash, total))
    }
}

/// Picks the target of a request by `service`'s policy. `request_hash`
/// spreads requests; `hash_on` is the hash of the policy's key, if the
/// request has it. Store errors fall back to a weighted pick.
pub(crate) fn pick<S: Store + ?Sized>(
    store: &S,
    service: &ServicePlan,
    usable: &Usable<'_, '_>,
    request_hash: u64,
    hash_on: Option<u64>,
) -> usize {
    let weighted = || usable.weighted(request_hash.rotate_left(32));
    match service.policy {
        BalancePolicy::Weighted => weighted(),
        BalancePolicy::RoundRobin => match store.increment(&usable.version.round_robin_key, 1) {
            Ok(n) => usable.at(|total| (n.unsigned_abs().wrapping_sub(1)) % total),
            Err(_) => weighted(),
        },
        BalancePolicy::LeastOutstanding => {
            let chosen = least_outstanding(store, usable, request_hash).unwrap_or_else(weighted);
            // Counted back down when the attempt is reported.
            let _ = store.increment(&usable.version.targets[chosen].outstanding_key, 1);
            chosen
        }
        BalancePolicy::ConsistentHash => rendezvous(usable, hash_on.unwrap_or(request_hash)),
    }
}

/// The usable target with the fewest requests in flight per unit of
/// weight; ties go round from a point `request_hash` picks.
fn least_outstanding<S: Store + ?Sized>(
    store: &S,
    usable: &Usable<'_, '_>,
    request_hash: u64,
) -> Option<usize> {
    let targets = &usable.version.targets;
    let candidates: Vec<usize> = (0..targets.len())
        .filter(|i| usable.weight(*i) > 0)
        .collect();
    let keys: Vec<String> = candidates
        .iter()
        .map(|i| targets[*i].outstanding_key.clone())
        .collect();
    let counts = store.get_many(&keys).ok()?;
    let start = scale(request_hash, candidates.len() as u64) as usize;
    let mut best: Option<(usize, u64, u64)> = None;
    for k in 0..candidates.len() {
        let j = (start + k) % candidates.len();
        let (i, load, weight) = (
            candidates[j],
            counter(counts[j].as_deref()),
            usable.weight(candidates[j]),
        );
        // load / weight < best_load / best_weight, without division.
        let better = best.is_none_or(|(_, best_load, best_weight)| {
            u128::from(load) * u128::from(best_weight) < u128::from(best_load) * u128::from(weight)
        });
        if better {
            best = Some((i, load, weight));
        }
    }
    best.map(|(i, ..)| i)
}

/// Weighted rendezvous hashing: each target scores `-weight / ln(u)` for a
/// `u` hashed from the key and its URL; the highest score wins. Removing or
/// ejecting a target moves only the keys it held.
fn rendezvous(usable: &Usable<'_, '_>, key_hash: u64) -> usize {
    let key = key_hash.to_le_bytes();
    let mut best = (0, f64::NEG_INFINITY);
    for (i, target) in usable.version.targets.iter().enumerate() {
        let weight = usable.weight(i);
        if weight == 0 {
            continue;
        }
        let u = open_unit(hash(&[&key, target.url.as_bytes()]));
        let score = -(weight as f64) / u.ln();
        if score > best.1 {
            best = (i, score);
        }
    }
    if best.1.is_finite() {
        best.0
    } else {
        usable.weighted(key_hash)
    }
}
