//! Broken upstreams and bad requests get clear JSON errors with the request
//! id, and the gateway keeps serving.

use crate::support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::upstream::{Upstream, closed_port};
use support::{Host, client};

#[tokio::test]
async fn refused_and_hanging_upstreams_answer_502_and_504() {
    let up = Upstream::start("up").await;
    let dead = closed_port().await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services:\n\
         - {{ name: dead, versions: [{{ name: v1, targets: [{{ url: 'http://127.0.0.1:{dead}' }}] }}] }}\n\
         - {{ name: up, versions: [{{ name: v1, targets: [{{ url: '{up}' }}] }}] }}\n\
         routes:\n\
         - {{ name: dead, paths: [/dead], service: dead }}\n\
         - {{ name: slow, paths: [/hang], service: up, timeout_ms: 700 }}\n\
         - {{ name: up, paths: [/up], service: up }}",
        up = up.url()
    ))
    .await;

    let response = client()
        .get(format!("{}/dead", host.url))
        .header("x-request-id", "req-dead-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert_eq!(body["error"]["request_id"], "req-dead-1");

    let started = Instant::now();
    let response = client()
        .get(format!("{}/hang", host.url))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 504);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert!(body["error"]["request_id"].as_str().is_some());
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(5),
        "504 after {waited:?}, route timeout 700 ms"
    );

    // The gateway still serves.
    let response = client()
        .get(format!("{}/up/ok", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn upstream_status_codes_pass_through() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    for code in [201, 204, 400, 404, 500, 503] {
        let response = client()
            .get(format!("{}/status/{code}", host.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), code);
        assert_eq!(response.headers()["x-upstream"], "up");
    }
}

#[tokio::test]
async fn without_config_every_request_is_a_json_404() {
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    let response = client()
        .get(format!("{}/anything", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route_not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no config")
    );
}
