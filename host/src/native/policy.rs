//! The policy components on the native lane: compiled once, instantiated
//! once per worker and config version, and called synchronously.
//!
//! Each component instance lives in a store of its own, so a trap, a
//! memory limit or an exhausted time budget in one call fails that call
//! alone: the instance is dropped, a fresh one is made from the
//! pre-instantiated component and given the same config document, and
//! the other components (and workers) never notice.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, InstancePre, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use upshift_core::GatewayError;
use upshift_core::policy::{self as core, Policy};
use upshift_core::tables::Tables;
use upshift_model::metrics::AiAnswer;

use super::bindings::exports::upshift::ai::ai;
use super::bindings::exports::upshift::auth::auth;
use super::bindings::exports::upshift::router::router;
use super::bindings::exports::upshift::splitter::splitter;
use super::bindings::upshift::types::types;
use crate::capabilities::kv::{KvCtx, KvView};
use crate::engine::{EPOCH_TICK, MAX_MEMORY_BYTES};

upshift_core::policy_conversions!(
    mod conversions;
    types: crate::native::bindings::upshift::types::types,
    router: crate::native::bindings::exports::upshift::router::router,
    auth: crate::native::bindings::exports::upshift::auth::auth,
    splitter: crate::native::bindings::exports::upshift::splitter::splitter,
    ai: crate::native::bindings::exports::upshift::ai::ai,
);

/// The data of one policy instance's store.
pub struct PolicyState {
    table: ResourceTable,
    wasi: WasiCtx,
    kv: KvCtx,
    limits: StoreLimits,
}

impl WasiView for PolicyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl PolicyState {
    pub(super) fn streams(&mut self) -> super::stdio::SyncStreams<'_> {
        super::stdio::SyncStreams(&mut self.table)
    }

    pub(super) fn kv(&mut self) -> KvView<'_> {
        KvView {
            table: &mut self.table,
            ctx: &self.kv,
        }
    }
}

/// The four policy interfaces, in the order a request meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `upshift:router/router`.
    Router,
    /// `upshift:auth/auth`.
    Auth,
    /// `upshift:splitter/splitter`.
    Splitter,
    /// `upshift:ai/ai`.
    Ai,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Router, Role::Auth, Role::Splitter, Role::Ai];

    /// The interface the role's component exports (without version).
    pub fn interface(self) -> &'static str {
        match self {
            Role::Router => "upshift:router/router",
            Role::Auth => "upshift:auth/auth",
            Role::Splitter => "upshift:splitter/splitter",
            Role::Ai => "upshift:ai/ai",
        }
    }

    /// The version line of its interface that this host's WIT has, e.g.
    /// `0.2.` (a prefix of the full version).
    pub fn version_line(self) -> &'static str {
        match self {
            Role::Auth | Role::Splitter => "0.3.",
            Role::Ai => "0.4.",
            Role::Router => "0.2.",
        }
    }
}

/// One build of a policy component, compiled and linked.
#[derive(Clone)]
pub struct Prepared {
    /// Its name in the manifest.
    pub name: Arc<str>,
    /// SHA-256 of its bytes, in lower-case hex.
    pub sha256: Arc<str>,
    /// Whether it was pushed to the registry (else it is the manifest's
    /// build).
    pub pushed: bool,
    pre: InstancePre<PolicyState>,
    kv: KvCtx,
}

impl Prepared {
    /// Links `component` (the manifest's `name`, whose bytes hash to
    /// `sha256`) with `linker`; `kv` is what it may open in the key-value
    /// store.
    pub fn new(
        name: &str,
        sha256: &str,
        component: &Component,
        linker: &Linker<PolicyState>,
        kv: KvCtx,
    ) -> anyhow::Result<Self> {
        let pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component `{name}` imports something the native lane does not provide")
            })?;
        Ok(Prepared {
            name: name.into(),
            sha256: sha256.into(),
            pushed: false,
            pre,
            kv,
        })
    }

    /// A pushed build of the same component, with the same access to the
    /// store.
    pub fn pushed(
        &self,
        sha256: &str,
        component: &Component,
        linker: &Linker<PolicyState>,
    ) -> anyhow::Result<Self> {
        let mut build = Prepared::new(&self.name, sha256, component, linker, self.kv.clone())?;
        build.pushed = true;
        Ok(build)
    }

    /// The pushed version this is (`None`: the manifest's build), as the
    /// registry names it.
    pub fn version(&self) -> Option<&str> {
        self.pushed.then_some(&*self.sha256)
    }
}

/// One instance of a policy component with the config loaded into it.
struct Instance<G> {
    store: Store<PolicyState>,
    guest: G,
    /// The loaded resource (route table, policy, plan, catalog).
    loaded: ResourceAny,
}

/// A failure inside a policy component.
fn failed(name: &str, error: &wasmtime::Error) -> GatewayError {
    GatewayError::ComponentFailed {
        component: name.to_owned(),
        detail: error.root_cause().to_string(),
    }
}

