//! What the host gives components beyond plain WASI: key-value stores
//! ([`kv`]), variables ([`variables`]), outbound HTTP ([`outbound_http`])
//! and the TLS settings it connects with ([`tls`]).
//!
//! Each capability takes the same three steps ([`Capability`]), as Spin's
//! factors do:
//!
//! 1. **link**: its interfaces are added to the linker, once per engine;
//! 2. **configure**: the manifest and the runtime config file
//!    ([`AppContext`]) make its state for the whole app, once at load;
//! 3. **instance**: that state gives each new instance of a component what
//!    the instance's store holds of the capability.
//!
//! [`Capabilities`] holds the configured state of every capability and
//! makes an instance's share of all of them at once.

pub mod kv;
pub mod outbound_http;
pub mod tls;
pub mod variables;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Linker;

use crate::engine::HostState;
use crate::manifest::App;
use crate::runtime_config::RuntimeConfig;

use self::kv::{KvCtx, KvStores};
use self::outbound_http::{Outbound, OutboundHttp};
use self::tls::TlsConfigs;
use self::variables::ComponentVariables;

/// What configuring a capability reads: the app and the host's settings.
pub struct AppContext<'a> {
    /// The validated manifest.
    pub app: &'a App,
    /// The runtime config file (the default when there is none).
    pub runtime_config: &'a RuntimeConfig,
    /// The host's state directory (the embedded key-value store lives there).
    pub state_dir: &'a Path,
    /// The `--variables-file`, if any.
    pub variables_file: Option<&'a Path>,
}

/// A host capability: linked, configured for the app, then given to each
/// instance. The implementing type is the capability's state for the app.
pub trait Capability: Sized {
    /// What one instance's store holds of the capability.
    type Instance;

    /// Step 1: adds the capability's interfaces to `linker`.
    fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()>;

    /// Step 2: the capability's state for the whole app.
    fn configure(context: &AppContext<'_>) -> anyhow::Result<Self>;

    /// Step 3: the state of one new instance of `component`.
    fn instance(&self, component: &str) -> Self::Instance;
}

/// Adds every capability's interfaces to `linker`.
pub fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    KvStores::link(linker)?;
    ComponentVariables::link(linker)?;
    Outbound::link(linker)?;
    TlsConfigs::link(linker)
}

/// Every capability, configured for the app.
pub struct Capabilities {
    /// Key-value stores.
    pub kv: KvStores,
    /// Resolved variables.
    pub variables: ComponentVariables,
    /// Outbound HTTP (with its TLS settings).
    pub outbound: Outbound,
}

/// One instance's share of every capability, kept in its store.
pub struct InstanceCapabilities {
    /// The stores it may open.
    pub kv: KvCtx,
    /// Its variables.
    pub variables: Arc<HashMap<String, String>>,
    /// Its outbound HTTP hooks.
    pub outbound: OutboundHttp,
}

impl Capabilities {
    /// The state of one new instance of `component`.
    pub fn instance(&self, component: &str) -> InstanceCapabilities {
        InstanceCapabilities {
            kv: self.kv.instance(component),
            variables: self.variables.instance(component),
            outbound: self.outbound.instance(component),
        }
    }
}
