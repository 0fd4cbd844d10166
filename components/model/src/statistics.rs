//! Significance tests for rollout analysis: whether a canary's errors or
//! latencies are higher than the stable's by more than chance would make
//! them, computed from a step's counters alone.
//!
//! Both tests are one-sided (the canary worse) and return a p-value: the
//! chance of a difference at least this large if both versions behaved
//! the same. They agree with SciPy's `fisher_exact(…,
//! alternative="greater")` and `mannwhitneyu(…, alternative="greater",
//! method="asymptotic")`.

use crate::metrics::LATENCY_BUCKETS;
use statrs::distribution::{ContinuousCDF, DiscreteCDF, Hypergeometric, Normal};

/// Requests and errors of one side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proportion {
    /// Requests judged.
    pub requests: u64,
    /// Of those, the failed ones.
    pub errors: u64,
}

/// Fisher's exact test of the canary's error proportion against the
/// stable's: the chance that the canary, drawing its requests at random
/// from both sides' pooled outcomes, gets at least as many errors as it
/// did. 1 when there is nothing to test.
pub fn errors_greater(canary: Proportion, stable: Proportion) -> f64 {
    let population = canary.requests.saturating_add(stable.requests);
    let errors = canary.errors.saturating_add(stable.errors);
    if canary.errors == 0 || errors == 0 || errors > population {
        return 1.0;
    }
    match Hypergeometric::new(population, errors, canary.requests) {
        Ok(draws) => draws.sf(canary.errors - 1).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

/// The Mann–Whitney U test of the canary's latencies against the stable's,
/// from histograms over the same buckets: every bucket is a group of tied
/// values. The normal approximation with tie and continuity corrections
/// (exact enough above a few dozen requests, the least a step judges). 1
/// when either side is empty or every latency falls in one bucket.
pub fn latency_greater(canary: &[u64; LATENCY_BUCKETS], stable: &[u64; LATENCY_BUCKETS]) -> f64 {
    let n1 = canary.iter().sum::<u64>() as f64;
    let n2 = stable.iter().sum::<u64>() as f64;
    let n = n1 + n2;
    if n1 == 0.0 || n2 == 0.0 {
        return 1.0;
    }
    // The canary's rank sum: each bucket's members share the mean of the
    // ranks they span.
    let (mut below, mut rank_sum, mut ties) = (0.0, 0.0, 0.0);
    for (c, s) in canary.iter().zip(stable) {
        let group = (c + s) as f64;
        rank_sum += *c as f64 * (below + (group + 1.0) / 2.0);
        ties += group * group * group - group;
        below += group;
    }
    let u = rank_sum - n1 * (n1 + 1.0) / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = (u - n1 * n2 / 2.0 - 0.5) / variance.sqrt();
    Normal::standard().sf(z).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative closeness, for p-values spanning many orders of magnitude.
    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 1e-6
    }

    fn side(requests: u64, errors: u64) -> Proportion {
        Proportion { requests, errors }
    }

    // Reference p-values from SciPy 1.17:
    // fisher_exact([[e_c, n_c - e_c], [e_s, n_s - e_s]], alternative="greater").

    #[test]
    fn two_percent_against_one_percent_at_500_requests_is_not_significant() {
        let p = errors_greater(side(500, 10), side(500, 5));
        assert!(close(p, 0.1490330981048061), "{p}");
    }

    #[test]
    fn two_percent_against_one_percent_at_20000_requests_is_significant() {
        let p = errors_greater(side(20_000, 400), side(20_000, 200));
        assert!(close(p, 7.184313324598809e-17), "{p}");
    }

    #[test]
    fn equal_error_rates_are_no_evidence() {
        let p = errors_greater(side(1_000, 10), side(1_000, 10));
        assert!(close(p, 0.5885422383037667), "{p}");
        assert_eq!(errors_greater(side(1_000, 0), side(1_000, 0)), 1.0);
        assert_eq!(errors_greater(side(0, 0), side(1_000, 3)), 1.0);
    }

    // Latencies 5 + (37·i mod 41) ms for i < n on the stable, 1.3 times those
    // (rounded) on the canary, bucketed with the metric bounds; reference:
    // mannwhitneyu(canary, stable, alternative="greater", method="asymptotic")
    // over the bucket indices.
    const STABLE_500: [u64; LATENCY_BUCKETS] = [13, 60, 182, 245, 0, 0, 0, 0, 0, 0, 0, 0];
    const CANARY_500: [u64; LATENCY_BUCKETS] = [0, 49, 133, 233, 85, 0, 0, 0, 0, 0, 0, 0];
    const STABLE_50: [u64; LATENCY_BUCKETS] = [2, 5, 18, 25, 0, 0, 0, 0, 0, 0, 0, 0];
    const CANARY_50: [u64; LATENCY_BUCKETS] = [0, 5, 13, 24, 8, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn a_thirty_percent_latency_shift_is_detected() {
        let p = latency_greater(&CANARY_500, &STABLE_500);
        assert!(close(p, 1.875870716725249e-12), "{p}");
        let p = latency_greater(&CANARY_50, &STABLE_50);
        assert!(close(p, 0.018206424058183245), "{p}");
    }

    #[test]
    fn equal_latencies_are_no_evidence() {
        let p = latency_greater(&STABLE_500, &STABLE_500);
        assert!(close(p, 0.5000478766139457), "{p}");
        let mut one_bucket = [0; LATENCY_BUCKETS];
        one_bucket[2] = 100;
        assert_eq!(latency_greater(&one_bucket, &one_bucket), 1.0);
        assert_eq!(latency_greater(&[0; LATENCY_BUCKETS], &STABLE_50), 1.0);
    }
}
