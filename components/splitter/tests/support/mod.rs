//! Shared inputs of the splitter's tests.
#![allow(dead_code)]

use upshift_model::metrics::VersionStats;
use upshift_model::rollout::{RolloutSpec, RolloutState};
use upshift_model::store::counter;
use upshift_model::{Config, HeadLine, OwnedHead, RequestHead, keys};
use upshift_splitter::{Counts, MemoryStore, Plan, Store};

/// A config document with two versions of `orders` and a route `orders`;
/// `routes` replaces the route list when given.
pub const ORDERS: &str = r#"
services:
  - name: orders
    versions:
      - { name: v1, weight: 90, targets: [{ url: "http://v1-a" }, { url: "http://v1-b" }] }
      - name: v2
        weight: 10
        targets: [{ url: "http://v2-a" }]
        deprecation:
          deprecated_at: "2026-03-01T00:00:00Z"
          sunset: "2026-09-01T00:00:00Z"
          link: https://example.com/v2
      - { name: v3, weight: 0, targets: [{ url: "http://v3-a" }] }
consumers:
  - { name: alice, tenant: acme, tags: [beta], api_keys: [alice-key-0001] }
  - { name: bob, tenant: globex, api_keys: [bob-key-00001] }
"#;

/// The parsed, validated config of `doc`.
pub fn config(doc: &str) -> Config {
    Config::parse(doc).unwrap_or_else(|e| panic!("{e}"))
}

/// The plan of `doc`.
pub fn plan(doc: &str) -> Plan {
    Plan::new(&config(doc))
}

/// [`ORDERS`] with `routes` (YAML) added.
pub fn orders(routes: &str) -> String {
    format!("{ORDERS}routes:\n{routes}")
}

/// A GET request with id `req-<n>`.
pub fn head(n: impl std::fmt::Display) -> RequestHead<'static> {
    let id = format!("req-{n}");
    let line = HeadLine {
        method: "GET",
        scheme: "https",
        authority: "api.example.com",
        path: "/orders",
        request_id: &id,
        ..HeadLine::default()
    };
    OwnedHead::new(&line, &[]).leak()
}

/// `head` with one more header.
pub fn with_header(head: RequestHead<'_>, name: &str, value: &str) -> RequestHead<'static> {
    rebuilt(head, head.query(), &[(name, value)])
}

/// `head` with `query` for its query.
pub fn with_query(head: RequestHead<'_>, query: &str) -> RequestHead<'static> {
    rebuilt(head, Some(query), &[])
}

/// `head` with `method` for its method.
pub fn with_method(head: RequestHead<'_>, method: &str) -> RequestHead<'static> {
    let line = HeadLine {
        method,
        ..line_of(&head, head.query())
    };
    let headers: Vec<(&str, &str)> = head.headers().collect();
    OwnedHead::new(&line, &headers).leak()
}

/// `head` with `id` for its request id.
pub fn with_request_id(head: RequestHead<'_>, id: &str) -> RequestHead<'static> {
    let line = HeadLine {
        request_id: id,
        ..line_of(&head, head.query())
    };
    let headers: Vec<(&str, &str)> = head.headers().collect();
    OwnedHead::new(&line, &headers).leak()
}

fn rebuilt(
    head: RequestHead<'_>,
    query: Option<&str>,
    more: &[(&str, &str)],
) -> RequestHead<'static> {
    let line = line_of(&head, query);
    let headers: Vec<(&str, &str)> = head.headers().chain(more.iter().copied()).collect();
    OwnedHead::new(&line, &headers).leak()
}

fn line_of<'a>(head: &RequestHead<'a>, query: Option<&'a str>) -> HeadLine<'a> {
    HeadLine {
        method: head.method(),
        scheme: head.scheme(),
        authority: head.authority(),
        path: head.path(),
        query,
        client_ip: head.client_ip(),
        request_id: head.request_id(),
    }
}

/// Adds the counts a report returned, as the gateway does.
pub fn add<S: Store + ?Sized>(store: &S, counts: Counts) {
    for (key, delta) in counts {
        store.increment(&key, delta).unwrap();
    }
}

/// The metric counters of `version` of `service` on `route`.
pub fn metrics(store: &MemoryStore, route: &str, service: &str, version: &str) -> VersionStats {
    let prefix = keys::metric(route, service, version, "");
    let keys = store.keys(&prefix);
    let values = store.get_many(&keys).unwrap();
    VersionStats::from_fields(keys.iter().zip(values).map(|(key, value)| {
        (
            key.strip_prefix(&prefix).unwrap(),
            counter(value.as_deref()),
        )
    }))
}

/// Starts the rollout `spec` (YAML) of `doc`'s config at `now_ms`, as the
/// admin API does, and returns its state.
pub fn start_rollout(store: &MemoryStore, doc: &str, spec: &str, now_ms: u64) -> RolloutState {
    let spec = RolloutSpec::parse(spec, &config(doc)).unwrap_or_else(|e| panic!("{e}"));
    let (state, _) = RolloutState::start(spec, "r1", now_ms);
    store
        .set(
            &keys::rollout_state(&state.spec.service),
            &serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
    state
}

/// The rollout state of `service` in the store.
pub fn rollout(store: &MemoryStore, service: &str) -> RolloutState {
    serde_json::from_slice(&store.get(&keys::rollout_state(service)).unwrap().unwrap()).unwrap()
}

/// Ejects `urls` of `service` until `until_ms`, as outlier detection does.
pub fn eject(store: &MemoryStore, service: &str, urls: &[&str], until_ms: u64) {
    let health: std::collections::BTreeMap<&str, u64> =
        urls.iter().map(|u| (*u, until_ms)).collect();
    store
        .set(
            &keys::health(service),
            &serde_json::to_vec(&health).unwrap(),
        )
        .unwrap();
}
