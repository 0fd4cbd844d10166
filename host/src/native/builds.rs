//! The builds of the policy components: the manifest's, and versions
//! pushed to the registry. A build is admitted only when it fits its
//! role's world in `wit/`, compiles and links on this lane's engine; the
//! lane then also loads the config in force into it before any traffic.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use super::policy::{PolicySet, PolicyState, Prepared, Role};
use super::{lock, outer_and_root};
use crate::capabilities::kv::{KvAccess, KvBackend, KvCtx};
use crate::engine::load_component;
use crate::registry::records::{InForce, read_blob, sha256_hex};
use crate::sources::Sources;

/// Why a build of a component is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The bytes are no component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// It imports an interface its world does not have.
    #[error("it imports {import}, which the {world} world does not provide")]
    Import {
        /// The import.
        import: String,
        /// The component's world in `wit/`.
        world: &'static str,
    },
    /// It does not export its role's interface at this host's minor version.
    #[error("it must export {expected}; it exports {found}: rebuild it against this host's WIT")]
    Export {
        /// The interface and version it must export.
        expected: String,
        /// What it exports instead.
        found: String,
    },
    /// The engine cannot compile it.
    #[error("it does not compile: {0}")]
    Compile(String),
    /// It cannot be linked or instantiated under the host's limits.
    #[error("it cannot be instantiated: {0}")]
    Instantiate(String),
    /// It rejects (or traps on) the config version in force.
    #[error("{0}")]
    Config(String),
    /// It cannot be composed with the other components.
    #[error("it cannot be composed with the other components: {0}")]
    Compose(String),
    /// The store could not be read to check it.
    #[error("the store cannot be read: {0}")]
    Store(String),
    /// The host could not check it.
    #[error("the host cannot check it: {0}")]
    Unchecked(String),
}

impl Role {
    /// The role's world in `wit/worlds.wit`.
    pub fn world(self) -> &'static str {
        match self {
            Role::Router => "router-component",
            Role::Auth => "auth-component",
            Role::Splitter => "splitter-component",
            Role::Ai => "ai-component",
        }
    }

    /// Whether the role's world (with the WASI 0.2 interfaces that every
    /// Rust component imports, and the shared types) provides `import`.
    fn provides(self, import: &str) -> bool {
        let (interface, version) = import.split_once('@').unwrap_or((import, ""));
        let shared = version.starts_with("0.2.")
            && (interface == "upshift:types/types"
                || ["io", "cli", "clocks", "random", "filesystem", "sockets"]
                    .iter()
                    .any(|package| {
                        interface
                            .strip_prefix("wasi:")
                            .and_then(|rest| rest.strip_prefix(package))
                            .is_some_and(|rest| rest.starts_with('/'))
                    }));
        let key_value = self != Role::Router
            && version == "0.2.0-draft2"
            && matches!(
                interface,
                "wasi:keyvalue/store" | "wasi:keyvalue/atomics" | "wasi:keyvalue/batch"
            );
        shared || key_value
    }
}

/// Checks that `bytes` are a component that fits `role`'s world: it
/// imports nothing else, and exports the role's interface at its version
/// line (see [`Role::version_line`]).
pub fn check_world(role: Role, bytes: &[u8]) -> Result<(), Refusal> {
    check(
        bytes,
        role.world(),
        role.interface(),
        role.version_line(),
        |import| role.provides(import),
    )
}

/// Checks that `bytes` are a component that fits the `gateway` world: it
/// imports what that world has (the policy interfaces, the key-value
/// store, variables, outbound HTTP and WASI), and exports
/// `wasi:http/handler@0.3.x`.
pub fn check_gateway_world(bytes: &[u8]) -> Result<(), Refusal> {
    check(bytes, "gateway", "wasi:http/handler", "0.3.", |import| {
        let (interface, version) = import.split_once('@').unwrap_or((import, ""));
        let policy = Role::ALL
            .iter()
            .any(|role| role.interface() == interface && version.starts_with(role.version_line()));
        let preview3 = version.starts_with("0.3.")
            && (["wasi:http/types", "wasi:http/client", "wasi:random/random"].contains(&interface)
                || interface.starts_with("wasi:clocks/"));
        let runtime = preview3 || import == "spin:variables/variables@3.0.0";
        policy || runtime || Role::Auth.provides(import)
    })
}

