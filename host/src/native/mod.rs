//! The native lane: the host's hyper server and pooled client move the
//! bytes, and the policy components decide through synchronous calls (the
//! proxy-wasm shape). It runs the same orchestration core as the `gateway`
//! component (`upshift-core`), so the two lanes behave alike; request and
//! response bodies of proxy routes never enter wasm memory.
//!
//! The policy components of the gateway's `[component.gateway.dependencies]`
//! are compiled once, on an engine without component-model async. Each
//! worker thread has its own instances, with the config version in force
//! loaded ([`PolicySet`]). A new version is loaded off the request path,
//! on the blocking pool, and each worker switches at its next request; a
//! request decides, forwards and reports with the set it started with.

mod ai;
pub mod bindings;
mod body;
mod client;
mod policy;
mod proxy;
mod stdio;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use upshift_config::keys;
use upshift_core::policy::Count;

use crate::engine::load_component;
use crate::kv::{KvAccess, KvBackend, KvCtx, blocking};
use crate::manifest::App;
use crate::outbound::AllowedHosts;
use crate::tls::TlsConfigs;
pub use client::UpstreamClient;
pub use policy::{PolicySet, Prepared, Role};
pub use proxy::serve;

/// How often the store's config version is looked at, for versions applied
/// through another node.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The key-value store the gateway's config and counters live in.
const BUCKET: &str = "default";

/// A worker's policy sets: the one requests start with, and the next one,
/// ready to take over.
struct WorkerSets {
    active: Mutex<Arc<Mutex<PolicySet>>>,
    next: Mutex<Option<PolicySet>>,
    fresh: AtomicBool,
}

/// The native lane of one gateway component.
pub struct NativeGateway {
    /// The gateway component's name in the manifest.
    pub name: Arc<str>,
    engine: Engine,
    prepared: Arc<[Prepared; 4]>,
    kv: Arc<dyn KvBackend>,
    /// The gateway's variables (provider keys).
    pub variables: Arc<HashMap<String, String>>,
    /// Where the gateway may send requests.
    pub allowed: Arc<AllowedHosts>,
    /// The pooled upstream client.
    pub client: UpstreamClient,
    budget: Duration,
    workers: Vec<WorkerSets>,
    requested: watch::Sender<u64>,
    settled: watch::Sender<u64>,
    /// Why the config in force is not known (the store could not be read
    /// at start); requests are refused until it is.
    unknown: Mutex<Option<String>>,
    is_unknown: AtomicBool,
}

/// What the native lane needs from the runtime to start.
pub struct Setup<'a> {
    /// The app.
    pub app: &'a App,
    /// The gateway component's name.
    pub gateway: &'a str,
    /// The key-value backend.
    pub kv: Arc<dyn KvBackend>,
    /// The key-value stores the app declares.
    pub known_stores: Arc<std::collections::HashSet<String>>,
    /// The gateway's resolved variables.
    pub variables: Arc<HashMap<String, String>>,
    /// TLS settings for `https` upstreams.
    pub tls: TlsConfigs,
    /// Where compiled components are cached.
    pub cache_dir: &'a std::path::Path,
    /// How long one policy call may run.
    pub budget: Duration,
    /// Worker threads.
    pub workers: usize,
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

fn new_linker(engine: &Engine) -> anyhow::Result<Linker<policy::PolicyState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    stdio::add_to_linker(&mut linker)?;
    bindings::Policies::add_to_linker::<_, crate::kv::Kv>(&mut linker, policy::PolicyState::kv)?;
    Ok(linker)
}

impl NativeGateway {
    /// Whether the component `name` of `app` is an Upshift gateway: its
    /// dependencies provide the four policy interfaces.
    pub fn serves(app: &App, name: &str) -> bool {
        let decl = &app.manifest.component[name];
        Role::ALL.iter().all(|role| {
            decl.dependencies
                .keys()
                .any(|d| d.starts_with(role.interface()))
        })
    }

