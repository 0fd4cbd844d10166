//! One component is replaced while traffic flows: pushed to the
//! registry, admitted before any traffic, put in force and rolled back on
//! every node sharing the store, without failing a request. The suite runs
//! on both lanes; the gateway component itself is upgraded on the
//! component lane, where it serves.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::redis::Redis;
use support::upstream::Upstream;
use support::{ADMIN_TOKEN, Host, cli, client, component, repo};

fn faulty_router() -> Vec<u8> {
    let path = repo().join("target/wasm32-wasip2/release/upshift_faulty_router.wasm");
    std::fs::read(&path).expect("build the fixture first: tests/run.sh does")
}

/// The gateway built with the label `next`: its answers carry
/// `x-upshift-build: next`.
fn labelled_gateway() -> Vec<u8> {
    let path = repo().join("target/wasm32-wasip2/release/upshift_gateway_next.wasm");
    std::fs::read(&path).expect("build the labelled gateway first: tests/run.sh does")
}

/// The entry of component `name` in a `GET /admin/components` listing.
fn entry<'a>(listing: &'a Value, name: &str) -> &'a Value {
    listing["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("`{name}` is listed: {listing}"))
}

/// `POST /admin/components/{name}/versions` with `bytes`.
async fn push(host: &Host, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    admin(host, &format!("{name}/versions"), bytes, "application/wasm").await
}

/// `POST /admin/components/{name}/upgrade` to `sha256`.
async fn upgrade(host: &Host, name: &str, sha256: &str) -> (u16, Value) {
    let body = json!({ "version": sha256 }).to_string().into_bytes();
    admin(host, &format!("{name}/upgrade"), body, "application/json").await
}

/// `POST /admin/components/{name}/rollback`.
async fn rollback(host: &Host, name: &str) -> (u16, Value) {
    admin(
        host,
        &format!("{name}/rollback"),
        Vec::new(),
        "application/json",
    )
    .await
}

async fn admin(host: &Host, path: &str, body: Vec<u8>, content_type: &str) -> (u16, Value) {
    let response = client()
        .post(format!("{}/admin/components/{path}", host.admin))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", content_type)
        .header("x-upshift-by", "tests")
        .header("x-upshift-reason", format!("test {path}"))
        .body(body)
        .send()
        .await
        .expect("the registry answers");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.expect("the registry answers JSON"),
    )
}

/// The route that served `GET /x`: its status and `x-upshift-route`.
async fn route_of(host: &Host) -> (u16, String) {
    let response = client()
        .get(format!("{}/x", host.url))
        .send()
        .await
        .expect("the gateway answers");
    (response.status().as_u16(), route_header(&response))
}

