//! The upstream-upgrade settings: balancers, outlier detection,
//! deprecations, pinned versions, split rules, shadows and retries.

use upshift_model::{BalancePolicy, Config, OutlierDetection, RequestKey, Retries};

fn problems(doc: &str) -> Vec<String> {
    match Config::parse(doc) {
        Ok(_) => panic!("document was accepted"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

const SERVICES: &str = r#"
services:
  - name: orders
    balancer: { policy: consistent_hash, hash_on: "header:x-user" }
    outlier_detection: { failures: 3 }
    versions:
      - name: v1
        weight: 90
        targets: [{ url: "http://10.0.0.1:80" }, { url: "http://10.0.0.2:80" }]
        deprecation:
          deprecated_at: "2026-03-01T00:00:00Z"
          sunset: "2026-09-01T00:00:00Z"
          link: https://example.com/orders-v1
      - { name: v2, weight: 10, targets: [{ url: "http://10.0.1.1:80" }] }
      - { name: v3, targets: [{ url: "http://10.0.2.1:80" }] }
consumers:
  - { name: alice, tenant: acme, tags: [beta], api_keys: [alice-key-0001] }
"#;

#[test]
fn a_full_upgrade_document_round_trips() {
    let doc = format!(
        "{SERVICES}{}",
        r#"
routes:
  - name: orders-v2
    paths: [/v2/orders]
    service: orders
    version: v2
    split: { shadow: { version: v3, percent: 0.5 }, fallback: v1 }
  - name: orders
    paths: [/orders]
    service: orders
    split:
      rules:
        - { match: { headers: { x-version: "2" } }, version: v2 }
        - { match: { cookies: { beta: "1" }, query: { v: "3" } }, version: v3 }
        - { match: { consumers: [alice], tenants: [acme], tags: [beta] }, version: v2 }
      sticky: { on: "cookie:session" }
      shadow: { version: v3, percent: 12.5, timeout_ms: 800 }
      fallback: v1
    retries: { attempts: 2, retry_on: [503], methods: [GET], per_try_timeout_ms: 1000, budget_percent: 10, min_per_second: 1 }
"#
    );
    let config = Config::parse(&doc).expect("valid");
    let canonical = config.to_canonical_json();
    assert_eq!(Config::from_canonical_json(&canonical).unwrap(), config);

    let orders = config.service("orders").unwrap();
    assert_eq!(orders.balancer.policy, BalancePolicy::ConsistentHash);
    assert_eq!(
        orders.balancer.hash_on,
        Some(RequestKey::Header("x-user".into()))
    );
    assert_eq!(
        orders.outlier_detection,
        OutlierDetection {
            failures: 3,
            window_ms: 10_000,
            ejection_ms: 30_000
        }
    );
    let split = config.routes[1].split.as_ref().unwrap();
    assert_eq!(
        split.sticky.as_ref().unwrap().on.to_string(),
        "cookie:session"
    );
    assert_eq!(split.shadow.as_ref().unwrap().timeout_ms, 800);
    assert_eq!(
        config.routes[0]
            .split
            .as_ref()
            .unwrap()
            .shadow
            .as_ref()
            .unwrap()
            .timeout_ms,
        5000
    );
    assert!(
        canonical.contains(r#""hash_on":"header:x-user""#),
        "{canonical}"
    );
    assert!(canonical.contains(r#""match":{"headers""#), "{canonical}");
}

#[test]
fn defaults_stay_out_of_the_canonical_form() {
    let doc = format!(
        "{SERVICES}{}",
        "routes: [{ name: r, service: orders, retries: { attempts: 1 } }]\n"
    );
    let config = Config::parse(&doc).unwrap();
    let retries = config.routes[0].retries.as_ref().unwrap();
    assert_eq!(
        *retries,
        Retries {
            attempts: 1,
            ..Retries::default()
        }
    );
    assert_eq!(retries.retry_on, [502, 503, 504]);
    assert_eq!(
        retries.methods,
        ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]
    );
    let canonical = config.to_canonical_json();
    assert!(
        canonical.contains(r#""retries":{"attempts":1}"#),
        "{canonical}"
    );
    let plain =
        Config::parse("services: [{name: s, versions: [{name: v, targets: [{url: 'http://a'}]}]}]")
            .unwrap();
    assert_eq!(
        plain.services[0].outlier_detection,
        OutlierDetection::default()
    );
    assert!(!plain.to_canonical_json().contains("outlier"));
}

#[test]
fn request_keys_are_checked_when_read() {
    let found = problems(
        "services: [{name: s, balancer: {policy: consistent_hash, hash_on: cookie}, \
         versions: [{name: v, targets: [{url: 'http://a'}]}]}]",
    );
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(
            "services[0].balancer.hash_on: \"cookie\" is not consumer, client_ip, header:<name> or cookie:<name>"
        ),
        "{found:?}"
    );
}

#[test]
fn every_upgrade_problem_is_reported_with_its_path() {
    let doc = r#"
services:
  - name: orders
    balancer: { policy: consistent_hash }
    outlier_detection: { window_ms: 0 }
    versions:
      - name: v1
        targets: [{ url: "http://a" }]
        deprecation: { deprecated_at: "2026-03-01", sunset: "2025-01-01T00:00:00Z", link: "ftp://x" }
      - name: v2
        targets: [{ url: "http://b" }]
        deprecation: { deprecated_at: "2026-03-01T00:00:00Z", sunset: "2025-01-01T00:00:00Z" }
  - name: users
    balancer: { policy: round_robin, hash_on: consumer }
    versions: [{ name: v1, targets: [{ url: "http://c" }] }]
  - name: carts
    balancer: { policy: consistent_hash, hash_on: "header:X-User" }
    versions: [{ name: v1, targets: [{ url: "http://d" }] }]
consumers:
  - { name: alice, api_keys: [alice-key-0001] }
routes:
  - name: pinned
    service: orders
    version: v3
    split:
      rules: [{ match: { headers: { x-a: "1" } }, version: v2 }]
      sticky: { on: consumer }
      shadow: { version: v3, percent: 101, timeout_ms: 0 }
      fallback: v9
  - name: rules
    service: orders
    split:
      rules:
        - { match: {}, version: v3 }
        - { match: { headers: { X-Bad: "1" }, cookies: { "a b": "1" }, query: { "": "1" } }, version: v1 }
        - { match: { consumers: [bob], tenants: [""], tags: [""] }, version: v2 }
      sticky: { on: "header:Bad Name" }
  - name: same
    service: orders
    version: v1
    split: { shadow: { version: v1, percent: 5 }, fallback: v1 }
  - name: retrying
    service: orders
    timeout_ms: 1000
    retries: { attempts: 11, retry_on: [200, 503], methods: [get], per_try_timeout_ms: 2000, budget_percent: 101 }
  - { name: ai, kind: ai, version: v1, split: {}, retries: {} }
"#;
    let expected = [
        "services[0].versions[0].deprecation.deprecated_at: \"2026-03-01\" is not an RFC 3339 timestamp, e.g. 2026-03-01T00:00:00Z",
        "services[0].versions[0].deprecation.link: \"ftp://x\" is not an http(s) URL",
        "services[0].versions[1].deprecation.sunset: the sunset must not come before deprecated_at",
        "services[0].balancer.hash_on: consistent_hash needs hash_on",
        "services[0].outlier_detection.window_ms: must be at least 1 (failures: 0 turns detection off)",
        "services[1].balancer.hash_on: hash_on applies to consistent_hash only",
        "services[2].balancer.hash_on: \"X-User\" is not a lower-case header name",
        "routes[0].version: service \"orders\" has no version \"v3\"",
        "routes[0].split.rules: the route is pinned to version \"v3\"; rules do not apply",
        "routes[0].split.sticky: the route is pinned to version \"v3\"; stickiness does not apply",
        "routes[0].split.shadow.version: service \"orders\" has no version \"v3\"",
        "routes[0].split.shadow.version: copies never go to the version that serves the request",
        "routes[0].split.shadow.percent: must be between 0 and 100",
        "routes[0].split.shadow.timeout_ms: must be between 1 and 3600000",
        "routes[0].split.fallback: service \"orders\" has no version \"v9\"",
        "routes[1].split.rules[0].version: service \"orders\" has no version \"v3\"",
        "routes[1].split.rules[0].match: a rule needs at least one condition",
        "routes[1].split.rules[1].match.headers.X-Bad: \"X-Bad\" is not a lower-case header name",
        "routes[1].split.rules[1].match.cookies.a b: \"a b\" is not a cookie name",
        "routes[1].split.rules[1].match.query.: \"\" is not a query parameter name",
        "routes[1].split.rules[2].match.consumers[0]: unknown consumer \"bob\": define it under consumers",
        "routes[1].split.rules[2].match.tenants[0]: must not be empty",
        "routes[1].split.rules[2].match.tags[0]: must not be empty",
        "routes[1].split.sticky.on: \"Bad Name\" is not a lower-case header name",
        "routes[2].split.shadow.version: copies never go to the version that serves the request",
        "routes[2].split.fallback: the fallback must differ from the pinned version",
        "routes[3].retries.attempts: must be at most 10",
        "routes[3].retries.retry_on[0]: 200 is not a 4xx or 5xx status",
        "routes[3].retries.methods[0]: \"get\" is not an upper-case HTTP method",
        "routes[3].retries.per_try_timeout_ms: must be between 1 and the route's timeout_ms (1000)",
        "routes[3].retries.budget_percent: must be between 0 and 100",
        "routes[4].version: applies to proxy routes only",
        "routes[4].split: applies to proxy routes only",
        "routes[4].retries: applies to proxy routes only",
    ];
    assert_eq!(problems(doc), expected);
}
