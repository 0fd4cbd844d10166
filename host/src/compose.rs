//! Composition of a component with its `[component.X.dependencies]`, by
//! Spin's rules (its `crates/compose`, which `spin up` and `spin deploy`
//! run), so that a manifest Spin refuses, the host refuses for the same
//! reason:
//!
//! - A dependency's name picks the imports it satisfies: a plain name the
//!   import of that name; `ns:pkg` every import of the package, narrowed by
//!   `/interface` and `@version` (exactly that version) when given. A name
//!   that matches no import is an error, and so is an import that two
//!   dependencies match.
//! - Each dependency enters the composition under its package name (the
//!   plain name for plain names), so two dependencies can never come from
//!   one package.
//! - The export plugged in is `export` when given, else the import's own
//!   name, looked up exactly; its type must be a subtype of the import's.
//! - A dependency that does not inherit the component's configuration (the
//!   default, unless `dependencies_inherit_configuration = true` or its
//!   `inherit_configuration` names the capability) has its capability
//!   imports denied: they are wired to `upshift-denied:…` imports, whose
//!   every call fails (see [`deny_imports`]). Spin's deny adapter replaces
//!   `wasi:keyvalue/store` but not `atomics` or `batch`, whose `bucket`
//!   then has two types and the composition fails; such a dependency is
//!   refused here with that reason.
//! - What the dependencies import otherwise goes to the runtime, shared
//!   with the component; the component's exports are the composition's.

use std::collections::{BTreeMap, HashMap};

use wac_graph::types::{ItemKind, Package, SubtypeChecker, are_semver_compatible};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};
use wasmtime::component::{Component, Linker, types::ComponentItem};

/// What configuration a dependency inherits from the component it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inherit {
    /// Everything (`true`).
    All,
    /// The named capability sets only (`false` or absent: none).
    Only(Vec<String>),
}

/// The capability sets a dependency can inherit, and the interfaces each
/// covers (an import is covered when its name is semver-compatible with
/// one of these).
const CAPABILITIES: &[(&str, &[&str])] = &[
    (
        "allowed_outbound_hosts",
        &[
            "wasi:http/client@0.3.0",
            "wasi:http/outgoing-handler@0.2.6",
            "wasi:sockets/ip-name-lookup@0.2.6",
            "wasi:sockets/ip-name-lookup@0.3.0",
            "wasi:sockets/tcp@0.2.6",
            "wasi:sockets/tcp-create-socket@0.2.6",
            "wasi:sockets/udp@0.2.6",
            "wasi:sockets/udp-create-socket@0.2.6",
            "spin:redis/redis@3.0.0",
            "spin:mqtt/mqtt@3.0.0",
            "spin:postgres/postgres@4.2.0",
            "spin:mysql/mysql@3.0.0",
        ],
    ),
    (
        "environment",
        &["wasi:cli/environment@0.2.6", "wasi:cli/environment@0.3.0"],
    ),
    (
        "files",
        &[
            "wasi:filesystem/preopens@0.2.6",
            "wasi:filesystem/preopens@0.3.0",
        ],
    ),
    (
        "key_value_stores",
        &[
            "spin:key-value/key-value@3.0.0",
            "wasi:keyvalue/store@0.2.0-draft2",
        ],
    ),
    ("sqlite_databases", &["spin:sqlite/sqlite@3.1.0"]),
    (
        "variables",
        &[
            "spin:variables/variables@3.0.0",
            "wasi:config/store@0.2.0-draft-2024-09-27",
        ],
    ),
    ("ai_models", &["fermyon:spin/llm@2.0.0"]),
];

/// Imports that use the resource types of a capability interface without
/// being one: denying the interface alone leaves them inconsistent.
const DEPENDENT_IMPORTS: &[(&str, &str)] = &[
    (
        "wasi:keyvalue/atomics@0.2.0-draft2",
        "wasi:keyvalue/store@0.2.0-draft2",
    ),
    (
        "wasi:keyvalue/batch@0.2.0-draft2",
        "wasi:keyvalue/store@0.2.0-draft2",
    ),
];

/// Namespace of the imports that stand in for denied capabilities.
pub const DENIED: &str = "upshift-denied:";

