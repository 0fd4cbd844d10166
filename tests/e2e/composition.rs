//! The host composes a component with its dependencies by Spin's rules
//! (`crates/compose` in spinframework/spin, what `spin up` and `spin
//! deploy` run): the repository's app composes, and manifests Spin refuses
//! are refused with Spin's reason. Components are made from WIT with
//! `wasm-tools component embed --dummy`, so each case states its shape.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{component_surface, dummy_component, repo, upshift_bin};

/// WIT shared by the cases: two interfaces of one package, another package,
/// and a dependency that keeps counters.
const WIT: &str = r#"
package acme:cases@1.0.0;

world main {
    import acme:shared/a@1.0.0;
    import acme:shared/b@1.0.0;
    import wasi:keyvalue/store@0.2.0-draft2;
    import wasi:keyvalue/atomics@0.2.0-draft2;
    export run: func() -> u32;
}

world main-a {
    import acme:shared/a@1.0.0;
    export run: func() -> u32;
}

world provides-a {
    export acme:shared/a@1.0.0;
}

world provides-b {
    export acme:shared/b@1.0.0;
}

world provides-other {
    export acme:other/a@1.0.0;
}

world provides-a-differently {
    export acme:different/a@1.0.0;
}

world counts-in-a {
    import wasi:keyvalue/store@0.2.0-draft2;
    import wasi:keyvalue/atomics@0.2.0-draft2;
    export acme:shared/a@1.0.0;
}

package acme:shared@1.0.0 {
    interface a { get: func(key: string) -> u32; }
    interface b { put: func(key: string, value: u32); }
}

package acme:other@1.0.0 {
    interface a { get: func(key: string) -> u32; }
}

package acme:different@1.0.0 {
    interface a { get: func(key: u64) -> string; }
}
"#;

/// A directory of dummy components of [`WIT`]'s worlds, and manifests.
struct Cases {
    dir: tempfile::TempDir,
}

