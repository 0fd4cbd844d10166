//! Spin manifest (`spin.toml`, version 2) parsing and validation.
//!
//! Only the parts of the schema Upshift acts on are modelled; unknown keys are
//! ignored like Spin does for forward compatibility.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::capabilities::outbound_http::{AllowedHostError, AllowedHosts};
use crate::capabilities::variables::{Template, TemplateError};
use crate::compose::Inherit;
use crate::routes::{Route, RouteError};

/// Errors found while loading or validating a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("cannot read manifest {path}")]
    Read {
        /// Manifest path.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The manifest is not valid TOML or does not match the schema.
    #[error("invalid manifest {path}")]
    Parse {
        /// Manifest path.
        path: PathBuf,
        /// Underlying TOML error.
        source: Box<toml::de::Error>,
    },
    /// The manifest is well-formed but inconsistent.
    #[error("invalid manifest {path}: {message}")]
    Invalid {
        /// Manifest path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The parts of a Spin v2 manifest Upshift uses.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    /// Must be `2`.
    pub spin_manifest_version: u32,
    /// `[application]`.
    pub application: Application,
    /// `[variables]`: application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    /// `[trigger]` tables.
    #[serde(default)]
    pub trigger: Triggers,
    /// `[component.NAME]` tables.
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
}

/// `[application]`.
#[derive(Debug, Deserialize)]
pub struct Application {
    /// Application name.
    pub name: String,
    /// Application version.
    #[serde(default)]
    pub version: Option<String>,
}

/// An application variable declaration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    /// Value used when no provider supplies one.
    #[serde(default)]
    pub default: Option<String>,
    /// Startup fails when no value is available.
    #[serde(default)]
    pub required: bool,
    /// The value must never be logged.
    #[serde(default)]
    pub secret: bool,
}

/// `[trigger]`.
#[derive(Debug, Default, Deserialize)]
pub struct Triggers {
    /// `[[trigger.http]]`.
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Deserialize)]
pub struct HttpTrigger {
    /// Route pattern, e.g. `/admin/...`.
    pub route: String,
    /// Name of the component handling the route.
    pub component: String,
}

/// `[component.NAME]`.
#[derive(Debug, Deserialize)]
pub struct ComponentDecl {
    /// Path of the `.wasm` file, relative to the manifest directory.
    pub source: String,
    /// Hosts the component may send HTTP requests to (Spin syntax).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value store labels the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// Component variables: name to template (`"{{ app_var }}"`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// `[component.NAME.build]`.
    #[serde(default)]
    pub build: Option<BuildConfig>,
    /// `[component.NAME.dependencies]`: import name to dependency.
    #[serde(default)]
    pub dependencies: BTreeMap<String, Dependency>,
    /// Whether every dependency gets this component's stores, hosts and
    /// variables (exclusive with a dependency's own `inherit_configuration`).
    #[serde(default)]
    pub dependencies_inherit_configuration: Option<bool>,
}

impl ComponentDecl {
    /// What the dependency for `name` inherits, by Spin's rules: everything
    /// when the component says so for all its dependencies, else what the
    /// dependency's `inherit_configuration` says, else nothing.
    pub fn inherit(&self, name: &str) -> Inherit {
        if self.dependencies_inherit_configuration == Some(true) {
            return Inherit::All;
        }
        match self
            .dependencies
            .get(name)
            .and_then(|d| d.inherit_configuration.as_ref())
        {
            Some(InheritConfiguration::All(true)) => Inherit::All,
            Some(InheritConfiguration::Some(sets)) => Inherit::Only(sets.clone()),
            Some(InheritConfiguration::All(false)) | None => Inherit::Only(Vec::new()),
        }
    }

    /// The resources a component used as a dependency may not have (Spin
    /// refuses them: a dependency runs with its parent's).
    fn own_resources(&self) -> Vec<&'static str> {
        [
            (
                "allowed_outbound_hosts",
                !self.allowed_outbound_hosts.is_empty(),
            ),
            ("dependencies", !self.dependencies.is_empty()),
            ("key_value_stores", !self.key_value_stores.is_empty()),
            ("variables", !self.variables.is_empty()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }
}

/// A dependency's `inherit_configuration`: `true`, `false`, or the names of
/// the capability sets it inherits (`key_value_stores`, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InheritConfiguration {
    /// All or nothing.
    All(bool),
    /// The named sets.
    Some(Vec<String>),
}

/// `[component.NAME.build]`.
#[derive(Debug, Deserialize)]
pub struct BuildConfig {
    /// Shell command building the component.
    pub command: String,
    /// Directory to run the command in, relative to the manifest directory.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Globs of the sources the build reads, relative to the working
    /// directory: `upshift up --watch` rebuilds when one changes.
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A component dependency: another component of the app or a local file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// Name of a component of this app whose `source` satisfies the import.
    #[serde(default)]
    pub component: Option<String>,
    /// Path of a `.wasm` file, relative to the manifest directory.
    #[serde(default)]
    pub path: Option<String>,
    /// Export of the dependency to plug in; defaults to the import name.
    #[serde(default)]
    pub export: Option<String>,
    /// What it inherits from the component (see [`ComponentDecl::inherit`]).
    #[serde(default)]
    pub inherit_configuration: Option<InheritConfiguration>,
}

/// A validated manifest together with the directory its paths are relative to.
#[derive(Debug)]
pub struct App {
    /// Path of the manifest file.
    pub path: PathBuf,
    /// Directory containing the manifest.
    pub dir: PathBuf,
    /// The manifest contents.
    pub manifest: Manifest,
    /// Parsed `[[trigger.http]]` routes, in manifest order.
    pub routes: Vec<(Route, String)>,
}

