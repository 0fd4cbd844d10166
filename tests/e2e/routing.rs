//! Routing through the whole chain: host, path, method and header matching,
//! rewrites, version splitting, and the JSON 404 when nothing matches.

use crate::support;

use serde_json::Value;
use support::upstream::{Upstream, echoed_header};
use support::{Host, client};

async fn get(
    host: &Host,
    host_header: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = client()
        .request(method.parse().unwrap(), format!("{}{path}", host.url))
        .header("host", host_header);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let upstream = response
        .headers()
        .get("x-upstream")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut body: Value = response.json().await.unwrap_or(Value::Null);
    if let Some(name) = upstream {
        body["answered_by"] = Value::from(name);
    }
    (status, body)
}

/// Host header, method, path, headers → upstream that answers, path it sees.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[tokio::test]
async fn requests_reach_the_route_that_matches_most_specifically() {
    let orders = Upstream::start("orders").await;
    let orders_v2 = Upstream::start("orders-v2").await;
    let admin_api = Upstream::start("api-host").await;
    let fallback = Upstream::start("fallback").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        r#"
services:
  - {{ name: orders, versions: [{{ name: v1, targets: [{{ url: "{orders}" }}] }}] }}
  - {{ name: orders-v2, versions: [{{ name: v2, targets: [{{ url: "{orders_v2}/base" }}] }}] }}
  - {{ name: api, versions: [{{ name: v1, targets: [{{ url: "{api}" }}] }}] }}
  - {{ name: fallback, versions: [{{ name: v1, targets: [{{ url: "{fallback}" }}] }}] }}
routes:
  - {{ name: orders, paths: [/orders], service: orders }}
  - {{ name: orders-writes, paths: [/orders], methods: [POST, PUT], service: orders-v2 }}
  - {{ name: orders-v2-header, paths: [/orders], headers: {{ x-api-version: "2" }}, service: orders-v2, replace_prefix: /v2 }}
  - {{ name: api-host, hosts: [api.example.com], service: api }}
  - {{ name: wildcard-host, hosts: ["*.example.net"], paths: [/w], service: api, replace_prefix: "" }}
  - {{ name: exact-health, paths: [/healthz], path_match: exact, service: fallback }}
"#,
        orders = orders.url(),
        orders_v2 = orders_v2.url(),
        api = admin_api.url(),
        fallback = fallback.url(),
    ))
    .await;

    let cases: &[Case] = &[
        // host, method, path, headers → upstream, path it saw
        ("gw.test", "GET", "/orders", &[], "orders", "/orders"),
        (
            "gw.test",
            "GET",
            "/orders/42?expand=items",
            &[],
            "orders",
            "/orders/42",
        ),
        (
            "gw.test",
            "POST",
            "/orders",
            &[],
            "orders-v2",
            "/base/orders",
        ),
        (
            "gw.test",
            "GET",
            "/orders/7",
            &[("x-api-version", "2")],
            "orders-v2",
            "/base/v2/7",
        ),
        (
            "api.example.com",
            "GET",
            "/orders",
            &[],
            "api-host",
            "/orders",
        ),
        (
            "api.example.com:8443",
            "DELETE",
            "/anything",
            &[],
            "api-host",
            "/anything",
        ),
        ("a.example.net", "GET", "/w/x/y", &[], "api-host", "/x/y"),
        ("gw.test", "GET", "/healthz", &[], "fallback", "/healthz"),
        (
            "gw.test",
            "GET",
            "/public/../orders/1",
            &[],
            "orders",
            "/orders/1",
        ),
    ];
    for (host_header, method, path, headers, upstream, seen) in cases {
        let (status, body) = get(&host, host_header, method, path, headers).await;
        assert_eq!(status, 200, "{method} {host_header}{path}: {body}");
        assert_eq!(
            body["answered_by"], *upstream,
            "{method} {host_header}{path}: {body}"
        );
        assert_eq!(body["path"], *seen, "{method} {host_header}{path}: {body}");
    }
    let (_, body) = get(&host, "gw.test", "GET", "/orders/42?expand=items", &[]).await;
    assert_eq!(body["query"], "expand=items");

    for (host_header, method, path) in [
        ("gw.test", "GET", "/ordersx"),
        ("gw.test", "GET", "/healthz/more"),
        ("b.example.net", "GET", "/other"),
        ("gw.test", "GET", "/"),
    ] {
        let (status, body) = get(&host, host_header, method, path, &[]).await;
        assert_eq!(status, 404, "{method} {host_header}{path}: {body}");
        assert_eq!(body["error"]["code"], "route_not_found");
        assert!(
            body["error"]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );
    }
}

#[tokio::test]
async fn version_weights_split_traffic_and_name_the_version() {
    let v1 = Upstream::start("v1").await;
    let v2 = Upstream::start("v2").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services: [{{ name: shop, versions: [\
           {{ name: v1, weight: 80, targets: [{{ url: '{}' }}] }},\
           {{ name: v2, weight: 20, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes: [{{ name: shop, service: shop }}]",
        v1.url(),
        v2.url()
    ))
    .await;
    let mut to_v2 = 0;
    let n = 1000;
    for _ in 0..n {
        let response = client()
            .get(format!("{}/x", host.url))
            .send()
            .await
            .unwrap();
        let version = response.headers()["x-upshift-upstream"]
            .to_str()
            .unwrap()
            .to_owned();
        let upstream = response.headers()["x-upstream"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(version, format!("shop@{upstream}"));
        to_v2 += usize::from(upstream == "v2");
    }
    assert!((150..=250).contains(&to_v2), "v2 got {to_v2} of {n}");
}

#[tokio::test]
async fn api_keys_identify_consumers_on_protected_routes() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes:\n\
         - {{ name: open, paths: [/open], service: s }}\n\
         - {{ name: closed, paths: [/closed], service: s, auth: {{ api_key: {{ header: x-api-key }} }} }}\n\
         consumers: [{{ name: alice, api_keys: [alice-secret-1] }}]",
        up.url()
    ))
    .await;
    assert_eq!(get(&host, "h", "GET", "/open", &[]).await.0, 200);
    let (status, body) = get(&host, "h", "GET", "/closed", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_credentials"))
    );
    let (status, body) = get(
        &host,
        "h",
        "GET",
        "/closed",
        &[("x-api-key", "wrong-key-0")],
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (status, body) = get(
        &host,
        "h",
        "GET",
        "/closed",
        &[("x-api-key", "alice-secret-1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed_header(&body, "x-api-key"), ["alice-secret-1"]);
}

#[tokio::test]
async fn ai_routes_list_the_configured_model_aliases() {
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(
        "routes: [{ name: ai, kind: ai, paths: [/v1] }]\n\
         ai: { models: [{ alias: chat-default, provider: anthropic, model: claude-x }] }",
    )
    .await;
    let (status, body) = get(&host, "h", "GET", "/v1/models", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "chat-default");
    assert_eq!(body["data"][0]["owned_by"], "anthropic");
}
