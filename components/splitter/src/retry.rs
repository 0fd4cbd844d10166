//! The retry budget: per route and 10-second window, retries may reach
//! `budget_percent` of the retryable requests, and at least
//! `min_per_second` per second, so that retries never multiply an outage.

use crate::plan::Plan;
use crate::store::{Store, StoreError, counter};
use crate::window::retire_older;
use upshift_model::keys;

/// Length of a budget window.
pub(crate) const WINDOW_MS: u64 = 10_000;

/// Counts a retryable request of `route` in the current window.
pub(crate) fn count_request<S: Store + ?Sized>(
    store: &S,
    route: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    let window = now_ms / WINDOW_MS;
    if store.increment(&keys::retry_requests(route, window), 1)? == 1 {
        retire(store, route, window)?;
    }
    Ok(())
}

/// Called by whoever opened `window` of `route`: deletes the window before.
fn retire<S: Store + ?Sized>(store: &S, route: &str, window: u64) -> Result<(), StoreError> {
    retire_older(store, &keys::retry_last_window(route), window, |w| {
        vec![
            keys::retry_requests(route, w),
            keys::retry_retries(route, w),
        ]
    })
}

impl Plan {
    /// Whether one more attempt of a `route` request fits its retry budget;
    /// counts it if so. Without a readable store, no retry is allowed.
    pub fn allow_retry<S: Store + ?Sized>(&self, store: &S, route: &str, now_ms: u64) -> bool {
        let retries = self
            .routes
            .get(route)
            .map_or(&self.default_retries, |r| &r.retries);
        let window = now_ms / WINDOW_MS;
        let budget = |requests: u64| {
            let floor = u64::from(retries.min_per_second) * (WINDOW_MS / 1000);
            floor.max(requests.saturating_mul(u64::from(retries.budget_percent)) / 100)
        };
        let granted = || -> Result<bool, StoreError> {
            let requests = counter(store.get(&keys::retry_requests(route, window))?.as_deref());
            let key = keys::retry_retries(route, window);
            // Count first, then check, so that racing nodes never overshoot.
            let used = store.increment(&key, 1)?;
            if used == 1 {
                // A retry can open a window its requests were counted before.
                retire(store, route, window)?;
            }
            if used.unsigned_abs() <= budget(requests) {
                return Ok(true);
            }
            store.increment(&key, -1)?;
            Ok(false)
        };
        granted().unwrap_or(false)
    }
}
