//! Moving traffic between versions of a service, end to end: weights,
//! stickiness, match rules, pinned API versions with deprecation headers,
//! shadow copies, retries within their budget, fallback and outlier
//! ejection, with real upstreams on 127.0.0.1 and exact counters read back
//! from the admin API.

use crate::support;

use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::Host;
use support::traffic::{send_many, stats_of};
use support::upstream::{Behavior, Upstream, closed_port};

/// Service `s` with versions `v1` → `one`, `v2` → `two`, and `routes`.
fn two_versions(one: &Upstream, two: &Upstream, weights: (u32, u32), routes: &str) -> String {
    format!(
        "services:\n\
         - name: s\n\
         \x20 versions:\n\
         \x20   - {{ name: v1, weight: {}, targets: [{{ url: '{}' }}] }}\n\
         \x20   - {{ name: v2, weight: {}, targets: [{{ url: '{}' }}] }}\n\
         routes:\n{routes}",
        weights.0,
        one.url(),
        weights.1,
        two.url()
    )
}

fn count_versions(seen: &[support::traffic::Seen]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for s in seen {
        assert_eq!(s.status, 200, "{s:?}");
        *counts.entry(s.version().to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn weights_converge_and_every_attempt_is_counted() {
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&two_versions(
        &one,
        &two,
        (90, 10),
        "- { name: all, service: s }\n",
    ))
    .await;

    let n = 10_000;
    let seen = send_many(&host, "/w", n, 32, |_, r| r).await;
    let counts = count_versions(&seen);
    let share = counts["v2"] as f64 / n as f64;
    assert!(
        (0.08..=0.12).contains(&share),
        "v2 share {share}: {counts:?}"
    );
    // The servers agree with the headers.
    assert_eq!(one.hits() as usize, counts["v1"]);
    assert_eq!(two.hits() as usize, counts["v2"]);

    // Counters in the store are exact, per route and version.
    let v1 = stats_of(&host, "all", "v1").await;
    let v2 = stats_of(&host, "all", "v2").await;
    assert_eq!(v1["requests"].as_u64().unwrap() as usize, counts["v1"]);
    assert_eq!(v2["requests"].as_u64().unwrap() as usize, counts["v2"]);
    assert_eq!(v1["responses"]["2xx"], v1["requests"]);
    assert_eq!(v1["errors"], 0);
}

#[tokio::test]
async fn sticky_users_stay_and_rules_win_over_weights() {
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    let routes = "- name: all\n\
                  \x20 service: s\n\
                  \x20 split:\n\
                  \x20   sticky: { on: 'header:x-user' }\n\
                  \x20   rules:\n\
                  \x20     - { match: { headers: { x-tester: 'yes' } }, version: v2 }\n\
                  \x20     - { match: { cookies: { cohort: beta } }, version: v2 }\n\
                  \x20     - { match: { query: { preview: '1' } }, version: v2 }\n";
    host.apply(&two_versions(&one, &two, (50, 50), routes))
        .await;

    // 200 users, 10 requests each, interleaved and concurrent: nobody flips.
    let seen = send_many(&host, "/s", 2_000, 16, |i, r| {
        r.header("x-user", format!("user-{}", i % 200))
    })
    .await;
    let mut by_user: HashMap<usize, &str> = HashMap::new();
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.status, 200, "{s:?}");
        let first = *by_user.entry(i % 200).or_insert(s.version());
        assert_eq!(first, s.version(), "user-{} flipped", i % 200);
    }
    let on_v2 = by_user.values().filter(|v| **v == "v2").count();
    assert!((60..=140).contains(&on_v2), "{on_v2} of 200 users on v2");

    // Each rule sends everyone to v2, whatever the weights and stickiness say.
    for (name, value) in [("x-tester", "yes"), ("cookie", "a=b; cohort=beta")] {
        let seen = send_many(&host, "/s", 50, 8, |i, r| {
            r.header(name, value).header("x-user", format!("user-{i}"))
        })
        .await;
        assert_eq!(count_versions(&seen).get("v2"), Some(&50), "{name}");
    }
    let seen = send_many(&host, "/s?preview=1", 50, 8, |i, r| {
        r.header("x-user", format!("user-{i}"))
    })
    .await;
    assert_eq!(count_versions(&seen).get("v2"), Some(&50));
    // A rule that does not match leaves the weights in charge.
    let seen = send_many(&host, "/s", 400, 8, |i, r| {
        r.header("x-tester", "no")
            .header("x-user", format!("other-{i}"))
    })
    .await;
    let counts = count_versions(&seen);
    assert!(counts["v1"] > 120 && counts["v2"] > 120, "{counts:?}");
}

