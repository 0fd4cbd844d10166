//! TLS, both ways: the settings outbound `https` connections check their
//! upstreams with ([`client`]), and the listener's own certificates
//! ([`server`]).
//!
//! The client settings are a capability like the others ([`Capability`]),
//! though a guest never sees them directly: they have no interface to
//! link and no per-instance state, and reach components only through the
//! connections of outbound HTTP
//! ([`Outbound`](super::outbound_http::Outbound)), which is configured
//! with them. The listener's certificates are not the app's: `upshift up`
//! loads them from its `--tls-cert` and `--tls-key` options, for the
//! front end.

pub mod client;
pub mod server;

use wasmtime::component::Linker;

pub use self::client::{ClientIdentity, ClientTls, TlsConfigs};

use super::{AppContext, Capability};
use crate::engine::HostState;

impl Capability for TlsConfigs {
    /// Nothing: an instance's connections are outbound HTTP's.
    type Instance = ();

    /// No interface of its own: guests use TLS through `wasi:http`.
    fn link(_linker: &mut Linker<HostState>) -> anyhow::Result<()> {
        Ok(())
    }

    /// The default settings and those of the runtime config file's
    /// `[[client_tls]]` tables.
    fn configure(context: &AppContext<'_>) -> anyhow::Result<Self> {
        Ok(TlsConfigs::new(&context.runtime_config.client_tls)?)
    }

    fn instance(&self, _component: &str) -> Self::Instance {}
}
