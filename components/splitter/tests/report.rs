//! What the splitter records of attempts: metric counters, ejections,
//! the retry budget.

mod support;

use support::*;
use upshift_model::keys;
use upshift_model::store::{counter, for_each_encoding};
use upshift_splitter::{MemoryStore, NamedAttempt, NamedUpstream, Outcome, Plan, Store};

const NOW: u64 = 1_800_000_000_000;

fn attempt(target: &str, outcome: Outcome, latency_ms: u32) -> NamedAttempt<'_> {
    let version = if target.starts_with("http://v1") {
        "v1"
    } else {
        "v2"
    };
    NamedAttempt {
        upstream: NamedUpstream { version, target },
        outcome,
        latency_ms,
    }
}

/// Reports `attempt` of an `orders` request at `now`, adding its counts.
fn record(p: &Plan, store: &MemoryStore, attempt: &NamedAttempt<'_>, now: u64) {
    add(store, p.report(store, "orders", "orders", attempt, now));
}

/// Reports the `shadow` copy of `primary` at `now`, adding its counts.
fn record_shadow(
    p: &Plan,
    store: &MemoryStore,
    shadow: &NamedAttempt<'_>,
    primary: &NamedAttempt<'_>,
    now: u64,
) {
    add(
        store,
        p.report_shadow(store, "orders", "orders", shadow, primary, now),
    );
}

#[test]
fn attempts_are_counted_per_route_and_version() {
    for_each_encoding(|store| {
        let p = plan(&orders("  - { name: orders, service: orders }\n"));
        for (outcome, latency) in [
            (Outcome::Status(200), 4),
            (Outcome::Status(201), 40),
            (Outcome::Status(404), 7),
            (Outcome::Status(503), 300),
            (Outcome::Failed, 1),
            (Outcome::TimedOut, 30_000),
        ] {
            record(&p, &store, &attempt("http://v1-a", outcome, latency), NOW);
        }
        let stats = metrics(&store, "orders", "orders", "v1");
        assert_eq!(stats.requests, 6);
        assert_eq!(stats.by_class, [0, 2, 0, 1, 1]);
        assert_eq!((stats.failures, stats.timeouts), (1, 1));
        assert_eq!(stats.errors(), 3);
        assert_eq!(stats.latency_ms_sum, 30_352);
        assert_eq!(stats.latency_buckets.iter().sum::<u64>(), 6);
        assert_eq!(stats.latency_buckets[0], 2);
        assert_eq!(stats.latency_buckets[11], 1);
        assert_eq!(stats.quantile_ms(0.5), Some(10));
        assert_eq!(metrics(&store, "orders", "orders", "v2").requests, 0);
    });
}

#[test]
fn shadow_copies_count_mismatches_and_failures() {
    for_each_encoding(|store| {
        let p = plan(&orders("  - { name: orders, service: orders }\n"));
        let primary = attempt("http://v1-a", Outcome::Status(200), 5);
        for shadow in [
            Outcome::Status(204),
            Outcome::Status(500),
            Outcome::Failed,
            Outcome::TimedOut,
        ] {
            record_shadow(
                &p,
                &store,
                &attempt("http://v2-a", shadow, 9),
                &primary,
                NOW,
            );
        }
        let failed = attempt("http://v1-a", Outcome::Failed, 5);
        record_shadow(
            &p,
            &store,
            &attempt("http://v2-a", Outcome::TimedOut, 9),
            &failed,
            NOW,
        );
        let stats = metrics(&store, "orders", "orders", "v2");
        assert_eq!(
            (
                stats.shadow_requests,
                stats.shadow_mismatches,
                stats.shadow_failures,
                stats.requests
            ),
            (5, 3, 3, 0)
        );
        assert_eq!(stats.shadow_mismatch_rate(), Some(0.6));
    });
}

#[test]
fn failing_targets_are_ejected_for_a_while() {
    for_each_encoding(|store| {
        let doc = orders("  - { name: orders, service: orders, version: v1 }\n")
            .replace("  - name: orders\n    versions:", "  - name: orders\n    outlier_detection: { failures: 3, window_ms: 1000, ejection_ms: 5000 }\n    versions:");
        let p = plan(&doc);
        let bad = attempt("http://v1-a", Outcome::Status(502), 5);
        record(&p, &store, &bad, NOW);
        record(
            &p,
            &store,
            &attempt("http://v1-a", Outcome::Status(404), 5),
            NOW,
        );
        record(
            &p,
            &store,
            &attempt("http://v1-a", Outcome::TimedOut, 5),
            NOW + 10,
        );
        assert_eq!(
            store.get(&keys::health("orders")).unwrap(),
            None,
            "two errors so far"
        );
        // The window rolls over: its count starts again, the old one is deleted.
        record(
            &p,
            &store,
            &attempt("http://v1-a", Outcome::Failed, 5),
            NOW + 1_000,
        );
        record(&p, &store, &bad, NOW + 1_001);
        assert_eq!(store.get(&keys::health("orders")).unwrap(), None);
        assert_eq!(
            store.keys("outliers/").len(),
            2,
            "one window and its pointer"
        );
        record(&p, &store, &bad, NOW + 1_002);
        let health = store.get(&keys::health("orders")).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(health).unwrap(),
            format!("{{\"http://v1-a\":{}}}", NOW + 6_002)
        );

        let choose = |now| {
            p.choose(&store, "orders", "orders", &head(now), None, now)
                .unwrap()
                .primary
                .target
                .to_owned()
        };
        assert!((0..50).all(|i| choose(NOW + 1_003 + i) == "http://v1-b"));
        // Back after the ejection, counting afresh.
        assert!((0..50).any(|i| choose(NOW + 6_002 + i) == "http://v1-a"));
        record(&p, &store, &bad, NOW + 6_100);
        let health =
            String::from_utf8(store.get(&keys::health("orders")).unwrap().unwrap()).unwrap();
        assert!(
            health.contains(&(NOW + 6_002).to_string()),
            "not ejected again after one error: {health}"
        );
    });
}