/// Errors composing a component with its dependencies; the messages are
/// Spin's where Spin has one.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A dependency name that is neither a plain kebab-case name nor a
    /// package name.
    #[error("dependency '{name}' is not a valid dependency name: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A dependency name that matches none of the component's imports.
    #[error("dependency '{dependency}' doesn't match any imports of component '{component}'")]
    UnmatchedDependencyName {
        /// The component.
        component: String,
        /// The dependency's name.
        dependency: String,
    },
    /// Imports that several dependencies match.
    #[error("component '{component}' has dependency conflicts: {}", format_conflicts(.conflicts))]
    DependencyConflicts {
        /// The component.
        component: String,
        /// Each import and the dependencies matching it.
        conflicts: Vec<(String, Vec<String>)>,
    },
    /// The dependency lacks the export that should satisfy an import.
    #[error("dependency '{dependency}' doesn't export '{export}' to satisfy import '{import}'")]
    MissingExport {
        /// The dependency's name.
        dependency: String,
        /// The export looked for.
        export: String,
        /// The import to satisfy.
        import: String,
    },
    /// A dependency that imports an interface using a denied capability's
    /// types (`wasi:keyvalue/atomics` without `key_value_stores`).
    #[error(
        "dependency '{dependency}' imports '{import}', which uses the types of '{denied}': \
         without inheriting '{capability}' the composition fails (on Spin too, whose deny \
         adapter replaces '{denied}' alone); give the dependency \
         `inherit_configuration = [\"{capability}\"]`"
    )]
    InconsistentDenial {
        /// The dependency's name.
        dependency: String,
        /// The import left inconsistent.
        import: String,
        /// The denied interface it depends on.
        denied: String,
        /// The capability set that would grant it.
        capability: String,
    },
    /// Building the composition failed: a component that does not load,
    /// two dependencies of one package, an export whose type does not fit.
    #[error("an error occurred when preparing dependencies")]
    Prepare(#[source] anyhow::Error),
    /// Encoding the composition failed.
    #[error("failed to encode composition graph")]
    Encode(#[source] anyhow::Error),
}

fn format_conflicts(conflicts: &[(String, Vec<String>)]) -> String {
    let parts: Vec<String> = conflicts
        .iter()
        .map(|(import, names)| {
            format!(
                "import '{import}' satisfied by dependencies: '{}'",
                names.join(", ")
            )
        })
        .collect();
    parts.join("; ")
}

/// A dependency of the component being composed.
#[derive(Debug, Clone, Copy)]
pub struct Dependency<'a> {
    /// Its name in the manifest, e.g. `upshift:router/router@0.2.0`.
    pub name: &'a str,
    /// The export to plug in, when not the import's own name.
    pub export: Option<&'a str>,
    /// Its component binary.
    pub bytes: &'a [u8],
    /// What it inherits.
    pub inherit: &'a Inherit,
}

/// A dependency name, parsed as Spin parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DependencyName {
    /// `foo-bar`: matches the import of that name.
    Plain(String),
    /// `ns:pkg[/interface][@version]`.
    Package {
        package: String,
        interface: Option<String>,
        version: Option<String>,
    },
}

impl DependencyName {
    fn parse(name: &str) -> Result<Self, ComposeError> {
        let invalid = |reason: &str| ComposeError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        if !name.contains([':', '/']) {
            return if is_kebab(name) {
                Ok(DependencyName::Plain(name.to_owned()))
            } else {
                Err(invalid("a plain name must be kebab-case"))
            };
        }
        let (rest, version) = match name.split_once('@') {
            Some((rest, version)) => (rest, Some(version)),
            None => (name, None),
        };
        if let Some(version) = version
            && !is_semver(version)
        {
            return Err(invalid("the version is not a semantic version"));
        }
        let (package, interface) = match rest.split_once('/') {
            Some((package, interface)) => (package, Some(interface)),
            None => (rest, None),
        };
        let valid_package = package
            .split_once(':')
            .is_some_and(|(ns, pkg)| is_kebab(ns) && is_kebab(pkg));
        if !valid_package || interface.is_some_and(|i| !is_kebab(i)) {
            return Err(invalid(
                "expected `namespace:package[/interface][@version]`",
            ));
        }
        Ok(DependencyName::Package {
            package: package.to_owned(),
            interface: interface.map(str::to_owned),
            version: version.map(str::to_owned),
        })
    }

