//! How a version's targets share its traffic, by balancer policy.

mod support;

use std::collections::HashMap;
use support::*;
use upshift_model::store::for_each_encoding;
use upshift_splitter::{
    ConsumerIdentity, MemoryStore, NamedAttempt, NamedUpstream, Outcome, Plan, Store,
};

const NOW: u64 = 1_800_000_000_000;

fn service(policy: &str) -> Plan {
    plan(&format!(
        "services: [{{name: s, balancer: {policy}, versions: [{{name: v1, targets: [\
           {{url: 'http://a', weight: 3}}, {{url: 'http://b'}}, {{url: 'http://c', weight: 0}}]}}]}}]"
    ))
}

fn target(p: &Plan, store: &MemoryStore, i: usize, consumer: Option<&ConsumerIdentity>) -> String {
    p.choose(store, "r", "s", &head(i), consumer, NOW)
        .unwrap()
        .primary
        .target
        .to_owned()
}

#[test]
fn weighted_follows_the_target_weights() {
    let store = MemoryStore::new();
    let p = service("{policy: weighted}");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..10_000 {
        *counts.entry(target(&p, &store, i, None)).or_default() += 1;
    }
    let a = counts["http://a"] as f64 / 10_000.0;
    assert!((0.73..=0.77).contains(&a), "{a}");
    assert!(!counts.contains_key("http://c"), "weight 0 takes nothing");
    assert!(store.keys("").is_empty(), "weighted keeps no state");
}

#[test]
fn round_robin_takes_turns_in_proportion() {
    for_each_encoding(|store| {
        let p = service("{policy: round_robin}");
        let turns: Vec<String> = (0..8).map(|i| target(&p, &store, i, None)).collect();
        assert_eq!(
            turns,
            ["http://a", "http://a", "http://a", "http://b"].repeat(2)
        );
        // Another instance over the same store continues the same sequence.
        let other = service("{policy: round_robin}");
        assert_eq!(target(&other, &store, 99, None), "http://a");
        assert_eq!(store.keys("balancer/"), ["balancer/s/v1/next"]);
    });
}

#[test]
fn least_outstanding_prefers_the_least_loaded_and_counts_down_on_report() {
    for_each_encoding(|store| {
        let p = plan(
            "services: [{name: s, balancer: {policy: least_outstanding}, versions: [{name: v1, targets: [\
               {url: 'http://a'}, {url: 'http://b'}]}]}]",
        );
        let first = target(&p, &store, 1, None);
        let second = target(&p, &store, 2, None);
        assert_ne!(first, second, "the idle target goes next");
        let third = target(&p, &store, 3, None);
        let report = |url: &str| {
            let attempt = NamedAttempt {
                upstream: NamedUpstream {
                    version: "v1",
                    target: url,
                },
                outcome: Outcome::Status(200),
                latency_ms: 3,
            };
            add(&store, p.report(&store, "r", "s", &attempt, NOW));
        };
        let chosen = p.choose(&store, "r", "s", &head(0), None, NOW).unwrap();
        assert!(chosen.report_all, "the gauge counts down on every report");
        report(chosen.primary.target);
        // `third` has two in flight now; finishing both leaves the other busier.
        report(&third);
        report(&third);
        let other = if third == "http://a" {
            "http://b"
        } else {
            "http://a"
        };
        assert_eq!(target(&p, &store, 4, None), third);
        // A report for a target never counted up does not go below zero.
        report(other);
        report(other);
        let gauge = store
            .get(&upshift_model::keys::outstanding("s", other))
            .unwrap();
        assert_eq!(gauge, Some(store.encoding().encode(0)));
    });
}

#[test]
fn consistent_hash_keeps_a_key_on_its_target_and_moves_only_an_ejected_targets_keys() {
    let store = MemoryStore::new();
    let doc = "services: [{name: s, balancer: {policy: consistent_hash, hash_on: consumer}, \
               versions: [{name: v1, targets: [{url: 'http://a'}, {url: 'http://b'}, {url: 'http://c'}, {url: 'http://d'}]}]}]";
    let p = plan(doc);
    let users: Vec<ConsumerIdentity> = (0..2_000)
        .map(|u| ConsumerIdentity {
            id: format!("u{u}"),
            ..ConsumerIdentity::default()
        })
        .collect();
    let before: Vec<String> = users
        .iter()
        .enumerate()
        .map(|(i, c)| target(&p, &store, i, Some(c)))
        .collect();
    for (c, t) in users.iter().zip(&before).take(200) {
        assert_eq!(target(&p, &store, 7, Some(c)), *t, "same key, same target");
    }
    let on_b = before.iter().filter(|t| *t == "http://b").count() as f64 / 2_000.0;
    assert!((0.21..=0.29).contains(&on_b), "{on_b}");

    eject(&store, "s", &["http://b"], NOW + 1_000);
    for (i, (c, t)) in users.iter().zip(&before).enumerate() {
        let now = target(&p, &store, i, Some(c));
        if t == "http://b" {
            assert_ne!(now, "http://b");
        } else {
            assert_eq!(now, *t, "only the ejected target's keys move");
        }
    }
    // Without the key, the request id spreads the requests.
    let spread: std::collections::HashSet<String> =
        (0..100).map(|i| target(&p, &store, i, None)).collect();
    assert!(spread.len() > 1);
}

#[test]
fn balancers_go_on_from_counters_left_in_the_store_in_either_encoding() {
    for_each_encoding(|store| {
        // Round robin at position 3 of a, a, a, b: b, then a again.
        store.fill_counter(&upshift_model::keys::round_robin("s", "v1"), 3);
        let p = service("{policy: round_robin}");
        let turns: Vec<String> = (0..5).map(|i| target(&p, &store, i, None)).collect();
        assert_eq!(
            turns,
            ["http://b", "http://a", "http://a", "http://a", "http://b"]
        );
        assert_eq!(
            store
                .get(&upshift_model::keys::round_robin("s", "v1"))
                .unwrap(),
            Some(store.encoding().encode(8))
        );

        // Least outstanding: b has 4 fewer in flight than a.
        let outstanding = |url| upshift_model::keys::outstanding("s", url);
        store.fill_counter(&outstanding("http://a"), 5);
        store.fill_counter(&outstanding("http://b"), 1);
        let p = plan(
            "services: [{name: s, balancer: {policy: least_outstanding}, versions: [{name: v1, targets: [\
               {url: 'http://a'}, {url: 'http://b'}]}]}]",
        );
        let picks: Vec<String> = (0..4).map(|i| target(&p, &store, i, None)).collect();
        assert_eq!(picks, ["http://b"; 4]);
        let attempt = NamedAttempt {
            upstream: NamedUpstream {
                version: "v1",
                target: "http://a",
            },
            outcome: Outcome::Status(200),
            latency_ms: 3,
        };
        add(&store, p.report(&store, "r", "s", &attempt, NOW));
        let held = |url| store.get(&outstanding(url)).unwrap();
        assert_eq!(held("http://a"), Some(store.encoding().encode(4)));
        assert_eq!(held("http://b"), Some(store.encoding().encode(5)));
    });
}
