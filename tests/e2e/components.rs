//! Components are separate files: one can be replaced alone, and one that
//! traps, spins or runs out of memory fails only its own request.

use crate::support;

use serde_json::Value;
use std::path::Path;
use support::upstream::Upstream;
use support::{Host, client, component, repo};

const COMPONENTS: [&str; 6] = ["gateway", "admin", "router", "auth", "splitter", "ai"];

/// A copy of the app (spin.toml and the built components) in `dir`.
fn copy_app(dir: &Path) {
    let release = dir.join("target/wasm32-wasip2/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(repo().join("spin.toml"), dir.join("spin.toml")).unwrap();
    for name in COMPONENTS {
        std::fs::copy(
            component(name),
            release.join(format!("upshift_{name}.wasm")),
        )
        .unwrap();
    }
}

fn faulty_router() -> std::path::PathBuf {
    let path = repo().join("target/wasm32-wasip2/release/upshift_faulty_router.wasm");
    assert!(path.exists(), "build the fixture first: tests/run.sh does");
    path
}

async fn route_of(host: &Host, path: &str) -> (u16, Option<String>, Value) {
    let answer = host.get(path, &[]).await;
    let route = answer.header("x-upshift-route").map(str::to_owned);
    (answer.status, route, answer.body)
}

#[tokio::test]
async fn replacing_one_component_file_takes_effect_on_restart() {
    let up = Upstream::start("up").await;
    let app = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    copy_app(app.path());
    let manifest = app.path().join("spin.toml");
    let release = app.path().join("target/wasm32-wasip2/release");
    let untouched: Vec<Vec<u8>> = ["gateway", "auth", "splitter", "ai", "admin"]
        .iter()
        .map(|n| std::fs::read(release.join(format!("upshift_{n}.wasm"))).unwrap())
        .collect();

    {
        let host = Host::start_with(&manifest, state.path(), &[]);
        host.apply(&up.only_route()).await;
        assert_eq!(route_of(&host, "/x").await.1.as_deref(), Some("all"));
    }
    std::fs::copy(faulty_router(), release.join("upshift_router.wasm")).unwrap();
    let host = Host::start_with(&manifest, state.path(), &[]);
    let (status, route, _) = route_of(&host, "/x").await;
    assert_eq!((status, route.as_deref()), (200, Some("all+faulty")));
    for (name, before) in ["gateway", "auth", "splitter", "ai", "admin"]
        .iter()
        .zip(untouched)
    {
        assert_eq!(
            std::fs::read(release.join(format!("upshift_{name}.wasm"))).unwrap(),
            before,
            "{name} changed"
        );
    }
}

#[tokio::test]
async fn a_failing_component_fails_only_its_request() {
    let up = Upstream::start("up").await;
    let app = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    copy_app(app.path());
    std::fs::copy(
        faulty_router(),
        app.path()
            .join("target/wasm32-wasip2/release/upshift_router.wasm"),
    )
    .unwrap();
    let host = Host::start_with(
        &app.path().join("spin.toml"),
        state.path(),
        &["--request-timeout", "2"],
    );
    host.apply(&up.only_route()).await;

    for fault in ["panic", "oom", "spin"] {
        let faulty = async {
            client()
                .get(format!("{}/__fault/{fault}", host.url))
                .header("x-request-id", format!("fault-{fault}"))
                .send()
                .await
                .unwrap()
        };
        // Good requests run beside the failing one, on every worker.
        let good = futures::future::join_all((0..16).map(|_| route_of(&host, "/fine")));
        let (response, good) = tokio::join!(faulty, good);
        assert_eq!(response.status(), 500, "{fault}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "component_failed", "{fault}: {body}");
        assert_eq!(
            body["error"]["request_id"],
            format!("fault-{fault}"),
            "{fault}: {body}"
        );
        for (status, route, _) in good {
            assert_eq!(
                (status, route.as_deref()),
                (200, Some("all+faulty")),
                "beside {fault}"
            );
        }
        // And after it, on a fresh instance.
        let (status, route, _) = route_of(&host, "/fine").await;
        assert_eq!(
            (status, route.as_deref()),
            (200, Some("all+faulty")),
            "after {fault}"
        );
    }
    let log = host.drain_log().join("\n");
    assert!(
        log.contains("fault-panic"),
        "the trap is logged with its request id:\n{log}"
    );
}

#[tokio::test]
async fn outbound_requests_are_limited_to_allowed_hosts() {
    let allowed = Upstream::start("allowed").await;
    let other = Upstream::start("other").await;
    let app = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    copy_app(app.path());
    let manifest = app.path().join("spin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        r#"allowed_outbound_hosts = ["http://*:*", "https://*:*"]"#,
        &format!(
            r#"allowed_outbound_hosts = ["http://127.0.0.1:{}"]"#,
            allowed.addr.port()
        ),
    );
    std::fs::write(&manifest, text).unwrap();
    let host = Host::start_with(&manifest, state.path(), &[]);
    host.apply(&format!(
        "services:\n\
         - {{ name: allowed, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}\n\
         - {{ name: other, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}\n\
         routes:\n\
         - {{ name: allowed, paths: [/allowed], service: allowed }}\n\
         - {{ name: other, paths: [/other], service: other }}",
        allowed.url(),
        other.url()
    ))
    .await;
    assert_eq!(route_of(&host, "/allowed").await.0, 200);
    let (status, _, body) = route_of(&host, "/other").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_not_allowed", "{body}");
}

#[test]
fn dependencies_get_capabilities_only_when_the_manifest_says_so() {
    let app = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    copy_app(app.path());
    let manifest = app.path().join("spin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let grant = r#", inherit_configuration = ["key_value_stores"]"#;
    assert!(text.contains(grant));
    // The splitter keeps counters: without the stores, its composition
    // fails, as it does on Spin.
    std::fs::write(
        &manifest,
        text.replacen(
            &format!(r#"{{ component = "splitter"{grant} }}"#),
            r#"{ component = "splitter" }"#,
            1,
        ),
    )
    .unwrap();
    let stderr = Host::refused(&manifest, state.path(), &[]);
    assert!(
        stderr.contains("imports 'wasi:keyvalue/atomics@0.2.0-draft2'")
            && stderr.contains(r#"inherit_configuration = ["key_value_stores"]"#),
        "{stderr}"
    );
}

#[tokio::test]
async fn variables_come_from_a_file_too() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("vars.toml");
    std::fs::write(&vars, "admin_token = \"from-the-file-123\"\n").unwrap();
    let host = Host::start_with(
        &repo().join("spin.toml"),
        state.path(),
        &["--variables-file", vars.to_str().unwrap()],
    );
    // The environment (set by the harness) wins over the file, as in Spin.
    let status = |token: &'static str| {
        let url = format!("{}/admin/config/validate", host.admin);
        async move {
            client()
                .post(url)
                .bearer_auth(token)
                .body("routes: []")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(support::ADMIN_TOKEN).await, 200);
    assert_eq!(status("from-the-file-123").await, 401);
    drop(host);

    let host = Host::start_without_token(
        &repo().join("spin.toml"),
        state.path(),
        &["--variables-file", vars.to_str().unwrap()],
    );
    let response = client()
        .post(format!("{}/admin/config/validate", host.admin))
        .bearer_auth("from-the-file-123")
        .body("routes: []")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
