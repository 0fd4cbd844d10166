//! The wasmtime engine, the linker with every host interface, per-instance
//! store data, and loading components through the precompiled-code cache.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher};
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::kv::{KvCtx, KvView};
use crate::capabilities::outbound_http::OutboundHttp;
use crate::capabilities::variables::VariablesView;
use crate::capabilities::{self, InstanceCapabilities};
use crate::concurrency::RequestSlot;

/// How often the epoch ticker thread advances the engine's epoch.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Maximum linear memory of one component instance.
pub const MAX_MEMORY_BYTES: usize = 128 << 20;

/// Maximum number of component instances alive at once.
const MAX_INSTANCES: u32 = 300;

/// Builds the engine: component model with async, pooling allocator, epochs.
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 16)
        .total_memories(MAX_INSTANCES * 8)
        .total_tables(MAX_INSTANCES * 16)
        .total_stacks(MAX_INSTANCES * 2)
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(32)
        .max_memory_size(MAX_MEMORY_BYTES)
        .max_unused_warm_slots(64);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_component_model_async(true)
        .epoch_interruption(true)
        .memory_reservation(MAX_MEMORY_BYTES as u64)
        .memory_guard_size(32 << 20)
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    profile(&mut config);
    Ok(Engine::new(&config)?)
}

/// For profiling runs only: `UPSHIFT_PERF_MAP=1` writes /tmp/perf-<pid>.map
/// so that `perf report` names the functions of the compiled components.
pub fn profile(config: &mut Config) {
    if std::env::var_os("UPSHIFT_PERF_MAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
}

/// Advances the engines' epochs every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread.
    pub fn start(engines: Vec<Engine>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        for engine in &engines {
                            engine.increment_epoch();
                        }
                    }
                }
            })
            .expect("spawning the epoch ticker thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The data of one instance's [`Store`].
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: OutboundHttp,
    kv: KvCtx,
    variables: Arc<HashMap<String, String>>,
    limits: StoreLimits,
    /// Epoch ticks the current request may still run for (a CPU-time budget).
    ticks_left: u64,
    /// Id of the request being handled, for logs.
    request_id: Option<Arc<str>>,
}

impl HostState {
    /// Records the start of a request and grants it a budget of `ticks` epoch
    /// ticks of execution.
    pub fn start_request(&mut self, request_id: Arc<str>, slot: RequestSlot, ticks: u64) {
        self.request_id = Some(request_id);
        self.outbound.set_request_slot(slot);
        self.ticks_left = ticks;
    }

    /// Id of the request being (or last) handled.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The `wasi:http` view, as needed by `ProxyHandler`.
    pub fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        self.http()
    }

    /// The view the key-value bindings work with.
    pub fn kv(&mut self) -> KvView<'_> {
        KvView {
            table: &mut self.table,
            ctx: &self.kv,
        }
    }

    /// The view the `spin:variables` bindings work with.
    pub fn variables(&mut self) -> VariablesView<'_> {
        VariablesView(&self.variables)
    }
}

/// Creates a store for one instance of a component, holding its share of
/// the host's capabilities.
pub fn new_store(engine: &Engine, capabilities: InstanceCapabilities) -> Store<HostState> {
    let InstanceCapabilities {
        kv,
        variables,
        outbound,
    } = capabilities;
    let state = HostState {
        table: ResourceTable::new(),
        wasi: WasiCtx::builder().inherit_stdout().inherit_stderr().build(),
        http: WasiHttpCtx::new(),
        outbound,
        kv,
        variables,
        limits: StoreLimitsBuilder::new()
            .memory_size(MAX_MEMORY_BYTES)
            .build(),
        ticks_left: u64::MAX,
        request_id: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    // Every tick spent executing guest code costs one tick of the request's
    // budget; the guest yields to other tasks at each tick and traps when the
    // budget is exhausted.
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        state.ticks_left = state.ticks_left.saturating_sub(1);
        if state.ticks_left == 0 {
            wasmtime::bail!("request exceeded its execution time limit")
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    store
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Builds a linker with WASI (0.2 and 0.3) and every host capability
/// (see [`capabilities`]).
pub fn new_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    capabilities::link(&mut linker)?;
    Ok(linker)
}

/// Compiles component bytes, reusing precompiled code cached in `cache_dir`.
///
/// The cache key is a hash of the bytes and of the engine's compatibility
/// hash (wasmtime version and code-affecting settings); an entry
/// that fails to deserialize (e.g. other engine settings) is recompiled.
pub fn load_component(
    engine: &Engine,
    bytes: &[u8],
    cache_dir: &Path,
) -> anyhow::Result<Component> {
    let mut hasher = CacheKeyHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(bytes);
    let key: String = hasher
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = cache_dir.join(format!("{key}.cwasm"));
    if path.is_file() {
        // SAFETY: the file was written by `precompile_component` below, into a
        // directory owned by this host, for this wasmtime version.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(error) => tracing::warn!(
                path = %path.display(),
                "ignoring unusable precompiled component: {error}"
            ),
        }
    }
    let compiled = engine.precompile_component(bytes)?;
    if let Err(error) = write_atomically(cache_dir, &path, &compiled) {
        tracing::warn!(path = %path.display(), "cannot cache precompiled component: {error}");
    }
    // SAFETY: `compiled` was just produced by `precompile_component` on this engine.
    Ok(unsafe { Component::deserialize(engine, &compiled) }?)
}

/// Feeds [`Hash`] output into SHA-256, for a stable on-disk cache key.
struct CacheKeyHasher(Sha256);

impl Hasher for CacheKeyHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 digest is used")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.persist(path)?;
    Ok(())
}
