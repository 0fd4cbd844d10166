//! Application and component variables (`spin:variables`).
//!
//! Application variable values come, in order of precedence, from the
//! environment (`SPIN_VARIABLE_<UPPER_NAME>`, Spin's convention), from a
//! `--variables-file` (TOML or JSON map) and from the manifest default.
//! Component variables are templates over application variables, resolved once
//! at startup. Values are never logged.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Accessor, HasData, Linker};

use super::{AppContext, Capability};
use crate::bindings::spin::variables::variables::{self as spin_variables, Error as SpinError};
use crate::engine::HostState;
use crate::manifest::App;

/// An invalid variable template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("unterminated `{{{{` in template")]
    Unterminated,
    /// `{{ }}` with an empty or malformed name.
    #[error("invalid variable reference `{0}` in template")]
    BadReference(String),
}

/// Errors resolving variables.
#[derive(Debug, thiserror::Error)]
pub enum VariablesError {
    /// The variables file could not be read.
    #[error("cannot read variables file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A required variable has no value.
    #[error(
        "required variable `{name}` has no value (set SPIN_VARIABLE_{upper} or add it to --variables-file)"
    )]
    Missing {
        /// Variable name.
        name: String,
        /// Name of the environment variable that would provide it.
        upper: String,
    },
    /// A template could not be parsed.
    #[error("component `{component}` variable `{name}`")]
    Template {
        /// Component name.
        component: String,
        /// Variable name.
        name: String,
        /// Parse error.
        source: TemplateError,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

/// A parsed template such as `"Bearer {{ token }}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl Template {
    /// Parses a template with `{{ name }}` references.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Unterminated)?;
            let name = after[..end].trim();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(TemplateError::BadReference(after[..end].to_owned()));
            }
            parts.push(Part::Variable(name.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    /// Names of the application variables referenced.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|part| match part {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    fn render(&self, values: &HashMap<String, String>) -> Option<String> {
        self.0.iter().try_fold(String::new(), |mut out, part| {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(values.get(name)?),
            }
            Some(out)
        })
    }
}

/// Resolved component variables: component name to (variable name to value).
#[derive(Default)]
pub struct ComponentVariables(HashMap<String, Arc<HashMap<String, String>>>);

impl std::fmt::Debug for ComponentVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: only show names.
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(c, vars)| (c, vars.keys().collect::<Vec<_>>())),
            )
            .finish()
    }
}

impl ComponentVariables {
    /// Resolves every component's variables. `env` looks up environment variables.
    pub fn resolve(
        app: &App,
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, VariablesError> {
        let from_file = match file {
            Some(path) => read_variables_file(path)?,
            None => BTreeMap::new(),
        };
        let mut values = HashMap::new();
        for (name, decl) in &app.manifest.variables {
            let upper = name.to_ascii_uppercase();
            let value = env(&format!("SPIN_VARIABLE_{upper}"))
                .or_else(|| from_file.get(name).cloned())
                .or_else(|| decl.default.clone());
            match value {
                Some(value) => {
                    let shown = if decl.secret {
                        "<secret>"
                    } else {
                        value.as_str()
                    };
                    tracing::debug!(variable = %name, value = %shown, "resolved variable");
                    values.insert(name.clone(), value);
                }
                None => {
                    return Err(VariablesError::Missing {
                        name: name.clone(),
                        upper,
                    });
                }
            }
        }
        let mut resolved = HashMap::new();
        for (component, decl) in &app.manifest.component {
            let mut vars = HashMap::new();
            for (name, text) in &decl.variables {
                let template_error = |source| VariablesError::Template {
                    component: component.clone(),
                    name: name.clone(),
                    source,
                };
                let template = Template::parse(text).map_err(template_error)?;
                // Every referenced variable has a value: validation checked it is
                // declared and the loop above failed otherwise.
                let value = template.render(&values).unwrap_or_default();
                vars.insert(name.clone(), value);
            }
            resolved.insert(component.clone(), Arc::new(vars));
        }
        Ok(Self(resolved))
    }

    /// Sets variable `name` to `value()` in every component where it
    /// resolved empty; `value` runs only when there is one.
    pub fn fill_empty(
        &mut self,
        name: &str,
        value: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<()> {
        let mut value = Some(value);
        let mut filled: Option<String> = None;
        for vars in self.0.values_mut() {
            if vars.get(name).is_some_and(String::is_empty) {
                let filled = match (&filled, value.take()) {
                    (Some(text), _) => text.clone(),
                    (None, Some(make)) => filled.insert(make()?).clone(),
                    (None, None) => unreachable!("made once, then kept"),
                };
                Arc::make_mut(vars).insert(name.to_owned(), filled);
            }
        }
        Ok(())
    }

    /// The variables of `component` (empty if it has none).
    pub fn for_component(&self, component: &str) -> Arc<HashMap<String, String>> {
        self.0.get(component).cloned().unwrap_or_default()
    }
}

impl Capability for ComponentVariables {
    /// The component's variables.
    type Instance = Arc<HashMap<String, String>>;

    /// `spin:variables`.
    fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
        spin_variables::add_to_linker::<_, Variables>(linker, HostState::variables)?;
        Ok(())
    }

    /// Resolves every component's variables, from the process's environment,
    /// the `--variables-file` and the manifest's defaults.
    fn configure(context: &AppContext<'_>) -> anyhow::Result<Self> {
        let env = |name: &str| std::env::var(name).ok();
        Ok(Self::resolve(context.app, context.variables_file, env)?)
    }

    fn instance(&self, component: &str) -> Self::Instance {
        self.for_component(component)
    }
}

/// [`HasData`] marker for the `spin:variables` bindings.
pub struct Variables;

/// A component's resolved variables, as seen by the `spin:variables` bindings.
pub struct VariablesView<'a>(pub &'a HashMap<String, String>);

