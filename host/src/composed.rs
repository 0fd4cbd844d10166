//! The component lane of an Upshift gateway, with its components
//! upgradable while traffic flows. The `gateway` component is composed
//! with its dependencies as Spin composes them. When the registry puts
//! another version of the gateway or of one of its dependencies in force,
//! or starts a canary of one (see [`crate::registry`]), the lane composes,
//! compiles and links the new composition off the request path and swaps
//! it in: new requests take it, requests in flight finish on the one they
//! started with.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime_wasi_http::handler::{ProxyHandler, ProxyPre};

use upshift_model::keys;

use crate::capabilities::kv::KvBackend;
use crate::engine::{HostState, load_component};
use crate::instances::ComponentInstances;
use crate::native::{
    Builds, Canary, CanaryRun, Refusal, Role, Side, add_counts, check_gateway_world, check_world,
    config_in_force, counts,
};
use crate::registry::records::{InForce, read_blob, sha256_hex};
use crate::runtime::{ComponentService, link};
use crate::sources::Sources;

/// How often the store's component versions are looked at, for changes
/// made through other nodes.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The key-value store the registry keeps its records in.
const BUCKET: &str = "default";

/// How a linked composition becomes instances that serve requests.
pub type Instances = Box<dyn Fn(ProxyPre<HostState>) -> ComponentInstances + Send + Sync>;

/// One component of the composition the registry can change.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its name in the manifest.
    pub name: Arc<str>,
    /// Its policy role (`None`: the gateway itself).
    pub role: Option<Role>,
    /// SHA-256 of the manifest's build.
    pub manifest_sha256: Arc<str>,
}

impl Part {
    /// The interface it exports (without version).
    pub fn interface(&self) -> &'static str {
        self.role.map_or("wasi:http/handler", Role::interface)
    }

    /// Its world in `wit/worlds.wit`.
    pub fn world(&self) -> &'static str {
        self.role.map_or("gateway", Role::world)
    }
}

/// The compositions requests start with now.
struct Serving {
    /// The component versions they are made of.
    versions: InForce,
    /// With the versions in force.
    stable: Arc<ComponentService>,
    /// With a canary's version of one component, while one runs.
    canary: Option<Arc<ComponentService>>,
}

/// What the lane needs from the runtime to start.
pub struct Setup {
    /// The gateway and its dependencies, as the manifest gives them.
    pub sources: Sources,
    /// The engine of the component lane.
    pub engine: Engine,
    /// Its linker.
    pub linker: Linker<HostState>,
    /// The instances of a linked composition.
    pub instances: Instances,
    /// The key-value backend.
    pub kv: Arc<dyn KvBackend>,
    /// The key-value stores the app declares.
    pub known_stores: Arc<HashSet<String>>,
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
    /// How long a policy component may take to load a config (admission).
    pub budget: Duration,
}

/// The component lane of one gateway component.
pub struct ComposedGateway {
    /// The gateway component's name in the manifest.
    pub name: Arc<str>,
    setup: Setup,
    parts: Vec<Part>,
    /// The policy builds a pushed dependency is tried with, made on the
    /// first admission of one.
    policies: Mutex<Option<Arc<Builds>>>,
    serving: Mutex<Serving>,
    /// The running canary, as this node last read it.
    pub canary: Canary,
    /// Pushed binaries read from the store, by SHA-256.
    blobs: Mutex<HashMap<String, Arc<[u8]>>>,
    /// Pushed versions whose composition this process compiled (or tried
    /// to) ahead of an upgrade.
    attempted: Mutex<HashSet<String>>,
    /// Pushed versions whose composition with the versions in force is
    /// compiled into the cache.
    ready: Mutex<HashSet<String>>,
    requested: watch::Sender<InForce>,
    settled: watch::Sender<InForce>,
    /// Why the last change could not be loaded, if it failed.
    failure: Mutex<Option<String>>,
}

