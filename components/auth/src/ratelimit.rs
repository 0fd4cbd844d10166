//! Rate limits over a sliding window, approximated from two fixed windows
//! (as Kong and Cloudflare do): a request at `elapsed` ms into window `w`
//! sees `count(w-1) × (per − elapsed) / per + count(w)` requests, itself
//! included, and is served while that is at most the limit.
//!
//! Counts are in the key-value store (see [`upshift_config::keys`]): one
//! read of both windows' counters and one atomic increment of the current
//! window's per limit and request. A refused request takes its
//! increment back, so refused requests do not count. The arithmetic is in
//! integers, so the decision at window edges is exact.

use crate::store::{Store, StoreError};
use upshift_config::{RateLimit, RateLimitBy, RequestHead, keys};

/// Bits of a counter holding the window tag, above the count.
const TAG_BITS: u32 = 30;
/// Bits of a counter holding the count.
const COUNT_BITS: u32 = 32;
/// Counts at or above this are read as garbage (a decrement that raced a
/// reset borrowed from the tag), i.e. as a stale counter.
const MAX_COUNT: u64 = 1 << 31;

/// How many times a stale counter's reset is tried before giving up.
const RESET_ATTEMPTS: usize = 4;

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

/// The value a counter holds for `count` requests in `window`.
fn encode(window: u64, count: u64) -> i64 {
    let tag = window % (1 << TAG_BITS);
    i64::try_from(tag << COUNT_BITS | count).unwrap_or(i64::MAX)
}

/// The count a counter value holds for `window`; `None` when it was left
/// by another window (or is garbage).
fn decode(value: i64, window: u64) -> Option<u64> {
    let value = u64::try_from(value).ok()?;
    let count = value & ((1 << COUNT_BITS) - 1);
    (value >> COUNT_BITS == window % (1 << TAG_BITS) && count < MAX_COUNT).then_some(count)
}

/// The count of `window` in a stored counter; `None` when absent or stale.
fn window_count(bytes: Option<&[u8]>, window: u64) -> Option<u64> {
    bytes
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|v| decode(v, window))
}

/// The count of `window` in a stored counter (0 when absent or stale).
fn stored_count(bytes: Option<&[u8]>, window: u64) -> u64 {
    window_count(bytes, window).unwrap_or(0)
}

/// Counts one request in `window` at `key`, which held `held` when read,
/// and returns the window's count. A counter left by an older window is
/// first reset to zero by compare-and-swap (one of the requests that find
/// it stale wins; the others read it again), so no request's count is lost
/// to a reset. A counter that a request of a later window reset meanwhile
/// is an error: this request is a window late.
fn count_one<S: Store + ?Sized>(
    store: &S,
    key: &str,
    window: u64,
    held: Option<Vec<u8>>,
) -> Result<u64, StoreError> {
    let mut held = held;
    for _ in 0..RESET_ATTEMPTS {
        if window_count(held.as_deref(), window).is_none() {
            let zero = encode(window, 0).to_string();
            if !store.compare_and_swap(key, held.as_deref(), zero.as_bytes())? {
                held = store.get_many(&[key.to_owned()])?.pop().flatten();
                continue;
            }
        }
        let value = store.increment(key, 1)?;
        return decode(value, window)
            .ok_or_else(|| StoreError(format!("{key}: reset by a later window")));
    }
    Err(StoreError(format!("{key}: could not reset the counter")))
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
    /// The current window's number.
    pub window: u64,
}

impl<'l> Applied<'l> {
    /// A route's `limit` for a request of `route` by `consumer`.
    pub fn route(
        limit: &'l Limit,
        route: &str,
        consumer: Option<&str>,
        head: &RequestHead,
        now_ms: u64,
    ) -> Self {
        let ip =
            || keys::rate_limit_subject("ip", Some(head.client_ip.as_deref().unwrap_or("unknown")));
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
        let window = now_ms / limit.per_ms.max(1);
        Applied {
            limit,
            current_key: keys::route_rate_limit(route, &subject, window),
            previous_key: keys::route_rate_limit(route, &subject, window.wrapping_sub(1)),
            window,
        }
    }

