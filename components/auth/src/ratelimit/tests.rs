use super::*;
use crate::store::MemoryStore;
use upshift_model::store::{CounterEncoding, for_each_encoding};

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
fn counting_keeps_the_current_and_the_previous_window() {
    for_each_encoding(|store| {
        let limit = Limit {
            requests: 3,
            per_ms: 1000,
            by: RateLimitBy::Route,
        };
        let head = RequestHead::default();
        let served = |times: &[u64]| -> Vec<bool> {
            times
                .iter()
                .map(|&now| {
                    let applied = [Applied::route(&limit, "r", None, &head, now)];
                    check(&store, &applied, now).unwrap().is_ok()
                })
                .collect()
        };
        let keys = || store.keys("ratelimit/routes/r/route/");
        // Three in window 1, the fourth refused; window 2 sees 3 × 0.5 + 1,
        // 3 × 0.5 + 2 (and deletes nothing: window 0 never counted).
        assert_eq!(
            served(&[1_000, 1_100, 1_200, 1_300, 2_500, 2_500]),
            [true, true, true, false, true, false]
        );
        assert_eq!(
            keys(),
            ["ratelimit/routes/r/route/1", "ratelimit/routes/r/route/2"]
        );
        // Window 3 sees 1 × 0.8 + 1 and deletes window 1; window 4 deletes 2.
        assert_eq!(served(&[3_200, 4_000]), [true, true]);
        assert_eq!(
            keys(),
            ["ratelimit/routes/r/route/3", "ratelimit/routes/r/route/4"]
        );
        assert_eq!(
            counter(store.get("ratelimit/routes/r/route/4").unwrap().as_deref()),
            1
        );
        // After a pause, window 9 starts afresh and window 10 sees
        // 3 × 0.6 + 1. Windows 3 and 4 are out of reach of their deletes (of
        // 7 and 8): a pause leaves them behind.
        assert_eq!(served(&[9_000, 9_100, 9_200, 10_400]), [true; 4]);
        assert_eq!(keys().len(), 4);
    });
}

#[test]
fn concurrent_requests_at_a_windows_start_pass_exactly_the_limit() {
    for encoding in CounterEncoding::ALL {
        let limit = Limit {
            requests: 3,
            per_ms: 60_000,
            by: RateLimitBy::Route,
        };
        let head = RequestHead::default();
        for round in 0..50_u64 {
            let store = MemoryStore::with_encoding(encoding);
            let now = 60_000 * (round + 2);
            // An expired window that the first request deletes meanwhile.
            let expired = Applied::route(&limit, "r", None, &head, now).expired_key;
            store.fill_counter(&expired, 7);
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
            assert_eq!(served, 3, "{encoding:?} round {round}");
            assert_eq!(
                store.get(&expired).unwrap(),
                None,
                "{encoding:?} round {round}"
            );
        }
    }
}

#[test]
fn refused_requests_do_not_count() {
    for_each_encoding(|store| {
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
    });
}

#[test]
fn counters_left_in_the_store_are_read_in_either_encoding() {
    for_each_encoding(|store| {
        let limit = Limit {
            requests: 10,
            per_ms: 1000,
            by: RateLimitBy::Route,
        };
        let head = RequestHead::default();
        let at = Applied::route(&limit, "r", None, &head, 5_500);
        store.fill_counter(&at.expired_key, 2);
        store.fill_counter(&at.previous_key, 8);
        store.fill_counter(&at.current_key, 3);
        // 8 × 0.5 + 4, 5 and 6 pass; 7 is one too many.
        let remaining: Vec<Option<u64>> = (0..4)
            .map(|_| {
                let applied = [Applied::route(&limit, "r", None, &head, 5_500)];
                check(&store, &applied, 5_500)
                    .unwrap()
                    .ok()
                    .map(|d| d.unwrap().remaining)
            })
            .collect();
        assert_eq!(remaining, [Some(2), Some(1), Some(0), None]);
        let held = |key: &str| store.get(key).unwrap();
        let encode = |n| Some(store.encoding().encode(n));
        assert_eq!(held(&at.current_key), encode(6), "the refusal taken back");
        assert_eq!(held(&at.previous_key), encode(8));
        assert_eq!(
            held(&at.expired_key),
            encode(2),
            "not a window's first request"
        );
        // A consumer's own limit reads its counters alike.
        let own = Applied::consumer(&limit, "alice", 5_500);
        store.fill_counter(&own.current_key, 10);
        let refused = check(&store, &[own], 5_500).unwrap().unwrap_err();
        assert_eq!(refused.limit, 10);
        assert_eq!(held(&keys::consumer_rate_limit("alice", 5)), encode(10));
    });
}

#[test]
fn subjects_follow_by() {
    let line = upshift_model::HeadLine {
        client_ip: Some("203.0.113.9"),
        ..upshift_model::HeadLine::default()
    };
    let head = upshift_model::OwnedHead::new(&line, &[("x-tenant", "acme/eu")]).leak();
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
        "ratelimit/routes/orders/consumer:alice/2"
    );
    assert_eq!(
        key(RateLimitBy::Consumer, None),
        "ratelimit/routes/orders/ip:203.0.113.9/2"
    );
    assert_eq!(
        key(RateLimitBy::Ip, Some("alice")),
        "ratelimit/routes/orders/ip:203.0.113.9/2"
    );
    assert_eq!(
        key(RateLimitBy::Route, Some("alice")),
        "ratelimit/routes/orders/route/2"
    );
    assert_eq!(
        key(RateLimitBy::Header("x-tenant".into()), None),
        "ratelimit/routes/orders/header:acme%2Feu/2"
    );
    assert_eq!(
        key(RateLimitBy::Header("x-other".into()), None),
        "ratelimit/routes/orders/ip:203.0.113.9/2"
    );
    let limit = Limit {
        requests: 1,
        per_ms: 1000,
        by: RateLimitBy::Consumer,
    };
    let applied = Applied::consumer(&limit, "alice", 7_500);
    assert_eq!(applied.current_key, "ratelimit/consumers/alice/7");
    assert_eq!(applied.previous_key, "ratelimit/consumers/alice/6");
    assert_eq!(applied.expired_key, "ratelimit/consumers/alice/5");
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