#[tokio::test]
async fn pinned_api_versions_carry_deprecation_headers() {
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    let doc = format!(
        "services:\n\
         - name: s\n\
         \x20 versions:\n\
         \x20   - name: v1\n\
         \x20     targets: [{{ url: '{}' }}]\n\
         \x20     deprecation: {{ deprecated_at: '2026-01-01T00:00:00Z', sunset: '2026-12-31T00:00:00Z', link: 'https://example.com/migrate' }}\n\
         \x20   - {{ name: v2, targets: [{{ url: '{}' }}] }}\n\
         routes:\n\
         - {{ name: api-v1, paths: [/v1], replace_prefix: /, service: s, version: v1 }}\n\
         - {{ name: api-v2, paths: [/v2], replace_prefix: /, service: s, version: v2 }}\n\
         - {{ name: api-header, paths: [/api], headers: {{ x-api-version: '2' }}, service: s, version: v2 }}\n\
         - {{ name: api-default, paths: [/api], service: s }}\n",
        one.url(),
        two.url()
    );
    host.apply(&doc).await;
    let get = |path: &'static str, version: Option<&'static str>| {
        let host = &host;
        async move {
            let mut request = support::client().get(format!("{}{path}", host.url));
            if let Some(v) = version {
                request = request.header("x-api-version", v);
            }
            request.send().await.unwrap()
        }
    };
    let old = get("/v1/orders", None).await;
    assert_eq!(old.headers()["x-upstream"], "one");
    assert_eq!(old.headers()["deprecation"], "@1767225600");
    assert_eq!(old.headers()["sunset"], "Thu, 31 Dec 2026 00:00:00 GMT");
    assert_eq!(
        old.headers()["link"],
        "<https://example.com/migrate>; rel=\"deprecation\""
    );
    let new = get("/v2/orders", None).await;
    assert_eq!(new.headers()["x-upstream"], "two");
    assert!(new.headers().get("deprecation").is_none());
    assert_eq!(
        get("/api/x", Some("2")).await.headers()["x-upstream"],
        "two"
    );
    // Without weights the first version takes the unpinned route.
    assert_eq!(get("/api/x", None).await.headers()["x-upstream"], "one");
}