/// The four policy components of one worker, with one config version
/// loaded.
pub struct PolicySet {
    /// The config version loaded.
    pub version: u64,
    /// What the components name by position in that version.
    pub tables: Arc<Tables>,
    document: Arc<str>,
    budget: Duration,
    prepared: Arc<[Prepared; 4]>,
    router: Option<Instance<router::Guest>>,
    auth: Option<Instance<auth::Guest>>,
    splitter: Option<Instance<splitter::Guest>>,
    ai: Option<Instance<ai::Guest>>,
}

impl PolicySet {
    /// Instantiates the components of `prepared` and loads `document`
    /// (config version `version`) into each. Each call may run for
    /// `budget` before it is stopped.
    pub fn load(
        engine: &Engine,
        prepared: Arc<[Prepared; 4]>,
        version: u64,
        document: Arc<str>,
        budget: Duration,
    ) -> anyhow::Result<Self> {
        let mut set = PolicySet {
            version,
            tables: Arc::default(),
            document,
            budget,
            prepared,
            router: None,
            auth: None,
            splitter: None,
            ai: None,
        };
        for role in Role::ALL {
            set.instantiate(engine, role)?;
        }
        set.tables = Arc::new(set.read_tables()?);
        Ok(set)
    }

    /// Lists the routes, consumers and services of the loaded version.
    fn read_tables(&mut self) -> anyhow::Result<Tables> {
        let listing = |e: GatewayError| anyhow::anyhow!("{e}");
        let routes = self
            .call(
                Role::Router,
                |s| &mut s.router,
                |g, store, table| g.route_table().call_routes(store, table),
            )
            .map_err(listing)?;
        let consumers = self
            .call(
                Role::Auth,
                |s| &mut s.auth,
                |g, store, policy| g.policy().call_consumers(store, policy),
            )
            .map_err(listing)?;
        let guarded = self
            .call(
                Role::Auth,
                |s| &mut s.auth,
                |g, store, policy| g.policy().call_guarded(store, policy),
            )
            .map_err(listing)?;
        let services = self
            .call(
                Role::Splitter,
                |s| &mut s.splitter,
                |g, store, plan| g.plan().call_services(store, plan),
            )
            .map_err(listing)?;
        Ok(conversions::tables(routes, guarded, consumers, services))
    }

    /// Makes a fresh instance for `role` and loads the document into it.
    fn instantiate(&mut self, engine: &Engine, role: Role) -> anyhow::Result<()> {
        let prepared = &self.prepared[role as usize];
        let mut store = Store::new(
            engine,
            PolicyState {
                table: ResourceTable::new(),
                wasi: WasiCtx::builder().inherit_stderr().build(),
                kv: prepared.kv.clone(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(MAX_MEMORY_BYTES)
                    .build(),
            },
        );
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(self.budget));
        let instance = prepared.pre.instantiate(&mut store)?;
        let name = &prepared.name;
        let document = &*self.document;
        let loading = || {
            format!(
                "component `{name}` does not load config version {}",
                self.version
            )
        };
        let refused = |errors: Vec<types::ConfigError>| {
            let detail: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect();
            anyhow::anyhow!("{}: {}", loading(), detail.join("; "))
        };
        match role {
            Role::Router => {
                let guest =
                    router::GuestIndices::new(&prepared.pre)?.load(&mut store, &instance)?;
                let loaded = guest
                    .route_table()
                    .call_load(&mut store, document)
                    .map_err(anyhow::Error::from)
                    .with_context(loading)?
                    .map_err(refused)?;
                self.router = Some(Instance {
                    store,
                    guest,
                    loaded,
                });
            }
            Role::Auth => {
                let guest = auth::GuestIndices::new(&prepared.pre)?.load(&mut store, &instance)?;
                let loaded = guest
                    .policy()
                    .call_load(&mut store, document)
                    .map_err(anyhow::Error::from)
                    .with_context(loading)?
                    .map_err(refused)?;
                self.auth = Some(Instance {
                    store,
                    guest,
                    loaded,
                });
            }
            Role::Splitter => {
                let guest =
                    splitter::GuestIndices::new(&prepared.pre)?.load(&mut store, &instance)?;
                let loaded = guest
                    .plan()
                    .call_load(&mut store, document)
                    .map_err(anyhow::Error::from)
                    .with_context(loading)?
                    .map_err(refused)?;
                self.splitter = Some(Instance {
                    store,
                    guest,
                    loaded,
                });
            }
            Role::Ai => {
                let guest = ai::GuestIndices::new(&prepared.pre)?.load(&mut store, &instance)?;
                let loaded = guest
                    .catalog()
                    .call_load(&mut store, document)
                    .map_err(anyhow::Error::from)
                    .with_context(loading)?
                    .map_err(refused)?;
                self.ai = Some(Instance {
                    store,
                    guest,
                    loaded,
                });
            }
        }
        Ok(())
    }

