//! Tests of manifest parsing and validation.

use super::*;

fn load(text: &str) -> Result<App, ManifestError> {
    App::from_str(Path::new("/app/spin.toml"), text)
}

const BASE: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
token = { default = "x", secret = true }
[[trigger.http]]
route = "/admin/..."
component = "admin"
[[trigger.http]]
route = "/..."
component = "gateway"
[component.admin]
source = "admin.wasm"
key_value_stores = ["default"]
[component.admin.variables]
admin_token = "{{ token }}"
[component.gateway]
source = "gw.wasm"
allowed_outbound_hosts = ["http://*:*"]
[component.gateway.dependencies]
"upshift:gateway/router@0.1.0" = { component = "router" }
"upshift:gateway/auth@0.1.0" = { path = "auth.wasm", export = "upshift:gateway/auth@0.1.0" }
[component.router]
source = "router.wasm"
[component.router.build]
command = "make"
"#;

#[test]
fn parses_the_app_manifest() {
    let app = load(BASE).unwrap();
    assert_eq!(app.dir, Path::new("/app"));
    assert_eq!(app.routes.len(), 2);
    let gateway = &app.manifest.component["gateway"];
    assert_eq!(gateway.dependencies.len(), 2);
    assert_eq!(
        gateway.dependencies["upshift:gateway/router@0.1.0"]
            .component
            .as_deref(),
        Some("router")
    );
    let admin = &app.manifest.component["admin"];
    assert_eq!(admin.variables["admin_token"], "{{ token }}");
    assert!(app.manifest.variables["token"].secret);
    assert_eq!(
        app.manifest.component["router"]
            .build
            .as_ref()
            .unwrap()
            .command,
        "make"
    );
    assert_eq!(app.resolve("gw.wasm"), Path::new("/app/gw.wasm"));
}

#[test]
fn parses_the_real_manifest() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spin.toml");
    let app = App::load(&path).unwrap();
    assert!(app.manifest.component.contains_key("gateway"));
}

fn expect_invalid(text: &str, needle: &str) {
    let err = load(text).unwrap_err().to_string();
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

#[test]
fn rejects_unknown_trigger_component() {
    expect_invalid(
        &BASE.replace("component = \"admin\"", "component = \"nope\""),
        "unknown component `nope`",
    );
}

#[test]
fn rejects_unknown_dependency_component() {
    expect_invalid(
        &BASE.replace("{ component = \"router\" }", "{ component = \"ghost\" }"),
        "unknown component `ghost`",
    );
}

#[test]
fn dependencies_inherit_by_spins_rules() {
    let app = load(BASE).unwrap();
    let gateway = &app.manifest.component["gateway"];
    assert_eq!(
        gateway.inherit("upshift:gateway/router@0.1.0"),
        Inherit::Only(Vec::new())
    );
    let all = BASE.replace(
        "allowed_outbound_hosts = [\"http://*:*\"]",
        "allowed_outbound_hosts = [\"http://*:*\"]\ndependencies_inherit_configuration = true",
    );
    let app = load(&all).unwrap();
    assert_eq!(
        app.manifest.component["gateway"].inherit("upshift:gateway/router@0.1.0"),
        Inherit::All
    );
    let some = BASE.replace(
        "{ component = \"router\" }",
        "{ component = \"router\", inherit_configuration = [\"key_value_stores\"] }",
    );
    let app = load(&some).unwrap();
    assert_eq!(
        app.manifest.component["gateway"].inherit("upshift:gateway/router@0.1.0"),
        Inherit::Only(vec!["key_value_stores".into()])
    );
    let both = some.replace(
        "allowed_outbound_hosts = [\"http://*:*\"]",
        "allowed_outbound_hosts = [\"http://*:*\"]\ndependencies_inherit_configuration = false",
    );
    expect_invalid(&both, "mutually exclusive");
}

#[test]
fn rejects_dependencies_with_resources_of_their_own() {
    expect_invalid(
        &BASE.replace(
            "[component.router]\nsource = \"router.wasm\"",
            "[component.router]\nsource = \"router.wasm\"\nkey_value_stores = [\"default\"]",
        ),
        "cannot be used as a dependency because it specifies: key_value_stores",
    );
}

#[test]
fn rejects_bad_routes() {
    expect_invalid(&BASE.replace("\"/admin/...\"", "\"admin\""), "route");
    expect_invalid(&BASE.replace("\"/admin/...\"", "\"/a/.../b\""), "route");
}

#[test]
fn rejects_bad_versions_and_variables() {
    expect_invalid(
        &BASE.replace("spin_manifest_version = 2", "spin_manifest_version = 1"),
        "spin_manifest_version",
    );
    expect_invalid(&BASE.replace("{{ token }}", "{{ missing }}"), "missing");
    expect_invalid(
        &BASE.replace("token = { default", "Token = { default"),
        "lowercase",
    );
    expect_invalid(&BASE.replace("[\"http://*:*\"]", "[\"ftp://x\"]"), "ftp");
}

#[test]
fn missing_wasm_files_hint_at_build() {
    let app = load(BASE).unwrap();
    let err = app.check_sources().unwrap_err().to_string();
    assert!(err.contains("upshift build"), "{err}");
}
