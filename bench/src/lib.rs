//! Generated inputs for the hot-path benchmarks in `benches/`.

use upshift_config::{Config, RequestHead};

/// A config with `n` services and `n` routes (one path prefix per service,
/// a tenth of them host-bound), as a large API would have.
pub fn config_with_routes(n: usize) -> Config {
    let mut doc = String::from("services:\n");
    for i in 0..n {
        doc.push_str(&format!(
            "  - {{ name: svc{i}, versions: [{{ name: v1, weight: 90, targets: [{{ url: 'http://10.0.{}.{}:8080' }}] }}, \
             {{ name: v2, weight: 10, targets: [{{ url: 'http://10.1.{}.{}:8080' }}] }}] }}\n",
            i / 250,
            i % 250,
            i / 250,
            i % 250
        ));
    }
    doc.push_str("routes:\n");
    for i in 0..n {
        let hosts = if i % 10 == 0 {
            format!("hosts: [api{i}.example.com], ")
        } else {
            String::new()
        };
        doc.push_str(&format!(
            "  - {{ name: r{i}, {hosts}paths: [/api/v1/resource{i}], methods: [GET, POST], service: svc{i} }}\n"
        ));
    }
    doc.push_str("consumers:\n");
    for i in 0..n {
        doc.push_str(&format!(
            "  - {{ name: c{i}, api_keys: [key-{i:08}-secret] }}\n"
        ));
    }
    Config::parse(&doc).expect("generated config is valid")
}

/// A typical request for route `i` of [`config_with_routes`].
pub fn request_for(i: usize) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        scheme: "https".into(),
        authority: "gateway.example.com".into(),
        path: format!("/api/v1/resource{i}/items/42"),
        query: Some("expand=owner".into()),
        headers: vec![
            ("accept".into(), "application/json".into()),
            ("user-agent".into(), "bench/1.0".into()),
            ("x-api-key".into(), format!("key-{i:08}-secret")),
        ],
        client_ip: Some("203.0.113.9".into()),
        request_id: "8d1f0e9c-6a43-4b1e-9f4e-2b8c7c1d5a10".into(),
    }
}

/// A service in a canary release: weights 90/10, three match rules (header,
/// cookie, consumer tag) and stickiness on a header, with a deprecated
/// stable version and two targets each.
pub fn split_config() -> Config {
    Config::parse(
        r#"
services:
  - name: orders
    versions:
      - name: v1
        weight: 90
        targets: [{ url: "http://10.0.0.1:8080" }, { url: "http://10.0.0.2:8080" }]
        deprecation: { deprecated_at: "2026-03-01T00:00:00Z", sunset: "2026-09-01T00:00:00Z" }
      - name: v2
        weight: 10
        targets: [{ url: "http://10.0.1.1:8080" }, { url: "http://10.0.1.2:8080" }]
routes:
  - name: orders
    paths: [/orders]
    service: orders
    split:
      rules:
        - { match: { headers: { x-version: "2" } }, version: v2 }
        - { match: { cookies: { canary: "always" } }, version: v2 }
        - { match: { tags: [internal] }, version: v2 }
      sticky: { on: "header:x-user" }
"#,
    )
    .expect("split config is valid")
}

/// A request for the route of [`split_config`] that no rule matches, with
/// the sticky header set.
pub fn split_request() -> RequestHead {
    let mut head = request_for(7);
    head.path = "/orders/42".into();
    head.headers
        .push(("cookie".into(), "session=abc; theme=dark".into()));
    head.headers.push(("x-user".into(), "user-4711".into()));
    head
}