    /// The name the dependency is registered under in the composition.
    fn package_name(&self) -> &str {
        match self {
            DependencyName::Plain(name) => name,
            DependencyName::Package { package, .. } => package,
        }
    }

    /// Whether the dependency satisfies the import `import`.
    fn matches(&self, import: &str) -> bool {
        match self {
            DependencyName::Plain(name) => name == import,
            DependencyName::Package {
                package,
                interface,
                version,
            } => {
                let Some((import_package, rest)) = import.split_once('/') else {
                    return false;
                };
                let (import_interface, import_version) = match rest.split_once('@') {
                    Some((i, v)) => (i, Some(v)),
                    None => (rest, None),
                };
                import_package == package
                    && interface.as_deref().is_none_or(|i| i == import_interface)
                    && version.as_deref().is_none_or(|v| Some(v) == import_version)
            }
        }
    }
}

/// A component-model kebab name: words of lower-case letters and digits,
/// or of upper-case letters and digits (acronyms), each starting with a
/// letter.
fn is_kebab(s: &str) -> bool {
    let word = |w: &str| {
        let lower = w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let upper = w.starts_with(|c: char| c.is_ascii_uppercase())
            && w.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        lower || upper
    };
    !s.is_empty() && s.split('-').all(word)
}

fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or_default();
    core.split('.').count() == 3 && core.split('.').all(|n| n.parse::<u64>().is_ok())
}

/// The capability set covering `import`, if it is a capability.
fn capability_of(import: &str) -> Option<&'static str> {
    CAPABILITIES.iter().find_map(|(set, names)| {
        names
            .iter()
            .any(|name| *name == import || are_semver_compatible(name, import))
            .then_some(*set)
    })
}

impl Inherit {
    /// Whether the capability set `capability` is inherited.
    pub fn allows(&self, capability: &str) -> bool {
        match self {
            Inherit::All => true,
            Inherit::Only(sets) => sets.iter().any(|s| s == capability),
        }
    }
}