impl ComposedGateway {
    /// Composes and links the gateway with the component versions in force
    /// and starts following the store's changes of them.
    pub fn start(setup: Setup) -> anyhow::Result<Arc<Self>> {
        let mut parts = vec![Part {
            name: setup.sources.name.as_str().into(),
            role: None,
            manifest_sha256: sha256_hex(&setup.sources.main.bytes).into(),
        }];
        for dependency in &setup.sources.dependencies {
            let Some(name) = &dependency.source.component else {
                continue;
            };
            parts.push(Part {
                name: name.as_str().into(),
                role: Role::ALL
                    .into_iter()
                    .find(|role| dependency.name.starts_with(role.interface())),
                manifest_sha256: sha256_hex(&dependency.source.bytes).into(),
            });
        }
        // A store that cannot be read yet serves the manifest's builds
        // until the poller reads it.
        let versions = read_in_force(&*setup.kv).unwrap_or_else(|error| {
            tracing::warn!("the component versions in force cannot be read yet: {error:#}");
            InForce::default()
        });
        let mut lane = Self {
            name: setup.sources.name.as_str().into(),
            parts,
            policies: Mutex::default(),
            serving: Mutex::new(Serving {
                versions: InForce::default(),
                stable: Arc::new(ComponentService {
                    name: setup.sources.name.as_str().into(),
                    handler: ProxyHandler::new((setup.instances)(link(
                        &setup.linker,
                        &load_component(
                            &setup.engine,
                            &setup.sources.compose(&HashMap::new())?,
                            &setup.cache_dir,
                        )?,
                    )?)),
                }),
                canary: None,
            }),
            setup,
            canary: Canary::default(),
            blobs: Mutex::default(),
            attempted: Mutex::default(),
            ready: Mutex::default(),
            requested: watch::Sender::new(versions.clone()),
            settled: watch::Sender::new(versions.clone()),
            failure: Mutex::default(),
        };
        // A node that starts after an upgrade serves the upgraded builds.
        if versions != InForce::default() {
            lane.build(&versions)
                .context("cannot load the component versions in force")?;
        }
        lane.serving
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .versions = versions;
        let lane = Arc::new(lane);
        tokio::spawn(crate::poll::follow(
            lane.clone(),
            lane.requested.subscribe(),
        ));
        tokio::spawn(poll_versions(lane.clone()));
        Ok(lane)
    }

    /// The composition the next request runs on, and which side of a
    /// running canary that is.
    pub fn service(&self) -> (Arc<ComponentService>, Side) {
        let serving = lock(&self.serving);
        match &serving.canary {
            Some(canary) if self.canary.roll() => (canary.clone(), Side::Canary),
            _ => (serving.stable.clone(), Side::Stable),
        }
    }

    /// Counts a request answered with `status` after `latency_ms` on its
    /// side of the canary `run`; a failure of the canary's composition
    /// (`failure`) stops its traffic here and is reported for a roll-back.
    pub async fn count(
        &self,
        run: &CanaryRun,
        side: Side,
        status: u16,
        latency_ms: u32,
        failure: Option<String>,
    ) {
        if let (Side::Canary, Some(detail)) = (side, failure) {
            self.canary.failed(run, detail);
        }
        add_counts(&self.setup.kv, counts(run, side, status, latency_ms)).await;
    }

    /// The components the registry can change: the gateway, then each
    /// dependency that is a component of the manifest.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The pushed version of `name` requests start with now (`None`: the
    /// manifest's build).
    pub fn serving(&self, name: &str) -> Option<String> {
        lock(&self.serving)
            .versions
            .current(name)
            .map(str::to_owned)
    }

    /// Admits `bytes` as a new build of `part`: it fits the part's world, a
    /// policy component loads the config version in force, and the
    /// composition with it compiles and links under the host's limits.
    /// Compiles on the calling thread.
    pub fn admit(&self, part: &Part, bytes: &[u8]) -> Result<(), Refusal> {
        let versions = lock(&self.serving).versions.clone();
        match part.role {
            None => check_gateway_world(bytes)?,
            Some(role) => {
                check_world(role, bytes)?;
                let policies = self
                    .policies()
                    .map_err(|e| Refusal::Unchecked(format!("{e:#}")))?;
                let current = policies
                    .resolve(&policies.manifest, &versions)
                    .map_err(|e| Refusal::Unchecked(format!("{e:#}")))?
                    .unwrap_or_else(|| policies.manifest.clone());
                let (version, document) = config_in_force(&*self.setup.kv)
                    .map_err(|e| Refusal::Store(format!("{e:#}")))?;
                policies.admit(&current, role, bytes, version, document, self.setup.budget)?;
            }
        }
        let mut replaced = self
            .replaced(&versions, None)
            .map_err(|e| Refusal::Store(format!("{e:#}")))?;
        replaced.insert(part.name.to_string(), bytes.into());
        self.link(&replaced)?;
        lock(&self.ready).insert(sha256_hex(bytes));
        Ok(())
    }

