//! Looking at what the store says is in force, every so often, for changes
//! made through other nodes.

use std::sync::Arc;
use std::time::Duration;

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
