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
//! Upgrading a policy component (see [`crate::registry`]) takes the same
//! path: the new build is loaded beside the old, and requests in flight
//! finish on the set they started with.

mod ai;
pub mod bindings;
mod body;
mod builds;
mod call_end;
mod canary;
mod client;
mod hooks;
mod key_sets;
mod policy;
mod proxy;
mod retire;
mod shadow;
mod stdio;
mod websocket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use wasmtime::Engine;

use upshift_core::policy::Count;
use upshift_model::keys;

use crate::capabilities::kv::{KvBackend, blocking};
use crate::capabilities::outbound_http::AllowedHosts;
use crate::capabilities::tls::TlsConfigs;
use crate::manifest::App;
use crate::registry::records::InForce;
use crate::sources::Sources;
use crate::telemetry::Telemetry;
pub use builds::{Builds, Refusal, check_gateway_world, check_world};
pub use canary::{Canary, CanaryRun, Side, Trap, counts};
pub use client::UpstreamClient;
pub use policy::{PolicySet, Prepared, Role};
pub use proxy::serve;
pub use retire::watch as watch_websocket_versions;
pub use websocket::{WebSocketLimits, WebSockets};

/// How often the store's config version is looked at, for versions applied
/// through another node.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The key-value store the gateway's config and counters live in.
const BUCKET: &str = "default";

/// The policy sets requests of a worker choose from.
#[derive(Clone)]
struct Sets {
    /// With the builds in force.
    stable: Arc<Mutex<PolicySet>>,
    /// With the canary build of one component, while a canary runs.
    canary: Option<Arc<Mutex<PolicySet>>>,
}

impl Sets {
    fn new(stable: PolicySet, canary: Option<PolicySet>) -> Self {
        Self {
            stable: Arc::new(Mutex::new(stable)),
            canary: canary.map(|set| Arc::new(Mutex::new(set))),
        }
    }
}

/// A worker's policy sets: the ones requests start with, and the next
/// ones, ready to take over.
struct WorkerSets {
    active: Mutex<Sets>,
    next: Mutex<Option<Sets>>,
    fresh: AtomicBool,
}

/// What a lane serves: a config version, and the pushed component
/// versions in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wanted {
    /// The config version.
    version: u64,
    /// The pushed component versions.
    components: InForce,
}