    /// Compiles the gateway's policy components and loads the config
    /// version in force into every worker's instances.
    pub fn start(setup: Setup<'_>) -> anyhow::Result<Arc<Self>> {
        let app = setup.app;
        let decl = &app.manifest.component[setup.gateway];
        let engine = new_engine()?;
        let linker = new_linker(&engine)?;
        let kv_stores: Arc<std::collections::HashSet<String>> =
            Arc::new(decl.key_value_stores.iter().cloned().collect());
        let mut prepared = Vec::with_capacity(4);
        for role in Role::ALL {
            let (dependency, component_name, source) = decl
                .dependencies
                .iter()
                .find(|(name, _)| name.starts_with(role.interface()))
                .map(|(name, d)| {
                    let source = match (&d.component, &d.path) {
                        (Some(c), _) => app.manifest.component[c].source.clone(),
                        (_, Some(path)) => path.clone(),
                        (None, None) => unreachable!("validated by the manifest loader"),
                    };
                    (
                        name.as_str(),
                        d.component.as_deref().unwrap_or(name),
                        source,
                    )
                })
                .with_context(|| format!("no dependency provides {}", role.interface()))?;
            let path = app.resolve(&source);
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            check_version(role, dependency, &bytes)?;
            let component = load_component(&engine, &bytes, setup.cache_dir)
                .with_context(|| format!("cannot compile {}", path.display()))?;
            // A dependency sees the stores only when it inherits them, as on Spin.
            let access = if decl.inherit(dependency).allows("key_value_stores") {
                kv_stores.clone()
            } else {
                Arc::default()
            };
            let kv = KvCtx {
                backend: setup.kv.clone(),
                access: KvAccess::new(access, setup.known_stores.clone()),
                config_listener: None,
            };
            prepared.push(Prepared::new(component_name, &component, &linker, kv)?);
        }
        let prepared: [Prepared; 4] = prepared
            .try_into()
            .map_err(|_| anyhow::anyhow!("four policy components"))?;
        let prepared = Arc::new(prepared);
        // A store that cannot be read yet (Redis not up) leaves the lane on
        // no config until the version poller reads it.
        let (version, document, unknown) =
            match current_version(&*setup.kv).and_then(|v| Ok((v, document(&*setup.kv, v)?))) {
                Ok((version, document)) => (version, document, None),
                Err(error) => {
                    tracing::warn!("the config in force cannot be read yet: {error:#}");
                    (0, Arc::from("{}"), Some(format!("{error:#}")))
                }
            };
        let mut workers = Vec::with_capacity(setup.workers);
        for _ in 0..setup.workers.max(1) {
            let set = PolicySet::load(
                &engine,
                prepared.clone(),
                version,
                document.clone(),
                setup.budget,
            )?;
            workers.push(WorkerSets {
                active: Mutex::new(Arc::new(Mutex::new(set))),
                next: Mutex::new(None),
                fresh: AtomicBool::new(false),
            });
        }
        let lane = Arc::new(NativeGateway {
            name: setup.gateway.into(),
            engine,
            prepared,
            kv: setup.kv,
            variables: setup.variables,
            allowed: Arc::new(AllowedHosts::parse(&decl.allowed_outbound_hosts)?),
            client: UpstreamClient::new(setup.tls, setup.workers.max(1)),
            budget: setup.budget,
            workers,
            requested: watch::Sender::new(version),
            settled: watch::Sender::new(version),
            is_unknown: AtomicBool::new(unknown.is_some()),
            unknown: Mutex::new(unknown),
        });
        tokio::spawn(load_versions(lane.clone()));
        tokio::spawn(poll_versions(lane.clone()));
        Ok(lane)
    }

