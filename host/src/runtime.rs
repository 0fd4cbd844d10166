//! Turns a validated [`App`] into ready-to-serve components: configures the
//! host's capabilities (variables, key-value stores, outbound HTTP and TLS:
//! see [`crate::capabilities`]), composes, compiles (with the
//! precompiled-code cache) and pre-instantiates each trigger component.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::handler::{ProxyHandler, ProxyPre};
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::admin_token;
use crate::capabilities::kv::{KvBackend, KvStores};
use crate::capabilities::outbound_http::Outbound;
use crate::capabilities::tls::TlsConfigs;
use crate::capabilities::variables::ComponentVariables;
use crate::capabilities::{AppContext, Capabilities, Capability};
use crate::compose::deny_imports;
use crate::composed::{self, ComposedGateway};
use crate::engine::{EpochTicker, HostState, load_component, new_engine, new_linker};
use crate::instances::ComponentInstances;
use crate::manifest::App;
use crate::native::{self, NativeGateway};
use crate::registry::{self, Registry};
use crate::routes::{Route, Router};
use crate::runtime_config::RuntimeConfig;
use crate::sources::Sources;
use crate::telemetry::Telemetry;

/// Which lane serves an Upshift gateway component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lane {
    /// The host's hyper server and client move the bytes; the policy
    /// components decide through synchronous calls.
    #[default]
    Native,
    /// The `gateway` component serves the request, as on Spin.
    Component,
}

/// Settings for [`Runtime::load`].
pub struct RuntimeOptions {
    /// Directory for the key-value database and the compiled-code cache.
    pub state_dir: PathBuf,
    /// Optional `--variables-file`.
    pub variables_file: Option<PathBuf>,
    /// Optional `--runtime-config-file` (Spin's format): where key-value
    /// stores keep their data.
    pub runtime_config_file: Option<PathBuf>,
    /// Execution budget of one request.
    pub request_timeout: Duration,
    /// Requests one instance may serve side by side (at least 1).
    pub instance_concurrency: usize,
    /// The lane of Upshift gateway components.
    pub lane: Lane,
    /// Worker threads serving requests.
    pub workers: usize,
    /// Whether the admin routes are served on the public listener too.
    pub admin_public: bool,
    /// The admin token when the `admin_token` variable resolves empty.
    pub unset_admin_token: UnsetAdminToken,
    /// Where requests are logged and traced, if anywhere.
    pub telemetry: Option<Telemetry>,
}

/// What the admin token is when none is configured.
#[derive(Debug, Clone)]
pub enum UnsetAdminToken {
    /// A random one, generated on the first start and shown once; its
    /// digest is kept in the state directory.
    Generate,
    /// This one (`upshift demo`).
    Fixed(String),
}

/// A trigger component ready to handle requests.
pub struct ComponentService {
    /// Component name.
    pub name: Arc<str>,
    /// Dispatches requests to (reused) instances.
    pub handler: ProxyHandler<ComponentInstances>,
}

/// What serves the requests of one trigger route.
#[derive(Clone)]
pub enum Target {
    /// A component, on the component-model async engine.
    Component(Arc<ComponentService>),
    /// An Upshift gateway on the native lane.
    Native(Arc<NativeGateway>),
    /// An Upshift gateway on the component lane, its components
    /// upgradable.
    Composed(Arc<ComposedGateway>),
}