impl Cases {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let wit = dir.path().join("wit");
        std::fs::create_dir_all(wit.join("deps")).unwrap();
        std::fs::write(wit.join("cases.wit"), WIT).unwrap();
        copy_dir(
            &repo().join("wit/deps/wasi-keyvalue-2024-10-17"),
            &wit.join("deps/wasi-keyvalue-2024-10-17"),
        );
        let cases = Cases { dir };
        for world in [
            "main",
            "main-a",
            "provides-a",
            "provides-b",
            "provides-other",
            "provides-a-differently",
            "counts-in-a",
        ] {
            cases.build(world);
        }
        cases
    }

    fn build(&self, world: &str) {
        dummy_component(&self.dir.path().join("wit"), world, self.dir.path());
    }

    /// Composes `main` (a world of [`WIT`]) with `dependencies` (TOML
    /// lines of `[component.main.dependencies]`): the composed component,
    /// or the error `upshift compose` reports.
    fn compose(&self, main: &str, dependencies: &str) -> Result<PathBuf, String> {
        let manifest = self.dir.path().join("spin.toml");
        std::fs::write(
            &manifest,
            format!(
                r#"spin_manifest_version = 2
[application]
name = "cases"
[[trigger.http]]
route = "/..."
component = "main"
[component.main]
source = "{main}.wasm"
key_value_stores = ["default"]
[component.main.dependencies]
{dependencies}
"#
            ),
        )
        .unwrap();
        let out = self.dir.path().join("composed.wasm");
        let result = Command::new(upshift_bin())
            .args(["compose", "--manifest"])
            .arg(&manifest)
            .args(["main", "-o"])
            .arg(&out)
            .output()
            .expect("upshift runs");
        if result.status.success() {
            Ok(out)
        } else {
            Err(String::from_utf8_lossy(&result.stderr).into_owned())
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn one_package_cannot_provide_two_dependencies() {
    let cases = Cases::new();
    let error = cases
        .compose(
            "main",
            r#""acme:shared/a@1.0.0" = { path = "provides-a.wasm" }
"acme:shared/b@1.0.0" = { path = "provides-b.wasm" }"#,
        )
        .unwrap_err();
    assert!(
        error.contains("an error occurred when preparing dependencies")
            && error.contains("package `acme:shared` has already been registered"),
        "{error}"
    );
}

#[test]
fn a_dependency_must_export_what_it_satisfies() {
    let cases = Cases::new();
    let error = cases
        .compose(
            "main-a",
            r#""acme:shared/a@1.0.0" = { path = "provides-other.wasm" }"#,
        )
        .unwrap_err();
    assert!(
        error.contains(
            "dependency 'acme:shared/a@1.0.0' doesn't export 'acme:shared/a@1.0.0' to satisfy \
             import 'acme:shared/a@1.0.0'"
        ),
        "{error}"
    );
    // Named with `export`, the other package's interface fits.
    cases
        .compose(
            "main-a",
            r#""acme:shared/a@1.0.0" = { path = "provides-other.wasm", export = "acme:other/a@1.0.0" }"#,
        )
        .unwrap();
}

#[test]
fn an_export_of_another_type_is_refused() {
    let cases = Cases::new();
    let error = cases
        .compose(
            "main-a",
            r#""acme:shared/a@1.0.0" = { path = "provides-a-differently.wasm", export = "acme:different/a@1.0.0" }"#,
        )
        .unwrap_err();
    assert!(
        error.contains(
            "dependency 'acme:shared/a@1.0.0' exports 'acme:different/a@1.0.0' which is not \
             compatible with import 'acme:shared/a@1.0.0'"
        ),
        "{error}"
    );
}

#[test]
fn names_must_match_an_import_once() {
    let cases = Cases::new();
    let error = cases
        .compose(
            "main-a",
            r#""acme:nothing/a@1.0.0" = { path = "provides-a.wasm" }"#,
        )
        .unwrap_err();
    assert!(
        error.contains(
            "dependency 'acme:nothing/a@1.0.0' doesn't match any imports of component 'main'"
        ),
        "{error}"
    );
    // Two names of one import are two dependencies of one package, which
    // Spin refuses as it registers the second, before it looks for
    // conflicts.
    let error = cases
        .compose(
            "main-a",
            r#""acme:shared" = { path = "provides-a.wasm" }
"acme:shared/a@1.0.0" = { path = "provides-a.wasm" }"#,
        )
        .unwrap_err();
    assert!(
        error.contains("package `acme:shared` has already been registered"),
        "{error}"
    );
    // A package-level name covers every import of the package.
    cases
        .compose("main-a", r#""acme:shared" = { path = "provides-a.wasm" }"#)
        .unwrap();
}

#[test]
fn a_dependency_keeping_counters_must_inherit_the_stores() {
    let cases = Cases::new();
    let error = cases
        .compose(
            "main-a",
            r#""acme:shared/a@1.0.0" = { path = "counts-in-a.wasm" }"#,
        )
        .unwrap_err();
    assert!(
        error.contains(
            "dependency 'acme:shared/a@1.0.0' imports 'wasi:keyvalue/atomics@0.2.0-draft2', \
             which uses the types of 'wasi:keyvalue/store@0.2.0-draft2'"
        ) && error.contains(r#"inherit_configuration = ["key_value_stores"]"#),
        "{error}"
    );
    let composed = cases
        .compose(
            "main-a",
            r#""acme:shared/a@1.0.0" = { path = "counts-in-a.wasm", inherit_configuration = ["key_value_stores"] }"#,
        )
        .unwrap();
    let (imports, _) = component_surface(&composed);
    assert!(
        imports.contains("wasi:keyvalue/atomics@0.2.0-draft2"),
        "{imports:?}"
    );
    assert!(
        !imports.iter().any(|i| i.starts_with("acme:")),
        "{imports:?}"
    );
}

/// Where an import of the composed gateway comes from, and why Spin
/// provides it; `None` for an import Spin does not provide.
fn provided_by_spin(import: &str) -> Option<&'static str> {
    let (interface, version) = import.split_once('@').unwrap_or((import, ""));
    let wasi_p2 = version.starts_with("0.2.");
    match interface {
        _ if interface.starts_with("wasi:io/")
            || interface.starts_with("wasi:cli/")
            || interface.starts_with("wasi:clocks/")
            || interface.starts_with("wasi:random/")
            || interface.starts_with("wasi:filesystem/")
            || interface.starts_with("wasi:sockets/") =>
        {
            (wasi_p2 || version == "0.3.0").then_some("WASI, which every Spin component gets")
        }
        "wasi:http/types" | "wasi:http/client" | "wasi:http/handler" => {
            (version == "0.3.0").then_some("WASI HTTP 0.3: Spin's 4.x line runs such handlers")
        }
        "wasi:keyvalue/store" | "wasi:keyvalue/atomics" | "wasi:keyvalue/batch" => {
            (version == "0.2.0-draft2").then_some("key_value_stores")
        }
        "spin:variables/variables" => (version == "3.0.0").then_some("variables"),
        "spin:key-value/key-value" => (version == "3.0.0").then_some("key_value_stores"),
        // Types only: no functions or resources, so wasmtime's linker
        // (Spin's) checks nothing of it against an implementation, and
        // Spin's composition leaves it to the runtime. The component lane
        // serves the composed gateway on the same linker rules.
        "upshift:types/types" => Some("types only, accepted without an implementation"),
        _ => None,
    }
}

#[test]
fn every_import_of_the_composed_gateway_is_provided_by_spin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gateway.wasm");
    let result = Command::new(upshift_bin())
        .args(["compose", "--manifest"])
        .arg(repo().join("spin.toml"))
        .args(["gateway", "-o"])
        .arg(&out)
        .output()
        .expect("upshift runs");
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let (imports, _) = component_surface(&out);
    let mut denied = Vec::new();
    for import in &imports {
        if let Some(original) = import.strip_prefix("upshift-denied:") {
            // A capability of a dependency that does not inherit it: Spin's
            // deny adapter answers it inside the composition; the host
            // stands in for it with calls that fail.
            denied.push(original.to_owned());
            continue;
        }
        assert!(
            provided_by_spin(import).is_some(),
            "the composed gateway imports {import}, which Spin does not provide"
        );
    }
    assert!(imports.contains("upshift:types/types@0.2.0"), "{imports:?}");
    assert!(
        !imports.iter().any(|i| i.starts_with("upshift:router")
            || i.starts_with("upshift:auth")
            || i.starts_with("upshift:splitter")
            || i.starts_with("upshift:ai")),
        "every policy interface is satisfied by its dependency: {imports:?}"
    );
    // The router inherits nothing, so its view of the environment is denied.
    assert!(
        denied.iter().any(|d| d.starts_with("wasi-cli/environment")),
        "{denied:?}"
    );
}