    /// Why the config in force is not known yet, if it is not: the store
    /// could not be read when the lane started.
    pub fn unknown(&self) -> Option<String> {
        if !self.is_unknown.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.unknown).clone()
    }

    fn known(&self) {
        self.is_unknown.store(false, Ordering::Release);
        *lock(&self.unknown) = None;
    }

    /// The engine of the policy components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The policy set requests of worker `worker` start with now.
    pub fn policies(&self, worker: usize) -> Arc<Mutex<PolicySet>> {
        let sets = &self.workers[worker % self.workers.len()];
        let mut active = lock(&sets.active);
        if sets.fresh.swap(false, Ordering::AcqRel)
            && let Some(next) = lock(&sets.next).take()
        {
            *active = Arc::new(Mutex::new(next));
        }
        active.clone()
    }

    /// Asks for config version `version` (newer or older: an activated
    /// version may be either) to be loaded, and waits (up to `wait`) until
    /// it is, was refused, or another version was asked for: an apply
    /// through this node's admin API answers once this node serves it.
    pub async fn load(&self, version: u64, wait: Duration) {
        self.requested.send_if_modified(|requested| {
            let changed = *requested != version;
            *requested = version;
            changed
        });
        let mut settled = self.settled.subscribe();
        let done = settled.wait_for(|v| *v == version || *self.requested.borrow() != version);
        let _ = tokio::time::timeout(wait, done).await;
    }

    /// Adds the splitter's counts to the store before the request goes on,
    /// so that what a client was answered is counted: in place when the
    /// store answers from memory, on the blocking pool otherwise (a network
    /// round trip must not hold up the worker's other requests).
    pub async fn add(&self, counts: Vec<Count>) {
        if counts.is_empty() {
            return;
        }
        let add = {
            let kv = self.kv.clone();
            move || {
                for count in &counts {
                    if let Err(error) = kv.increment(BUCKET, &count.key, count.delta) {
                        tracing::warn!(key = %count.key, "counter not counted: {error}");
                    }
                }
                Ok(())
            }
        };
        if self.kv.increments_inline(BUCKET) {
            let _ = add();
        } else {
            let _ = blocking(add).await;
        }
    }

    /// Builds every worker's next set for `version`.
    fn build(&self, version: u64) -> anyhow::Result<()> {
        let document = document(&*self.kv, version)?;
        for sets in &self.workers {
            let set = PolicySet::load(
                &self.engine,
                self.prepared.clone(),
                version,
                document.clone(),
                self.budget,
            )?;
            *lock(&sets.next) = Some(set);
        }
        for sets in &self.workers {
            sets.fresh.store(true, Ordering::Release);
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Loads each requested version on the blocking pool, one at a time.
async fn load_versions(lane: Arc<NativeGateway>) {
    let mut requested = lane.requested.subscribe();
    let mut loaded = *requested.borrow();
    loop {
        let version = *requested.borrow_and_update();
        if version != loaded {
            let building = lane.clone();
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || building.build(version)).await {
                Ok(Ok(())) => {
                    loaded = version;
                    lane.known();
                    tracing::info!(
                        version,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "config version loaded"
                    );
                }
                Ok(Err(error)) => {
                    tracing::error!(
                        version,
                        "config version not loaded, the previous one stays: {error:#}"
                    );
                }
                Err(error) => tracing::error!(version, "loading config version failed: {error}"),
            }
            lane.settled.send_replace(version);
        }
        if requested.changed().await.is_err() {
            return;
        }
    }
}

/// Looks at the store's version in force every [`POLL_INTERVAL`], for
/// versions applied through other nodes (and, when the store could not be
/// read at start, for the version to serve at all).
async fn poll_versions(lane: Arc<NativeGateway>) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        let kv = lane.kv.clone();
        let read = blocking(move || Ok(current_version(&*kv))).await;
        match read
            .map_err(anyhow::Error::from)
            .and_then(|version| version)
        {
            Ok(version) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("the config version in force can be read again");
                }
                if version == 0 && lane.unknown().is_some() {
                    // Readable, and nothing was ever applied.
                    lane.known();
                }
                lane.requested.send_if_modified(|requested| {
                    let changed = *requested != version;
                    *requested = version;
                    changed
                });
            }
            Err(error) if !failing => {
                failing = true;
                tracing::warn!("cannot read the config version in force: {error:#}");
            }
            Err(_) => {}
        }
    }
}

/// The config version in force (0: none applied yet).
fn current_version(kv: &dyn KvBackend) -> anyhow::Result<u64> {
    match kv.get(BUCKET, keys::CURRENT)? {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("{} does not hold a version number", keys::CURRENT)),
    }
}

/// The stored document of `version` (`{}` for 0).
fn document(kv: &dyn KvBackend, version: u64) -> anyhow::Result<Arc<str>> {
    if version == 0 {
        return Ok("{}".into());
    }
    let bytes = kv
        .get(BUCKET, &keys::version(version))?
        .with_context(|| format!("config version {version} is missing from the store"))?;
    Ok(String::from_utf8(bytes)
        .with_context(|| format!("config version {version} is not UTF-8"))?
        .into())
}

/// Refuses a policy component built for another minor version of its
/// interface: `0.2.x` works with this host, `0.1` or `0.3` do not.
fn check_version(role: Role, dependency: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let expected = format!("{}@0.2.", role.interface());
    let exports = exported_interfaces(bytes)
        .with_context(|| format!("dependency `{dependency}` is not a component"))?;
    if exports.iter().any(|e| e.starts_with(&expected)) {
        return Ok(());
    }
    let found: Vec<&String> = exports
        .iter()
        .filter(|e| e.starts_with(role.interface()))
        .collect();
    anyhow::bail!(
        "dependency `{dependency}` must export {}@0.2.x; it exports {}: rebuild it against \
         this host's WIT",
        role.interface(),
        if found.is_empty() {
            "neither".to_owned()
        } else {
            found
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    )
}

/// The names a component binary exports.
fn exported_interfaces(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut types = wac_graph::types::Types::default();
    let package = wac_graph::types::Package::from_bytes("check", None, bytes.to_vec(), &mut types)?;
    Ok(types[package.ty()].exports.keys().cloned().collect())
}