/// Checks that `bytes` are a component that imports only what `provides`
/// accepts, and exports `interface` at `version` (a prefix).
fn check(
    bytes: &[u8],
    world: &'static str,
    interface: &'static str,
    version: &str,
    provides: impl Fn(&str) -> bool,
) -> Result<(), Refusal> {
    let mut types = wac_graph::types::Types::default();
    let package = wac_graph::types::Package::from_bytes("check", None, bytes.to_vec(), &mut types)
        .map_err(|e| Refusal::NotAComponent(format!("{e:#}")))?;
    let found = &types[package.ty()];
    if let Some(import) = found.imports.keys().find(|i| !provides(i)) {
        return Err(Refusal::Import {
            import: import.clone(),
            world,
        });
    }
    let expected = format!("{interface}@{version}");
    if found.exports.keys().any(|e| e.starts_with(&expected)) {
        return Ok(());
    }
    let exports: Vec<&str> = found.exports.keys().map(String::as_str).collect();
    Err(Refusal::Export {
        expected: format!("{interface}@{version}x"),
        found: if exports.is_empty() {
            "nothing".to_owned()
        } else {
            exports.join(", ")
        },
    })
}

/// The engine of the policy components: synchronous calls only (without
/// the component model's concurrency, whose bookkeeping every call would
/// otherwise pay), with epoch interruption for the time budget.
fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .concurrency_support(false)
        .epoch_interruption(true);
    crate::engine::profile(&mut config);
    Ok(Engine::new(&config)?)
}

fn new_linker(engine: &Engine) -> anyhow::Result<Linker<PolicyState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    super::stdio::add_to_linker(&mut linker)?;
    super::bindings::Policies::add_to_linker::<_, crate::capabilities::kv::Kv>(
        &mut linker,
        PolicyState::kv,
    )?;
    Ok(linker)
}

/// Compiles and links builds of the policy components.
pub struct Builds {
    engine: Engine,
    linker: Linker<PolicyState>,
    cache_dir: PathBuf,
    kv: Arc<dyn KvBackend>,
    /// The manifest's build of each role.
    pub manifest: Arc<[Prepared; 4]>,
    /// Pushed versions compiled into the cache by this process.
    compiled: Mutex<HashSet<String>>,
    /// Pushed versions this process failed to compile.
    failed: Mutex<HashSet<String>>,
}

impl Builds {
    /// The manifest's builds of the policy components of a gateway (its
    /// dependencies in `sources`), compiled on an engine of their own with
    /// `cache_dir`'s compiled code; pushed builds are read from `kv`.
    pub fn from_sources(
        sources: &Sources,
        kv: Arc<dyn KvBackend>,
        known_stores: Arc<HashSet<String>>,
        cache_dir: &Path,
    ) -> anyhow::Result<Self> {
        let engine = new_engine()?;
        let linker = new_linker(&engine)?;
        let mut manifest = Vec::with_capacity(4);
        for role in Role::ALL {
            let dependency = sources
                .dependencies
                .iter()
                .find(|d| d.name.starts_with(role.interface()))
                .with_context(|| format!("no dependency provides {}", role.interface()))?;
            let bytes = &dependency.source.bytes;
            check_world(role, bytes)
                .with_context(|| format!("dependency `{}` does not fit", dependency.name))?;
            let component = load_component(&engine, bytes, cache_dir)
                .with_context(|| format!("cannot compile dependency `{}`", dependency.name))?;
            // A dependency sees the stores only when it inherits them, as on Spin.
            let access = if dependency.inherit.allows("key_value_stores") {
                sources.key_value_stores.clone()
            } else {
                Arc::default()
            };
            let store = KvCtx {
                backend: kv.clone(),
                access: KvAccess::new(access, known_stores.clone()),
                config_listener: None,
            };
            let name = dependency
                .source
                .component
                .as_ref()
                .unwrap_or(&dependency.name);
            manifest.push(Prepared::new(
                name,
                &sha256_hex(bytes),
                &component,
                &linker,
                store,
            )?);
        }
        let manifest: [Prepared; 4] = manifest
            .try_into()
            .map_err(|_| anyhow::anyhow!("four policy components"))?;
        Ok(Self {
            engine,
            linker,
            cache_dir: cache_dir.to_owned(),
            kv,
            manifest: Arc::new(manifest),
            compiled: Mutex::default(),
            failed: Mutex::default(),
        })
    }

    /// Whether pushed version `sha256` is compiled here: putting it in
    /// force compiles nothing.
    pub fn is_ready(&self, sha256: &str) -> bool {
        lock(&self.compiled).contains(sha256)
    }

    /// The engine the builds are compiled on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Admits `bytes` as a new build of `role`: it fits the role's world,
    /// compiles and instantiates under the host's limits, and loads
    /// `document` (config version `version`) beside the other builds of
    /// `current`, within `budget`. Compiles on the calling thread.
    pub fn admit(
        &self,
        current: &[Prepared; 4],
        role: Role,
        bytes: &[u8],
        version: u64,
        document: Arc<str>,
        budget: Duration,
    ) -> Result<Prepared, Refusal> {
        let candidate = self.compile(role, bytes)?;
        let mut trial = current.clone();
        trial[role as usize] = candidate.clone();
        PolicySet::load(&self.engine, Arc::new(trial), version, document, budget)
            .map_err(|e| Refusal::Config(outer_and_root(&e)))?;
        Ok(candidate)
    }

