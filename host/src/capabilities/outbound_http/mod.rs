//! Outbound HTTP: the `wasi:http` hooks that send a component's requests,
//! to the hosts its `allowed_outbound_hosts` (Spin syntax, see
//! [`allowed_hosts`]) lets it call, over the shared connection pools
//! ([`clients`]), with the guest's timeouts ([`between_bytes`] for the
//! response body).
//!
//! As a [`Capability`], it is [`Outbound`]: `wasi:http` linked, the
//! connection pools (with the TLS settings of [`super::tls`]) and each
//! component's allowed hosts made for the app, and each instance given its
//! hooks ([`OutboundHttp`]).

mod allowed_hosts;
mod between_bytes;
mod clients;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

pub use self::allowed_hosts::{AllowedHostError, AllowedHosts};
pub use self::between_bytes::between_bytes_timeout;
pub use self::clients::{Failure, OutboundClients, UpstreamBody, classify};

use super::tls::TlsConfigs;
use super::{AppContext, Capability};
use crate::concurrency::RequestSlot;
use crate::engine::HostState;

/// The app's outbound HTTP: the shared connection pools, and where each
/// component may send requests.
pub struct Outbound {
    /// The connection pools, with the app's TLS settings.
    clients: OutboundClients,
    /// Each component's `allowed_outbound_hosts`.
    allowed: HashMap<String, Arc<AllowedHosts>>,
}

impl Capability for Outbound {
    /// The instance's `wasi:http` hooks.
    type Instance = OutboundHttp;

    /// `wasi:http` 0.3 (its handler, and its client, through the hooks).
    fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
        wasmtime_wasi_http::p3::add_to_linker(linker)?;
        Ok(())
    }

    /// One set of pools over the configured TLS settings, and each
    /// component's allowed hosts.
    fn configure(context: &AppContext<'_>) -> anyhow::Result<Self> {
        let clients = OutboundClients::new(TlsConfigs::configure(context)?, 1);
        let allowed = context
            .app
            .manifest
            .component
            .iter()
            .map(|(name, decl)| {
                let hosts = AllowedHosts::parse(&decl.allowed_outbound_hosts)?;
                Ok((name.clone(), Arc::new(hosts)))
            })
            .collect::<Result<_, AllowedHostError>>()?;
        Ok(Self { clients, allowed })
    }

    fn instance(&self, component: &str) -> OutboundHttp {
        let allowed = self.allowed.get(component).cloned().unwrap_or_default();
        OutboundHttp::new(component.into(), allowed, self.clients.clone())
    }
}

/// Timeout applied when the guest sets none (matches wasmtime-wasi-http's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// `wasi:http` hooks for one component: requests to hosts outside its
/// `allowed_outbound_hosts` fail with `HTTP-request-denied`; the others go
/// through the shared connection pool, with the guest's connect, first-byte
/// and between-bytes timeouts.
pub struct OutboundHttp {
    allowed: Arc<AllowedHosts>,
    component: Arc<str>,
    clients: OutboundClients,
    /// The current request's run permit, released while waiting on upstreams.
    slot: Option<RequestSlot>,
}

impl OutboundHttp {
    /// Hooks enforcing `allowed` for the named component.
    pub fn new(component: Arc<str>, allowed: Arc<AllowedHosts>, clients: OutboundClients) -> Self {
        Self {
            allowed,
            component,
            clients,
            slot: None,
        }
    }

    /// Sets the run-permit slot of the request now being handled.
    pub fn set_request_slot(&mut self, slot: RequestSlot) {
        self.slot = Some(slot);
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
)>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        if !self.allowed.allows(request.uri()) {
            tracing::warn!(
                component = %self.component,
                uri = %request.uri(),
                "outbound request denied: not in allowed_outbound_hosts"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let send = send_pooled(
            self.clients.clone(),
            self.component.clone(),
            request,
            options,
        );
        match self.slot.clone() {
            Some(slot) => Box::new(slot.while_waiting(send)),
            None => Box::new(send),
        }
    }
}

async fn send_pooled(
    clients: OutboundClients,
    component: Arc<str>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> SendResult {
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let between_bytes = options
        .and_then(|o| o.between_bytes_timeout)
        .unwrap_or(DEFAULT_TIMEOUT)
        .max(Duration::from_nanos(1));
    let connect_timeout = options.and_then(|o| o.connect_timeout);
    let sending = clients.send(0, &component, request, connect_timeout);
    let response = tokio::time::timeout(first_byte, sending)
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(client_error)?;
    let response = response.map(|body| between_bytes_timeout(body, between_bytes));
    Ok((response, Box::new(async { Ok(()) })))
}

/// Maps a pooled-client error to the error wasi:http reports to the guest.
fn client_error(error: upshift_pool::Error) -> HttpError {
    match classify(&error) {
        Failure::TlsCertificate(_) => HttpError::TlsCertificateError,
        Failure::TlsProtocol(_) => HttpError::TlsProtocolError,
        Failure::ConnectTimeout => HttpError::ConnectionTimeout,
        Failure::Connect(io) => HttpError::Connect(io),
        Failure::Refused => HttpError::ConnectionRefused,
        Failure::Protocol(detail) => {
            tracing::debug!("outbound request failed: {detail}");
            HttpError::HttpProtocolError
        }
    }
}