impl App {
    /// Reads, parses and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_str(path, &text)
    }

    /// Parses and validates manifest text as if read from `path`.
    pub fn from_str(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|source| ManifestError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        let invalid = |message: String| ManifestError::Invalid {
            path: path.to_owned(),
            message,
        };
        let routes = validate(&manifest).map_err(invalid)?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Self {
            path: path.to_owned(),
            dir,
            manifest,
            routes,
        })
    }

    /// Resolves a manifest-relative path.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// Checks that every `.wasm` file needed by the HTTP triggers exists.
    pub fn check_sources(&self) -> Result<(), ManifestError> {
        for (_, name) in &self.routes {
            let component = &self.manifest.component[name];
            let mut files = vec![(name.as_str(), component.source.as_str())];
            for dependency in component.dependencies.values() {
                match (&dependency.component, &dependency.path) {
                    (Some(dep), _) => files.push((dep, &self.manifest.component[dep].source)),
                    (None, Some(path)) => files.push((name, path)),
                    (None, None) => {}
                }
            }
            for (owner, file) in files {
                let resolved = self.resolve(file);
                if !resolved.is_file() {
                    return Err(ManifestError::Invalid {
                        path: self.path.clone(),
                        message: format!(
                            "component `{owner}`: source file {} does not exist \
                             (hint: run `upshift build` first, or `upshift up --build`)",
                            resolved.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Checks internal consistency; returns the parsed routes.
fn validate(manifest: &Manifest) -> Result<Vec<(Route, String)>, String> {
    if manifest.spin_manifest_version != 2 {
        return Err(format!(
            "unsupported spin_manifest_version {} (only 2 is supported)",
            manifest.spin_manifest_version
        ));
    }
    for name in manifest.variables.keys() {
        check_variable_name(name).map_err(|e| format!("variable `{name}`: {e}"))?;
    }
    for (name, decl) in &manifest.variables {
        if decl.required && decl.default.is_some() {
            return Err(format!(
                "variable `{name}`: `required` and `default` are mutually exclusive"
            ));
        }
        if !decl.required && decl.default.is_none() {
            return Err(format!(
                "variable `{name}`: needs either `default` or `required = true`"
            ));
        }
    }
    for (name, component) in &manifest.component {
        validate_component(manifest, name, component)
            .map_err(|e| format!("component `{name}`: {e}"))?;
    }
    if manifest.trigger.http.is_empty() {
        return Err("no [[trigger.http]] entries".into());
    }
    let mut routes: Vec<(Route, String)> = Vec::new();
    for trigger in &manifest.trigger.http {
        if !manifest.component.contains_key(&trigger.component) {
            return Err(format!(
                "trigger route `{}` references unknown component `{}`",
                trigger.route, trigger.component
            ));
        }
        let route = Route::parse(&trigger.route)
            .map_err(|e: RouteError| format!("trigger for `{}`: {e}", trigger.component))?;
        if let Some((_, other)) = routes.iter().find(|(r, _)| *r == route) {
            return Err(format!(
                "route `{}` is used by both `{other}` and `{}`",
                trigger.route, trigger.component
            ));
        }
        routes.push((route, trigger.component.clone()));
    }
    Ok(routes)
}

fn validate_component(
    manifest: &Manifest,
    name: &str,
    component: &ComponentDecl,
) -> Result<(), String> {
    if component.source.is_empty() {
        return Err("`source` is empty".into());
    }
    AllowedHosts::parse(&component.allowed_outbound_hosts)
        .map_err(|e: AllowedHostError| e.to_string())?;
    for label in &component.key_value_stores {
        if label.is_empty() {
            return Err("empty key-value store label".into());
        }
    }
    for (var, template) in &component.variables {
        check_variable_name(var).map_err(|e| format!("variable `{var}`: {e}"))?;
        let template = Template::parse(template)
            .map_err(|e: TemplateError| format!("variable `{var}`: {e}"))?;
        for reference in template.references() {
            if !manifest.variables.contains_key(reference) {
                return Err(format!(
                    "variable `{var}` references undeclared application variable `{reference}`"
                ));
            }
        }
    }
    if component.dependencies_inherit_configuration.is_some()
        && component
            .dependencies
            .values()
            .any(|d| d.inherit_configuration.is_some())
    {
        return Err("`dependencies_inherit_configuration` and a dependency's \
                    `inherit_configuration` are mutually exclusive; use one or the other"
            .into());
    }
    for (import, dependency) in &component.dependencies {
        match (&dependency.component, &dependency.path) {
            (Some(dep), None) => {
                if dep == name {
                    return Err(format!(
                        "dependency `{import}` refers to the component itself"
                    ));
                }
                let Some(depended_on) = manifest.component.get(dep) else {
                    return Err(format!(
                        "dependency `{import}` references unknown component `{dep}`"
                    ));
                };
                let surprises = depended_on.own_resources();
                if !surprises.is_empty() {
                    return Err(format!(
                        "dependencies may not have their own resources or permissions: \
                         component `{dep}` cannot be used as a dependency because it \
                         specifies: {}",
                        surprises.join(", ")
                    ));
                }
            }
            (None, Some(_)) => {}
            _ => {
                return Err(format!(
                    "dependency `{import}` needs exactly one of `component` or `path`"
                ));
            }
        }
    }
    Ok(())
}

/// Spin variable names: lowercase ASCII letters, digits and `_`, starting with a letter.
fn check_variable_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() => {}
        _ => return Err("names must start with a lowercase letter"),
    }
    if chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(())
    } else {
        Err("names may only contain lowercase letters, digits and `_`")
    }
}

#[cfg(test)]
mod tests;