/// Composes `main` (the component `component_id`) with `dependencies`;
/// returns `main` unchanged when there are none.
pub fn compose(
    component_id: &str,
    main: &[u8],
    dependencies: &[Dependency<'_>],
) -> Result<Vec<u8>, ComposeError> {
    if dependencies.is_empty() {
        return Ok(main.to_vec());
    }
    let prepare = |e: anyhow::Error| ComposeError::Prepare(e);
    let mut graph = CompositionGraph::new();
    let (main_world, main_instance) = register(&mut graph, component_id, main).map_err(prepare)?;
    let imports: Vec<String> = graph.types()[main_world].imports.keys().cloned().collect();

    // Which dependency satisfies which import.
    let mut matched: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut registered = Vec::with_capacity(dependencies.len());
    let mut denied_nodes = HashMap::new();
    for (index, dependency) in dependencies.iter().enumerate() {
        let name = DependencyName::parse(dependency.name)?;
        let satisfied: Vec<&String> = imports.iter().filter(|i| name.matches(i)).collect();
        if satisfied.is_empty() {
            return Err(ComposeError::UnmatchedDependencyName {
                component: component_id.to_owned(),
                dependency: dependency.name.to_owned(),
            });
        }
        for import in satisfied {
            matched.entry(import.clone()).or_default().push(index);
        }
        let (world, instance) =
            register(&mut graph, name.package_name(), dependency.bytes).map_err(prepare)?;
        deny(&mut graph, dependency, world, instance, &mut denied_nodes)?;
        registered.push((world, instance));
    }
    let conflicts: Vec<(String, Vec<String>)> = matched
        .iter()
        .filter(|(_, deps)| deps.len() > 1)
        .map(|(import, deps)| {
            let names = deps
                .iter()
                .map(|d| dependencies[*d].name.to_owned())
                .collect();
            (import.clone(), names)
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(ComposeError::DependencyConflicts {
            component: component_id.to_owned(),
            conflicts,
        });
    }

    let mut cache = Default::default();
    let mut checker = SubtypeChecker::new(&mut cache);
    for (import, deps) in &matched {
        let dependency = &dependencies[deps[0]];
        let (world, instance) = registered[deps[0]];
        let export = dependency.export.unwrap_or(import);
        let types = graph.types();
        let Some(export_ty) = types[world].exports.get(export).copied() else {
            return Err(ComposeError::MissingExport {
                dependency: dependency.name.to_owned(),
                export: export.to_owned(),
                import: import.clone(),
            });
        };
        let import_ty = types[main_world].imports[import.as_str()];
        checker
            .is_subtype(export_ty, types, import_ty, types)
            .map_err(|e| {
                prepare(e.context(format!(
                    "dependency '{}' exports '{export}' which is not compatible with import \
                     '{import}'",
                    dependency.name
                )))
            })?;
        let alias = graph
            .alias_instance_export(instance, export)
            .map_err(|e| prepare(e.into()))?;
        graph
            .set_instantiation_argument(main_instance, import, alias)
            .map_err(|e| prepare(e.into()))?;
    }

    let exports: Vec<String> = graph.types()[main_world].exports.keys().cloned().collect();
    for name in exports {
        let alias = graph
            .alias_instance_export(main_instance, &name)
            .map_err(|e| prepare(e.into()))?;
        graph.export(alias, &name).map_err(|e| prepare(e.into()))?;
    }
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| ComposeError::Encode(e.into()))
}

/// Registers `bytes` as package `name` and instantiates it.
fn register(
    graph: &mut CompositionGraph,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<(wac_graph::types::WorldId, NodeId)> {
    let package = Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut())?;
    let world = package.ty();
    let id = graph.register_package(package)?;
    Ok((world, graph.instantiate(id)))
}

/// Wires the capability imports `dependency` does not inherit to the
/// denied stand-ins, refusing a dependency left inconsistent by that.
fn deny(
    graph: &mut CompositionGraph,
    dependency: &Dependency<'_>,
    world: wac_graph::types::WorldId,
    instance: NodeId,
    denied_nodes: &mut HashMap<String, NodeId>,
) -> Result<(), ComposeError> {
    let imports: Vec<(String, ItemKind)> = graph.types()[world]
        .imports
        .iter()
        .map(|(name, kind)| (name.clone(), *kind))
        .collect();
    let denied: Vec<(&String, ItemKind, &str)> = imports
        .iter()
        .filter_map(|(name, kind)| {
            let capability = capability_of(name)?;
            (!dependency.inherit.allows(capability)).then_some((name, *kind, capability))
        })
        .collect();
    for (import, _) in &imports {
        if let Some((_, uses)) = DEPENDENT_IMPORTS
            .iter()
            .find(|(dependent, _)| are_semver_compatible(dependent, import))
            && let Some((denied_import, _, capability)) = denied
                .iter()
                .find(|(name, ..)| are_semver_compatible(uses, name))
        {
            return Err(ComposeError::InconsistentDenial {
                dependency: dependency.name.to_owned(),
                import: import.clone(),
                denied: (*denied_import).clone(),
                capability: (*capability).to_owned(),
            });
        }
    }
    for (import, kind, _) in denied {
        let ItemKind::Instance(interface) = kind else {
            continue;
        };
        let stand_in = format!("{DENIED}{}", import.replacen(':', "-", 1));
        let node = match denied_nodes.get(&stand_in) {
            Some(node) => *node,
            None => {
                // The encoder imports an interface once, whatever the name:
                // the stand-in is the interface under an id of its own.
                let mut copy = graph.types()[interface].clone();
                copy.id = Some(stand_in.clone());
                let copy = graph.types_mut().add_interface(copy);
                let node = graph
                    .import(stand_in.clone(), ItemKind::Instance(copy))
                    .map_err(|e| ComposeError::Prepare(e.into()))?;
                denied_nodes.insert(stand_in, node);
                node
            }
        };
        graph
            .set_instantiation_argument(instance, import, node)
            .map_err(|e| ComposeError::Prepare(e.into()))?;
    }
    Ok(())
}

/// Defines every `upshift-denied:…` import of `component` in `linker`:
/// each call fails, saying which capability the dependency did not inherit.
pub fn deny_imports<T: 'static>(
    linker: &mut Linker<T>,
    component: &Component,
) -> anyhow::Result<()> {
    let engine = component.engine().clone();
    let ty = component.component_type();
    for (name, item) in ty.imports(&engine) {
        let Some(original) = name.strip_prefix(DENIED) else {
            continue;
        };
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let original = original.replacen('-', ":", 1);
        let mut denied = linker.instance(name)?;
        for (export, item) in instance.exports(&engine) {
            match item.ty {
                ComponentItem::ComponentFunc(func) => {
                    let message = format!(
                        "`{original}#{export}` is not permitted: the dependency does not inherit \
                         the component's configuration"
                    );
                    if func.async_() {
                        denied.func_new_concurrent(export, move |_, _, _, _| {
                            let message = message.clone();
                            Box::pin(async move { Err(wasmtime::Error::msg(message)) })
                        })?;
                    } else {
                        denied.func_new(export, move |_, _, _, _| {
                            Err(wasmtime::Error::msg(message.clone()))
                        })?;
                    }
                }
                ComponentItem::Resource(_) => {
                    denied.resource(
                        export,
                        wasmtime::component::ResourceType::host::<Denied>(),
                        |_, _| Ok(()),
                    )?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The resource type of denied interfaces' resources (none is ever made).
struct Denied;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_names_match_imports_as_spin_matches_them() {
        let matches = |dependency: &str, import: &str| {
            DependencyName::parse(dependency).unwrap().matches(import)
        };
        for (dependency, import) in [
            ("foo:bar/baz@0.1.0", "foo:bar/baz@0.1.0"),
            ("foo:bar/baz", "foo:bar/baz@0.1.0"),
            ("foo:bar/baz", "foo:bar/baz"),
            ("foo:bar", "foo:bar/baz@0.1.0"),
            ("foo:bar@0.1.0", "foo:bar/baz@0.1.0"),
            ("foo-bar", "foo-bar"),
        ] {
            assert!(matches(dependency, import), "{dependency} ~ {import}");
        }
        for (dependency, import) in [
            ("foo:bar/baz@0.1.0", "foo:bar/baz"),
            ("foo:bar/baz@0.1.0", "foo:bar/baz@0.1.1"),
            ("foo:bar/baz", "foo:bar/bub@0.1.0"),
            ("foo:bar", "foo:bub/bib"),
            ("foo:bar@0.1.0", "foo:bar/baz"),
            ("foo:bar/baz", "foo:bar/baz-bub"),
            ("foo-bar", "foo:bar/baz"),
        ] {
            assert!(!matches(dependency, import), "{dependency} !~ {import}");
        }
    }

    #[test]
    fn dependencies_register_under_their_package() {
        let package = |name: &str| {
            DependencyName::parse(name)
                .unwrap()
                .package_name()
                .to_owned()
        };
        assert_eq!(package("upshift:router/router@0.2.0"), "upshift:router");
        assert_eq!(package("upshift:gateway/auth@0.1.0"), "upshift:gateway");
        assert_eq!(package("my-dep"), "my-dep");
    }

    #[test]
    fn invalid_dependency_names_are_refused() {
        for name in ["Foo", "foo:bar/Baz", "foo/bar", "foo:bar@1.0", ":x"] {
            assert!(DependencyName::parse(name).is_err(), "{name}");
        }
    }

    #[test]
    fn capabilities_cover_compatible_versions() {
        assert_eq!(
            capability_of("wasi:cli/environment@0.2.3"),
            Some("environment")
        );
        assert_eq!(
            capability_of("wasi:keyvalue/store@0.2.0-draft2"),
            Some("key_value_stores")
        );
        assert_eq!(capability_of("wasi:keyvalue/atomics@0.2.0-draft2"), None);
        assert_eq!(capability_of("wasi:io/streams@0.2.3"), None);
        assert!(Inherit::Only(vec!["key_value_stores".into()]).allows("key_value_stores"));
        assert!(!Inherit::Only(vec![]).allows("environment"));
        assert!(Inherit::All.allows("files"));
    }
}
