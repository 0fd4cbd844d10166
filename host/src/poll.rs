//! Looking at what the store says is in force, every so often, for changes
//! made through other nodes, and loading what is asked for, one version at
//! a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::capabilities::kv::{KvBackend, blocking};

/// Reads `what` with `read` every `interval` until the process ends, and
/// hands each reading to `seen`. A failed reading is logged once, and so
/// is the first that works again.
pub async fn every<T: Send + 'static>(
    interval: Duration,
    kv: Arc<dyn KvBackend>,
    what: &'static str,
    read: fn(&dyn KvBackend) -> anyhow::Result<T>,
    mut seen: impl FnMut(T),
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        let kv = kv.clone();
        let reading = blocking(move || Ok(read(&*kv))).await;
        match reading.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(reading) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("the {what} can be read again");
                }
                seen(reading);
            }
            Err(error) if !failing => {
                failing = true;
                tracing::warn!("cannot read the {what}: {error:#}");
            }
            Err(_) => {}
        }
    }
}

/// A lane that loads the versions asked of it, off the request path.
pub trait Loader: Send + Sync + 'static {
    /// What is asked for: a config version, a set of component versions.
    type Wanted: Clone + PartialEq + Send + Sync + 'static;
    /// Loads `wanted`; runs on the blocking pool.
    fn load(&self, wanted: &Self::Wanted) -> anyhow::Result<()>;
    /// `wanted` was loaded in `elapsed`, replacing `before`.
    fn loaded(self: &Arc<Self>, wanted: &Self::Wanted, before: &Self::Wanted, elapsed: Duration);
    /// `wanted` could not be loaded; what was loaded before stays.
    fn failed(&self, wanted: &Self::Wanted, error: &anyhow::Error);
    /// Tells whoever waits that `wanted` is settled, loaded or not.
    fn settle(&self, wanted: Self::Wanted);
}

/// Loads each version `requested` names on the blocking pool, one at a
/// time, until the sender is gone.
pub async fn follow<L: Loader>(lane: Arc<L>, mut requested: watch::Receiver<L::Wanted>) {
    let mut loaded = requested.borrow().clone();
    loop {
        let wanted = requested.borrow_and_update().clone();
        if wanted != loaded {
            let loading = lane.clone();
            let attempt = wanted.clone();
            let started = Instant::now();
            match tokio::task::spawn_blocking(move || loading.load(&attempt)).await {
                Ok(Ok(())) => {
                    lane.loaded(&wanted, &loaded, started.elapsed());
                    loaded = wanted.clone();
                }
                Ok(Err(error)) => lane.failed(&wanted, &error),
                Err(error) => tracing::error!("loading failed: {error}"),
            }
            lane.settle(wanted);
        }
        if requested.changed().await.is_err() {
            return;
        }
    }
}
