//! Each built component imports and exports exactly what its world in
//! `wit/` promises, as `wasm-tools component wit` shows it: the same exports,
//! every `upshift:*` import, and no import outside the world except the
//! WASI interfaces the Rust standard library uses (cli, io, random, clocks,
//! filesystem). Other world imports a component does not use (type-only
//! interfaces, say) are left out by the component tooling, which is fine.

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use support::{component, component_wit, repo};

/// `(imports, exports)` of the component world `wasm-tools component wit` prints.
fn surface(wasm: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let text = component_wit(wasm);
    let world = text
        .split("world root {")
        .nth(1)
        .and_then(|w| w.split("\n}").next())
        .unwrap_or_else(|| panic!("no root world in:\n{text}"));
    let (mut imports, mut exports) = (BTreeSet::new(), BTreeSet::new());
    for line in world.lines().map(str::trim) {
        let item = |rest: &str| rest.trim_end_matches(';').trim().to_owned();
        if let Some(rest) = line.strip_prefix("import ") {
            imports.insert(item(rest));
        } else if let Some(rest) = line.strip_prefix("export ") {
            exports.insert(item(rest));
        }
    }
    (imports, exports)
}

/// The surface of world `name` in `wit/`, through a dummy component of it.
fn promised(name: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    let dummy = dir.path().join("dummy.wasm");
    let run = |args: &[&str]| {
        let out = Command::new("wasm-tools")
            .args(args)
            .output()
            .expect("wasm-tools runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let wit = repo().join("wit");
    run(&[
        "component",
        "embed",
        "--dummy",
        "--world",
        name,
        wit.to_str().unwrap(),
        "-o",
        core.to_str().unwrap(),
    ]);
    run(&[
        "component",
        "new",
        core.to_str().unwrap(),
        "-o",
        dummy.to_str().unwrap(),
    ]);
    surface(&dummy)
}

/// WASI interfaces Rust's standard library may import.
fn std_runtime(import: &str) -> bool {
    [
        "wasi:cli/",
        "wasi:io/",
        "wasi:random/",
        "wasi:clocks/",
        "wasi:filesystem/",
    ]
    .iter()
    .any(|p| import.starts_with(p))
}

#[test]
fn components_match_their_worlds() {
    for (component_name, world) in [
        ("gateway", "gateway"),
        ("admin", "admin"),
        ("router", "router-component"),
        ("auth", "auth-component"),
        ("splitter", "splitter-component"),
        ("ai", "ai-component"),
    ] {
        let (imports, exports) = surface(&component(component_name));
        let (want_imports, want_exports) = promised(world);
        assert_eq!(
            exports, want_exports,
            "{component_name}: exports differ from world {world}"
        );
        let missing: Vec<_> = want_imports
            .difference(&imports)
            .filter(|i| i.starts_with("upshift:"))
            .collect();
        let extra: Vec<_> = imports
            .difference(&want_imports)
            .filter(|i| !std_runtime(i))
            .collect();
        assert!(
            missing.is_empty(),
            "{component_name}: world {world} imports {missing:?}, the component does not"
        );
        assert!(
            extra.is_empty(),
            "{component_name}: imports {extra:?} beyond world {world}"
        );
    }
}