/// All trigger components of an app and the router in front of them.
pub struct Runtime {
    /// Routes the public listener's paths to what serves them.
    pub router: Router<Target>,
    /// Routes the admin listener's paths: the trigger routes under
    /// `/admin` alone.
    pub admin_router: Router<Target>,
    /// Whether the admin routes (and the registry) are on the public
    /// listener too.
    pub admin_public: bool,
    /// Whether a gateway serves on the native lane: its workers are then
    /// the data plane alone, and the other components' requests (the admin
    /// API) run on the control plane's threads.
    pub offload_components: bool,
    /// The component registry of the native lane, beside the admin API.
    pub registry: Option<Arc<Registry>>,
    /// The key-value backend of every store.
    pub kv: Arc<dyn KvBackend>,
    /// Where requests are logged and traced, if anywhere.
    pub telemetry: Option<Telemetry>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Prepares every component referenced by an HTTP trigger. Must run
    /// inside a tokio runtime (the native lane starts its config loader).
    pub fn load(app: &App, options: &RuntimeOptions) -> anyhow::Result<Self> {
        app.check_sources()?;
        let runtime_config = match &options.runtime_config_file {
            Some(file) => RuntimeConfig::load(file)?,
            None => RuntimeConfig::default(),
        };
        let application = &app.manifest.application;
        tracing::info!(
            app = %application.name,
            version = application.version.as_deref().unwrap_or("-"),
            "loading application"
        );
        let context = AppContext {
            app,
            runtime_config: &runtime_config,
            state_dir: &options.state_dir,
            variables_file: options.variables_file.as_deref(),
        };
        let mut variables = ComponentVariables::configure(&context)?;
        std::fs::create_dir_all(&options.state_dir).with_context(|| {
            format!(
                "cannot create state directory {}",
                options.state_dir.display()
            )
        })?;
        variables.fill_empty("admin_token", || match &options.unset_admin_token {
            UnsetAdminToken::Generate => admin_token::generated(&options.state_dir),
            UnsetAdminToken::Fixed(token) => Ok(token.clone()),
        })?;
        let mut kv = KvStores::configure(&context)?;

        let engine = new_engine()?;
        let linker = new_linker(&engine)?;
        let cache_dir = options.state_dir.join("compiled");
        let mut engines = vec![engine.clone()];

        // Native gateways first: the admin API's writes of the version in
        // force wait for them to load it.
        let mut natives: HashMap<String, Arc<NativeGateway>> = HashMap::new();
        if options.lane == Lane::Native {
            for (_, name) in &app.routes {
                if natives.contains_key(name) || !NativeGateway::serves(app, name) {
                    continue;
                }
                let started = Instant::now();
                // The composition is what Spin runs: refuse what Spin refuses.
                composed(app, name)?;
                let lane = NativeGateway::start(native::Setup {
                    app,
                    gateway: name,
                    kv: kv.backend.clone(),
                    known_stores: kv.known.clone(),
                    variables: variables.for_component(name),
                    tls: TlsConfigs::configure(&context)?,
                    cache_dir: &cache_dir,
                    budget: options.request_timeout,
                    workers: options.workers,
                    telemetry: options.telemetry.clone(),
                })
                .with_context(|| format!("cannot start the native lane of `{name}`"))?;
                tracing::info!(
                    component = %name,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "native lane ready"
                );
                engines.push(lane.engine().clone());
                natives.insert(name.clone(), lane);
            }
        }
        kv.config_listener = natives.values().next().cloned();
        let capabilities = Arc::new(Capabilities {
            outbound: Outbound::configure(&context)?,
            kv,
            variables,
        });
        let kv = capabilities.kv.backend.clone();
        let mut services: HashMap<String, Arc<ComponentService>> = HashMap::new();
        let mut composed_lanes: HashMap<String, Arc<ComposedGateway>> = HashMap::new();
        let mut routes = Vec::new();
        for (route, name) in &app.routes {
            if let Some(lane) = natives.get(name) {
                routes.push((route.clone(), Target::Native(lane.clone())));
                continue;
            }
            if let Some(lane) = composed_lanes.get(name) {
                routes.push((route.clone(), Target::Composed(lane.clone())));
                continue;
            }
            let component: Arc<str> = name.as_str().into();
            let instances = {
                let (engine, capabilities) = (engine.clone(), capabilities.clone());
                let (request_timeout, instance_concurrency) =
                    (options.request_timeout, options.instance_concurrency);
                move |pre| ComponentInstances {
                    name: component.clone(),
                    engine: engine.clone(),
                    pre,
                    capabilities: capabilities.clone(),
                    request_timeout,
                    instance_concurrency,
                }
            };
            if options.lane == Lane::Component && NativeGateway::serves(app, name) {
                let started = Instant::now();
                let lane = ComposedGateway::start(composed::Setup {
                    sources: Sources::read(app, name)?,
                    engine: engine.clone(),
                    linker: linker.clone(),
                    instances: Box::new(instances),
                    kv: kv.clone(),
                    known_stores: capabilities.kv.known.clone(),
                    cache_dir: cache_dir.clone(),
                    budget: options.request_timeout,
                })
                .with_context(|| format!("cannot load component `{name}`"))?;
                tracing::info!(
                    component = %name,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "component ready"
                );
                composed_lanes.insert(name.clone(), lane.clone());
                routes.push((route.clone(), Target::Composed(lane)));
                continue;
            }
            let service = match services.get(name) {
                Some(service) => service.clone(),
                None => {
                    let started = Instant::now();
                    let pre = prepare(app, name, &engine, &linker, &cache_dir)
                        .with_context(|| format!("cannot load component `{name}`"))?;
                    tracing::info!(
                        component = %name,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "component ready"
                    );
                    let service = Arc::new(ComponentService {
                        name: name.as_str().into(),
                        handler: ProxyHandler::new(instances(pre)),
                    });
                    services.insert(service.name.to_string(), service.clone());
                    service
                }
            };
            routes.push((route.clone(), Target::Component(service)));
        }
        // The admin plane: the trigger routes under /admin.
        let is_admin = |route: &Route| {
            let base = route.base();
            base == "/admin" || base.starts_with("/admin/")
        };
        let admin_router = Router::new(
            routes
                .iter()
                .filter(|(route, _)| is_admin(route))
                .cloned()
                .collect(),
        );
        let router = Router::new(
            routes
                .into_iter()
                .filter(|(route, _)| options.admin_public || !is_admin(route))
                .collect(),
        );
        // The registry answers beside the admin API, with its token.
        let lane = match (natives.values().next(), composed_lanes.values().next()) {
            (Some(native), _) => Some(registry::Lane::Native(native.clone())),
            (None, Some(composed)) => Some(registry::Lane::Composed(composed.clone())),
            (None, None) => None,
        };
        let registry = lane.and_then(|lane| {
            let Target::Component(admin) = admin_router.route(registry::PREFIX)?.target else {
                return None;
            };
            let admin_variables = capabilities.variables.for_component(&admin.name);
            let token = |name: &str| admin_variables.get(name).cloned().unwrap_or_default();
            Some(Arc::new(Registry::new(
                lane,
                kv.clone(),
                token("admin_token"),
                token("admin_read_token"),
            )))
        });
        if let Some(registry) = &registry {
            tokio::spawn(registry.clone().drive_canaries());
        }
        Ok(Self {
            router,
            admin_router,
            admin_public: options.admin_public,
            registry,
            kv,
            telemetry: options.telemetry.clone(),
            offload_components: !natives.is_empty(),
            _ticker: EpochTicker::start(engines),
        })
    }
}

/// Composes, compiles and links one trigger component.
fn prepare(
    app: &App,
    name: &str,
    engine: &Engine,
    linker: &Linker<HostState>,
    cache_dir: &Path,
) -> anyhow::Result<ProxyPre<HostState>> {
    let composed = composed(app, name)?;
    link(linker, &load_component(engine, &composed, cache_dir)?)
}

/// Links a compiled HTTP component with the host's imports (those of a
/// dependency that does not inherit them denied).
pub fn link(
    linker: &Linker<HostState>,
    component: &Component,
) -> anyhow::Result<ProxyPre<HostState>> {
    let mut linker = linker.clone();
    deny_imports(&mut linker, component)?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .context("the component imports something the host does not provide")?;
    let pre = ServicePre::new(pre).map_err(anyhow::Error::from).context(
        "the component does not export wasi:http/handler@0.3.0 \
         (build it with spin-sdk 7 `#[http_service]`)",
    )?;
    Ok(ProxyPre::P3(pre))
}

/// Component `name` composed with its dependencies, as Spin composes it.
pub fn composed(app: &App, name: &str) -> anyhow::Result<Vec<u8>> {
    Ok(Sources::read(app, name)?.compose(&HashMap::new())?)
}
