use super::*;
use upshift_model::store::{MemoryStore, Store, for_each_encoding};

const GOOD: &str = "services: [{name: s, versions: [{name: v1, targets: [{url: 'http://127.0.0.1:9'}]}]}]\n\
                        routes: [{name: r, service: s}]";

fn call(store: &MemoryStore, method: &str, path: &str, body: &str) -> AdminResponse {
    let request = AdminRequest {
        method,
        path,
        body: body.as_bytes(),
        access: Access::Full,
        now_ms: 1_000,
    };
    handle(&request, store)
}

#[test]
fn apply_stores_numbered_versions_and_reads_them_back() {
    for_each_encoding(|store| {
        assert_eq!(call(&store, "GET", "/admin/config", "").status, 404);
        let first = call(&store, "PUT", "/admin/config", GOOD);
        assert_eq!(first.status, 201, "{:?}", first.body);
        assert_eq!(first.body["version"], 1);
        assert_eq!(
            call(&store, "PUT", "/admin/config", GOOD).body["version"],
            2
        );
        let shown = call(&store, "GET", "/admin/config", "");
        assert_eq!(shown.body["version"], 2);
        assert_eq!(shown.body["config"]["routes"][0]["name"], "r");
        assert_eq!(
            call(&store, "GET", "/admin/routes", "").body["routes"][0]["service"],
            "s"
        );
    });
}

#[test]
fn rejected_documents_change_nothing() {
    for_each_encoding(|store| {
        call(&store, "PUT", "/admin/config", GOOD);
        let bad = call(
            &store,
            "PUT",
            "/admin/config",
            "routes: [{name: r, service: nope}]",
        );
        assert_eq!(bad.status, 422);
        assert_eq!(
            bad.body["error"]["problems"][0]["path"],
            "routes[0].service"
        );
        let unknown = call(&store, "PUT", "/admin/config", "routez: []");
        assert_eq!(unknown.status, 400);
        assert_eq!(unknown.body["error"]["code"], "malformed_config");
        assert_eq!(call(&store, "GET", "/admin/config", "").body["version"], 1);
    });
}

#[test]
fn older_versions_can_be_activated_again() {
    for_each_encoding(|store| {
        call(&store, "PUT", "/admin/config", GOOD);
        call(&store, "PUT", "/admin/config", GOOD);
        assert_eq!(
            call(&store, "POST", "/admin/config/versions/1/activate", "").status,
            200
        );
        assert_eq!(call(&store, "GET", "/admin/config", "").body["version"], 1);
        assert_eq!(
            call(&store, "POST", "/admin/config/versions/9/activate", "").status,
            404
        );
    });
}

#[test]
fn versions_go_on_from_the_sequence_left_in_the_store() {
    for_each_encoding(|store| {
        store.fill_counter(keys::SEQUENCE, 41);
        assert_eq!(
            call(&store, "PUT", "/admin/config", GOOD).body["version"],
            42
        );
        assert_eq!(
            store.get(keys::SEQUENCE).unwrap(),
            Some(store.encoding().encode(42))
        );
        // The version in force is a number written by compare-and-swap.
        assert_eq!(
            store.get(keys::CURRENT).unwrap().as_deref(),
            Some(&b"42"[..])
        );
        assert_eq!(call(&store, "GET", "/admin/config", "").body["version"], 42);
    });
}

#[test]
fn a_slower_apply_never_replaces_a_newer_version() {
    let store = MemoryStore::default();
    store.set(keys::CURRENT, b"5").unwrap();
    advance_current(&store, 4, false).unwrap();
    assert_eq!(store.get(keys::CURRENT).unwrap().unwrap(), b"5");
}

#[test]
fn versions_are_listed_newest_first_and_any_two_compared() {
    let store = MemoryStore::default();
    call(&store, "PUT", "/admin/config", GOOD);
    let second = GOOD.replace("127.0.0.1:9", "127.0.0.1:10");
    call(&store, "PUT", "/admin/config", &second);
    call(&store, "POST", "/admin/config/versions/1/activate", "");
    let listed = call(&store, "GET", "/admin/config/versions", "").body;
    assert_eq!(listed["current"], 1);
    let versions: Vec<_> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(2, false), (1, true)]);
    assert_eq!(listed["versions"][0]["summary"]["routes"], 1);

    let diff = call(&store, "GET", "/admin/config/versions/1/diff/2", "");
    assert_eq!(diff.status, 200);
    assert_eq!(
        diff.body["changes"],
        json!([{
            "path": "services.s.versions.v1.targets",
            "kind": "changed",
            "before": "[{\"url\":\"http://127.0.0.1:9\"}]",
            "after": "[{\"url\":\"http://127.0.0.1:10\"}]",
        }])
    );
    assert_eq!(
        call(&store, "GET", "/admin/config/versions/1/diff/9", "").status,
        404
    );
}

#[test]
fn the_token_guards_everything_but_health_and_the_dashboard() {
    let store = MemoryStore::default();
    let request = |path| AdminRequest {
        method: "GET",
        path,
        body: b"",
        access: Access::None,
        now_ms: 0,
    };
    assert_eq!(handle(&request("/admin/health"), &store).status, 200);
    assert_eq!(handle(&request("/admin/config"), &store).status, 401);
    // The dashboard's page loads, then asks for the token.
    let page = handle(&request("/admin/ui"), &store);
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    let script = handle(&request("/admin/ui/app.js"), &store);
    assert!(script.content_type.starts_with("text/javascript"));
    assert_eq!(handle(&request("/admin/ui/secret"), &store).status, 401);
    assert_eq!(handle(&request("/admin/ai/usage"), &store).status, 401);
    let read = |method| AdminRequest {
        method,
        path: "/admin/config",
        body: GOOD.as_bytes(),
        access: Access::Read,
        now_ms: 0,
    };
    assert_eq!(handle(&read("GET"), &store).status, 404);
    let refused = handle(&read("PUT"), &store);
    assert_eq!(
        (refused.status, &refused.body["error"]["code"]),
        (403, &json!("forbidden"))
    );
    assert_eq!(store.get(keys::CURRENT).unwrap(), None);
}

#[test]
fn wrong_methods_and_paths() {
    let store = MemoryStore::default();
    assert_eq!(call(&store, "DELETE", "/admin/config", "").status, 405);
    assert_eq!(call(&store, "GET", "/admin/nothing", "").status, 404);
    assert_eq!(
        call(&store, "GET", "/admin/config/versions/x", "").status,
        400
    );
}