#[test]
fn outlier_detection_can_be_turned_off() {
    for_each_encoding(|store| {
        let doc = ORDERS.replace(
            "  - name: orders\n    versions:",
            "  - name: orders\n    outlier_detection: { failures: 0 }\n    versions:",
        );
        let p = plan(&doc);
        for i in 0..20 {
            add(
                &store,
                p.report(
                    &store,
                    "r",
                    "orders",
                    &attempt("http://v1-a", Outcome::Failed, 1),
                    NOW + i,
                ),
            );
        }
        assert!(store.keys("health/").is_empty() && store.keys("outliers/").is_empty());
    });
}

#[test]
fn the_retry_budget_has_a_floor_per_second_and_a_share_of_requests() {
    for_each_encoding(|store| {
        let p = plan(&orders(
            "  - { name: orders, service: orders, retries: { attempts: 2, budget_percent: 10, min_per_second: 2 } }\n",
        ));
        // No requests counted: the floor, 2 per second over 10 s.
        let granted = (0..30)
            .filter(|_| p.allow_retry(&store, "orders", NOW))
            .count();
        assert_eq!(granted, 20);
        // Each choose of a retryable request counts it; 10% of 500 is 50.
        for i in 0..500 {
            p.choose(&store, "orders", "orders", &head(i), None, NOW)
                .unwrap();
        }
        let granted = (0..100)
            .filter(|_| p.allow_retry(&store, "orders", NOW))
            .count();
        assert_eq!(granted, 30, "50 in all, 20 already used");
        // POSTs are not retryable and are not counted.
        let post = with_method(head(0), "POST");
        p.choose(&store, "orders", "orders", &post, None, NOW)
            .unwrap();
        let window = NOW / 10_000;
        let requests = store.get(&keys::retry_requests("orders", window)).unwrap();
        assert_eq!(counter(requests.as_deref()), 500);

        // The next window starts afresh and removes the old one.
        let later = NOW + 10_000;
        p.choose(&store, "orders", "orders", &head(1), None, later)
            .unwrap();
        assert!(p.allow_retry(&store, "orders", later));
        assert_eq!(
            store.get(&keys::retry_requests("orders", window)).unwrap(),
            None
        );
        assert_eq!(
            store.get(&keys::retry_retries("orders", window)).unwrap(),
            None
        );
        assert_eq!(
            store.keys("retry/").len(),
            3,
            "requests, retries and the pointer"
        );

        // A retry that opens a window (its request was counted in the one
        // before) leaves nothing behind either.
        assert!(p.allow_retry(&store, "orders", later + 10_000));
        p.choose(&store, "orders", "orders", &head(2), None, later + 20_000)
            .unwrap();
        assert_eq!(
            store.keys("retry/"),
            [
                keys::retry_requests("orders", window + 3),
                keys::retry_last_window("orders"),
            ]
        );
    });
}

#[test]
fn counters_left_in_the_store_are_read_and_added_to_in_either_encoding() {
    for_each_encoding(|store| {
        let doc = orders(
            "  - { name: orders, service: orders, version: v1, retries: { attempts: 2, budget_percent: 10, min_per_second: 0 } }\n",
        )
        .replace(
            "  - name: orders\n    versions:",
            "  - name: orders\n    outlier_detection: { failures: 3, window_ms: 1000, ejection_ms: 5000 }\n    versions:",
        );
        let p = plan(&doc);
        let metric = |field| keys::metric("orders", "orders", "v1", field);
        store.fill_counter(&metric("requests"), 100);
        store.fill_counter(&metric("status_5xx"), 10);
        store.fill_counter(&metric("latency_ms_sum"), 50_000);
        let window = NOW / 10_000;
        store.fill_counter(&keys::retry_requests("orders", window), 1_000);
        store.fill_counter(&keys::retry_retries("orders", window), 99);
        let errors = keys::outlier_window("orders", "http://v1-a", NOW / 1_000);
        store.fill_counter(&errors, 2);

        record(
            &p,
            &store,
            &attempt("http://v1-a", Outcome::Status(502), 7),
            NOW,
        );
        let stats = metrics(&store, "orders", "orders", "v1");
        assert_eq!(
            (stats.requests, stats.by_class[4], stats.latency_ms_sum),
            (101, 11, 50_007)
        );
        assert_eq!(
            store.get(&metric("requests")).unwrap(),
            Some(store.encoding().encode(101))
        );
        // The third error of the window ejects the target (and drops the window).
        assert!(store.get(&keys::health("orders")).unwrap().is_some());
        assert_eq!(store.get(&errors).unwrap(), None);
        // 10% of 1000 requests: one retry left of 100.
        assert!(p.allow_retry(&store, "orders", NOW));
        assert!(!p.allow_retry(&store, "orders", NOW));
        assert_eq!(
            store.get(&keys::retry_retries("orders", window)).unwrap(),
            Some(store.encoding().encode(100))
        );
    });
}
