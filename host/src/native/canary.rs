//! A component canary on the native lane: a share of requests decides
//! with the canary build of one component, and every request's outcome
//! while the canary runs is counted for its side, for the analysis that
//! moves the canary on (see [`crate::registry`]). A failure of the canary
//! build (a trap, its memory or time limit) stops its traffic on this node
//! at once and is reported for a roll-back.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use upshift_core::policy::Count;
use upshift_model::{keys, metrics};

use super::lock;

/// Where a canary stands, as this node last read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRun {
    /// The component.
    pub name: Arc<str>,
    /// The canary's id (its counters are keyed by it).
    pub id: String,
    /// Its current step.
    pub step: usize,
    /// The canary's share of requests, in percent.
    pub weight: u32,
}

/// Which build of the canary's component a request decided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The version in force.
    Stable,
    /// The canary's version.
    Canary,
}

impl Side {
    /// The side's name in the counters' keys.
    pub fn label(self) -> &'static str {
        match self {
            Side::Stable => "stable",
            Side::Canary => "canary",
        }
    }
}

/// A failure of a canary build, reported for a roll-back.
#[derive(Debug, Clone)]
pub struct Trap {
    /// The canary's component.
    pub name: Arc<str>,
    /// The canary's id.
    pub id: String,
    /// What failed.
    pub detail: String,
}

/// This node's view of the running canary.
pub struct Canary {
    run: Mutex<Option<Arc<CanaryRun>>>,
    running: AtomicBool,
    weight: AtomicU32,
    traps: mpsc::UnboundedSender<Trap>,
    reported: Mutex<Option<mpsc::UnboundedReceiver<Trap>>>,
}

impl Default for Canary {
    fn default() -> Self {
        let (traps, reported) = mpsc::unbounded_channel();
        Self {
            run: Mutex::default(),
            running: AtomicBool::new(false),
            weight: AtomicU32::new(0),
            traps,
            reported: Mutex::new(Some(reported)),
        }
    }
}

impl Canary {
    /// Sets where the running canary stands: its share, and the step its
    /// requests count in. A canary whose build failed on this node keeps
    /// no traffic here while it stands where it stood.
    pub fn set(&self, run: CanaryRun) {
        let mut current = lock(&self.run);
        if current.as_deref() == Some(&run) {
            return;
        }
        self.weight.store(run.weight.min(100), Ordering::Release);
        self.running.store(true, Ordering::Release);
        *current = Some(Arc::new(run));
    }

    /// The canary stopped: no request takes its build, none is counted.
    pub fn stop(&self) {
        self.weight.store(0, Ordering::Release);
        self.idle();
    }

    /// The canary was promoted: every request takes its build until the
    /// lane serves it as the version in force; none is counted.
    pub fn promoted(&self) {
        self.weight.store(100, Ordering::Release);
        self.idle();
    }

    /// No canary runs any more: requests are no longer counted. (The share
    /// stays until the lane's sets have no canary build.)
    pub fn idle(&self) {
        self.running.store(false, Ordering::Release);
        *lock(&self.run) = None;
    }

    /// The running canary, if any.
    pub fn run(&self) -> Option<Arc<CanaryRun>> {
        if !self.running.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.run).clone()
    }

    /// Whether the next request takes the canary's build.
    pub fn roll(&self) -> bool {
        let weight = self.weight.load(Ordering::Acquire);
        weight > 0 && random_percent() < weight
    }

    /// Stops the canary's traffic on this node and reports why.
    pub fn failed(&self, run: &CanaryRun, detail: String) {
        self.weight.store(0, Ordering::Release);
        let _ = self.traps.send(Trap {
            name: run.name.clone(),
            id: run.id.clone(),
            detail,
        });
    }

    /// The reported failures; only the first caller gets them.
    pub fn failures(&self) -> Option<mpsc::UnboundedReceiver<Trap>> {
        lock(&self.reported).take()
    }
}

/// The counters a request adds to its side of the canary's current step:
/// answered with `status` after `latency_ms`.
pub fn counts(run: &CanaryRun, side: Side, status: u16, latency_ms: u32) -> Vec<Count> {
    metrics::attempt_fields(metrics::status_field(status), latency_ms)
        .into_iter()
        .map(|(field, delta)| Count {
            key: keys::component_canary_metric(&run.name, &run.id, run.step, side.label(), field),
            delta,
        })
        .collect()
}

thread_local! {
    /// This thread's xorshift state (never 0).
    static RANDOM: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
    (a ^ b) | 1
}

/// A number in 0..100, evenly enough for traffic shares.
fn random_percent() -> u32 {
    RANDOM.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        u32::try_from(x % 100).unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(step: usize, weight: u32) -> CanaryRun {
        CanaryRun {
            name: "router".into(),
            id: "c1".into(),
            step,
            weight,
        }
    }

    #[test]
    fn the_share_follows_the_weight() {
        let canary = Canary::default();
        assert!(!canary.roll());
        canary.set(run(0, 30));
        let taken = (0..10_000).filter(|_| canary.roll()).count();
        assert!((2_500..3_500).contains(&taken), "{taken}");
        canary.set(run(1, 100));
        assert!((0..1_000).all(|_| canary.roll()));
        canary.promoted();
        assert!(canary.run().is_none() && canary.roll());
        canary.stop();
        assert!(canary.run().is_none() && !canary.roll());
    }

    #[test]
    fn a_failed_build_takes_no_traffic_here_until_its_next_step() {
        let canary = Canary::default();
        let mut failures = canary.failures().unwrap();
        canary.set(run(0, 50));
        canary.failed(&run(0, 50), "trap".into());
        assert_eq!(failures.try_recv().unwrap().detail, "trap");
        assert!((0..1_000).all(|_| !canary.roll()));
        canary.set(run(0, 50));
        assert!((0..1_000).all(|_| !canary.roll()));
        canary.set(run(1, 100));
        assert!(canary.roll());
        assert!(canary.failures().is_none());
    }

    #[test]
    fn requests_count_on_their_side_of_the_step() {
        let counts = counts(&run(2, 10), Side::Canary, 503, 7);
        let keys: Vec<&str> = counts.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "components/router/canary/c1/2/canary/requests",
                "components/router/canary/c1/2/canary/status_5xx",
                "components/router/canary/c1/2/canary/latency_bucket_1",
                "components/router/canary/c1/2/canary/latency_ms_sum",
            ]
        );
        assert_eq!(counts[3].delta, 7);
    }
}
