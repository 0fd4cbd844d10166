//! The two readings of time the lanes share: the wall clock the policy
//! components decide with, and how long something has taken.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds, the clock the policy components decide with.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since `started`, saturating: an attempt's latency.
pub fn millis_since(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)
}
