use crate::api::{AdminRequest, AdminResponse, handle};
use crate::store::Store;
use upshift_model::keys;
use upshift_model::store::{MemoryStore, for_each_encoding};

const CONFIG: &str = "services: [{name: s, versions: [\
        {name: v1, weight: 100, targets: [{url: 'http://127.0.0.1:9'}]},\
        {name: v2, weight: 0, targets: [{url: 'http://127.0.0.1:10'}]}]}]\n\
        routes: [{name: r, service: s}]";

const PLAN: &str =
    "service: s\ncanary: v2\nsteps: [{weight: 10, pause: 1m}, {weight: 50, pause: manual}]";

fn call(store: &MemoryStore, method: &str, path: &str, body: &str, now_ms: u64) -> AdminResponse {
    handle(
        &AdminRequest {
            method,
            path,
            body: body.as_bytes(),
            access: upshift_model::token::Access::Full,
            now_ms,
        },
        store,
    )
}

fn configure(store: &MemoryStore) {
    assert_eq!(call(store, "PUT", "/admin/config", CONFIG, 0).status, 201);
}

#[test]
fn start_needs_a_config_and_a_valid_plan() {
    for_each_encoding(|store| {
        assert_eq!(call(&store, "POST", "/admin/rollouts", PLAN, 1).status, 404);
        configure(&store);
        let bad = call(
            &store,
            "POST",
            "/admin/rollouts",
            "service: s\ncanary: v9",
            1,
        );
        assert_eq!(bad.status, 422, "{:?}", bad.body);
        assert_eq!(bad.body["error"]["problems"][0]["path"], "canary");
        let started = call(&store, "POST", "/admin/rollouts", PLAN, 1_000);
        assert_eq!(started.status, 201, "{:?}", started.body);
        assert_eq!(started.body["rollout"]["phase"], "progressing");
        assert_eq!(started.body["rollout"]["spec"]["stable"], "v1");
        let again = call(&store, "POST", "/admin/rollouts", PLAN, 2_000);
        assert_eq!(again.status, 409);
        assert_eq!(again.body["error"]["code"], "rollout_in_progress");
    });
}

#[test]
fn operators_steer_and_every_move_is_audited() {
    for_each_encoding(|store| {
        configure(&store);
        call(&store, "POST", "/admin/rollouts", PLAN, 1_000);
        let pause = call(
            &store,
            "POST",
            "/admin/rollouts/s/pause",
            r#"{"reason": "dashboards"}"#,
            2_000,
        );
        assert_eq!(pause.status, 200, "{:?}", pause.body);
        for (path, now_ms, status) in [
            ("/admin/rollouts/s/pause", 2_500, 409),
            ("/admin/rollouts/s/resume", 3_000, 200),
            ("/admin/rollouts/s/promote", 4_000, 200),
            ("/admin/rollouts/s/abort", 5_000, 409),
            ("/admin/rollouts/s/explode", 5_000, 404),
            ("/admin/rollouts/t/pause", 5_000, 404),
        ] {
            let response = call(&store, "POST", path, "", now_ms);
            assert_eq!(response.status, status, "{path}: {:?}", response.body);
        }

        let status = call(&store, "GET", "/admin/rollouts/s", "", 6_000);
        assert_eq!(status.status, 200);
        assert_eq!(status.body["weights"]["canary"], 100);
        let history = status.body["history"].as_array().unwrap();
        let reasons: Vec<&str> = history
            .iter()
            .map(|t| t["reason"].as_str().unwrap())
            .collect();
        assert_eq!(history.len(), 4, "{reasons:?}");
        assert_eq!(reasons[1], "dashboards");
        assert!(history[1..].iter().all(|t| t["actor"] == "admin"));
        // A finished rollout can be cleared (not a running one) or replaced.
        assert_eq!(
            call(&store, "DELETE", "/admin/rollouts/s", "", 6_500).status,
            200
        );
        assert_eq!(
            call(&store, "GET", "/admin/rollouts/s", "", 6_600).status,
            404
        );
        assert_eq!(
            call(&store, "POST", "/admin/rollouts", PLAN, 7_000).status,
            201
        );
        let list = call(&store, "GET", "/admin/rollouts", "", 7_000);
        assert_eq!(list.body["rollouts"].as_array().unwrap().len(), 1);
        assert_eq!(
            call(&store, "DELETE", "/admin/rollouts/s", "", 7_500).status,
            409
        );
    });
}

#[test]
fn status_shows_the_current_steps_counters() {
    for_each_encoding(|store| {
        configure(&store);
        let started = call(&store, "POST", "/admin/rollouts", PLAN, 1_000);
        let id = started.body["rollout"]["id"].as_str().unwrap().to_owned();
        let fill = |version: &str, field: &str, n: i64| {
            store.fill_counter(&keys::step_metric("s", &id, 0, version, field), n);
        };
        fill("v2", "requests", 40);
        fill("v2", "status_5xx", 4);
        fill("v2", "latency_bucket_3", 40);
        fill("v1", "requests", 360);
        let status = call(&store, "GET", "/admin/rollouts/s", "", 2_000).body;
        assert_eq!(status["step"]["canary"]["requests"], 40);
        assert_eq!(status["step"]["canary"]["errors"], 4);
        assert_eq!(status["step"]["canary"]["error_rate"], 0.1);
        assert_eq!(status["step"]["canary"]["p99_ms"], 50);
        assert_eq!(status["step"]["stable"]["requests"], 360);
        assert_eq!(status["weights"]["canary"], 10);
    });
}

#[test]
fn the_audit_goes_on_from_the_sequence_left_in_the_store() {
    for_each_encoding(|store| {
        configure(&store);
        store.fill_counter(&keys::rollout_audit_seq("s"), 6);
        assert_eq!(
            call(&store, "POST", "/admin/rollouts", PLAN, 1_000).status,
            201
        );
        assert!(store.get(&keys::rollout_audit("s", 7)).unwrap().is_some());
        assert_eq!(
            store.get(&keys::rollout_audit_seq("s")).unwrap(),
            Some(store.encoding().encode(7))
        );
        let status = call(&store, "GET", "/admin/rollouts/s", "", 2_000).body;
        assert_eq!(status["history"].as_array().unwrap().len(), 1);
    });
}
