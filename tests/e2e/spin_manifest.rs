//! spin.toml follows Spin's manifest v2 rules, and everything it names
//! resolves: components, component files, variables and the dependency
//! wiring (each dependency exports the interface the gateway imports).

use crate::support;

use std::collections::BTreeSet;
use support::{component_wit, repo};
use toml::{Table, Value};

fn manifest() -> Table {
    let text = std::fs::read_to_string(repo().join("spin.toml")).unwrap();
    text.parse().expect("spin.toml is TOML")
}

/// Fails on keys outside `allowed` (Spin rejects unknown manifest fields).
fn only_keys(table: &Table, allowed: &[&str], at: &str) {
    for key in table.keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "{at}: unknown field {key:?}"
        );
    }
}

/// Spin component ids: kebab-case.
fn kebab(id: &str) -> bool {
    id.split('-').all(|w| {
        !w.is_empty()
            && w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

/// Spin variable names and store labels: lower-case snake.
fn snake(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Spin's `allowed_outbound_hosts` form: `scheme://host[:port]`, `*` allowed
/// for scheme, a leading host label, or port.
fn outbound_host(entry: &str) -> bool {
    let Some((scheme, rest)) = entry.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme == "*" || scheme.chars().all(|c| c.is_ascii_lowercase());
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = host == "*"
        || host
            .strip_prefix("*.")
            .unwrap_or(host)
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let port_ok =
        port.is_none_or(|p| p == "*" || p.parse::<u16>().is_ok() || p.split_once("..").is_some());
    scheme_ok && host_ok && port_ok && !rest.contains('/')
}

/// `ns:pkg/interface@version`
fn interface_name(name: &str) -> bool {
    let Some((package, rest)) = name.split_once('/') else {
        return false;
    };
    let Some((iface, version)) = rest.split_once('@') else {
        return false;
    };
    package
        .split_once(':')
        .is_some_and(|(ns, pkg)| kebab(ns) && kebab(pkg))
        && kebab(iface)
        && version.split('.').count() == 3
}

fn exports_of(wasm: &std::path::Path) -> BTreeSet<String> {
    component_wit(wasm)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .map(|e| e.trim_end_matches(';').to_owned())
        .collect()
}

#[test]
fn spin_toml_follows_manifest_v2_and_resolves() {
    let m = manifest();
    only_keys(
        &m,
        &[
            "spin_manifest_version",
            "application",
            "variables",
            "trigger",
            "component",
        ],
        "spin.toml",
    );
    assert_eq!(m["spin_manifest_version"].as_integer(), Some(2));

    let app = m["application"].as_table().expect("[application]");
    only_keys(
        app,
        &[
            "name",
            "version",
            "description",
            "authors",
            "targets",
            "trigger",
        ],
        "application",
    );
    assert!(app["name"].as_str().is_some_and(|n| !n.is_empty()));

    let variables = m["variables"].as_table().expect("[variables]");
    for (name, spec) in variables {
        assert!(snake(name), "variable {name:?} is not lower-case snake");
        let spec = spec.as_table().expect("variable spec is a table");
        only_keys(
            spec,
            &["default", "required", "secret"],
            &format!("variables.{name}"),
        );
        assert!(
            spec.contains_key("default")
                != spec
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            "variables.{name}: exactly one of default or required = true"
        );
    }

    let components = m["component"].as_table().expect("[component.*]");
    let triggers = m["trigger"]["http"].as_array().expect("[[trigger.http]]");
    let mut routes = BTreeSet::new();
    for (i, trigger) in triggers.iter().enumerate() {
        let trigger = trigger.as_table().unwrap();
        only_keys(
            trigger,
            &["route", "component", "executor", "id"],
            &format!("trigger.http[{i}]"),
        );
        let route = trigger["route"].as_str().expect("route");
        assert!(route.starts_with('/'), "trigger.http[{i}].route {route:?}");
        assert!(routes.insert(route), "route {route:?} is used twice");
        let target = trigger["component"].as_str().expect("component id");
        assert!(
            components.contains_key(target),
            "trigger.http[{i}] names unknown component {target:?}"
        );
    }

    for (id, component) in components {
        assert!(kebab(id), "component id {id:?} is not kebab-case");
        let c = component.as_table().unwrap();
        only_keys(
            c,
            &[
                "description",
                "source",
                "files",
                "exclude_files",
                "allowed_outbound_hosts",
                "allowed_http_hosts",
                "key_value_stores",
                "environment",
                "variables",
                "build",
                "dependencies_inherit_configuration",
                "dependencies",
                "sqlite_databases",
                "ai_models",
                "tool",
            ],
            &format!("component.{id}"),
        );
        let source = repo().join(c["source"].as_str().expect("source is a path"));
        assert!(
            source.exists(),
            "component.{id}.source {} does not exist: build first",
            source.display()
        );
        for host in c
            .get("allowed_outbound_hosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let host = host.as_str().unwrap();
            assert!(
                outbound_host(host),
                "component.{id}: bad allowed_outbound_hosts entry {host:?}"
            );
        }
        for label in c
            .get("key_value_stores")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(
                snake(label.as_str().unwrap()),
                "component.{id}: bad store label {label}"
            );
        }
        for (name, template) in c
            .get("variables")
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            assert!(snake(name), "component.{id}.variables: bad name {name:?}");
            let template = template.as_str().unwrap();
            for reference in template
                .split("{{")
                .skip(1)
                .map(|r| r.split("}}").next().unwrap().trim())
            {
                assert!(
                    variables.contains_key(reference),
                    "component.{id}.variables.{name} uses undefined {reference:?}"
                );
            }
        }
        let build = c["build"]
            .as_table()
            .expect("every component has a build command");
        only_keys(
            build,
            &["command", "workdir", "watch", "environment"],
            &format!("component.{id}.build"),
        );
        assert!(
            build["command"]
                .as_str()
                .is_some_and(|cmd| cmd.contains("cargo build"))
        );

        for (import, dependency) in c
            .get("dependencies")
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            assert!(
                interface_name(import),
                "component.{id}.dependencies: {import:?} is not ns:pkg/interface@x.y.z"
            );
            let dependency = dependency.as_table().expect("dependency table");
            only_keys(
                dependency,
                &["component", "export", "inherit_configuration"],
                &format!("component.{id}.dependencies.{import}"),
            );
            let provider = dependency["component"].as_str().unwrap();
            let provider_source = components
                .get(provider)
                .and_then(|p| p.get("source"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| {
                    panic!("dependency {import} names unknown component {provider:?}")
                });
            let exports = exports_of(&repo().join(provider_source));
            assert!(
                exports.contains(import.as_str()),
                "component {provider} does not export {import}: {exports:?}"
            );
        }
    }
}