/// The `x-upshift-route` of `response` (empty when absent).
fn route_header(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-upshift-route")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Waits (up to `limit`) until `host` serves `GET /x` from route `route`;
/// returns how long that took.
async fn until_route(host: &Host, route: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, seen) = route_of(host).await;
        assert_eq!(status, 200);
        if seen == route {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{} still serves route {seen:?}, not {route:?}, after {limit:?}",
            host.url
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request of the load: when it was sent and answered, and what came
/// back (an error string when none did).
struct Answer {
    sent: Instant,
    answered: Instant,
    outcome: Result<(u16, String), String>,
}

#[tokio::test]
async fn upgrading_the_router_under_load_fails_no_request() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    upgrade_under_load(
        &host,
        "router",
        faulty_router(),
        route_header,
        ("all", "all+faulty"),
    )
    .await;
}

#[tokio::test]
async fn upgrading_the_gateway_under_load_fails_no_request() {
    let state = tempfile::tempdir().unwrap();
    let (_up, host) = on_the_component_lane(state.path()).await;
    upgrade_under_load(
        &host,
        "gateway",
        labelled_gateway(),
        build_label,
        ("", "next"),
    )
    .await;
}

/// A host serving the gateway component itself (the component lane) in
/// `state`, with one route to a new upstream.
async fn on_the_component_lane(state: &std::path::Path) -> (Upstream, Host) {
    let up = Upstream::start("up").await;
    let host = Host::start_with(&repo().join("spin.toml"), state, &["--lane", "component"]);
    host.apply(&up.only_route()).await;
    (up, host)
}

/// The `x-upshift-build` of `response` (empty when absent).
fn build_label(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-upshift-build")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Pushes `bytes` as a version of `name`, then upgrades to it and rolls it
/// back while 64 clients send requests: none fails, and every answer
/// `marker` reads says `before` until the upgrade, `after` from its answer
/// to the rollback, and `before` again from the rollback's answer.
async fn upgrade_under_load(
    host: &Host,
    name: &str,
    bytes: Vec<u8>,
    marker: fn(&reqwest::Response) -> String,
    (old, new): (&str, &str),
) {
    let (status, pushed) = push(host, name, bytes).await;
    assert_eq!(status, 201, "{pushed}");
    let sha256 = pushed["sha256"].as_str().unwrap().to_owned();
    // Pushed and admitted, not in force.
    let response = client()
        .get(format!("{}/x", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (response.status().as_u16(), marker(&response)),
        (200, old.to_owned())
    );
    // 64 connections for 9 s; the upgrade 3 s in, the rollback 6 s in.
    let start = Instant::now();
    let end = start + Duration::from_secs(9);
    let load: Vec<_> = (0..64)
        .map(|_| {
            let url = format!("{}/x", host.url);
            tokio::spawn(async move {
                let client = client();
                let mut answers = Vec::new();
                while Instant::now() < end {
                    let sent = Instant::now();
                    let outcome = match client.get(&url).send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let route = marker(&response);
                            match response.bytes().await {
                                Ok(_) => Ok((status, route)),
                                Err(error) => Err(format!("body: {error}")),
                            }
                        }
                        Err(error) => Err(error.to_string()),
                    };
                    answers.push(Answer {
                        sent,
                        answered: Instant::now(),
                        outcome,
                    });
                }
                answers
            })
        })
        .collect();
    tokio::time::sleep_until((start + Duration::from_secs(3)).into()).await;
    let upgrade_sent = Instant::now();
    let (status, body) = upgrade(host, name, &sha256).await;
    let upgraded = Instant::now();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["in_force"], sha256.as_str());
    tokio::time::sleep_until((start + Duration::from_secs(6)).into()).await;
    let rollback_sent = Instant::now();
    let (status, body) = rollback(host, name).await;
    let rolled_back = Instant::now();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["in_force"], Value::Null);

    let mut answers = Vec::new();
    for task in load {
        answers.extend(task.await.unwrap());
    }
    let failed: Vec<&String> = answers
        .iter()
        .filter_map(|a| a.outcome.as_ref().err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} requests failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let route = |a: &Answer| a.outcome.as_ref().unwrap().1.clone();
    assert!(
        answers.iter().all(|a| a.outcome.as_ref().unwrap().0 == 200),
        "every request succeeds"
    );
    // Before the upgrade, the manifest's router; between the upgrade's
    // answer and the rollback, the new one; after the rollback's answer,
    // the manifest's again: no request that starts after a switch answers
    // is served by the build before it.
    let before: Vec<_> = answers
        .iter()
        .filter(|a| a.answered < upgrade_sent)
        .collect();
    let during: Vec<_> = answers
        .iter()
        .filter(|a| a.sent > upgraded && a.answered < rollback_sent)
        .collect();
    let after: Vec<_> = answers.iter().filter(|a| a.sent > rolled_back).collect();
    for (phase, answered, expected) in [
        ("before the upgrade", &before, old),
        ("after the upgrade", &during, new),
        ("after the rollback", &after, old),
    ] {
        assert!(answered.len() > 100, "{} requests {phase}", answered.len());
        let other = answered.iter().filter(|a| route(a) != expected).count();
        assert_eq!(
            other,
            0,
            "{other} of {} requests {phase} were not served by {expected:?}",
            answered.len()
        );
    }
    eprintln!(
        "{} requests, none failed; upgrade answered in {:?}, rollback in {:?}",
        answers.len(),
        upgraded - upgrade_sent,
        rolled_back - rollback_sent
    );
}

