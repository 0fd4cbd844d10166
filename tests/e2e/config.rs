//! Config documents through the CLI and the admin API: apply, read back,
//! reject whole, and survive a restart.

use crate::support;

use serde_json::Value;
use support::upstream::Upstream;
use support::{ADMIN_TOKEN, Host, cli, client};

fn good(up: &Upstream, path: &str) -> String {
    format!(
        "# orders through the gateway\n\
         services:\n\
         - name: orders\n\
         \x20 versions:\n\
         \x20   - name: v1\n\
         \x20     targets: [{{ url: '{}' }}]\n\
         routes:\n\
         - {{ name: orders, paths: ['{path}'], service: orders }}\n",
        up.url()
    )
}

async fn status_of(host: &Host, path: &str) -> u16 {
    client()
        .get(format!("{}{path}", host.url))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An upstream, a host with its state directory, and a folder for the
/// documents the CLI reads.
async fn for_the_cli() -> (Upstream, tempfile::TempDir, Host, tempfile::TempDir) {
    let up = Upstream::start("orders").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    (up, state, host, tempfile::tempdir().unwrap())
}

/// Writes `text` to `dir/name`: its path.
fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn apply_get_and_reject_through_the_cli() {
    let (up, _state, host, dir) = for_the_cli().await;
    let file = |name: &str, text: &str| write_file(dir.path(), name, text);

    let gateway = file("gateway.yaml", &good(&up, "/orders"));
    let (ok, out, err) = cli(&["apply", "-f", &gateway, "--admin", &host.admin]);
    assert!(ok, "apply failed: {out} {err}");
    assert!(out.contains("version"), "apply output: {out}");
    assert_eq!(status_of(&host, "/orders/1").await, 200);

    let (ok, out, err) = cli(&["get", "routes", "--admin", &host.admin]);
    assert!(ok, "get failed: {err}");
    let routes: Value = serde_json::from_str(&out).expect("get prints JSON");
    assert_eq!(routes["routes"][0]["name"], "orders");
    let (ok, out, _) = cli(&["get", "config", "--admin", &host.admin]);
    assert!(ok);
    let config: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(config["version"], 1);
    assert_eq!(config["config"]["services"][0]["versions"][0]["name"], "v1");

    // Each bad document is rejected whole, with where and what.
    let rejects = [
        ("unknown-field.yaml", good(&up, "/orders").replace("paths:", "pathz:"), "routes[0]", "unknown field `pathz`"),
        ("undefined-service.yaml", good(&up, "/orders").replace("service: orders", "service: payments"), "routes[0].service", "unknown service \"payments\""),
        ("malformed.yaml", "routes: [\n  {name: a,\n".to_owned(), "", "line"),
        ("bad-url.json", r#"{"services":[{"name":"s","versions":[{"name":"v","targets":[{"url":"ftp://x"}]}]}]}"#.to_owned(), "services[0].versions[0].targets[0].url", "must start with http://, https://"),
    ];
    for (name, text, path, message) in rejects {
        let bad = file(name, &text);
        let (ok, out, err) = cli(&["apply", "-f", &bad, "--admin", &host.admin]);
        let said = format!("{out}{err}");
        assert!(!ok, "{name} was accepted: {said}");
        assert!(
            said.contains(path) && said.contains(message),
            "{name}: {said}"
        );
        assert!(said.contains(name), "{name}: the file is not named: {said}");
    }
    // The running config is untouched.
    assert_eq!(status_of(&host, "/orders/1").await, 200);
    let (_, out, _) = cli(&["get", "config", "--admin", &host.admin]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["version"], 1);

    // A wrong admin token is refused.
    let response = client()
        .put(format!("{}/admin/config", host.admin))
        .bearer_auth(format!("{ADMIN_TOKEN}-wrong"))
        .body(good(&up, "/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn config_survives_a_restart() {
    let up = Upstream::start("orders").await;
    let state = tempfile::tempdir().unwrap();
    {
        let host = Host::start(state.path());
        assert_eq!(host.apply(&good(&up, "/first")).await, 1);
        assert_eq!(host.apply(&good(&up, "/second")).await, 2);
        assert_eq!(status_of(&host, "/second").await, 200);
    }
    let host = Host::start(state.path());
    assert_eq!(status_of(&host, "/second").await, 200);
    assert_eq!(status_of(&host, "/first").await, 404);
    // Numbering continues and old versions can be activated again.
    assert_eq!(host.apply(&good(&up, "/third")).await, 3);
    let response = client()
        .post(format!("{}/admin/config/versions/1/activate", host.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(status_of(&host, "/first").await, 200);
    assert_eq!(status_of(&host, "/third").await, 404);
}

/// The name and nice value in a `/proc/.../stat` line.
fn name_and_nice(stat: &str) -> Option<(String, i32)> {
    // `pid (name) state …`: after the name, nice is the 17th field.
    let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
    let nice = rest.split(' ').nth(16)?.parse().ok()?;
    Some((name.to_owned(), nice))
}

/// The nice value of each of `pid`'s threads, by thread name.
fn thread_priorities(pid: u32) -> Vec<(String, i32)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc task list");
    tasks
        .filter_map(|task| {
            name_and_nice(&std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_apply_runs_beside_traffic_below_the_workers_priority() {
    let up = Upstream::start("orders").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&good(&up, "/orders")).await;

    // About 1 MB: the orders route and 10,000 others.
    let mut large = good(&up, "/orders");
    for i in 0..10_000 {
        large.push_str(&format!(
            "- {{ name: r{i}, paths: ['/api/v1/resource{i}'], methods: [GET, POST], service: orders }}\n"
        ));
    }
    let traffic = {
        let url = format!("{}/orders/1", host.url);
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..200 {
                let response = client().get(&url).send().await.unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    };
    let version = host.apply(&large).await;
    assert_eq!(version, 2);
    let statuses = traffic.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(status_of(&host, "/api/v1/resource9999").await, 200);

    let priorities = thread_priorities(host.pid());
    let of = |prefix: &str| -> Vec<i32> {
        priorities
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, nice)| *nice)
            .collect()
    };
    let (workers, control) = (of("worker-"), of("control"));
    assert!(!workers.is_empty() && !control.is_empty(), "{priorities:?}");
    // The workers keep the priority the host started with (this test's),
    // the control plane runs at nice 10 unless that was lower already.
    let own = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let started = name_and_nice(&own).unwrap().1;
    assert!(workers.iter().all(|n| *n == started), "{priorities:?}");
    assert!(
        control.iter().all(|n| *n == started.max(10)),
        "{priorities:?}"
    );
}

#[tokio::test]
async fn oversized_documents_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    let huge = format!("# {}\nroutes: []\n", "x".repeat(5 * 1024 * 1024));
    let (status, body) = host.put_config(&huge).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "document_too_large");
}

#[tokio::test]
async fn the_demo_config_is_valid_and_serves_what_the_demo_promises() {
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    let template = std::fs::read_to_string(support::repo().join("host/demo/upshift.yaml")).unwrap();
    host.apply(
        &template
            .replace("${V1_PORT}", &v1.addr.port().to_string())
            .replace("${V2_PORT}", &v2.addr.port().to_string()),
    )
    .await;
    let get = |path: &str, header: Option<(&str, &str)>| {
        let mut request = client().get(format!("{}{path}", host.url));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send()
    };
    let tester = get("/orders", Some(("x-version", "v2"))).await.unwrap();
    assert_eq!(tester.headers()["x-upstream"], "v2");
    let legacy = get("/legacy/orders", None).await.unwrap();
    assert_eq!(legacy.headers()["x-upstream"], "v1");
    assert!(legacy.headers().contains_key("deprecation"));
    assert!(legacy.headers().contains_key("sunset"));
    assert_eq!(get("/api/items", None).await.unwrap().status(), 401);
    let keyed = get("/api/items", Some(("x-api-key", "demo-key-123456")))
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
}

#[tokio::test]
async fn diff_shows_what_a_document_would_change_and_apply_asks_first() {
    let (up, _state, host, dir) = for_the_cli().await;
    let file = |name: &str, text: &str| write_file(dir.path(), name, text);
    let first = file("first.yaml", &good(&up, "/orders"));
    let (ok, out, _) = cli(&["diff", "-f", &first, "--admin", &host.admin]);
    assert!(ok);
    assert!(out.contains("against version 0:"), "{out}");
    assert!(out.contains("+ routes: "), "{out}");
    let (ok, out, err) = cli(&["apply", "-f", &first, "--admin", &host.admin]);
    assert!(ok, "{out}{err}");

    let next = file(
        "next.yaml",
        &format!(
            "services:\n\
             - name: orders\n\
             \x20 versions:\n\
             \x20   - {{ name: v1, weight: 80, targets: [{{ url: '{0}' }}] }}\n\
             \x20   - {{ name: v2, weight: 20, targets: [{{ url: '{0}' }}] }}\n\
             routes:\n\
             - {{ name: orders, paths: ['/orders'], service: orders, auth: {{ api_key: {{}} }} }}\n\
             consumers:\n\
             - {{ name: carol, api_keys: [carol-secret-key-31] }}\n",
            up.url()
        ),
    );
    let (ok, out, err) = cli(&["diff", "-f", &next, "--admin", &host.admin]);
    assert!(ok, "{err}");
    for line in [
        "against version 1:",
        "+ services.orders.versions.v1.weight: 80",
        "+ services.orders.versions.v2: ",
        "+ routes.orders.auth: ",
        "\"name\":\"carol\"",
        "(1 hidden)",
    ] {
        assert!(out.contains(line), "{line} is missing from:\n{out}");
    }
    assert!(
        !out.contains("carol-secret-key-31"),
        "a key was shown: {out}"
    );

    // Without a terminal to ask on, apply --diff applies nothing unless
    // told yes.
    let (ok, out, err) = cli(&["apply", "-f", &next, "--diff", "--admin", &host.admin]);
    assert!(!ok, "{out}");
    assert!(err.contains("pass --yes"), "{err}");
    let (_, out, _) = cli(&["get", "config", "--admin", &host.admin]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["version"], 1);
    let (ok, out, err) = cli(&[
        "apply",
        "-f",
        &next,
        "--diff",
        "--yes",
        "--admin",
        &host.admin,
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("+ services.orders.versions.v1.weight"),
        "{out}"
    );
    let (ok, out, _) = cli(&["diff", "-f", &next, "--admin", &host.admin]);
    assert!(ok);
    assert!(out.contains("no changes against version 2"), "{out}");
}