#[tokio::test]
async fn shadow_copies_never_touch_the_client_response() {
    let primary = Upstream::start("primary").await;
    let hanging = Upstream::start_with("hanging", Behavior::Hang).await;
    let failing = Upstream::start_with("failing", Behavior::Status(500)).await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&doc_with(&primary, &hanging)).await;
    for _ in 0..20 {
        let started = Instant::now();
        let response = support::client()
            .post(format!("{}/orders", host.url))
            .body("{\"item\": 7}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-upstream"], "primary");
        // The shadow hangs for its 2 s timeout; the client never waits for it.
        assert!(started.elapsed() < Duration::from_millis(1500));
    }
    // Every copy reached the shadow, and timed out there.
    wait_for(|| hanging.hits() == 20, "20 copies at the hanging shadow").await;

    // A failing shadow: the client still gets the primary's answers, and
    // each copy counts as a mismatch once it has failed.
    host.apply(&doc_with(&primary, &failing)).await;
    let seen = send_many(&host, "/orders", 50, 8, |_, r| r).await;
    assert!(
        seen.iter()
            .all(|s| s.status == 200 && s.server == "primary")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v2 = stats_of(&host, "all", "v2").await;
        if v2["shadow_requests"] == 50 {
            assert_eq!(v2["shadow_mismatches"], 50, "{v2}");
            break;
        }
        assert!(Instant::now() < deadline, "shadow counters: {v2}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failing.hits(), 50);
}

fn doc_with(primary: &Upstream, shadow: &Upstream) -> String {
    format!(
        "services:\n\
         - name: s\n\
         \x20 versions:\n\
         \x20   - {{ name: v1, weight: 100, targets: [{{ url: '{}' }}] }}\n\
         \x20   - {{ name: v2, targets: [{{ url: '{}' }}] }}\n\
         routes:\n\
         - {{ name: all, service: s, split: {{ shadow: {{ version: v2, percent: 100, timeout_ms: 2000 }} }} }}\n",
        primary.url(),
        shadow.url()
    )
}

async fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn retries_stay_within_their_budget() {
    let broken = Upstream::start_with("broken", Behavior::Status(503)).await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes:\n\
         - {{ name: all, service: s, retries: {{ attempts: 2, budget_percent: 20, min_per_second: 0 }} }}\n",
        broken.url()
    ))
    .await;
    let seen = send_many(&host, "/r", 200, 4, |_, r| r).await;
    assert!(seen.iter().all(|s| s.status == 503));
    // Without a budget 200 requests would make 600 attempts; 20% allows 40 retries.
    let retries = broken.hits() - 200;
    assert!(
        (20..=42).contains(&retries),
        "{retries} retries for 200 requests"
    );
    let counted = stats_of(&host, "all", "v1").await;
    assert_eq!(counted["requests"].as_u64(), Some(broken.hits()));
}

/// An upstream `name`, a host with its state directory, and a port nothing
/// listens on.
async fn live_and_dead(name: &'static str) -> (Upstream, tempfile::TempDir, Host, u16) {
    let live = Upstream::start(name).await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    (live, state, host, closed_port().await)
}

#[tokio::test]
async fn a_failing_version_falls_back_to_the_stable_one() {
    let (stable, _state, host, dead) = live_and_dead("stable").await;
    host.apply(&format!(
        "services:\n\
         - name: s\n\
         \x20 versions:\n\
         \x20   - {{ name: v1, weight: 0, targets: [{{ url: '{}' }}] }}\n\
         \x20   - {{ name: v2, weight: 100, targets: [{{ url: 'http://127.0.0.1:{dead}' }}] }}\n\
         routes:\n\
         - {{ name: all, service: s, split: {{ fallback: v1 }} }}\n",
        stable.url()
    ))
    .await;
    // POST is not retried unless the route says so: the client sees the failure.
    let post = support::client()
        .post(format!("{}/f", host.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(post.status().is_server_error(), "{}", post.status());
    assert_eq!(stable.hits(), 0);
    // GETs fall back; once the dead target is ejected they go to v1 directly.
    let seen = send_many(&host, "/f", 20, 1, |_, r| r).await;
    for s in &seen {
        assert_eq!((s.status, s.server.as_str()), (200, "stable"), "{s:?}");
        assert_eq!(s.version(), "v1");
    }
    assert_eq!(stable.hits(), 20);
}

#[tokio::test]
async fn a_failing_target_is_ejected() {
    let (good, _state, host, dead) = live_and_dead("good").await;
    host.apply(&format!(
        "services:\n\
         - name: s\n\
         \x20 balancer: {{ policy: round_robin }}\n\
         \x20 outlier_detection: {{ failures: 3, window_ms: 10000, ejection_ms: 60000 }}\n\
         \x20 versions:\n\
         \x20   - {{ name: v1, targets: [{{ url: '{}' }}, {{ url: 'http://127.0.0.1:{dead}' }}] }}\n\
         routes: [{{ name: all, service: s }}]\n",
        good.url()
    ))
    .await;
    let seen = send_many(&host, "/e", 60, 1, |_, r| r).await;
    let failed = seen.iter().filter(|s| s.status != 200).count();
    assert!(
        (3..=6).contains(&failed),
        "{failed} failures before ejection"
    );
    assert!(
        seen[20..].iter().all(|s| s.status == 200),
        "the dead target still gets traffic"
    );
}