    /// A consumer's own `limit`.
    pub fn consumer(limit: &'l Limit, consumer: &str, now_ms: u64) -> Self {
        let window = now_ms / limit.per_ms.max(1);
        Applied {
            limit,
            current_key: keys::consumer_rate_limit(consumer, window),
            previous_key: keys::consumer_rate_limit(consumer, window.wrapping_sub(1)),
            window,
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
    // One read for both windows of every limit.
    let keys: Vec<String> = applied
        .iter()
        .flat_map(|a| [a.current_key.clone(), a.previous_key.clone()])
        .collect();
    let mut held = store.get_many(&keys)?.into_iter();
    let mut decisions = Vec::with_capacity(applied.len());
    for a in applied {
        let (current, previous) = (held.next().flatten(), held.next().flatten());
        let current = count_one(store, &a.current_key, a.window, current)?;
        let previous = stored_count(previous.as_deref(), a.window.wrapping_sub(1));
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
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn the_current_window_alone_counts_when_the_previous_was_empty() {
        for n in 1..=20 {
            let d = decide(20, 1000, 5_000, 0, n);
            assert!(d.allowed, "{n}");
            assert_eq!(d.remaining, 20 - n);
            assert_eq!(d.reset_s, 1);
        }
        let d = decide(20, 1000, 5_000, 0, 21);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn the_previous_window_weighs_by_its_overlap() {
        // 100 requests last minute; 15 s into this one, 75 of them still count.
        let (per, start) = (60_000, 60_000 * 100);
        let at = start + 15_000;
        assert!(decide(100, per, at, 100, 25).allowed);
        assert_eq!(decide(100, per, at, 100, 25).remaining, 0);
        assert!(!decide(100, per, at, 100, 26).allowed);
        // At the window's first millisecond the previous one counts whole.
        assert!(!decide(100, per, start, 100, 1).allowed);
        // At its last millisecond it counts 1/60000 of 100: rounds up to 1 used.
        let d = decide(100, per, start + per - 1, 100, 99);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(!decide(100, per, start + per - 1, 100, 100).allowed);
        // The edge is exact: 10 previous at half the window weigh 5.
        assert!(decide(10, 1000, 1_500, 10, 5).allowed);
        assert!(!decide(10, 1000, 1_500, 10, 6).allowed);
        assert!(!decide(10, 1000, 1_499, 10, 5).allowed);
    }

    #[test]
    fn retry_after_points_at_the_first_time_a_request_passes() {
        // Full on its own (20 served in this window, 21st refused): next
        // window at 50 ms, where 20 × 0.95 + 1 = 20.
        let d = decide(20, 1000, 10_200, 0, 21);
        assert!(!d.allowed);
        assert_eq!(d.reset_s, 1);
        assert!(decide(20, 1000, 11_050, 20, 1).allowed);
        assert!(!decide(20, 1000, 11_049, 20, 1).allowed);
        // Room in this window, the previous one in the way: 100 previous,
        // 50 now at 10 s of a minute → at t with 100 × (60 − t)/60 + 51 ≤ 100,
        // t ≥ 30.6 s, so 20.6 s from now → 21 s.
        let d = decide(100, 60_000, 600_000 + 10_000, 100, 51);
        assert!(!d.allowed);
        assert_eq!(d.reset_s, 21);
        assert!(decide(100, 60_000, 600_000 + 30_600, 100, 51).allowed);
        assert!(!decide(100, 60_000, 600_000 + 30_599, 100, 51).allowed);
        // One a day, used a second into the day: it counts whole until the
        // next day's end, as the approximation spreads it over its window.
        let d = decide(1, 86_400_000, 86_400_000 * 3 + 1_000, 0, 2);
        assert_eq!(d.reset_s, 2 * 86_400 - 1);
    }

    #[test]
    fn counters_carry_their_window_and_stale_ones_read_as_empty() {
        assert_eq!(decode(encode(7, 3), 7), Some(3));
        assert_eq!(decode(encode(5, 3), 7), None);
        assert_eq!(decode(encode(7, 0) - 1, 6), None, "a borrow is garbage");
        assert_eq!(decode(-1, 7), None);
        let w = 1_763_000_000_123;
        assert_eq!(decode(encode(w, 42), w), Some(42));
        assert_eq!(decode(encode(w, 42), w + (1 << TAG_BITS)), Some(42));
        assert_eq!(stored_count(Some(b"nonsense"), 1), 0);
    }

    #[test]
    fn counting_resets_stale_slots_and_keeps_two_keys() {
        let store = MemoryStore::new();
        let limit = Limit {
            requests: 3,
            per_ms: 1000,
            by: RateLimitBy::Route,
        };
        let head = RequestHead::default();
        let mut served = Vec::new();
        for now in [1_000, 1_100, 1_200, 1_300, 3_500, 3_600, 4_200, 9_000] {
            let applied = [Applied::route(&limit, "r", None, &head, now)];
            served.push(check(&store, &applied, now).unwrap().is_ok());
        }
        // Three in window 1, the fourth refused; window 3 starts afresh
        // (window 1's slot is stale for it), window 4 sees 2 × 0.8 + 1, and
        // window 9 starts afresh again.
        assert_eq!(served, [true, true, true, false, true, true, true, true]);
        assert_eq!(
            store.keys("ratelimit/"),
            ["ratelimit/routes/r/route/0", "ratelimit/routes/r/route/1"]
        );
        let value = store
            .get_many(&["ratelimit/routes/r/route/1".into()])
            .unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(stored_count(Some(&value), 9), 1);
    }

    #[test]
    fn concurrent_requests_on_a_stale_slot_pass_exactly_the_limit() {
        let limit = Limit {
            requests: 3,
            per_ms: 60_000,
            by: RateLimitBy::Route,
        };
        let head = RequestHead::default();
        for round in 0..50_u64 {
            let store = MemoryStore::new();
            // The slot holds an old window's count.
            let stale = encode(round, 7).to_string();
            let key = Applied::route(&limit, "r", None, &head, 0).current_key;
            assert!(
                store
                    .compare_and_swap(&key, None, stale.as_bytes())
                    .unwrap()
            );
            let now = 60_000 * (round + 2);
            let barrier = std::sync::Barrier::new(8);
            let served = std::thread::scope(|scope| {
                let runs: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            let applied = [Applied::route(&limit, "r", None, &head, now)];
                            check(&store, &applied, now).unwrap().is_ok()
                        })
                    })
                    .collect();
                runs.into_iter()
                    .map(|r| r.join().unwrap())
                    .filter(|&ok| ok)
                    .count()
            });
            assert_eq!(served, 3, "round {round}");
        }
    }