#[tokio::test]
async fn refused_builds_leave_the_version_in_force_serving() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    let read = |name: &str| std::fs::read(component(name)).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        // A component of another world: it imports what the router's lacks.
        (
            "router",
            read("auth"),
            "it imports wasi:keyvalue/store@0.2.0-draft2, which the router-component world does not provide",
        ),
        // The right imports, the wrong exports.
        (
            "auth",
            read("router"),
            "it must export upshift:auth/auth@0.3.x; it exports upshift:router/router@0.2.0",
        ),
        (
            "router",
            b"\0asm but not really".to_vec(),
            "not a WebAssembly component",
        ),
        (
            "router",
            b"#!/bin/sh\n".to_vec(),
            "not a WebAssembly component",
        ),
    ];
    for (name, bytes, why) in cases {
        let (status, body) = push(&host, name, bytes).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "component_refused");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
        assert!(message.contains("the version in force stays"), "{message}");
        assert_eq!(route_of(&host).await, (200, "all".to_owned()));
    }

    // A build that traps in `load` on the config in force is refused when
    // pushed, and when the config changed after its push.
    let trapping = format!(
        "{}\n  - {{ name: fault-load, paths: [/fault], service: s }}",
        up.only_route().replace(
            "routes: [{ name: all, service: s }]",
            "routes:\n  - { name: all, service: s }"
        )
    );
    let (status, pushed) = push(&host, "router", faulty_router()).await;
    assert_eq!(status, 201, "{pushed}");
    let sha256 = pushed["sha256"].as_str().unwrap();
    host.apply(&trapping).await;
    let (status, body) = upgrade(&host, "router", sha256).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("does not load config version 2: wasm trap"),
        "{message}"
    );
    assert_eq!(route_of(&host).await, (200, "all".to_owned()));
    let (status, body) = push(&host, "router", faulty_router()).await;
    assert_eq!(status, 422, "{body}");

    // Unknown names and versions, and no token.
    let (status, body) = upgrade(&host, "router", &"0".repeat(64)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("component_version_not_found"))
    );
    let (status, body) = push(&host, "cache", faulty_router()).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("component_not_found"))
    );
    // The gateway component: refused as a router where it serves; on the
    // native lane, where the host orchestrates, it is no component to change.
    let (status, body) = push(&host, "gateway", faulty_router()).await;
    let (expected, why) = if support::lane() == "component" {
        (
            (422, json!("component_refused")),
            "it must export wasi:http/handler@0.3.x; it exports upshift:router/router@0.2.0",
        )
    } else {
        (
            (409, json!("component_not_served")),
            "does not serve requests on this node's native lane",
        )
    };
    assert_eq!((status, body["error"]["code"].clone()), expected, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "{message}");
    let (status, body) = rollback(&host, "router").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("nothing_to_roll_back"))
    );
    let anonymous = client()
        .get(format!("{}/admin/components", host.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    // Only the admitted push is in the history.
    let history = client()
        .get(format!("{}/admin/components/router/history", host.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let actions: Vec<&Value> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["action"])
        .collect();
    assert_eq!(actions, [&json!("push")], "{history}");
}

#[tokio::test]
async fn the_cli_pushes_upgrades_rolls_back_and_shows_the_history() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    let fixture = repo().join("target/wasm32-wasip2/release/upshift_faulty_router.wasm");
    let fixture = fixture.to_str().unwrap();
    let admin = ["--admin", host.admin.as_str()];
    let run = |args: &[&str]| {
        let args: Vec<&str> = args.iter().chain(&admin).copied().collect();
        let (ok, out, err) = cli(&args);
        assert!(ok, "upshift {args:?} failed: {err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };

    // `upgrade` with a file pushes it first.
    let upgraded = run(&[
        "component",
        "upgrade",
        "router",
        fixture,
        "--reason",
        "new matcher",
        "--by",
        "ana",
    ]);
    assert_eq!(route_of(&host).await, (200, "all+faulty".to_owned()));
    let sha256 = upgraded["in_force"].as_str().unwrap().to_owned();
    let listed = run(&["component", "list"]);
    let router = entry(&listed, "router");
    assert_eq!(
        (&router["name"], &router["in_force"], &router["serving"]),
        (&json!("router"), &json!(sha256), &json!(sha256))
    );
    assert_eq!(router["pushed"][0]["by"], "ana");
    run(&[
        "component",
        "rollback",
        "router",
        "--reason",
        "slower",
        "--by",
        "bo",
    ]);
    assert_eq!(route_of(&host).await, (200, "all".to_owned()));
    run(&[
        "component",
        "upgrade",
        "router",
        &sha256,
        "--reason",
        "fixed",
        "--by",
        "ana",
    ]);
    assert_eq!(route_of(&host).await, (200, "all+faulty".to_owned()));

    let history = run(&["component", "history", "router"]);
    let transitions: Vec<(String, Value, Value, String, String)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["action"].as_str().unwrap().to_owned(),
                t["from"].clone(),
                t["to"].clone(),
                t["by"].as_str().unwrap().to_owned(),
                t["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let sha = json!(sha256);
    assert_eq!(
        transitions,
        [
            (
                "push".into(),
                Value::Null,
                sha.clone(),
                "ana".into(),
                "new matcher".into()
            ),
            (
                "upgrade".into(),
                Value::Null,
                sha.clone(),
                "ana".into(),
                "new matcher".into()
            ),
            (
                "rollback".into(),
                sha.clone(),
                Value::Null,
                "bo".into(),
                "slower".into()
            ),
            (
                "upgrade".into(),
                Value::Null,
                sha.clone(),
                "ana".into(),
                "fixed".into()
            ),
        ]
    );

    // A restart keeps the version in force.
    drop(host);
    let host = Host::start(state.path());
    assert_eq!(route_of(&host).await, (200, "all+faulty".to_owned()));
    let (ok, _, err) = cli(&[
        "component",
        "push",
        "router",
        "/nonexistent.wasm",
        "--admin",
        &host.admin,
    ]);
    assert!(
        !ok && err.contains("cannot read /nonexistent.wasm"),
        "{err}"
    );
}

#[tokio::test]
async fn nodes_sharing_a_store_follow_an_upgrade() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let config = redis.runtime_config_file(dir.path());
    let node = |state: &std::path::Path| {
        Host::start_with(
            &repo().join("spin.toml"),
            state,
            &["--runtime-config-file", config.to_str().unwrap()],
        )
    };
    let states: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b) = (node(states[0].path()), node(states[1].path()));
    let up = Upstream::start("up").await;
    a.apply(&up.only_route()).await;
    let applied = Instant::now();
    while route_of(&b).await != (200, "all".to_owned()) {
        assert!(
            applied.elapsed() < Duration::from_secs(5),
            "the config reaches the other node"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, pushed) = push(&a, "router", faulty_router()).await;
    assert_eq!(status, 201, "{pushed}");
    let sha256 = pushed["sha256"].as_str().unwrap();
    // Every node compiles a pushed version ahead of its upgrade.
    let started = Instant::now();
    while entry(&registry_get(&b, "").await, "router")["pushed"][0]["ready"] != true {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the other node compiles the pushed version"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = upgrade(&a, "router", sha256).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(route_of(&a).await, (200, "all+faulty".to_owned()));
    let lag = until_route(&b, "all+faulty", Duration::from_secs(3)).await;
    eprintln!("the other node switched {lag:?} after the upgrade answered");

    // A node started afterwards serves the version in force from its
    // first request.
    let c = node(states[2].path());
    assert_eq!(route_of(&c).await, (200, "all+faulty".to_owned()));

    // A rollback through any node reaches the others.
    let (status, body) = rollback(&c, "router").await;
    assert_eq!(status, 200, "{body}");
    for host in [&a, &b] {
        until_route(host, "all", Duration::from_secs(3)).await;
    }
}

/// What one request of [`Load`] saw: its path, status, route and build
/// label.
type Seen = (&'static str, u16, String, String);

/// Requests from `concurrency` clients until stopped; every tenth client
/// request (counting per client) goes to `/__fault/panic` when `faults`.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Seen>>>,
}

impl Load {
    fn start(host: &Host, concurrency: usize, faults: bool) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..concurrency)
            .map(|_| {
                let (base, stop) = (host.url.clone(), stop.clone());
                tokio::spawn(async move {
                    let client = client();
                    let mut seen = Vec::new();
                    for i in 0.. {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let path = if faults && i % 10 == 9 {
                            "/__fault/panic"
                        } else {
                            "/x"
                        };
                        let response = client
                            .get(format!("{base}{path}"))
                            .send()
                            .await
                            .expect("the gateway answers");
                        let (route, label) = (route_header(&response), build_label(&response));
                        seen.push((path, response.status().as_u16(), route, label));
                        let _ = response.bytes().await;
                    }
                    seen
                })
            })
            .collect();
        Load { stop, tasks }
    }

    async fn stop(self) -> Vec<Seen> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut seen = Vec::new();
        for task in self.tasks {
            seen.extend(task.await.unwrap());
        }
        seen
    }
}

/// `GET /admin/components/{name}/{what}` on the registry.
async fn registry_get(host: &Host, path: &str) -> Value {
    let response = client()
        .get(format!("{}/admin/components/{path}", host.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

/// Waits (up to `limit`) until the canary of `router` is in `phase`.
async fn until_phase(host: &Host, name: &str, phase: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let status = registry_get(host, &format!("{name}/canary")).await;
        if status["canary"]["phase"] == phase {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "the canary is not {phase}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn actions(history: &Value) -> Vec<(String, String)> {
    history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["action"].as_str().unwrap().to_owned(),
                t["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_component_canary_that_traps_rolls_back_by_itself() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    let (_, pushed) = push(&host, "router", faulty_router()).await;
    let sha256 = pushed["sha256"].as_str().unwrap();
    // The faulty router traps on /__fault/panic, a tenth of the requests.
    let plan = json!({ "version": sha256, "steps": [{ "weight": 20, "pause": "1m" }] });
    let (status, body) = admin(
        &host,
        "router/canary",
        plan.to_string().into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let load = Load::start(&host, 16, true);
    let rolled_back = until_phase(&host, "router", "rolled_back", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = load.stop().await;

    let reason = rolled_back["canary"]["reason"].as_str().unwrap();
    // The native lane names the trap; the component lane knows that the
    // composition trapped.
    assert!(
        reason.contains("failed: wasm trap") || reason.contains("failed: it trapped"),
        "{reason}"
    );
    // Only requests the canary took and trapped on failed: the canary's
    // share of the faulting tenth, and at most one per client in flight
    // when its first trap stopped its traffic.
    let failed: Vec<&Seen> = seen.iter().filter(|s| s.1 != 200).collect();
    assert!(!failed.is_empty(), "the canary trapped at least once");
    assert!(
        failed.len() <= 16,
        "{} of {} requests failed",
        failed.len(),
        seen.len()
    );
    assert!(
        failed.iter().all(|s| s.0 == "/__fault/panic" && s.1 == 500),
        "{failed:?}"
    );
    // Served by the version in force again.
    assert_eq!(route_of(&host).await, (200, "all".to_owned()));
    let listed = registry_get(&host, "").await;
    assert_eq!(entry(&listed, "router")["canary"], Value::Null);
    assert_eq!(entry(&listed, "router")["in_force"], Value::Null);
    let history = registry_get(&host, "router/history").await;
    assert_eq!(
        actions(&history)[1..],
        [
            ("canary".into(), "tests".into()),
            ("rollback".into(), "analysis".into())
        ]
    );
}

#[tokio::test]
async fn a_healthy_component_canary_promotes_by_itself() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    let fixture = repo().join("target/wasm32-wasip2/release/upshift_faulty_router.wasm");
    let load = Load::start(&host, 8, false);
    let (ok, out, err) = cli(&[
        "component",
        "canary",
        "router",
        fixture.to_str().unwrap(),
        "--steps",
        "50,100",
        "--pause",
        "1s",
        "--min-requests",
        "50",
        // The build is the same code: only noise (tests of other suites
        // share the machine) could make its p99 differ, and the latency
        // gate is tested on its own.
        "--max-p99-ratio",
        "10",
        "--reason",
        "new matcher",
        "--admin",
        &host.admin,
    ]);
    assert!(ok, "{err}");
    let started: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(started["action"], "canary");
    let promoted = until_phase(&host, "router", "promoted", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = load.stop().await;

    assert!(seen.iter().all(|s| s.1 == 200), "no request fails");
    let on = |route: &str| seen.iter().filter(|s| s.2 == route).count();
    assert!(
        on("all") > 50 && on("all+faulty") > 50,
        "both sides served: {} and {}",
        on("all"),
        on("all+faulty")
    );
    let sha256 = promoted["canary"]["spec"]["canary"].as_str().unwrap();
    let listed = registry_get(&host, "").await;
    assert_eq!(entry(&listed, "router")["in_force"], sha256);
    assert_eq!(entry(&listed, "router")["canary"], Value::Null);
    assert_eq!(route_of(&host).await, (200, "all+faulty".to_owned()));
    let history = registry_get(&host, "router/history").await;
    let who: Vec<(String, String)> = actions(&history);
    assert_eq!(
        who[1..],
        [
            ("canary".into(), who[1].1.clone()),
            ("step".into(), "analysis".into()),
            ("promote".into(), "analysis".into()),
        ]
    );
    let step_reason = history["history"][2]["reason"].as_str().unwrap();
    assert!(
        step_reason.starts_with("step 1 of 2 (50%) passed"),
        "{step_reason}"
    );

    // Another canary of the version in force is refused; rollback goes
    // back to the manifest's build.
    let plan = json!({ "version": sha256 });
    let (status, _) = admin(
        &host,
        "router/canary",
        plan.to_string().into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = admin(&host, "router/promote", Vec::new(), "application/json").await;
    assert_eq!(status, 409);
    let (status, body) = rollback(&host, "router").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(route_of(&host).await, (200, "all".to_owned()));
}

#[tokio::test]
async fn up_watch_rebuilds_a_changed_component_and_swaps_it_in() {
    let up = Upstream::start("up").await;
    let app = tempfile::tempdir().unwrap();
    let release = app.path().join("target/wasm32-wasip2/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::create_dir_all(app.path().join("src/router")).unwrap();
    for name in ["gateway", "admin", "router", "auth", "splitter", "ai"] {
        std::fs::copy(
            component(name),
            release.join(format!("upshift_{name}.wasm")),
        )
        .unwrap();
    }
    // The router's "build" puts the faulty router in place.
    let faulty = repo().join("target/wasm32-wasip2/release/upshift_faulty_router.wasm");
    let manifest = std::fs::read_to_string(repo().join("spin.toml")).unwrap();
    let (head, tail) = manifest.split_once("[component.router.build]\n").unwrap();
    let rest = tail.split_once("\n\n").map_or("", |(_, rest)| rest);
    let manifest = format!(
        "{head}[component.router.build]\ncommand = \"cp {} target/wasm32-wasip2/release/upshift_router.wasm\"\nwatch = [\"src/router/*.rs\"]\n\n{rest}",
        faulty.display()
    );
    std::fs::write(app.path().join("spin.toml"), manifest).unwrap();
    let state = tempfile::tempdir().unwrap();
    let host = Host::start_with(&app.path().join("spin.toml"), state.path(), &["--watch"]);
    host.apply(&up.only_route()).await;
    assert_eq!(route_of(&host).await, (200, "all".to_owned()));

    std::fs::write(app.path().join("src/router/lib.rs"), "// a change\n").unwrap();
    // On the component lane the swap compiles the policy components (to
    // load the config into the new router) and the whole composition, cold
    // in a fresh state directory: allow for a slow machine.
    let lag = until_route(&host, "all+faulty", Duration::from_secs(90)).await;
    eprintln!("rebuilt and swapped in {lag:?}");
    let history = registry_get(&host, "router/history").await;
    let last = history["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (&last["action"], &last["by"]),
        (&json!("upgrade"), &json!("watch"))
    );
    assert!(
        last["reason"].as_str().unwrap().ends_with("lib.rs changed"),
        "{last}"
    );
}

#[tokio::test]
async fn a_canary_of_the_gateway_splits_its_answers_and_promotes() {
    let state = tempfile::tempdir().unwrap();
    let (_up, host) = on_the_component_lane(state.path()).await;
    let (status, pushed) = push(&host, "gateway", labelled_gateway()).await;
    assert_eq!(status, 201, "{pushed}");
    let sha256 = pushed["sha256"].as_str().unwrap();
    let load = Load::start(&host, 8, false);
    let plan = json!({
        "version": sha256,
        "steps": [{ "weight": 50, "pause": "1s" }, { "weight": 100, "pause": "1s" }],
        "analysis": { "min_requests": 50, "max_error_rate_increase": 0.01 },
    });
    let (status, body) = admin(
        &host,
        "gateway/canary",
        plan.to_string().into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    until_phase(&host, "gateway", "promoted", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = load.stop().await;

    assert!(seen.iter().all(|s| s.1 == 200), "no request fails");
    let on = |label: &str| seen.iter().filter(|s| s.3 == label).count();
    assert!(
        on("") > 50 && on("next") > 50,
        "both builds served: {} and {}",
        on(""),
        on("next")
    );
    let listed = registry_get(&host, "").await;
    assert_eq!(entry(&listed, "gateway")["in_force"], sha256);
    let promoted = Instant::now();
    while entry(&registry_get(&host, "").await, "gateway")["serving"] != sha256 {
        assert!(
            promoted.elapsed() < Duration::from_secs(5),
            "the node serves the promoted build"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = client()
        .get(format!("{}/x", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(build_label(&response), "next");
    let history = registry_get(&host, "gateway/history").await;
    assert_eq!(
        actions(&history)[1..],
        [
            ("canary".into(), "tests".into()),
            ("step".into(), "analysis".into()),
            ("promote".into(), "analysis".into()),
        ]
    );
}
