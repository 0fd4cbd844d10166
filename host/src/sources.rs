//! What a component is made of, as the manifest says: its own binary and
//! each dependency's, read once. The lanes compose or compile from these,
//! with pushed versions in place of some (see [`crate::registry`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;

use crate::compose::{ComposeError, Dependency, Inherit, compose};
use crate::manifest::App;

/// One component binary of a composition.
#[derive(Clone)]
pub struct Source {
    /// The manifest component it is (`None`: a dependency given by path).
    pub component: Option<String>,
    /// Its bytes.
    pub bytes: Arc<[u8]>,
}

/// A dependency of the composed component.
pub struct DependencySource {
    /// Its name in the manifest, e.g. `upshift:router/router@0.2.0`.
    pub name: String,
    /// The export plugged in, when not the import's own name.
    pub export: Option<String>,
    /// What it inherits.
    pub inherit: Inherit,
    /// Its binary.
    pub source: Source,
}

/// A component and its dependencies, read from the manifest.
pub struct Sources {
    /// The component's name.
    pub name: String,
    /// Its own binary.
    pub main: Source,
    /// Its dependencies, in the manifest's order.
    pub dependencies: Vec<DependencySource>,
    /// The key-value stores the component declares.
    pub key_value_stores: Arc<HashSet<String>>,
}

impl Sources {
    /// Reads the binaries of component `name` of `app` and of its
    /// dependencies.
    pub fn read(app: &App, name: &str) -> anyhow::Result<Self> {
        let decl = &app.manifest.component[name];
        let read = |file: &str| -> anyhow::Result<Arc<[u8]>> {
            let path = app.resolve(file);
            Ok(std::fs::read(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .into())
        };
        let mut dependencies = Vec::with_capacity(decl.dependencies.len());
        for (dependency_name, dependency) in &decl.dependencies {
            let file = match (&dependency.component, &dependency.path) {
                (Some(component), _) => &app.manifest.component[component].source,
                (None, Some(path)) => path,
                (None, None) => unreachable!("validated by the manifest loader"),
            };
            dependencies.push(DependencySource {
                name: dependency_name.clone(),
                export: dependency.export.clone(),
                inherit: decl.inherit(dependency_name),
                source: Source {
                    component: dependency.component.clone(),
                    bytes: read(file)?,
                },
            });
        }
        Ok(Self {
            name: name.to_owned(),
            main: Source {
                component: Some(name.to_owned()),
                bytes: read(&decl.source)?,
            },
            dependencies,
            key_value_stores: Arc::new(decl.key_value_stores.iter().cloned().collect()),
        })
    }

    /// Composes the component with its dependencies, as Spin does, with
    /// the bytes of `replaced` in place of the manifest components it
    /// names.
    pub fn compose(&self, replaced: &HashMap<String, Arc<[u8]>>) -> Result<Vec<u8>, ComposeError> {
        let bytes = |source: &Source| -> Arc<[u8]> {
            source
                .component
                .as_ref()
                .and_then(|name| replaced.get(name))
                .unwrap_or(&source.bytes)
                .clone()
        };
        let binaries: Vec<Arc<[u8]>> = self
            .dependencies
            .iter()
            .map(|dependency| bytes(&dependency.source))
            .collect();
        let dependencies: Vec<Dependency<'_>> = self
            .dependencies
            .iter()
            .zip(&binaries)
            .map(|(dependency, bytes)| Dependency {
                name: &dependency.name,
                export: dependency.export.as_deref(),
                bytes,
                inherit: &dependency.inherit,
            })
            .collect();
        compose(&self.name, &bytes(&self.main), &dependencies)
    }
}
