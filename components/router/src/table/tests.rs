use super::*;
use upshift_model::{HeadLine, OwnedHead};

const DOC: &str = r#"
services:
  - name: svc
    versions: [{ name: v1, targets: [{ url: "http://127.0.0.1:1" }] }]
routes:
  - { name: catch-all, service: svc }
  - { name: orders, service: svc, paths: [/orders] }
  - { name: orders-post, service: svc, paths: [/orders], methods: [POST] }
  - { name: orders-v2, service: svc, paths: [/orders], headers: { x-api-version: "2" } }
  - { name: order-health, service: svc, paths: [/orders/health], path_match: exact }
  - { name: api-host, service: svc, hosts: [api.example.com], paths: [/orders] }
  - { name: wild-host, service: svc, hosts: ["*.example.com"] }
  - { name: stripped, service: svc, paths: [/api/users/], replace_prefix: "" }
  - { name: rewritten, service: svc, paths: [/legacy], replace_prefix: /v2/new }
"#;

fn table() -> RouteTable {
    RouteTable::new(&Config::parse(DOC).expect("valid"))
}

fn head(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> OwnedHead {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let line = HeadLine {
        method,
        authority: host,
        path,
        query,
        ..HeadLine::default()
    };
    OwnedHead::new(&line, headers)
}

/// `route upstream-path`, the upstream path as sent.
fn route(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let t = table();
    let head = head(method, host, path, headers);
    let m = t.resolve(&head.view()).expect("a match");
    let upstream = m.upstream_path.as_deref().unwrap_or(path);
    format!("{} {upstream}", m.route)
}

#[test]
fn unchanged_paths_are_not_copied() {
    let t = table();
    let m = t
        .resolve(&head("GET", "h", "/orders/7?x=1", &[]).view())
        .unwrap();
    assert_eq!((m.index, m.upstream_path), (1, None));
    let m = t
        .resolve(&head("GET", "h", "/orders/./7", &[]).view())
        .unwrap();
    assert_eq!(m.upstream_path.as_deref(), Some("/orders/7"));
}

#[test]
fn longest_prefix_on_segment_boundaries() {
    assert_eq!(route("GET", "h", "/orders", &[]), "orders /orders");
    assert_eq!(
        route("GET", "h", "/orders/7?x=1", &[]),
        "orders /orders/7?x=1"
    );
    assert_eq!(route("GET", "h", "/ordersx", &[]), "catch-all /ordersx");
    assert_eq!(route("GET", "h", "/", &[]), "catch-all /");
}

#[test]
fn exact_paths_match_only_themselves() {
    assert_eq!(
        route("GET", "h", "/orders/health", &[]),
        "order-health /orders/health"
    );
    assert_eq!(
        route("GET", "h", "/orders/health/x", &[]),
        "orders /orders/health/x"
    );
}

#[test]
fn methods_and_headers_make_routes_more_specific() {
    assert_eq!(
        route("POST", "h", "/orders/1", &[]),
        "orders-post /orders/1"
    );
    assert_eq!(route("DELETE", "h", "/orders/1", &[]), "orders /orders/1");
    assert_eq!(
        route("GET", "h", "/orders", &[("x-api-version", "2")]),
        "orders-v2 /orders"
    );
    assert_eq!(
        route("GET", "h", "/orders", &[("x-api-version", "3")]),
        "orders /orders"
    );
}

#[test]
fn hosts_exact_before_wildcard_before_any() {
    assert_eq!(
        route("GET", "api.example.com:8080", "/orders", &[]),
        "api-host /orders"
    );
    assert_eq!(route("GET", "API.example.com", "/x", &[]), "wild-host /x");
    assert_eq!(
        route("GET", "a.b.example.com", "/orders", &[]),
        "wild-host /orders"
    );
    assert_eq!(
        route("GET", "example.com", "/orders", &[]),
        "orders /orders"
    );
}

#[test]
fn prefixes_are_replaced_or_stripped() {
    assert_eq!(route("GET", "h", "/api/users/42?q", &[]), "stripped /42?q");
    assert_eq!(route("GET", "h", "/api/users", &[]), "stripped /");
    assert_eq!(
        route("GET", "h", "/legacy/a/b", &[]),
        "rewritten /v2/new/a/b"
    );
}

#[test]
fn dot_segments_cannot_escape_a_prefix() {
    assert_eq!(
        route("GET", "h", "/orders/../admin", &[]),
        "catch-all /admin"
    );
    assert_eq!(route("GET", "h", "//orders//9", &[]), "orders /orders/9");
}

#[test]
fn no_route_no_match() {
    let config = Config::parse(
        "services: [{name: s, versions: [{name: v, targets: [{url: 'http://a'}]}]}]\n\
             routes: [{name: r, service: s, paths: [/only], methods: [GET]}]",
    )
    .unwrap();
    let table = RouteTable::new(&config);
    assert!(
        table
            .resolve(&head("GET", "h", "/other", &[]).view())
            .is_none()
    );
    assert!(
        table
            .resolve(&head("PUT", "h", "/only", &[]).view())
            .is_none()
    );
    assert_eq!(table.len(), 1);
}
