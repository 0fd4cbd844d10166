//! Rate limits over a sliding window, approximated from two fixed windows
//! (as Kong and Cloudflare do): a request at `elapsed` ms into window `w`
//! sees `count(w-1) × (per − elapsed) / per + count(w)` requests, itself
//! included, and is served while that is at most the limit.
//!
//! Counts are in the key-value store, one counter per window (see
//! [`upshift_model::keys`]). Per limit and request: one read of the
//! previous window's counter (and of the one before, to clean it up;
//! batched over the request's limits) and one atomic increment of the
//! current window's, whose result is the current count. A refused request takes its increment back, so refused requests
//! do not count. Counters are only ever incremented, or deleted once out of
//! the sliding window: their encoding is the backend's (see
//! [`upshift_model::store`]). The arithmetic is in integers, so the
//! decision at window edges is exact.

use crate::store::{Store, StoreError, counter};
use upshift_model::{RateLimit, RateLimitBy, RequestHead, keys};

/// A compiled limit: `requests` per `per_ms`, counted by `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per window.
    pub requests: u64,
    /// Window length in milliseconds.
    pub per_ms: u64,
    /// What requests are counted by.
    pub by: RateLimitBy,
}

impl From<&RateLimit> for Limit {
    fn from(limit: &RateLimit) -> Self {
        Limit {
            requests: limit.requests,
            per_ms: limit.per.millis(),
            by: limit.by.clone(),
        }
    }
}

/// The outcome of one limit for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is served.
    pub allowed: bool,
    /// The limit (requests per window).
    pub limit: u64,
    /// Requests left in the sliding window after this one.
    pub remaining: u64,
    /// Seconds until the current window ends (served), or until a request
    /// would be served again (refused); at least 1.
    pub reset_s: u64,
    /// Window length in seconds.
    pub window_s: u64,
}

/// Decides one request under `requests` per `per_ms` at `now_ms`, given
/// the previous window's count and the current window's count including
/// this request.
pub fn decide(requests: u64, per_ms: u64, now_ms: u64, previous: u64, current: u64) -> Decision {
    let per = u128::from(per_ms.max(1));
    let elapsed = u128::from(now_ms) % per;
    let (requests_w, previous_w) = (u128::from(requests), u128::from(previous));
    // The sliding count, scaled by `per`.
    let seen = previous_w * (per - elapsed) + u128::from(current) * per;
    let allowed = seen <= requests_w * per;
    let used = seen.div_ceil(per);
    let remaining = u64::try_from(requests_w.saturating_sub(used)).unwrap_or(0);
    let wait_ms = if allowed {
        per - elapsed
    } else {
        retry_in(requests_w, per, elapsed, previous_w, u128::from(current))
    };
    Decision {
        allowed,
        limit: requests,
        remaining: if allowed { remaining } else { 0 },
        reset_s: u64::try_from(wait_ms.div_ceil(1000).max(1)).unwrap_or(u64::MAX),
        window_s: (per_ms / 1000).max(1),
    }
}

/// Milliseconds until one more request would be served, if no other is.
fn retry_in(requests: u128, per: u128, elapsed: u128, previous: u128, current: u128) -> u128 {
    // The refused request does not count.
    let counted = current.saturating_sub(1);
    if counted < requests {
        // This window has room; wait until enough of the previous one has slid out:
        // previous × (per − t) ≤ (requests − counted − 1) × per.
        let room = requests - counted - 1;
        let at = per - (room * per / previous.max(1)).min(per);
        at.saturating_sub(elapsed).max(1)
    } else {
        // Full on its own: in the next window this one is the previous one.
        let room = requests.saturating_sub(1);
        let at = per - (room * per / counted.max(1)).min(per);
        per - elapsed + at
    }
}

/// One limit that applies to a request, with the keys it counts in.
#[derive(Debug)]
pub struct Applied<'l> {
    /// The limit.
    pub limit: &'l Limit,
    /// The counter of the current window.
    pub current_key: String,
    /// The counter of the previous window.
    pub previous_key: String,
    /// The counter of the window before the previous one, out of the
    /// sliding window: the current window's first request deletes it.
    pub expired_key: String,
}

