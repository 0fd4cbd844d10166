//! Each built component imports and exports exactly what its world in
//! `wit/` promises, as `wasm-tools component wit` shows it: the same exports,
//! every `upshift:*` import, and no import outside the world except the
//! WASI interfaces the Rust standard library uses (cli, io, random, clocks,
//! filesystem). Other world imports a component does not use (type-only
//! interfaces, say) are left out by the component tooling, which is fine.

use crate::support;

use std::collections::BTreeSet;
use support::{component, component_surface, dummy_component, repo};

/// The surface of world `name` in `wit/`, through a dummy component of it.
fn promised(name: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = tempfile::tempdir().unwrap();
    let dummy = dummy_component(&repo().join("wit"), name, dir.path());
    component_surface(&dummy)
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
        let (imports, exports) = component_surface(&component(component_name));
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
