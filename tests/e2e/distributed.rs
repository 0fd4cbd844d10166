//! Several `upshift up` nodes sharing their key-value store on one real
//! Redis through a Spin runtime config file: config applied on one node is
//! served by the others, version numbers and the current version stay
//! consistent under concurrent applies, a rollback decided on one node
//! stops the canary on both, everything survives restarts, and a Redis
//! outage fails requests with a JSON 5xx (never a hang) until it heals.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::Value;
use support::peers::Receiver;
use support::redis::Redis;
use support::traffic::{admin_post, drive_to_rollback};
use support::upstream::{Behavior, Upstream, canary_service_without_ejection};
use support::{ADMIN_TOKEN, Host, client, repo};

/// A config document routing `path` to `upstream`.
fn routing(upstream: &Upstream, path: &str) -> String {
    format!(
        "services: [{{ name: orders, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes: [{{ name: orders, paths: ['{path}'], service: orders }}]",
        upstream.url()
    )
}

/// A node with its own state dir, on the runtime config file `config`.
fn node(state: &Path, config: &Path) -> Host {
    Host::start_with(
        &repo().join("spin.toml"),
        state,
        &["--runtime-config-file", config.to_str().unwrap()],
    )
}

async fn get(host: &Host, path: &str) -> (u16, Value) {
    let answer = host.get(path, &[]).await;
    (answer.status, answer.body)
}

