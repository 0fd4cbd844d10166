//! The builds of the policy components: the manifest's, and versions
//! pushed to the registry. A build is admitted only when it fits its
//! role's world in `wit/`, compiles and links on this lane's engine; the
//! lane then also loads the config in force into it before any traffic.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::Linker;

use upshift_config::keys;

use super::policy::{PolicyState, Prepared, Role};
use super::{BUCKET, lock};
use crate::engine::load_component;
use crate::kv::KvBackend;
use crate::registry::records::{InForce, sha256_hex};

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
        /// The role's world in `wit/`.
        world: &'static str,
    },
    /// It does not export its role's interface at this host's minor version.
    #[error(
        "it must export {expected}@0.2.x; it exports {found}: rebuild it against this host's WIT"
    )]
    Export {
        /// The role's interface.
        expected: &'static str,
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
    /// The store could not be read to check it.
    #[error("the store cannot be read: {0}")]
    Store(String),
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
/// imports nothing else, and exports the role's interface at `0.2.x`.
pub fn check_world(role: Role, bytes: &[u8]) -> Result<(), Refusal> {
    let mut types = wac_graph::types::Types::default();
    let package = wac_graph::types::Package::from_bytes("check", None, bytes.to_vec(), &mut types)
        .map_err(|e| Refusal::NotAComponent(format!("{e:#}")))?;
    let world = &types[package.ty()];
    if let Some(import) = world.imports.keys().find(|i| !role.provides(i)) {
        return Err(Refusal::Import {
            import: import.clone(),
            world: role.world(),
        });
    }
    let expected = format!("{}@0.2.", role.interface());
    if world.exports.keys().any(|e| e.starts_with(&expected)) {
        return Ok(());
    }
    let found: Vec<&str> = world.exports.keys().map(String::as_str).collect();
    Err(Refusal::Export {
        expected: role.interface(),
        found: if found.is_empty() {
            "nothing".to_owned()
        } else {
            found.join(", ")
        },
    })
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
}

impl Builds {
    /// Builds from the manifest's `manifest`, compiled on `engine`.
    pub fn new(
        engine: Engine,
        linker: Linker<PolicyState>,
        cache_dir: PathBuf,
        kv: Arc<dyn KvBackend>,
        manifest: Arc<[Prepared; 4]>,
    ) -> Self {
        Self {
            engine,
            linker,
            cache_dir,
            kv,
            manifest,
            compiled: Mutex::default(),
        }
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
        let bytes = self
            .kv
            .get(BUCKET, &keys::component_blob(sha256))?
            .with_context(|| format!("version {sha256} of `{name}` is missing from the store"))?;
        anyhow::ensure!(
            sha256_hex(&bytes) == sha256,
            "the stored bytes of version {sha256} of `{name}` do not match their digest"
        );
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
                if lock(&self.compiled).contains(sha256) {
                    continue;
                }
                if let Err(error) = self.fetch(role, sha256) {
                    tracing::warn!(component = %name, version = %sha256, "{error:#}");
                    // Not again until the process restarts.
                    lock(&self.compiled).insert(sha256.clone());
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
