//! Which version and target a request gets, and where its retries and
//! shadow copy go.

mod support;

use std::collections::HashMap;
use support::*;
use upshift_model::keys;
use upshift_splitter::{ChooseError, ConsumerIdentity, MemoryStore, Plan, Reason, Store};

const NOW: u64 = 1_800_000_000_000;

fn share(plan: &Plan, store: &MemoryStore, n: usize, version: &str) -> f64 {
    let hits = (0..n)
        .filter(|i| {
            let s = plan
                .choose(store, "orders", "orders", &head(i), None, NOW)
                .unwrap();
            s.primary.version == version
        })
        .count();
    hits as f64 / n as f64
}

#[test]
fn weights_converge_within_two_percent() {
    let store = MemoryStore::new();
    let p = plan(&orders("  - { name: orders, service: orders }\n"));
    let v2 = share(&p, &store, 10_000, "v2");
    assert!((0.08..=0.12).contains(&v2), "v2 share {v2}");
    let s = p
        .choose(&store, "orders", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!(s.reason, Reason::Weight);
    assert!(
        !s.report_all,
        "without a rollout only failed attempts need reporting"
    );

    let three = plan(
        "services: [{name: s, versions: [\
           {name: a, weight: 50, targets: [{url: 'http://a'}]},\
           {name: b, weight: 30, targets: [{url: 'http://b'}]},\
           {name: c, weight: 20, targets: [{url: 'http://c'}]}]}]",
    );
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for i in 0..10_000 {
        let s = three
            .choose(&store, "any", "s", &head(i), None, NOW)
            .unwrap();
        *counts.entry(s.primary.version).or_default() += 1;
    }
    for (version, want) in [("a", 0.5), ("b", 0.3), ("c", 0.2)] {
        let got = counts[version] as f64 / 10_000.0;
        assert!((got - want).abs() <= 0.02, "{version}: {got}");
    }
}

#[test]
fn a_single_weighted_version_takes_all() {
    let store = MemoryStore::new();
    let unweighted = plan(
        "services: [{name: s, versions: [\
           {name: v1, targets: [{url: 'http://a'}]}, {name: v2, targets: [{url: 'http://b'}]}]}]",
    );
    for i in 0..200 {
        let s = unweighted
            .choose(&store, "r", "s", &head(i), None, NOW)
            .unwrap();
        assert_eq!(
            (s.primary.target, s.reason),
            ("http://a", Reason::OnlyVersion)
        );
    }
    let zero = plan(
        "services: [{name: s, versions: [\
           {name: v1, weight: 0, targets: [{url: 'http://a'}]}, {name: v2, weight: 5, targets: [{url: 'http://b'}]}]}]",
    );
    assert!((0..200).all(|i| {
        zero.choose(&store, "r", "s", &head(i), None, NOW)
            .unwrap()
            .primary
            .version
            == "v2"
    }));
}

#[test]
fn unknown_services_and_unreadable_state_are_refused() {
    let store = MemoryStore::new();
    let p = plan(ORDERS);
    let err = p
        .choose(&store, "r", "nope", &head(1), None, NOW)
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (500, "unknown_service"));

    let down = MemoryStore::broken();
    let err = p
        .choose(&down, "r", "orders", &head(1), None, NOW)
        .unwrap_err();
    assert!(matches!(err, ChooseError::Store(_)));
    assert_eq!((err.status(), err.code()), (503, "state_store_unavailable"));
    // Reporting and retry checks never fail a request.
    assert!(!p.allow_retry(&down, "r", NOW));
}

fn sticky_version(p: &Plan, store: &MemoryStore, user: usize, request: usize) -> String {
    let h = with_header(
        head(format!("{user}-{request}")),
        "x-user",
        &format!("user-{user}"),
    );
    let s = p.choose(store, "orders", "orders", &h, None, NOW).unwrap();
    assert_eq!(s.reason, Reason::Sticky);
    s.primary.version.to_owned()
}

