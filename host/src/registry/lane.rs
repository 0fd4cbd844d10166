//! The lane whose components the registry changes: the native lane (the
//! policy components) or the component lane (the gateway component and
//! its dependencies).

use std::sync::Arc;
use std::time::Duration;

use crate::composed::ComposedGateway;
use crate::native::{Canary, NativeGateway, Refusal, Role};

use super::records::InForce;

/// A gateway whose components the registry changes.
#[derive(Clone)]
pub enum Lane {
    /// On the native lane.
    Native(Arc<NativeGateway>),
    /// On the component lane.
    Composed(Arc<ComposedGateway>),
}

/// One component the registry can change.
pub struct Entry {
    /// Its name in the manifest.
    pub name: Arc<str>,
    /// The interface it exports (without version).
    pub interface: &'static str,
    /// Its world in `wit/worlds.wit`.
    pub world: &'static str,
    /// SHA-256 of the manifest's build.
    pub manifest_sha256: Arc<str>,
    /// The pushed version requests start with now (`None`: the manifest's).
    pub serving: Option<String>,
}

impl Lane {
    /// The gateway component's name.
    pub fn gateway(&self) -> &str {
        match self {
            Lane::Native(lane) => &lane.name,
            Lane::Composed(lane) => &lane.name,
        }
    }

    /// The components the registry can change.
    pub fn entries(&self) -> Vec<Entry> {
        match self {
            Lane::Native(lane) => {
                let serving = lane.builds();
                Role::ALL
                    .into_iter()
                    .map(|role| {
                        let manifest = &lane.manifest_builds()[role as usize];
                        Entry {
                            name: manifest.name.clone(),
                            interface: role.interface(),
                            world: role.world(),
                            manifest_sha256: manifest.sha256.clone(),
                            serving: serving[role as usize].version().map(str::to_owned),
                        }
                    })
                    .collect()
            }
            Lane::Composed(lane) => lane
                .parts()
                .iter()
                .map(|part| Entry {
                    name: part.name.clone(),
                    interface: part.interface(),
                    world: part.world(),
                    manifest_sha256: part.manifest_sha256.clone(),
                    serving: lane.serving(&part.name),
                })
                .collect(),
        }
    }

    /// Whether `name` is a component the registry can change.
    pub fn has(&self, name: &str) -> bool {
        match self {
            Lane::Native(lane) => role(lane, name).is_some(),
            Lane::Composed(lane) => lane.parts().iter().any(|part| &*part.name == name),
        }
    }

    /// Admits `bytes` as a new build of component `name` (one it has):
    /// they fit its world, compile and link under the host's limits, and
    /// load the config version in force. Compiles on the calling thread.
    pub fn admit(&self, name: &str, bytes: &[u8]) -> Result<(), Refusal> {
        match self {
            Lane::Native(lane) => {
                let role = role(lane, name).expect("checked by the registry");
                lane.admit(role, bytes).map(drop)
            }
            Lane::Composed(lane) => {
                let part = lane.parts().iter().find(|part| &*part.name == name);
                lane.admit(part.expect("checked by the registry"), bytes)
            }
        }
    }

    /// Asks for the versions of `components` to be put in force, and waits
    /// (up to `wait`) until they are or their loading failed.
    pub async fn follow(&self, components: InForce, wait: Duration) -> Result<(), String> {
        match self {
            Lane::Native(lane) => lane.follow(components, wait).await,
            Lane::Composed(lane) => lane.follow(components, wait).await,
        }
    }

    /// Whether pushed version `sha256` is compiled on this node: putting it
    /// in force switches without compiling.
    pub fn is_ready(&self, sha256: &str) -> bool {
        match self {
            Lane::Native(lane) => lane.is_ready(sha256),
            Lane::Composed(lane) => lane.is_ready(sha256),
        }
    }

    /// The running canary, as this node last read it.
    pub fn canary(&self) -> &Canary {
        match self {
            Lane::Native(lane) => &lane.canary,
            Lane::Composed(lane) => &lane.canary,
        }
    }
}

/// The policy role of the native lane's component `name`.
fn role(lane: &NativeGateway, name: &str) -> Option<Role> {
    Role::ALL
        .into_iter()
        .find(|role| &*lane.manifest_builds()[*role as usize].name == name)
}