    /// Compiles and links `bytes` as a pushed build of `role`, after
    /// checking its world.
    pub fn compile(&self, role: Role, bytes: &[u8]) -> Result<Prepared, Refusal> {
        check_world(role, bytes)?;
        let sha256 = sha256_hex(bytes);
        let component = load_component(&self.engine, bytes, &self.cache_dir)
            .map_err(|e| Refusal::Compile(format!("{e:#}")))?;
        lock(&self.compiled).insert(sha256.clone());
        self.manifest[role as usize]
            .pushed(&sha256, &component, &self.linker)
            .map_err(|e| Refusal::Instantiate(format!("{e:#}")))
    }

    /// The pushed version `sha256` of `role`, read from the store.
    fn fetch(&self, role: Role, sha256: &str) -> anyhow::Result<Prepared> {
        let name = &self.manifest[role as usize].name;
        let bytes = read_blob(&*self.kv, name, sha256)?;
        self.compile(role, &bytes)
            .with_context(|| format!("version {sha256} of `{name}` is refused"))
    }

    /// The builds `in_force` asks for, reusing those of `current` that it
    /// keeps; `None` when it keeps them all.
    pub fn resolve(
        &self,
        current: &[Prepared; 4],
        in_force: &InForce,
    ) -> anyhow::Result<Option<Arc<[Prepared; 4]>>> {
        let mut next = current.clone();
        let mut changed = false;
        for role in Role::ALL {
            let slot = role as usize;
            let wanted = in_force.current(&current[slot].name);
            if wanted == current[slot].version() {
                continue;
            }
            next[slot] = match wanted {
                None => self.manifest[slot].clone(),
                Some(sha256) => self.fetch(role, sha256)?,
            };
            changed = true;
        }
        Ok(changed.then(|| Arc::new(next)))
    }

    /// The builds of a canary's share: `stable` with the canary's version
    /// of its component, when `in_force` names a canary.
    pub fn canary(
        &self,
        stable: &[Prepared; 4],
        in_force: &InForce,
    ) -> anyhow::Result<Option<Arc<[Prepared; 4]>>> {
        let Some((name, sha256)) = in_force.canary() else {
            return Ok(None);
        };
        let Some(role) = Role::ALL
            .into_iter()
            .find(|role| &*stable[*role as usize].name == name)
        else {
            anyhow::bail!("a canary runs for `{name}`, which is no policy component here");
        };
        let mut builds = stable.clone();
        builds[role as usize] = self.fetch(role, sha256)?;
        Ok(Some(Arc::new(builds)))
    }

    /// Compiles every pushed version of `in_force` that this process has
    /// not compiled yet into the cache, so that an upgrade to it needs no
    /// compilation. Failures are logged: the upgrade reports them.
    pub fn precompile(&self, in_force: &InForce) {
        for role in Role::ALL {
            let name = &self.manifest[role as usize].name;
            let Some(slot) = in_force.0.get(&**name) else {
                continue;
            };
            for sha256 in &slot.pushed {
                if lock(&self.compiled).contains(sha256) || lock(&self.failed).contains(sha256) {
                    continue;
                }
                if let Err(error) = self.fetch(role, sha256) {
                    tracing::warn!(component = %name, version = %sha256, "{error:#}");
                    // Not again until the process restarts.
                    lock(&self.failed).insert(sha256.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worlds_provide_wasi_and_their_own_imports() {
        assert!(Role::Router.provides("wasi:cli/environment@0.2.6"));
        assert!(Role::Router.provides("wasi:io/streams@0.2.0"));
        assert!(Role::Router.provides("upshift:types/types@0.2.0"));
        assert!(!Role::Router.provides("upshift:types/types@0.1.0"));
        assert!(!Role::Router.provides("wasi:cli/environment@0.3.0"));
        assert!(!Role::Router.provides("wasi:clis/environment@0.2.6"));
        assert!(!Role::Router.provides("wasi:keyvalue/store@0.2.0-draft2"));
        assert!(Role::Auth.provides("wasi:keyvalue/store@0.2.0-draft2"));
        assert!(!Role::Auth.provides("wasi:http/client@0.3.0"));
        assert!(!Role::Splitter.provides("spin:variables/variables@3.0.0"));
    }

    #[test]
    fn bytes_that_are_no_component_are_refused() {
        let refusal = check_world(Role::Router, b"#!/bin/sh\necho hello\n").unwrap_err();
        assert!(matches!(refusal, Refusal::NotAComponent(_)), "{refusal}");
    }
}