impl<'l> Applied<'l> {
    /// A route's `limit` for a request of `route` by `consumer`.
    pub fn route(
        limit: &'l Limit,
        route: &str,
        consumer: Option<&str>,
        head: &RequestHead<'_>,
        now_ms: u64,
    ) -> Self {
        let ip = || keys::rate_limit_subject("ip", Some(head.client_ip().unwrap_or("unknown")));
        let subject = match &limit.by {
            RateLimitBy::Consumer => {
                consumer.map_or_else(ip, |c| keys::rate_limit_subject("consumer", Some(c)))
            }
            RateLimitBy::Ip => ip(),
            RateLimitBy::Route => keys::rate_limit_subject("route", None),
            RateLimitBy::Header(name) => head
                .header(name)
                .map_or_else(ip, |v| keys::rate_limit_subject("header", Some(v))),
        };
        Applied::at(limit, now_ms, |window| {
            keys::route_rate_limit(route, &subject, window)
        })
    }

    /// A consumer's own `limit`.
    pub fn consumer(limit: &'l Limit, consumer: &str, now_ms: u64) -> Self {
        Applied::at(limit, now_ms, |window| {
            keys::consumer_rate_limit(consumer, window)
        })
    }

    /// `limit` at `now_ms`, counted in the keys `key` names per window.
    fn at(limit: &'l Limit, now_ms: u64, key: impl Fn(u64) -> String) -> Self {
        let window = now_ms / limit.per_ms.max(1);
        Applied {
            limit,
            current_key: key(window),
            // Wraps only in the first two windows of the epoch, onto keys
            // that are never written.
            previous_key: key(window.wrapping_sub(1)),
            expired_key: key(window.wrapping_sub(2)),
        }
    }
}

/// Counts a request under every limit in `applied` and decides it: `Ok`
/// with the decision to advertise (the one with the fewest requests left),
/// or `Err` with the refusing decision that frees up last. A refused
/// request takes its counts back. `Ok(None)` when no limit applies.
pub fn check<S: Store + ?Sized>(
    store: &S,
    applied: &[Applied<'_>],
    now_ms: u64,
) -> Result<Result<Option<Decision>, Decision>, StoreError> {
    if applied.is_empty() {
        return Ok(Ok(None));
    }
    let mut decisions = Vec::with_capacity(applied.len());
    for a in applied {
        let previous = store.get(&a.previous_key)?;
        let current = store.increment(&a.current_key, 1)?;
        // The window's first request removes the expired counter. Only if
        // it is there: while every request of a window is refused, each one
        // is the first again, and a delete is a durable write. Best effort:
        // a leftover counter takes room, never a decision.
        if current == 1 && matches!(store.get(&a.expired_key), Ok(Some(_))) {
            let _ = store.delete(&a.expired_key);
        }
        let (previous, current) = (counter(previous.as_deref()), current.max(0).unsigned_abs());
        decisions.push(decide(
            a.limit.requests,
            a.limit.per_ms,
            now_ms,
            previous,
            current,
        ));
    }
    if let Some(refusal) = decisions
        .iter()
        .filter(|d| !d.allowed)
        .max_by_key(|d| d.reset_s)
    {
        for a in applied {
            // Best effort: a lost take-back only makes the limit stricter.
            let _ = store.increment(&a.current_key, -1);
        }
        return Ok(Err(*refusal));
    }
    Ok(Ok(decisions.into_iter().min_by_key(|d| d.remaining)))
}

impl Decision {
    /// The response headers advertising this decision: the IETF
    /// `RateLimit-Limit`/`-Remaining`/`-Reset` fields, and `retry-after`
    /// when refused.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            ("ratelimit-limit".to_owned(), self.limit.to_string()),
            ("ratelimit-remaining".to_owned(), self.remaining.to_string()),
            ("ratelimit-reset".to_owned(), self.reset_s.to_string()),
        ];
        if !self.allowed {
            headers.push(("retry-after".to_owned(), self.reset_s.to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests;