/// The version in force, as the admin API reports it.
async fn current_version(host: &Host) -> u64 {
    let response = client()
        .get(format!("{}/admin/config", host.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["version"].as_u64().expect("a version")
}

/// Polls `GET path` until it answers `status`, for at most `limit`.
async fn wait_for(host: &Host, path: &str, status: u16, limit: Duration) -> (u16, Value) {
    let deadline = Instant::now() + limit;
    loop {
        let answer = get(host, path).await;
        if answer.0 == status || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How soon a node serves a version applied through another node: the
/// component lane reads the version in force per request, the native lane
/// every 100 ms (and then loads it off the request path).
const PROPAGATION: Duration = Duration::from_secs(2);

/// What `path` answers on `host` once a version applied elsewhere reached
/// it: the first `status` answer within [`PROPAGATION`], else the last.
async fn served(host: &Host, path: &str, status: u16) -> (u16, Value) {
    wait_for(host, path, status, PROPAGATION).await
}

struct Cluster {
    redis: Redis,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Cluster {
        let redis = Redis::start();
        let dir = tempfile::tempdir().unwrap();
        let config = redis.runtime_config_file(dir.path());
        Cluster {
            redis,
            config,
            _dir: dir,
        }
    }
}

#[tokio::test]
async fn config_applied_on_one_node_is_served_by_the_other() {
    let cluster = Cluster::new();
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(state_a.path(), &cluster.config);
    let b = node(state_b.path(), &cluster.config);
    let up = Upstream::start("orders").await;

    // B has loaded "no config" before A applies one.
    let (status, body) = get(&b, "/orders/1").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(a.apply(&routing(&up, "/orders")).await, 1);

    // B serves it as soon as it sees it.
    let (status, body) = served(&b, "/orders/1", 200).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/orders/1");

    // And the other way round.
    assert_eq!(b.apply(&routing(&up, "/payments")).await, 2);
    assert_eq!(served(&a, "/payments/7", 200).await.0, 200);
    assert_eq!(get(&a, "/orders/1").await.0, 404);
    assert_eq!(current_version(&a).await, 2);

    // Keys are stored as they are; counters as decimal text.
    assert_eq!(cluster.redis.get("config/seq").as_deref(), Some("2"));
    assert_eq!(cluster.redis.get("config/current").as_deref(), Some("2"));
    assert!(cluster.redis.get("config/versions/1").is_some());
}

#[tokio::test]
async fn a_rollback_decided_on_one_node_stops_the_canary_on_both() {
    let cluster = Cluster::new();
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(state_a.path(), &cluster.config);
    let b = node(state_b.path(), &cluster.config);
    let stable = Upstream::start("stable").await;
    let canary = Upstream::start_with("canary", Behavior::Status(500)).await;
    a.apply(&canary_service_without_ejection(&stable, &canary))
        .await;
    assert_eq!(served(&b, "/r", 200).await.0, 200);
    let hooks = Receiver::start().await;
    let (status, body) = admin_post(
        &a,
        "/admin/rollouts",
        &format!(
            "service: s\ncanary: v2\nsteps: [{{ weight: 50, pause: 10m }}]\n\
             analysis: {{ min_requests: 20, max_error_rate: 0.05 }}\n\
             webhooks:\n\
             - {{ name: back, type: rollback, url: '{}' }}\n\
             - {{ name: all, type: event, url: '{}' }}\n",
            hooks.url("/rollback"),
            hooks.url("/events")
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    drive_to_rollback(&[&a, &b], &canary, 20)
        .await
        .print("two nodes on Redis");

    // Both nodes saw the hooks due; the store's lease and the state's
    // `hooked` revision let exactly one tell each transition.
    let started = Instant::now();
    while hooks.taken("/rollback").is_empty() || hooks.taken("/events").len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "hooks not told"
        );
        join_all([served(&a, "/r", 200), served(&b, "/r", 200)]).await;
    }
    for _ in 0..20 {
        join_all([served(&a, "/r", 200), served(&b, "/r", 200)]).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hooks.taken("/rollback").len(),
        1,
        "{:?}",
        hooks.taken("/rollback")
    );
    let events: Vec<String> = hooks
        .taken("/events")
        .iter()
        .map(|d| {
            d.body["transition"]["to_phase"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(events, ["progressing", "rolled_back"]);
}

#[tokio::test]
async fn concurrent_applies_on_both_nodes_get_distinct_versions() {
    let cluster = Cluster::new();
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(state_a.path(), &cluster.config);
    let b = node(state_b.path(), &cluster.config);
    let up = Upstream::start("orders").await;

    const EACH: usize = 8;
    let documents: Vec<String> = (0..2 * EACH)
        .map(|i| routing(&up, &format!("/p{i}")))
        .collect();
    let applies = documents.iter().enumerate().map(|(i, document)| {
        let host = if i % 2 == 0 { &a } else { &b };
        host.put_config(document)
    });
    let answers = join_all(applies).await;
    let mut versions: Vec<u64> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["version"].as_u64().unwrap()
        })
        .collect();
    let path_of_newest = format!(
        "/p{}",
        versions
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| **v)
            .unwrap()
            .0
    );
    versions.sort_unstable();
    assert_eq!(versions, (1..=2 * EACH as u64).collect::<Vec<_>>());

    // Every apply moved the current version forward only: the newest wins,
    // on both nodes.
    let newest = 2 * EACH as u64;
    assert_eq!(current_version(&a).await, newest);
    assert_eq!(current_version(&b).await, newest);
    assert_eq!(served(&a, &path_of_newest, 200).await.0, 200);
    assert_eq!(served(&b, &path_of_newest, 200).await.0, 200);
    assert_eq!(get(&b, "/elsewhere").await.0, 404);
}

#[tokio::test]
async fn restarting_every_node_keeps_everything() {
    let cluster = Cluster::new();
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let up = Upstream::start("orders").await;
    {
        let a = node(state_a.path(), &cluster.config);
        let b = node(state_b.path(), &cluster.config);
        assert_eq!(a.apply(&routing(&up, "/first")).await, 1);
        assert_eq!(b.apply(&routing(&up, "/second")).await, 2);
        assert_eq!(served(&a, "/second", 200).await.0, 200);
    }
    let a = node(state_a.path(), &cluster.config);
    let b = node(state_b.path(), &cluster.config);
    assert_eq!(get(&a, "/second").await.0, 200);
    assert_eq!(get(&b, "/first").await.0, 404);
    // Numbering goes on where it was, whichever node applies.
    assert_eq!(b.apply(&routing(&up, "/third")).await, 3);
    assert_eq!(served(&a, "/third", 200).await.0, 200);

    // A new node with an empty state dir joins with everything.
    let state_c = tempfile::tempdir().unwrap();
    let c = node(state_c.path(), &cluster.config);
    assert_eq!(current_version(&c).await, 3);
    assert_eq!(get(&c, "/third").await.0, 200);
}

#[tokio::test]
async fn a_redis_outage_fails_requests_with_json_errors_until_it_heals() {
    let mut cluster = Cluster::new();
    let state = tempfile::tempdir().unwrap();
    let host = node(state.path(), &cluster.config);
    let up = Upstream::start("orders").await;
    assert_eq!(host.apply(&routing(&up, "/orders")).await, 1);
    assert_eq!(get(&host, "/orders").await.0, 200);

    // Redis is gone: a clear 503, at once. The component lane fails at the
    // version in force, the native lane (which has it loaded) at the split
    // state.
    cluster.redis.stop();
    let unavailable = match support::lane().as_str() {
        "native" => "state_store_unavailable",
        _ => "config_store_unavailable",
    };
    let started = Instant::now();
    let (status, body) = get(&host, "/orders").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], unavailable);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Redis at 127.0.0.1"),
        "{body}"
    );
    assert!(body["error"]["request_id"].is_string(), "{body}");
    let (status, body) = host.put_config(&routing(&up, "/later")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Back (with its data): served again, without a restart of the host.
    cluster.redis.restart();
    let (status, body) = wait_for(&host, "/orders", 200, Duration::from_secs(5)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(host.apply(&routing(&up, "/later")).await, 2);
    assert_eq!(get(&host, "/later").await.0, 200);

    // Hung: the connection is accepted but nothing answers. The request
    // fails after the response timeout instead of hanging.
    cluster.redis.pause();
    let started = Instant::now();
    let (status, body) = get(&host, "/later").await;
    let waited = started.elapsed();
    cluster.redis.resume();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], unavailable);
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );

    let (status, body) = wait_for(&host, "/later", 200, Duration::from_secs(5)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(current_version(&host).await, 2);
}

#[tokio::test]
async fn a_node_may_start_before_redis_and_serves_once_it_is_up() {
    let mut cluster = Cluster::new();
    cluster.redis.stop();
    let state = tempfile::tempdir().unwrap();
    let host = node(state.path(), &cluster.config);
    let (status, body) = get(&host, "/anything").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        host.drain_log()
            .iter()
            .any(|line| line.contains("WARN") && line.contains("Redis")),
        "no warning about Redis"
    );
    cluster.redis.restart();
    let (status, body) = wait_for(&host, "/anything", 404, Duration::from_secs(5)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "route_not_found");
}