    /// Whether the composition with pushed version `sha256` is compiled
    /// here: putting it in force compiles nothing.
    pub fn is_ready(&self, sha256: &str) -> bool {
        lock(&self.ready).contains(sha256)
    }

    /// Asks for the component versions of `versions` to be put in force
    /// and waits (up to `wait`) until they are, or their loading failed
    /// (the error says why; the compositions before stay).
    pub async fn follow(&self, versions: InForce, wait: Duration) -> Result<(), String> {
        self.requested.send_if_modified(|requested| {
            let changed = *requested != versions;
            *requested = versions.clone();
            changed
        });
        let mut settled = self.settled.subscribe();
        let done = settled.wait_for(|s| *s == versions || *self.requested.borrow() != versions);
        if tokio::time::timeout(wait, done).await.is_err() {
            return Err(format!("not loaded after {} s", wait.as_secs()));
        }
        if lock(&self.serving).versions == versions {
            Ok(())
        } else {
            Err(lock(&self.failure)
                .clone()
                .unwrap_or_else(|| "another change was asked for meanwhile".to_owned()))
        }
    }

    /// The policy builds, made on first use.
    fn policies(&self) -> anyhow::Result<Arc<Builds>> {
        let mut policies = lock(&self.policies);
        if let Some(builds) = &*policies {
            return Ok(builds.clone());
        }
        let builds = Arc::new(Builds::from_sources(
            &self.setup.sources,
            self.setup.kv.clone(),
            self.setup.known_stores.clone(),
            &self.setup.cache_dir,
        )?);
        *policies = Some(builds.clone());
        Ok(builds)
    }

    /// The pushed binaries `versions` puts in place of manifest builds,
    /// with `canary`'s version of its component when given.
    fn replaced(
        &self,
        versions: &InForce,
        canary: Option<(&str, &str)>,
    ) -> anyhow::Result<HashMap<String, Arc<[u8]>>> {
        let mut replaced = HashMap::new();
        for part in &self.parts {
            let version = match canary {
                Some((name, version)) if name == &*part.name => Some(version),
                _ => versions.current(&part.name),
            };
            if let Some(sha256) = version {
                replaced.insert(part.name.to_string(), self.blob(&part.name, sha256)?);
            }
        }
        Ok(replaced)
    }

    /// The pushed binary `sha256` of `name`, from the store.
    fn blob(&self, name: &str, sha256: &str) -> anyhow::Result<Arc<[u8]>> {
        if let Some(bytes) = lock(&self.blobs).get(sha256) {
            return Ok(bytes.clone());
        }
        let bytes: Arc<[u8]> = read_blob(&*self.setup.kv, name, sha256)?.into();
        lock(&self.blobs).insert(sha256.to_owned(), bytes.clone());
        Ok(bytes)
    }

    /// Composes the gateway with `replaced`, compiles and links it.
    fn link(&self, replaced: &HashMap<String, Arc<[u8]>>) -> Result<ProxyPre<HostState>, Refusal> {
        let composed = self
            .setup
            .sources
            .compose(replaced)
            .map_err(|e| Refusal::Compose(e.to_string()))?;
        let component = load_component(&self.setup.engine, &composed, &self.setup.cache_dir)
            .map_err(|e| Refusal::Compile(format!("{e:#}")))?;
        link(&self.setup.linker, &component).map_err(|e| Refusal::Instantiate(format!("{e:#}")))
    }