/// The native lane of one gateway component.
pub struct NativeGateway {
    /// The gateway component's name in the manifest.
    pub name: Arc<str>,
    engine: Engine,
    builds: Builds,
    /// The builds requests start with now.
    prepared: Mutex<Arc<[Prepared; 4]>>,
    /// The builds of a canary's share, while one runs.
    canary_builds: Mutex<Option<Arc<[Prepared; 4]>>>,
    /// The running canary, as this node last read it.
    pub canary: canary::Canary,
    kv: Arc<dyn KvBackend>,
    /// The gateway's variables (provider keys).
    pub variables: Arc<HashMap<String, String>>,
    /// Where the gateway may send requests.
    pub allowed: Arc<AllowedHosts>,
    /// The pooled upstream client.
    pub client: UpstreamClient,
    /// Where shadow copies are traced, if anywhere.
    pub telemetry: Option<Telemetry>,
    /// Services whose rollout webhooks have work.
    hooks: hooks::HookQueue,
    /// Key set fetches under way.
    key_set_fetches: key_sets::KeySetFetches,
    budget: Duration,
    workers: Vec<WorkerSets>,
    requested: watch::Sender<Wanted>,
    settled: watch::Sender<Wanted>,
    /// Why the last change of builds could not be loaded, if it failed.
    failure: Mutex<Option<String>>,
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
    /// Where shadow copies are traced, if anywhere.
    pub telemetry: Option<Telemetry>,
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
    /// version in force, with the component versions in force, into every
    /// worker's instances.
    pub fn start(setup: Setup<'_>) -> anyhow::Result<Arc<Self>> {
        let decl = &setup.app.manifest.component[setup.gateway];
        let builds = Builds::from_sources(
            &Sources::read(setup.app, setup.gateway)?,
            setup.kv.clone(),
            setup.known_stores,
            setup.cache_dir,
        )?;
        let engine = builds.engine().clone();
        // A store that cannot be read yet (Redis not up) leaves the lane on
        // no config, and the manifest's builds, until the poller reads it.
        let (wanted, document, unknown) = match in_force(&*setup.kv)
            .and_then(|wanted| Ok((document(&*setup.kv, wanted.version)?, wanted)))
        {
            Ok((document, wanted)) => (wanted, document, None),
            Err(error) => {
                tracing::warn!("the config in force cannot be read yet: {error:#}");
                (
                    Wanted::default(),
                    Arc::from("{}"),
                    Some(format!("{error:#}")),
                )
            }
        };
        // A node that starts after an upgrade serves the upgraded builds.
        let prepared = builds
            .resolve(&builds.manifest, &wanted.components)
            .context("cannot load the component versions in force")?
            .unwrap_or_else(|| builds.manifest.clone());
        let canary_builds = builds
            .canary(&prepared, &wanted.components)
            .context("cannot load the canary's version")?;
        let mut workers = Vec::with_capacity(setup.workers);
        for _ in 0..setup.workers.max(1) {
            let load = |prepared: &Arc<[Prepared; 4]>| {
                PolicySet::load(
                    &engine,
                    prepared.clone(),
                    wanted.version,
                    document.clone(),
                    setup.budget,
                )
            };
            let canary = canary_builds.as_ref().map(load).transpose()?;
            workers.push(WorkerSets {
                active: Mutex::new(Sets::new(load(&prepared)?, canary)),
                next: Mutex::new(None),
                fresh: AtomicBool::new(false),
            });
        }
        let lane = Arc::new(NativeGateway {
            name: setup.gateway.into(),
            engine,
            builds,
            prepared: Mutex::new(prepared),
            canary_builds: Mutex::new(canary_builds),
            canary: canary::Canary::default(),
            kv: setup.kv,
            variables: setup.variables,
            allowed: Arc::new(AllowedHosts::parse(&decl.allowed_outbound_hosts)?),
            client: UpstreamClient::new(setup.tls, setup.workers.max(1)),
            telemetry: setup.telemetry,
            hooks: hooks::HookQueue::default(),
            key_set_fetches: key_sets::KeySetFetches::default(),
            budget: setup.budget,
            workers,
            requested: watch::Sender::new(wanted.clone()),
            settled: watch::Sender::new(wanted.clone()),
            failure: Mutex::new(None),
            is_unknown: AtomicBool::new(unknown.is_some()),
            unknown: Mutex::new(unknown),
        });
        let precompiling = lane.clone();
        tokio::task::spawn_blocking(move || precompiling.builds.precompile(&wanted.components));
        tokio::spawn(crate::poll::follow(
            lane.clone(),
            lane.requested.subscribe(),
        ));
        tokio::spawn(poll_versions(lane.clone()));
        tokio::spawn(hooks::run(Arc::downgrade(&lane)));
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

    /// The policy set the next request of worker `worker` decides with,
    /// and which side of a running canary that is.
    pub fn policies(&self, worker: usize) -> (Arc<Mutex<PolicySet>>, Side) {
        let sets = &self.workers[worker % self.workers.len()];
        let mut active = lock(&sets.active);
        if sets.fresh.swap(false, Ordering::AcqRel)
            && let Some(next) = lock(&sets.next).take()
        {
            *active = next;
        }
        match &active.canary {
            Some(canary) if self.canary.roll() => (canary.clone(), Side::Canary),
            _ => (active.stable.clone(), Side::Stable),
        }
    }

    /// Asks for config version `version` (newer or older: an activated
    /// version may be either) to be loaded, and waits (up to `wait`) until
    /// it is, was refused, or another version was asked for: an apply
    /// through this node's admin API answers once this node serves it.
    pub async fn load(&self, version: u64, wait: Duration) {
        self.requested.send_if_modified(|requested| {
            let changed = requested.version != version;
            requested.version = version;
            changed
        });
        let mut settled = self.settled.subscribe();
        let done = settled
            .wait_for(|s| s.version == version || self.requested.borrow().version != version);
        let _ = tokio::time::timeout(wait, done).await;
    }

    /// The builds requests start with now, by role.
    pub fn builds(&self) -> Arc<[Prepared; 4]> {
        lock(&self.prepared).clone()
    }

    /// Whether pushed version `sha256` is compiled here.
    pub fn is_ready(&self, sha256: &str) -> bool {
        self.builds.is_ready(sha256)
    }

    /// The manifest's build of each role.
    pub fn manifest_builds(&self) -> &[Prepared; 4] {
        &self.builds.manifest
    }

    /// Admits `bytes` as a new build of `role`: it fits the role's world,
    /// compiles and instantiates under the host's limits, and loads the
    /// config version this node serves. Compiles on the calling thread.
    pub fn admit(&self, role: Role, bytes: &[u8]) -> Result<Prepared, Refusal> {
        let version = self.settled.borrow().version;
        let document =
            document(&*self.kv, version).map_err(|e| Refusal::Store(format!("{e:#}")))?;
        self.builds
            .admit(&self.builds(), role, bytes, version, document, self.budget)
    }

    /// Asks for the component versions of `components` to be put in force
    /// and waits (up to `wait`) until they are, or their loading failed
    /// (the error says why; the builds before stay).
    pub async fn follow(&self, components: InForce, wait: Duration) -> Result<(), String> {
        self.requested.send_if_modified(|requested| {
            let changed = requested.components != components;
            requested.components = components.clone();
            changed
        });
        let mut settled = self.settled.subscribe();
        let done = settled.wait_for(|s| {
            s.components == components || self.requested.borrow().components != components
        });
        if tokio::time::timeout(wait, done).await.is_err() {
            return Err(format!("not loaded after {} s", wait.as_secs()));
        }
        if self.serves_builds(&components) {
            Ok(())
        } else {
            Err(lock(&self.failure)
                .clone()
                .unwrap_or_else(|| "another change was asked for meanwhile".to_owned()))
        }
    }

    /// Adds the splitter's counts to the store before the request goes on,
    /// so that what a client was answered is counted (see [`add_counts`]).
    pub async fn add(&self, counts: Vec<Count>) {
        add_counts(&self.kv, counts).await;
    }

    /// Builds every worker's next sets for `wanted`.
    fn build(&self, wanted: &Wanted) -> anyhow::Result<()> {
        let current = self.builds();
        let prepared = self
            .builds
            .resolve(&current, &wanted.components)?
            .unwrap_or(current);
        let canary_builds = self.builds.canary(&prepared, &wanted.components)?;
        let document = document(&*self.kv, wanted.version)?;
        let load = |prepared: &Arc<[Prepared; 4]>| {
            PolicySet::load(
                &self.engine,
                prepared.clone(),
                wanted.version,
                document.clone(),
                self.budget,
            )
        };
        for sets in &self.workers {
            let canary = canary_builds.as_ref().map(load).transpose()?;
            *lock(&sets.next) = Some(Sets::new(load(&prepared)?, canary));
        }
        *lock(&self.prepared) = prepared;
        let without_canary = canary_builds.is_none();
        *lock(&self.canary_builds) = canary_builds;
        for sets in &self.workers {
            sets.fresh.store(true, Ordering::Release);
        }
        if without_canary {
            // Every request takes the new sets first: no share is left.
            self.canary.stop();
        }
        Ok(())
    }

    /// Whether this node serves the builds `components` asks for: those
    /// in force, and a canary's.
    fn serves_builds(&self, components: &InForce) -> bool {
        let builds = self.builds();
        let canary = lock(&self.canary_builds).clone();
        let canary_serves = match (components.canary(), canary) {
            (None, None) => true,
            (Some((name, sha256)), Some(builds)) => builds
                .iter()
                .any(|b| &*b.name == name && b.version() == Some(sha256)),
            _ => false,
        };
        canary_serves
            && builds
                .iter()
                .all(|build| components.current(&build.name) == build.version())
    }
}

/// Adds `counts` to the store: in place when the store answers from
/// memory, on the blocking pool otherwise (a network round trip must not
/// hold up a worker's other requests).
pub async fn add_counts(kv: &Arc<dyn KvBackend>, counts: Vec<Count>) {
    if counts.is_empty() {
        return;
    }
    let add = {
        let kv = kv.clone();
        move || {
            for count in &counts {
                if let Err(error) = kv.increment(BUCKET, &count.key, count.delta) {
                    tracing::warn!(key = %count.key, "counter not counted: {error}");
                }
            }
            Ok(())
        }
    };
    if kv.increments_inline(BUCKET) {
        let _ = add();
    } else {
        let _ = blocking(add).await;
    }
}

/// `error`'s outermost message and its root cause, without the wasm
/// backtrace between them.
fn outer_and_root(error: &anyhow::Error) -> String {
    let (outer, root) = (error.to_string(), error.root_cause().to_string());
    if outer == root {
        outer
    } else {
        format!("{outer}: {root}")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl crate::poll::Loader for NativeGateway {
    type Wanted = Wanted;

    fn load(&self, wanted: &Wanted) -> anyhow::Result<()> {
        self.build(wanted)
    }

    fn loaded(self: &Arc<Self>, wanted: &Wanted, before: &Wanted, elapsed: Duration) {
        self.known();
        *lock(&self.failure) = None;
        tracing::info!(
            version = wanted.version,
            components = %describe(&self.builds()),
            elapsed_ms = elapsed.as_millis() as u64,
            "config version loaded"
        );
        if wanted.components != before.components {
            let precompiling = self.clone();
            let components = wanted.components.clone();
            tokio::task::spawn_blocking(move || {
                precompiling.builds.precompile(&components);
            });
        }
    }

    fn failed(&self, wanted: &Wanted, error: &anyhow::Error) {
        tracing::error!(
            version = wanted.version,
            "not loaded, the previous config and components stay: {error:#}"
        );
        *lock(&self.failure) = Some(format!("{error:#}"));
    }

    fn settle(&self, wanted: Wanted) {
        self.settled.send_replace(wanted);
    }
}

/// The builds in force, for logs: `name@sha256-prefix` of each pushed one.
fn describe(builds: &[Prepared; 4]) -> String {
    let pushed: Vec<String> = builds
        .iter()
        .filter(|b| b.pushed)
        .map(|b| format!("{}@{}", b.name, &b.sha256[..12]))
        .collect();
    if pushed.is_empty() {
        "manifest".to_owned()
    } else {
        pushed.join(",")
    }
}

/// Looks at the store's config version and component versions in force
/// every [`POLL_INTERVAL`], for changes made through other nodes (and,
/// when the store could not be read at start, for what to serve at all).
async fn poll_versions(lane: Arc<NativeGateway>) {
    let kv = lane.kv.clone();
    crate::poll::every(
        POLL_INTERVAL,
        kv,
        "config version in force",
        in_force,
        |wanted| {
            if wanted.version == 0 && lane.unknown().is_some() {
                // Readable, and nothing was ever applied.
                lane.known();
            }
            lane.requested.send_if_modified(|requested| {
                let changed = *requested != wanted;
                *requested = wanted;
                changed
            });
        },
    )
    .await;
}

/// The config version and component versions in force, read together.
fn in_force(kv: &dyn KvBackend) -> anyhow::Result<Wanted> {
    let keys = [
        keys::CURRENT.to_owned(),
        keys::COMPONENTS_IN_FORCE.to_owned(),
    ];
    let [current, components] = <[_; 2]>::try_from(kv.get_many(BUCKET, &keys)?)
        .map_err(|_| anyhow::anyhow!("the store answered for other keys"))?;
    Ok(Wanted {
        version: parse_version(current.as_deref())?,
        components: InForce::parse(components.as_deref())
            .with_context(|| format!("{} is not readable", keys::COMPONENTS_IN_FORCE))?,
    })
}

/// The config version in force (0: none applied yet), from the bytes of
/// its key.
fn parse_version(bytes: Option<&[u8]>) -> anyhow::Result<u64> {
    match bytes {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("{} does not hold a version number", keys::CURRENT)),
    }
}

/// The config version in force (0: none applied yet) and its document.
pub fn config_in_force(kv: &dyn KvBackend) -> anyhow::Result<(u64, Arc<str>)> {
    let version = parse_version(kv.get(BUCKET, keys::CURRENT)?.as_deref())?;
    Ok((version, document(kv, version)?))
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
