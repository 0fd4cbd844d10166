//! Composition of a trigger component with its `[component.X.dependencies]`,
//! using `wac-graph` like Spin does.
//!
//! Each dependency is instantiated and the chosen export plugged into the main
//! component's import of the same name. Whatever the dependencies import
//! themselves (WASI, key-value, ...) becomes an import of the composition,
//! served with the main component's permissions. As in Spin, that needs
//! `dependencies_inherit_configuration = true`: without it, a dependency that
//! imports a capability (key-value, outbound HTTP, variables, ...) is refused.

use wac_graph::types::{Package, are_semver_compatible};
use wac_graph::{CompositionGraph, EncodeOptions};

/// Errors composing a component with its dependencies.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A component binary could not be loaded as a package.
    #[error("cannot load `{name}` as a component")]
    Load {
        /// Component or dependency name.
        name: String,
        /// Underlying error.
        source: anyhow::Error,
    },
    /// The main component does not import the dependency's name.
    #[error("component does not import `{0}` (dependency names must match an import)")]
    NoSuchImport(String),
    /// The dependency does not export the requested name.
    #[error("dependency for `{import}` does not export `{export}`")]
    NoSuchExport {
        /// The import being satisfied.
        import: String,
        /// The export that was looked for.
        export: String,
    },
    /// A dependency imports a capability it would only get by inheriting the
    /// main component's configuration, and the manifest does not allow that.
    #[error(
        "dependency for `{import}` imports `{capability}`; set \
         `dependencies_inherit_configuration = true` on the component to grant it"
    )]
    NotInherited {
        /// The import the dependency satisfies.
        import: String,
        /// The capability interface it imports.
        capability: String,
    },
    /// Building or encoding the graph failed (e.g. incompatible types).
    #[error("composing `{context}`")]
    Graph {
        /// What was being done.
        context: String,
        /// Underlying error.
        source: anyhow::Error,
    },
}

/// A dependency to plug into the main component.
pub struct Plug<'a> {
    /// Import of the main component it satisfies, e.g. `upshift:gateway/router@0.1.0`.
    pub import: &'a str,
    /// Export of the dependency to use (usually the same as `import`).
    pub export: &'a str,
    /// The dependency's component binary.
    pub bytes: &'a [u8],
}

fn graph_error(context: impl Into<String>) -> impl FnOnce(anyhow::Error) -> ComposeError {
    let context = context.into();
    move |source| ComposeError::Graph { context, source }
}

/// Interfaces that carry the main component's configuration: its stores,
/// outbound hosts, variables.
const CAPABILITIES: [&str; 6] = [
    "wasi:keyvalue/",
    "spin:key-value/",
    "wasi:http/",
    "spin:variables/",
    "wasi:config/",
    "wasi:sockets/",
];

/// Composes `main` with `plugs`; returns `main` unchanged when there are none.
/// With `inherit` false, a dependency importing a capability is refused.
pub fn compose(main: &[u8], plugs: &[Plug<'_>], inherit: bool) -> Result<Vec<u8>, ComposeError> {
    if plugs.is_empty() {
        return Ok(main.to_vec());
    }
    let mut graph = CompositionGraph::new();
    let load = |graph: &mut CompositionGraph, name: &str, bytes: &[u8]| {
        let package = Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut()).map_err(
            |source| ComposeError::Load {
                name: name.to_owned(),
                source,
            },
        )?;
        graph
            .register_package(package)
            .map_err(|e| graph_error(name)(e.into()))
    };

    let main_package = load(&mut graph, "upshift:main", main)?;
    let main_instance = graph.instantiate(main_package);
    let main_type = graph[main_package].ty();

    for (index, plug) in plugs.iter().enumerate() {
        let import = graph.types()[main_type]
            .imports
            .keys()
            .find(|name| *name == plug.import)
            .or_else(|| {
                graph.types()[main_type]
                    .imports
                    .keys()
                    .find(|name| are_semver_compatible(name, plug.import))
            })
            .cloned()
            .ok_or_else(|| ComposeError::NoSuchImport(plug.import.to_owned()))?;

        let package = load(
            &mut graph,
            &format!("upshift:dependency{index}"),
            plug.bytes,
        )?;
        let dependency = &graph.types()[graph[package].ty()];
        if !inherit
            && let Some(capability) = dependency
                .imports
                .keys()
                .find(|name| CAPABILITIES.iter().any(|c| name.starts_with(c)))
        {
            return Err(ComposeError::NotInherited {
                import: plug.import.to_owned(),
                capability: capability.clone(),
            });
        }
        let export = dependency
            .exports
            .keys()
            .find(|name| *name == plug.export || are_semver_compatible(name, plug.export))
            .cloned()
            .ok_or_else(|| ComposeError::NoSuchExport {
                import: plug.import.to_owned(),
                export: plug.export.to_owned(),
            })?;
        let instance = graph.instantiate(package);
        let alias = graph
            .alias_instance_export(instance, &export)
            .map_err(|e| graph_error(plug.import)(e.into()))?;
        graph
            .set_instantiation_argument(main_instance, &import, alias)
            .map_err(|e| graph_error(plug.import)(e.into()))?;
    }

    let exports: Vec<String> = graph.types()[main_type].exports.keys().cloned().collect();
    for name in exports {
        let alias = graph
            .alias_instance_export(main_instance, &name)
            .map_err(|e| graph_error(&name)(e.into()))?;
        graph
            .export(alias, &name)
            .map_err(|e| graph_error(&name)(e.into()))?;
    }

    graph
        .encode(EncodeOptions::default())
        .map_err(|e| graph_error("encoding")(e.into()))
}