#[test]
fn bad_runtime_config_files_stop_the_start_with_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cases = [
        (
            "[key_value_store.default]\ntype = \"memcached\"\n",
            "key_value_store.default.type",
            "unknown store type `memcached`",
        ),
        (
            "[key_value_store.default]\ntype = \"redis\"\n",
            "key_value_store.default.url",
            "missing",
        ),
        (
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:1\"\ntimeout = 3\n",
            "key_value_store.default.timeout",
            "unknown field",
        ),
    ];
    for (i, (text, field, message)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("runtime-config-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let err = up_fails(&state, &file);
        assert!(err.contains(&format!("runtime-config-{i}.toml")), "{err}");
        assert!(err.contains(field) && err.contains(message), "{err}");
    }
}

/// Runs `upshift up` with the runtime config `file`, expecting it to exit
/// with an error; returns what it printed on stderr.
fn up_fails(state: &Path, file: &Path) -> String {
    let file = file.to_str().expect("a UTF-8 path");
    Host::refused(
        &repo().join("spin.toml"),
        state,
        &["--runtime-config-file", file],
    )
}

#[tokio::test]
async fn labels_the_app_does_not_use_are_reported() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n\n\
             [key_value_store.sessions]\ntype = \"spin\"\npath = \"sessions.redb\"\n",
            cluster.redis.url()
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let host = node(state.path(), &config);
    assert_eq!(get(&host, "/x").await.0, 404);
    let log = host.drain_log();
    assert!(
        log.iter()
            .any(|line| line.contains("WARN") && line.contains("`sessions`")),
        "{log:#?}"
    );
    // Its file is relative to the runtime config file.
    assert!(dir.path().join("sessions.redb").exists());
}