#[test]
fn sticky_users_keep_their_version_and_only_the_needed_share_moves() {
    let store = MemoryStore::new();
    let route =
        "  - { name: orders, service: orders, split: { sticky: { on: 'header:x-user' } } }\n";
    let before = plan(&orders(route));
    let users = 2_000;
    let first: Vec<String> = (0..users)
        .map(|u| sticky_version(&before, &store, u, 0))
        .collect();
    for (u, version) in first.iter().enumerate() {
        for r in 1..4 {
            assert_eq!(
                sticky_version(&before, &store, u, r),
                *version,
                "user {u} flipped"
            );
        }
    }
    let on_v2 = first.iter().filter(|v| *v == "v2").count() as f64 / users as f64;
    assert!((0.08..=0.12).contains(&on_v2), "{on_v2}");

    // 90/10 → 75/25: v2 users stay, about 15% of all users move to v2, none back.
    let after = plan(
        &orders(route)
            .replace("weight: 90", "weight: 75")
            .replace("weight: 10", "weight: 25"),
    );
    let mut moved = 0;
    for (u, version) in first.iter().enumerate() {
        let now = sticky_version(&after, &store, u, 9);
        if *version == "v2" {
            assert_eq!(now, "v2", "user {u} left v2");
        } else if now != *version {
            moved += 1;
        }
    }
    let moved = moved as f64 / users as f64;
    assert!((0.13..=0.17).contains(&moved), "moved {moved}");

    // Without the sticky header, the request id decides.
    let s = before
        .choose(&store, "orders", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!(s.reason, Reason::Weight);
}

#[test]
fn match_rules_win_over_weights_in_order() {
    let store = MemoryStore::new();
    let p = plan(&orders(
        r#"  - name: orders
    service: orders
    split:
      rules:
        - { match: { headers: { x-version: "2" } }, version: v2 }
        - { match: { cookies: { canary: "yes" } }, version: v3 }
        - { match: { query: { version: "3" } }, version: v3 }
        - { match: { consumers: [bob] }, version: v2 }
        - { match: { tenants: [acme], tags: [beta] }, version: v3 }
"#,
    ));
    let alice = ConsumerIdentity {
        id: "alice".into(),
        tenant: Some("acme".into()),
        tags: vec!["beta".into()],
    };
    let bob = ConsumerIdentity {
        id: "bob".into(),
        tenant: Some("globex".into()),
        tags: vec![],
    };
    let query = with_query(head(0), "a=1&version=3");
    let cases: Vec<(
        upshift_model::RequestHead<'_>,
        Option<&ConsumerIdentity>,
        &str,
        Reason,
    )> = vec![
        (
            with_header(head(0), "x-version", "2"),
            None,
            "v2",
            Reason::Rule(0),
        ),
        (
            with_header(
                with_header(head(0), "cookie", "canary=yes"),
                "x-version",
                "2",
            ),
            None,
            "v2",
            Reason::Rule(0),
        ),
        (
            with_header(head(0), "cookie", "a=b; canary=yes"),
            None,
            "v3",
            Reason::Rule(1),
        ),
        (query, None, "v3", Reason::Rule(2)),
        (head(0), Some(&bob), "v2", Reason::Rule(3)),
        (head(0), Some(&alice), "v3", Reason::Rule(4)),
    ];
    for (h, consumer, version, reason) in cases {
        for i in 0..20 {
            let h = with_request_id(h, &format!("req-{i}"));
            let s = p
                .choose(&store, "orders", "orders", &h, consumer, NOW)
                .unwrap();
            assert_eq!((s.primary.version, s.reason), (version, reason), "{h:?}");
        }
    }
    let s = p
        .choose(
            &store,
            "orders",
            "orders",
            &with_header(head(0), "x-version", "3"),
            None,
            NOW,
        )
        .unwrap();
    assert!(matches!(s.reason, Reason::Weight));
    // Another route over the same service has no rules.
    let s = p
        .choose(
            &store,
            "other",
            "orders",
            &with_header(head(0), "x-version", "2"),
            None,
            NOW,
        )
        .unwrap();
    assert_ne!(s.reason, Reason::Rule(0));
}

#[test]
fn pinned_routes_serve_their_version() {
    let store = MemoryStore::new();
    let p = plan(&orders(
        "  - { name: orders-v2, paths: [/v2], service: orders, version: v2 }\n",
    ));
    for i in 0..100 {
        let s = p
            .choose(&store, "orders-v2", "orders", &head(i), None, NOW)
            .unwrap();
        assert_eq!((s.primary.version, s.reason), ("v2", Reason::Pinned));
    }
}

#[test]
fn deprecated_versions_announce_it() {
    let store = MemoryStore::new();
    let p = plan(&orders(
        "  - { name: orders-v2, service: orders, version: v2 }\n",
    ));
    let s = p
        .choose(&store, "orders-v2", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!(s.primary.version, "v2");
    let deprecation = |p: &Plan, version: &str| {
        let service = p.services().find(|s| s.name == "orders").unwrap();
        let version = service.versions.iter().find(|v| v.name == version).unwrap();
        version.response_headers.to_vec()
    };
    let v2 = deprecation(&p, "v2");
    let headers: Vec<(&str, &str)> = v2.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(
        headers,
        [
            ("deprecation", "@1772323200"),
            ("sunset", "Tue, 01 Sep 2026 00:00:00 GMT"),
            ("link", "<https://example.com/v2>; rel=\"deprecation\""),
        ]
    );
    let p = plan(&orders(
        "  - { name: orders-v1, service: orders, version: v1 }\n",
    ));
    let s = p
        .choose(&store, "orders-v1", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!(s.primary.version, "v1");
    assert!(deprecation(&p, "v1").is_empty());
}

#[test]
fn a_rollout_sets_the_weights_and_sticky_users_only_move_forward() {
    let store = MemoryStore::new();
    let route = "  - { name: orders, service: orders, split: { sticky: { on: consumer } } }\n";
    let doc = orders(route);
    let p = plan(&doc);
    start_rollout(
        &store,
        &doc,
        "{service: orders, canary: v3, steps: [{weight: 20}, {weight: 60}]}",
        NOW,
    );
    let users: Vec<ConsumerIdentity> = (0..10_000)
        .map(|u| ConsumerIdentity {
            id: format!("user-{u}"),
            ..ConsumerIdentity::default()
        })
        .collect();
    let pick = |c: &ConsumerIdentity, i: usize| {
        let s = p
            .choose(&store, "orders", "orders", &head(i), Some(c), NOW)
            .unwrap();
        assert_eq!(s.reason, Reason::Rollout);
        // A running rollout counts every attempt of its step; a finished one none.
        assert_eq!(s.report_all, rollout(&store, "orders").is_active());
        s.primary.version.to_owned()
    };
    let at_20: Vec<String> = users.iter().enumerate().map(|(i, c)| pick(c, i)).collect();
    let canary = at_20.iter().filter(|v| *v == "v3").count() as f64 / 10_000.0;
    assert!((0.18..=0.22).contains(&canary), "{canary}");
    assert!(
        at_20.iter().all(|v| v == "v1" || v == "v3"),
        "only stable and canary"
    );

    let mut state = rollout(&store, "orders");
    state.step = 1;
    store
        .set(
            &keys::rollout_state("orders"),
            &serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
    let at_60: Vec<String> = users
        .iter()
        .enumerate()
        .map(|(i, c)| pick(c, i + 7))
        .collect();
    for (before, after) in at_20.iter().zip(&at_60) {
        assert!(
            !(before == "v3" && after == "v1"),
            "a canary user went back"
        );
    }
    let canary = at_60.iter().filter(|v| *v == "v3").count() as f64 / 10_000.0;
    assert!((0.57..=0.63).contains(&canary), "{canary}");

    state.promote(NOW).unwrap();
    store
        .set(
            &keys::rollout_state("orders"),
            &serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
    assert!(users.iter().enumerate().all(|(i, c)| pick(c, i) == "v3"));
    state.phase = upshift_model::rollout::Phase::RolledBack;
    store
        .set(
            &keys::rollout_state("orders"),
            &serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
    assert!(users.iter().enumerate().all(|(i, c)| pick(c, i) == "v1"));

    // An unreadable state document is no rollout.
    store
        .set(&keys::rollout_state("orders"), b"{not json")
        .unwrap();
    let s = p
        .choose(&store, "orders", "orders", &head(1), Some(&users[0]), NOW)
        .unwrap();
    assert_eq!(s.reason, Reason::Sticky);
}

#[test]
fn an_open_circuit_falls_back() {
    let store = MemoryStore::new();
    let doc = orders(
        "  - { name: fb, service: orders, split: { fallback: v3 } }\n\
         \x20 - { name: plain, service: orders }\n\
         \x20 - { name: pinned, service: orders, version: v2 }\n\
         \x20 - { name: pinned-fb, service: orders, version: v2, split: { fallback: v1 } }\n",
    );
    let p = plan(&doc);
    eject(
        &store,
        "orders",
        &["http://v1-a", "http://v1-b"],
        NOW + 1_000,
    );
    for i in 0..200 {
        let s = p
            .choose(&store, "fb", "orders", &head(i), None, NOW)
            .unwrap();
        assert_ne!(s.primary.version, "v1");
        if s.reason == Reason::CircuitOpen {
            assert_eq!(s.primary.version, "v3", "the route's fallback");
        }
        let s = p
            .choose(&store, "plain", "orders", &head(i), None, NOW)
            .unwrap();
        assert_eq!(s.primary.version, "v2", "the heaviest healthy version");
    }
    // A rollout's stable comes before the heaviest version.
    eject(&store, "orders", &["http://v2-a"], NOW + 1_000);
    start_rollout(
        &store,
        &doc,
        "{service: orders, canary: v2, stable: v3, steps: [{weight: 100}]}",
        NOW,
    );
    let s = p
        .choose(&store, "plain", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!((s.primary.version, s.reason), ("v3", Reason::CircuitOpen));
    store.delete(&keys::rollout_state("orders")).unwrap();

    // A pinned version falls back only to an explicit fallback.
    let s = p
        .choose(&store, "pinned", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!((s.primary.version, s.reason), ("v2", Reason::Pinned));
    eject(&store, "orders", &["http://v2-a"], NOW + 1_000);
    let s = p
        .choose(&store, "pinned-fb", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!((s.primary.version, s.reason), ("v1", Reason::CircuitOpen));

    // Everything ejected: ejections are ignored.
    eject(
        &store,
        "orders",
        &["http://v1-a", "http://v1-b", "http://v2-a", "http://v3-a"],
        NOW + 1_000,
    );
    let s = p
        .choose(&store, "plain", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!(s.reason, Reason::Weight);
    // Ejections expire.
    eject(&store, "orders", &["http://v1-a", "http://v1-b"], NOW);
    assert!((0..100).any(|i| {
        p.choose(&store, "plain", "orders", &head(i), None, NOW)
            .unwrap()
            .primary
            .version
            == "v1"
    }));
}

#[test]
fn ejected_targets_are_skipped_and_retries_go_to_the_others_then_the_fallback() {
    let store = MemoryStore::new();
    let p = plan(&orders(
        "  - { name: orders, service: orders, version: v1, split: { fallback: v2 }, \
         retries: { attempts: 3, retry_on: [503], per_try_timeout_ms: 500 } }\n\
         \x20 - { name: bare, service: orders, version: v1 }\n",
    ));
    let s = p
        .choose(&store, "orders", "orders", &head(1), None, NOW)
        .unwrap();
    let other = if s.primary.target == "http://v1-a" {
        "http://v1-b"
    } else {
        "http://v1-a"
    };
    let alternates: Vec<(&str, &str)> =
        s.alternates.iter().map(|u| (u.version, u.target)).collect();
    assert_eq!(alternates, [("v1", other), ("v2", "http://v2-a")]);
    assert_eq!(
        (
            s.retry.attempts,
            s.retry.retry_on,
            s.retry.per_try_timeout_ms
        ),
        (3, &[503][..], Some(500))
    );

    eject(&store, "orders", &["http://v1-a"], NOW + 1);
    for i in 0..50 {
        let s = p
            .choose(&store, "orders", "orders", &head(i), None, NOW)
            .unwrap();
        assert_eq!(s.primary.target, "http://v1-b");
        assert_eq!(s.alternates.len(), 1, "only the fallback is left");
    }

    // Methods that are not retried get no attempts, fallback or not.
    let post = with_method(head(1), "POST");
    assert_eq!(
        p.choose(&store, "orders", "orders", &post, None, NOW)
            .unwrap()
            .retry
            .attempts,
        0
    );
    // A fallback alone earns idempotent requests one retry.
    let p = plan(&orders(
        "  - { name: fb, service: orders, version: v1, split: { fallback: v2 } }\n",
    ));
    assert_eq!(
        p.choose(&store, "fb", "orders", &head(1), None, NOW)
            .unwrap()
            .retry
            .attempts,
        1
    );
    let s = p
        .choose(&store, "bare", "orders", &head(1), None, NOW)
        .unwrap();
    assert_eq!(s.retry.attempts, 0);
}

#[test]
fn during_a_rollout_the_canary_falls_back_to_the_stable() {
    let store = MemoryStore::new();
    let doc = orders("  - { name: orders, service: orders }\n");
    let p = plan(&doc);
    start_rollout(
        &store,
        &doc,
        "{service: orders, canary: v3, steps: [{weight: 50}]}",
        NOW,
    );
    let (mut canary, mut stable) = (0, 0);
    for i in 0..100 {
        let s = p
            .choose(&store, "orders", "orders", &head(i), None, NOW)
            .unwrap();
        let last = s.alternates.last().map(|u| u.version);
        if s.primary.version == "v3" {
            canary += 1;
            assert_eq!(last, Some("v1"));
            assert_eq!(s.retry.attempts, 1);
        } else {
            stable += 1;
            assert_ne!(last, Some("v3"));
        }
    }
    assert!(canary > 30 && stable > 30);
}

#[test]
fn shadow_copies_sample_by_request_id_and_never_mirror_themselves() {
    let store = MemoryStore::new();
    let p = plan(&orders(
        "  - name: orders\n    service: orders\n    split:\n      rules: [{ match: { headers: { x-v: '3' } }, version: v3 }]\n      shadow: { version: v3, percent: 12.5, timeout_ms: 700 }\n",
    ));
    let mut copies = 0;
    for i in 0..10_000 {
        let s = p
            .choose(&store, "orders", "orders", &head(i), None, NOW)
            .unwrap();
        if let Some(copy) = s.shadow {
            copies += 1;
            assert_eq!(
                (copy.upstream.version, copy.upstream.target, copy.timeout_ms),
                ("v3", "http://v3-a", 700)
            );
        }
        // The same request always gets the same answer.
        let again = p
            .choose(&store, "orders", "orders", &head(i), None, NOW)
            .unwrap();
        assert_eq!(s.shadow, again.shadow);
    }
    let rate = copies as f64 / 10_000.0;
    assert!((0.11..=0.14).contains(&rate), "{rate}");
    for i in 0..500 {
        let h = with_header(head(i), "x-v", "3");
        assert_eq!(
            p.choose(&store, "orders", "orders", &h, None, NOW)
                .unwrap()
                .shadow,
            None
        );
    }
}