impl HasData for Variables {
    type Data<'a> = VariablesView<'a>;
}

impl spin_variables::Host for VariablesView<'_> {}

impl<T> spin_variables::HostWithStore<T> for Variables {
    async fn get(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, SpinError>> {
        Ok(accessor.with(|mut access| {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(SpinError::InvalidName(name));
            }
            access
                .get()
                .0
                .get(&name)
                .cloned()
                .ok_or(SpinError::Undefined(name))
        }))
    }
}

fn read_variables_file(path: &Path) -> Result<BTreeMap<String, String>, VariablesError> {
    let error = |message: String| VariablesError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let is_json = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    let map: BTreeMap<String, serde_json::Value> = if is_json {
        serde_json::from_str(&text).map_err(|e| error(e.to_string()))?
    } else {
        toml::from_str(&text).map_err(|e: toml::de::Error| error(e.to_string()))?
    };
    map.into_iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(error(format!("variable `{name}` must be a string"))),
            };
            Ok((name.to_ascii_lowercase(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
token = { default = "dev", secret = true }
region = { required = true }
[[trigger.http]]
route = "/..."
component = "a"
[component.a]
source = "a.wasm"
[component.a.variables]
admin_token = "{{ token }}"
label = "eu-{{region}}-x"
"#;

    fn app() -> App {
        App::from_str(Path::new("spin.toml"), MANIFEST).unwrap()
    }

    #[test]
    fn templates() {
        let t = Template::parse("a{{ b }}c{{d_1}}").unwrap();
        assert_eq!(t.references().collect::<Vec<_>>(), ["b", "d_1"]);
        assert!(Template::parse("{{ b").is_err());
        assert!(Template::parse("{{ B }}").is_err());
        assert_eq!(Template::parse("plain").unwrap().references().count(), 0);
    }

    #[test]
    fn env_beats_file_beats_default() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(file, "region = \"west\"\ntoken = \"from-file\"").unwrap();
        let vars = ComponentVariables::resolve(&app(), Some(file.path()), |name| {
            (name == "SPIN_VARIABLE_TOKEN").then(|| "from-env".to_string())
        })
        .unwrap();
        let a = vars.for_component("a");
        assert_eq!(a["admin_token"], "from-env");
        assert_eq!(a["label"], "eu-west-x");

        let vars = ComponentVariables::resolve(&app(), Some(file.path()), |_| None).unwrap();
        assert_eq!(vars.for_component("a")["admin_token"], "from-file");
    }

    #[test]
    fn defaults_and_json_files() {
        let mut file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
        write!(file, r#"{{"region": "north"}}"#).unwrap();
        let vars = ComponentVariables::resolve(&app(), Some(file.path()), |_| None).unwrap();
        assert_eq!(vars.for_component("a")["admin_token"], "dev");
        assert_eq!(vars.for_component("a")["label"], "eu-north-x");
        assert!(vars.for_component("other").is_empty());
        assert!(!format!("{vars:?}").contains("dev"));
    }

    #[test]
    fn missing_required_variable_is_an_error() {
        let err = ComponentVariables::resolve(&app(), None, |_| None).unwrap_err();
        assert!(err.to_string().contains("SPIN_VARIABLE_REGION"), "{err}");
    }
}