/// The state and audit trail of the rollout of `service`.
async fn rollout_of(host: &Host, service: &str) -> Value {
    let (status, body) =
        support::traffic::admin_get(host, &format!("/admin/rollouts/{service}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn rollouts_move_exactly_once_when_nodes_race() {
    use support::traffic::{admin_post, send_many};
    use support::upstream::Behavior;

    let cluster = Cluster::new();
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(state_a.path(), &cluster.config);
    let b = node(state_b.path(), &cluster.config);
    let stable = Upstream::start("stable").await;
    let healthy = Upstream::start("healthy").await;
    let failing = Upstream::start_with("failing", Behavior::FailEvery(5)).await;
    let version = |name: &str, weight: u32, up: &Upstream| {
        format!(
            "{{ name: {name}, weight: {weight}, targets: [{{ url: '{}' }}] }}",
            up.url()
        )
    };
    a.apply(&format!(
        "services:\n\
         - {{ name: good, versions: [{}, {}] }}\n\
         - {{ name: bad, versions: [{}, {}] }}\n\
         routes:\n\
         - {{ name: good, paths: [/good], service: good }}\n\
         - {{ name: bad, paths: [/bad], service: bad }}\n",
        version("v1", 100, &stable),
        version("v2", 0, &healthy),
        version("v1", 100, &stable),
        version("v2", 0, &failing),
    ))
    .await;
    assert_eq!(served(&b, "/good", 200).await.0, 200);
    // Both nodes check every 20 ms, so nearly every request races to move.
    for service in ["good", "bad"] {
        let plan = format!(
            "{{\"service\": \"{service}\", \"canary\": \"v2\", \"steps\": [\
              {{\"weight\": 30, \"pause\": \"200ms\"}}, {{\"weight\": 60, \"pause\": \"200ms\"}}, \
              {{\"weight\": 90, \"pause\": \"200ms\"}}], \
              \"analysis\": {{\"min_requests\": 30, \"max_error_rate\": 0.05, \"interval\": \"20ms\"}}}}"
        );
        let (status, body) = admin_post(&a, "/admin/rollouts", &plan).await;
        assert_eq!(status, 201, "{body}");
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    loop {
        let (ga, gb, ba, bb) = tokio::join!(
            send_many(&a, "/good", 40, 8, |_, r| r),
            send_many(&b, "/good", 40, 8, |_, r| r),
            send_many(&a, "/bad", 40, 8, |_, r| r),
            send_many(&b, "/bad", 40, 8, |_, r| r),
        );
        sent += ga.len() + gb.len() + ba.len() + bb.len();
        let (good, bad) = (rollout_of(&b, "good").await, rollout_of(&a, "bad").await);
        if good["rollout"]["phase"] != "progressing" && bad["rollout"]["phase"] != "progressing" {
            assert_eq!(good["rollout"]["phase"], "promoted", "{good}");
            assert_eq!(bad["rollout"]["phase"], "rolled_back", "{bad}");
            // One transition per move, each starting where the last ended.
            let chain = |status: &Value, expected: usize| {
                let history = status["history"].as_array().unwrap().clone();
                assert_eq!(history.len(), expected, "{history:#?}");
                for pair in history.windows(2) {
                    assert_eq!(pair[0]["to_phase"], pair[1]["from_phase"]);
                    assert_eq!(pair[0]["to_step"], pair[1]["from_step"]);
                }
            };
            chain(&good, 4); // start, step 2, step 3, promoted
            chain(&bad, 2); // start, rolled back
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {sent} requests: {good} {bad}"
        );
    }
    // Both nodes' attempts are in the same counters.
    let (status, stats) = support::traffic::admin_get(&b, "/admin/stats").await;
    assert_eq!(status, 200);
    let counted: u64 = stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert!(
        counted >= sent as u64,
        "{counted} attempts counted for {sent} requests"
    );
}

#[tokio::test]
async fn a_key_issued_on_one_node_works_on_both_until_revoked_or_expired() {
    let cluster = Cluster::new();
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(state_a.path(), &cluster.config);
    let b = node(state_b.path(), &cluster.config);
    let up = Upstream::start("orders").await;
    a.apply(&format!(
        "services: [{{ name: orders, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes: [{{ name: orders, paths: [/orders], service: orders, auth: {{ api_key: {{ header: x-api-key }} }} }}]\n\
         consumers: [{{ name: bob }}]",
        up.url()
    ))
    .await;
    let keyed = |host: &Host, key: &str| {
        let (url, key) = (format!("{}/orders/1", host.url), key.to_owned());
        async move {
            client()
                .get(url)
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let issue = |expires: Option<&str>| {
        let mut args = vec!["key", "issue", "bob", "--admin", a.admin.as_str()];
        if let Some(expires) = expires {
            args.extend(["--expires", expires]);
        }
        let (ok, out, err) = support::cli(&args);
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let issued = issue(None);
    let (key, id) = (
        issued["key"].as_str().unwrap(),
        issued["id"].as_str().unwrap(),
    );
    assert!(key.starts_with("upk_"), "{issued}");
    assert_eq!(
        served(&b, "/orders/1", 401).await.0,
        401,
        "no key, no entry"
    );
    assert_eq!(keyed(&b, key).await, 200);
    assert_eq!(keyed(&a, key).await, 200);

    // Only the digest is in the store.
    let stored = cluster
        .redis
        .get(&format!("api-keys/{}", issued_digest(key)));
    assert!(
        stored
            .is_some_and(|record| record.contains("\"consumer\":\"bob\"") && !record.contains(key))
    );

    // Revoked through A: B refuses it within a second.
    let (ok, out, err) = support::cli(&["key", "revoke", "bob", id, "--admin", &a.admin]);
    assert!(ok && out.contains("\"revoked\": true"), "{out}{err}");
    let revoked = Instant::now();
    while keyed(&b, key).await != 401 {
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "B refuses a revoked key"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (ok, _, err) = support::cli(&["key", "revoke", "bob", id, "--admin", &a.admin]);
    assert!(!ok && err.contains("key_not_found"), "{err}");

    // A key that expires works until it does, on both nodes.
    let expiring = issue(Some("2s"));
    let key = expiring["key"].as_str().unwrap();
    assert_eq!((keyed(&a, key).await, keyed(&b, key).await), (200, 200));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!((keyed(&a, key).await, keyed(&b, key).await), (401, 401));
    let (ok, out, err) = support::cli(&["key", "list", "bob", "--admin", &b.admin]);
    assert!(
        ok && out.contains(expiring["id"].as_str().unwrap()),
        "{out}{err}"
    );

    // A consumer the config does not have gets no key.
    let (ok, _, err) = support::cli(&["key", "issue", "eve", "--admin", &a.admin]);
    assert!(!ok && err.contains("consumer_not_found"), "{err}");

    // Created through B with a first key: the key works on A once A
    // follows the new config version, and B refuses a second carol.
    let (ok, out, err) = support::cli(&[
        "consumer", "create", "carol", "--tenant", "acme", "--tag", "beta", "--admin", &b.admin,
    ]);
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["consumer"]["tenant"], "acme", "{created}");
    let key = created["key"]["key"].as_str().unwrap();
    assert!(key.starts_with("upk_"), "{created}");
    let since = Instant::now();
    while keyed(&a, key).await != 200 {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "A admits carol's key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let config = cluster
        .redis
        .get(&format!("config/versions/{}", created["version"]));
    assert!(config.is_some_and(|c| c.contains("carol") && !c.contains(key)));
    let (ok, _, err) = support::cli(&["consumer", "create", "carol", "--admin", &b.admin]);
    assert!(!ok && err.contains("consumer_exists"), "{err}");
}

/// The hex digest of `key`, as the store names its record.
fn issued_digest(key: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