    /// A service of the composition with `replaced`.
    fn compose(
        &self,
        replaced: &HashMap<String, Arc<[u8]>>,
    ) -> anyhow::Result<Arc<ComponentService>> {
        let pre = self.link(replaced)?;
        Ok(Arc::new(ComponentService {
            name: self.name.clone(),
            handler: ProxyHandler::new((self.setup.instances)(pre)),
        }))
    }

    /// Composes what `versions` asks for and swaps it in.
    fn build(&self, versions: &InForce) -> anyhow::Result<()> {
        let (current, stable) = {
            let serving = lock(&self.serving);
            (serving.versions.clone(), serving.stable.clone())
        };
        let keeps_stable = self
            .parts
            .iter()
            .all(|part| current.current(&part.name) == versions.current(&part.name));
        let stable = if keeps_stable {
            stable
        } else {
            self.compose(&self.replaced(versions, None)?)?
        };
        let canary = match versions.canary() {
            Some((name, sha256)) => {
                anyhow::ensure!(
                    self.parts.iter().any(|part| &*part.name == name),
                    "a canary runs for `{name}`, which is no component of `{}`",
                    self.name
                );
                Some(self.compose(&self.replaced(versions, Some((name, sha256)))?)?)
            }
            None => None,
        };
        let without_canary = canary.is_none();
        *lock(&self.serving) = Serving {
            versions: versions.clone(),
            stable,
            canary,
        };
        if without_canary {
            self.canary.stop();
        }
        Ok(())
    }

    /// Compiles (into the cache) the composition each pushed version of
    /// `versions` would make with the versions in force, so that an
    /// upgrade to it compiles nothing. Failures are logged: the upgrade
    /// reports them.
    fn precompile(&self, versions: &InForce) {
        for part in &self.parts {
            let Some(slot) = versions.0.get(&*part.name) else {
                continue;
            };
            for sha256 in &slot.pushed {
                if !lock(&self.attempted).insert(sha256.clone()) {
                    continue;
                }
                let compiled = self
                    .replaced(versions, Some((&part.name, sha256)))
                    .and_then(|replaced| Ok(self.link(&replaced)?));
                match compiled {
                    Ok(_) => drop(lock(&self.ready).insert(sha256.clone())),
                    Err(error) => {
                        tracing::warn!(component = %part.name, version = %sha256, "{error:#}");
                    }
                }
            }
        }
    }
}

impl crate::poll::Loader for ComposedGateway {
    type Wanted = InForce;

    fn load(&self, versions: &InForce) -> anyhow::Result<()> {
        self.build(versions)
    }

    fn loaded(self: &Arc<Self>, versions: &InForce, _: &InForce, elapsed: Duration) {
        *lock(&self.failure) = None;
        tracing::info!(
            component = %self.name,
            elapsed_ms = elapsed.as_millis() as u64,
            "component versions loaded"
        );
        let precompiling = self.clone();
        let versions = versions.clone();
        tokio::task::spawn_blocking(move || precompiling.precompile(&versions));
    }

    fn failed(&self, _: &InForce, error: &anyhow::Error) {
        tracing::error!("not loaded, the compositions before stay: {error:#}");
        *lock(&self.failure) = Some(format!("{error:#}"));
    }

    fn settle(&self, versions: InForce) {
        self.settled.send_replace(versions);
    }
}

/// Looks at the store's component versions every [`POLL_INTERVAL`], for
/// changes made through other nodes.
async fn poll_versions(lane: Arc<ComposedGateway>) {
    let kv = lane.setup.kv.clone();
    crate::poll::every(
        POLL_INTERVAL,
        kv,
        "component versions in force",
        read_in_force,
        |wanted| {
            lane.requested.send_if_modified(|requested| {
                let changed = *requested != wanted;
                *requested = wanted;
                changed
            });
        },
    )
    .await;
}

/// The component versions in force, from the store.
fn read_in_force(kv: &dyn KvBackend) -> anyhow::Result<InForce> {
    let bytes = kv.get(BUCKET, keys::COMPONENTS_IN_FORCE)?;
    InForce::parse(bytes.as_deref())
        .with_context(|| format!("{} is not readable", keys::COMPONENTS_IN_FORCE))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