    /// Runs `call` on the instance of `role`; when it fails, drops the
    /// instance and makes a fresh one for the next call.
    fn call<G, R>(
        &mut self,
        role: Role,
        slot: fn(&mut PolicySet) -> &mut Option<Instance<G>>,
        call: impl FnOnce(&G, &mut Store<PolicyState>, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, GatewayError> {
        let budget = ticks(self.budget);
        let name = self.prepared[role as usize].name.clone();
        let Some(instance) = slot(self).as_mut() else {
            return Err(GatewayError::ComponentFailed {
                component: name.to_string(),
                detail: "its instance could not be made again after a failure".into(),
            });
        };
        instance.store.set_epoch_deadline(budget);
        let result = call(&instance.guest, &mut instance.store, instance.loaded);
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                tracing::error!(component = %name, "component failed: {}", error.root_cause());
                *slot(self) = None;
                let engine = self.prepared[role as usize].pre.engine().clone();
                if let Err(again) = self.instantiate(&engine, role) {
                    tracing::error!(component = %name, "cannot make a fresh instance: {again:#}");
                }
                Err(failed(&name, &error))
            }
        }
    }

    /// `splitter.allow-retry`; a failed call allows no retry.
    pub fn allow_retry(&mut self, route: u32, now_ms: u64) -> bool {
        self.call(
            Role::Splitter,
            |s| &mut s.splitter,
            |g, store, plan| g.plan().call_allow_retry(store, plan, route, now_ms),
        )
        .unwrap_or(false)
    }

    /// `splitter.report`: the counts the attempt adds to (none when the
    /// call failed).
    pub fn report(
        &mut self,
        route: u32,
        service: Option<&str>,
        attempt: &core::UpstreamAttempt,
        now_ms: u64,
    ) -> Vec<core::Count> {
        let attempt = splitter::Attempt::from(attempt);
        self.call(
            Role::Splitter,
            |s| &mut s.splitter,
            |g, store, plan| {
                g.plan()
                    .call_report(store, plan, route, service, attempt, now_ms)
            },
        )
        .map(counts)
        .unwrap_or_default()
    }

    /// `splitter.report-shadow`.
    pub fn report_shadow(
        &mut self,
        route: u32,
        service: Option<&str>,
        shadow: &core::UpstreamAttempt,
        primary: &core::UpstreamAttempt,
        now_ms: u64,
    ) -> Vec<core::Count> {
        let (shadow, primary) = (shadow.into(), primary.into());
        self.call(
            Role::Splitter,
            |s| &mut s.splitter,
            |g, store, plan| {
                g.plan()
                    .call_report_shadow(store, plan, route, service, shadow, primary, now_ms)
            },
        )
        .map(counts)
        .unwrap_or_default()
    }

    /// `splitter.report-answer`.
    pub fn report_answer(
        &mut self,
        route: u32,
        service: &str,
        version: u32,
        answer: &AiAnswer,
    ) -> Vec<core::Count> {
        let answer = splitter::AiAnswer::from(answer);
        self.call(
            Role::Splitter,
            |s| &mut s.splitter,
            |g, store, plan| {
                g.plan()
                    .call_report_answer(store, plan, route, service, version, answer)
            },
        )
        .map(counts)
        .unwrap_or_default()
    }

    /// Runs `call` with the AI component's guest, store and catalog.
    pub fn with_ai<R>(
        &mut self,
        call: impl FnOnce(&ai::Guest, &mut Store<PolicyState>, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, GatewayError> {
        self.call(Role::Ai, |s| &mut s.ai, call)
    }
}

impl Policy for PolicySet {
    fn resolve(&mut self, head: &str) -> Result<Option<core::RouteMatch>, GatewayError> {
        let found = self.call(
            Role::Router,
            |s| &mut s.router,
            |g, store, table| g.route_table().call_resolve(store, table, head),
        )?;
        Ok(found.map(Into::into))
    }

    fn authenticate(
        &mut self,
        route: u32,
        head: &str,
        now_ms: u64,
    ) -> Result<core::Authenticated, GatewayError> {
        let passed = self.call(
            Role::Auth,
            |s| &mut s.auth,
            |g, store, policy| {
                g.policy()
                    .call_authenticate(store, policy, route, head, now_ms)
            },
        )?;
        Ok(passed?.into())
    }

    fn choose(
        &mut self,
        route: u32,
        service: Option<&str>,
        head: &str,
        consumer: Option<u32>,
        now_ms: u64,
    ) -> Result<core::Selection, GatewayError> {
        let chosen = self.call(
            Role::Splitter,
            |s| &mut s.splitter,
            |g, store, plan| {
                g.plan()
                    .call_choose(store, plan, route, service, head, consumer, now_ms)
            },
        )?;
        Ok(chosen?.into())
    }
}

fn counts(counts: Vec<splitter::Count>) -> Vec<core::Count> {
    counts.into_iter().map(Into::into).collect()
}

/// Epoch ticks in `budget`.
fn ticks(budget: Duration) -> u64 {
    u64::try_from(budget.as_millis() / EPOCH_TICK.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