    #[test]
    fn refused_requests_do_not_count() {
        let store = MemoryStore::new();
        let limit = Limit {
            requests: 2,
            per_ms: 1000,
            by: RateLimitBy::Route,
        };
        let head = RequestHead::default();
        let at = |now| [Applied::route(&limit, "r", None, &head, now)];
        for _ in 0..2 {
            assert!(check(&store, &at(5_000), 5_000).unwrap().is_ok());
        }
        for _ in 0..10 {
            assert!(check(&store, &at(5_000), 5_000).unwrap().is_err());
        }
        // Next window at 500 ms: 2 × 0.5 + 1 = 2 fits.
        assert!(check(&store, &at(6_500), 6_500).unwrap().is_ok());
    }

    #[test]
    fn subjects_follow_by() {
        let head = RequestHead {
            headers: vec![("x-tenant".into(), "acme/eu".into())],
            client_ip: Some("203.0.113.9".into()),
            ..RequestHead::default()
        };
        let key = |by: RateLimitBy, consumer: Option<&str>| {
            let limit = Limit {
                requests: 1,
                per_ms: 60_000,
                by,
            };
            Applied::route(&limit, "orders", consumer, &head, 120_000).current_key
        };
        assert_eq!(
            key(RateLimitBy::Consumer, Some("alice")),
            "ratelimit/routes/orders/consumer:alice/0"
        );
        assert_eq!(
            key(RateLimitBy::Consumer, None),
            "ratelimit/routes/orders/ip:203.0.113.9/0"
        );
        assert_eq!(
            key(RateLimitBy::Ip, Some("alice")),
            "ratelimit/routes/orders/ip:203.0.113.9/0"
        );
        assert_eq!(
            key(RateLimitBy::Route, Some("alice")),
            "ratelimit/routes/orders/route/0"
        );
        assert_eq!(
            key(RateLimitBy::Header("x-tenant".into()), None),
            "ratelimit/routes/orders/header:acme%2Feu/0"
        );
        assert_eq!(
            key(RateLimitBy::Header("x-other".into()), None),
            "ratelimit/routes/orders/ip:203.0.113.9/0"
        );
        let limit = Limit {
            requests: 1,
            per_ms: 1000,
            by: RateLimitBy::Consumer,
        };
        let applied = Applied::consumer(&limit, "alice", 7_500);
        assert_eq!(applied.current_key, "ratelimit/consumers/alice/1");
        assert_eq!(applied.previous_key, "ratelimit/consumers/alice/0");
    }

    #[test]
    fn headers_name_limit_remaining_and_reset() {
        let d = decide(20, 1000, 10_250, 0, 5);
        assert_eq!(
            d.headers(),
            [
                ("ratelimit-limit".to_owned(), "20".to_owned()),
                ("ratelimit-remaining".to_owned(), "15".to_owned()),
                ("ratelimit-reset".to_owned(), "1".to_owned()),
            ]
        );
        // 20 at the start of a minute: the next minute's 3rd second lets one more in.
        let refused = decide(20, 60_000, 0, 0, 21).headers();
        assert!(
            refused.contains(&("retry-after".to_owned(), "63".to_owned())),
            "{refused:?}"
        );
    }
}
