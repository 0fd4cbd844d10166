//! `upshift up --watch`: rebuilds a component when one of its sources
//! changes (its `[component.NAME.build]` `command` and `watch` globs, as
//! `spin watch` reads them), and puts the new build of a component the
//! registry changes in force through it while traffic flows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::cli::builder;
use crate::manifest::App;
use crate::registry::{Actor, Registry};

/// How often the sources are looked at.
const POLL: Duration = Duration::from_millis(300);

/// One component whose sources are watched.
pub struct Watched {
    name: String,
    command: String,
    workdir: PathBuf,
    /// Absolute glob patterns of its sources.
    patterns: Vec<String>,
    /// The built `.wasm` file.
    source: PathBuf,
}

impl Watched {
    /// Every component of `app` with a build command and `watch` globs.
    pub fn from_app(app: &App) -> anyhow::Result<Vec<Watched>> {
        let mut watched = Vec::new();
        for (name, component) in &app.manifest.component {
            let Some(build) = component.build.as_ref().filter(|b| !b.watch.is_empty()) else {
                continue;
            };
            let workdir = builder::workdir(app, build);
            let mut patterns = Vec::with_capacity(build.watch.len());
            for pattern in &build.watch {
                let absolute = workdir.join(pattern);
                let absolute = absolute
                    .to_str()
                    .with_context(|| {
                        format!("the watch glob {pattern:?} of `{name}` is not UTF-8")
                    })?
                    .to_owned();
                glob::Pattern::new(&absolute).with_context(|| {
                    format!("the watch glob {pattern:?} of `{name}` is invalid")
                })?;
                patterns.push(absolute);
            }
            watched.push(Watched {
                name: name.clone(),
                command: build.command.clone(),
                workdir,
                patterns,
                source: app.resolve(&component.source),
            });
        }
        Ok(watched)
    }

    /// When each source was last modified.
    fn fingerprint(&self) -> BTreeMap<PathBuf, SystemTime> {
        self.patterns
            .iter()
            .filter_map(|pattern| glob::glob(pattern).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|path| Some((path.clone(), modified(&path)?)))
            .collect()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// Watches `watched` on a thread of its own until the process ends;
/// swaps rebuilt components in through `registry`.
pub fn spawn(watched: Vec<Watched>, registry: Option<Arc<Registry>>) {
    if watched.is_empty() {
        tracing::warn!("--watch: no component has a build command with `watch` globs");
        return;
    }
    let runtime = tokio::runtime::Handle::current();
    let names: Vec<&str> = watched.iter().map(|w| w.name.as_str()).collect();
    tracing::info!(components = %names.join(", "), "watching sources");
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let mut seen: Vec<_> = watched.iter().map(Watched::fingerprint).collect();
            loop {
                std::thread::sleep(POLL);
                for (component, seen) in watched.iter().zip(&mut seen) {
                    let now = component.fingerprint();
                    if now == *seen {
                        continue;
                    }
                    let changed = now
                        .iter()
                        .find(|(path, at)| seen.get(*path) != Some(at))
                        .or_else(|| now.iter().next())
                        .map_or_else(String::new, |(path, _)| path.display().to_string());
                    *seen = now;
                    rebuild(component, &changed, registry.as_ref(), &runtime);
                }
            }
        })
        .expect("spawning the watch thread");
}

/// Rebuilds `component` and, when the registry changes it, puts the build
/// in force.
fn rebuild(
    component: &Watched,
    changed: &str,
    registry: Option<&Arc<Registry>>,
    runtime: &tokio::runtime::Handle,
) {
    let name = &component.name;
    if let Err(error) = builder::run(name, &component.command, &component.workdir) {
        tracing::error!(component = %name, "{error}; the build in force stays");
        return;
    }
    let Some(registry) = registry.filter(|r| r.has(name)) else {
        tracing::warn!(
            component = %name,
            "rebuilt; this component is not swapped live here, it takes effect on restart"
        );
        return;
    };
    let bytes = match std::fs::read(&component.source) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(component = %name, "cannot read {}: {error}", component.source.display());
            return;
        }
    };
    let actor = Actor {
        by: "watch".to_owned(),
        reason: format!("{changed} changed"),
    };
    match runtime.block_on(registry.replace(name, bytes, actor)) {
        Ok(()) => tracing::info!(component = %name, "rebuilt and in force"),
        Err(error) => tracing::error!(component = %name, "rebuilt but not in force: {error}"),
    }
}
