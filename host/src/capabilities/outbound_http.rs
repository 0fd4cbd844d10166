//! Outbound HTTP: `allowed_outbound_hosts` (Spin syntax) and the `wasi:http`
//! hooks that enforce it before sending a request.
//!
//! As a [`Capability`], it is [`Outbound`]: `wasi:http` linked, the
//! connection pools (with the TLS settings of [`super::tls`]) and each
//! component's allowed hosts made for the app, and each instance given its
//! hooks ([`OutboundHttp`]).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use upshift_pool::{Multiplexed, Pool};
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::tls::TlsConfigs;
use super::{AppContext, Capability};
use crate::concurrency::RequestSlot;
use crate::engine::HostState;

/// An invalid `allowed_outbound_hosts` entry.
#[derive(Debug, thiserror::Error)]
#[error("invalid allowed_outbound_hosts entry `{entry}`: {reason}")]
pub struct AllowedHostError {
    entry: String,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: any subdomain (not the apex).
    Subdomain(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

/// The set of hosts a component may call.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    rules: Vec<HostRule>,
}

impl AllowedHosts {
    /// Parses manifest entries such as `https://*.example.com`, `http://localhost:*`,
    /// `http://127.0.0.1:8000..8080` or `*://*:*`.
    pub fn parse(entries: &[String]) -> Result<Self, AllowedHostError> {
        let rules = entries
            .iter()
            .map(|entry| {
                parse_rule(entry).map_err(|reason| AllowedHostError {
                    entry: entry.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// Whether a request to `uri` is allowed.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let Some(port) = uri
            .port_u16()
            .or_else(|| default_port(&scheme.to_ascii_lowercase()))
        else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.rules.iter().any(|rule| {
            let scheme_ok = match &rule.scheme {
                SchemePattern::Any => true,
                SchemePattern::Exact(s) => s.eq_ignore_ascii_case(scheme),
            };
            let host_ok = match &rule.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => h.eq_ignore_ascii_case(host),
                HostPattern::Subdomain(suffix) => {
                    let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
                    host.len() > suffix.len()
                        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                }
            };
            let port_ok = match rule.port {
                PortPattern::Any => true,
                PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
            };
            scheme_ok && host_ok && port_ok
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn parse_rule(entry: &str) -> Result<HostRule, &'static str> {
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or("expected `scheme://host[:port]`")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "*" => SchemePattern::Any,
        s @ ("http" | "https") => SchemePattern::Exact(s.to_owned()),
        _ => return Err("scheme must be `http`, `https` or `*`"),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("paths are not allowed");
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("unterminated IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("missing host");
    }
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') {
            return Err("invalid wildcard host");
        }
        HostPattern::Subdomain(format!(".{suffix}"))
    } else if host.contains('*') {
        return Err("wildcards are only allowed as `*` or a leading `*.`");
    } else {
        HostPattern::Exact(host)
    };
    let port = match port {
        Some("*") => PortPattern::Any,
        Some(port) => match port.split_once("..") {
            Some((lo, hi)) => {
                let lo = lo.parse().map_err(|_| "invalid port range")?;
                let hi = hi.parse().map_err(|_| "invalid port range")?;
                if lo > hi {
                    return Err("invalid port range");
                }
                PortPattern::Range(lo, hi)
            }
            None => {
                let port = port.parse().map_err(|_| "invalid port")?;
                PortPattern::Range(port, port)
            }
        },
        None => match &scheme {
            SchemePattern::Exact(s) => {
                let port = default_port(s).ok_or("missing port")?;
                PortPattern::Range(port, port)
            }
            SchemePattern::Any => return Err("a port is required with scheme `*`"),
        },
    };
    Ok(HostRule { scheme, host, port })
}

/// Connects to upstreams, `http` and `https`, with one TLS setting.
type Connector = HttpsConnector<HttpConnector>;

/// A response body from a pooled upstream connection.
pub type UpstreamBody<B> = upshift_pool::Pooled<B>;

/// Upstream connections, kept and reused across requests (and TLS
/// sessions with them), with one pool per TLS setting (in practice one or
/// very few) sharded by worker thread.
pub struct OutboundClients<B = WasiBody> {
    tls: Arc<TlsConfigs>,
    pools: Arc<[Pool<Connector, B>]>,
    /// HTTP/2 connections, per TLS setting like `pools`.
    multiplexed: Arc<[Multiplexed<Connector, B>]>,
}

impl<B> Clone for OutboundClients<B> {
    fn clone(&self) -> Self {
        Self {
            tls: self.tls.clone(),
            pools: self.pools.clone(),
            multiplexed: self.multiplexed.clone(),
        }
    }
}

impl<B> OutboundClients<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Pools checking `https` upstreams as `tls` says, with `shards` shards.
    pub fn new(tls: TlsConfigs, shards: usize) -> Self {
        let connector = |config: &rustls::ClientConfig, http2: bool| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.enforce_http(false);
            let builder = HttpsConnectorBuilder::new()
                .with_tls_config(config.clone())
                .https_or_http();
            // ALPN offers only what the connection will speak.
            if http2 {
                builder.enable_http2().wrap_connector(connector)
            } else {
                builder.enable_http1().wrap_connector(connector)
            }
        };
        let pools = tls
            .all()
            .iter()
            .map(|config| Pool::new(connector(config, false), shards))
            .collect();
        let multiplexed = tls
            .all()
            .iter()
            .map(|config| Multiplexed::new(connector(config, true)))
            .collect();
        Self {
            tls: Arc::new(tls),
            pools,
            multiplexed,
        }
    }

    /// Sends `request` (absolute URI) for `component` as a stream on the
    /// shared HTTP/2 connection to its upstream (see [`Multiplexed`]).
    pub async fn send_http2(
        &self,
        component: &str,
        request: http::Request<B>,
        connect_timeout: Option<Duration>,
    ) -> Result<http::Response<UpstreamBody<B>>, upshift_pool::Error> {
        self.multiplexed[self.tls_of(component, request.uri())]
            .send(request, connect_timeout)
            .await
    }

    /// Sends `request` (absolute URI) for `component` from shard `shard`,
    /// connecting within `connect_timeout` when no kept connection is free.
    pub async fn send(
        &self,
        shard: usize,
        component: &str,
        request: http::Request<B>,
        connect_timeout: Option<Duration>,
    ) -> Result<http::Response<UpstreamBody<B>>, upshift_pool::Error> {
        self.pools[self.tls_of(component, request.uri())]
            .send(shard, request, connect_timeout)
            .await
    }

    /// Sends the protocol upgrade `request` (absolute URI) for
    /// `component` on a connection of its own (see
    /// [`Pool::send_upgrade`]).
    pub async fn send_upgrade(
        &self,
        component: &str,
        request: http::Request<B>,
        connect_timeout: Option<Duration>,
    ) -> Result<http::Response<hyper::body::Incoming>, upshift_pool::Error> {
        self.pools[self.tls_of(component, request.uri())]
            .send_upgrade(request, connect_timeout)
            .await
    }

    /// The TLS setting for `component` sending to `uri`.
    fn tls_of(&self, component: &str, uri: &http::Uri) -> usize {
        if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            let host = uri.host().unwrap_or_default();
            self.tls
                .lookup(component, host, uri.port_u16().unwrap_or(443))
        } else {
            0
        }
    }
}

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

/// Why a pooled client's request failed.
#[derive(Debug)]
pub enum Failure {
    /// The upstream's certificate was refused.
    TlsCertificate(String),
    /// The TLS handshake failed otherwise.
    TlsProtocol(String),
    /// Connecting took too long.
    ConnectTimeout,
    /// Connecting failed with an I/O error.
    Connect(std::io::Error),
    /// The connection was refused.
    Refused,
    /// The exchange broke the protocol or the connection.
    Protocol(String),
}

/// Finds out why `error` happened.
pub fn classify(error: &upshift_pool::Error) -> Failure {
    use std::error::Error as _;
    match error {
        upshift_pool::Error::ConnectTimeout(_) => return Failure::ConnectTimeout,
        upshift_pool::Error::NotAbsolute(_) => return Failure::Protocol(error.to_string()),
        upshift_pool::Error::Connect(_) | upshift_pool::Error::Http(_) => {}
    }
    // I/O errors may wrap others (a TLS failure is wrapped twice), and
    // `io::Error::source` skips the wrapped error itself: look inside.
    let mut outermost_io = None;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                    Failure::TlsCertificate(tls.to_string())
                }
                _ => Failure::TlsProtocol(tls.to_string()),
            };
        }
        source = match cause.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                return Failure::ConnectTimeout;
            }
            Some(io) => {
                outermost_io.get_or_insert(io);
                match io.get_ref() {
                    Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                    None => cause.source(),
                }
            }
            None => cause.source(),
        };
    }
    if let Some(io) = outermost_io {
        return Failure::Connect(std::io::Error::new(io.kind(), io.to_string()));
    }
    match error {
        upshift_pool::Error::Connect(_) => Failure::Refused,
        _ => Failure::Protocol(format!("{error}")),
    }
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

/// `body` as the runtime's response body, failing with
/// `connection-read-timeout` when no data arrives for `timeout`.
pub fn between_bytes_timeout<B>(body: UpstreamBody<B>, timeout: Duration) -> WasiBody
where
    B: Send + 'static,
{
    BetweenBytesTimeout {
        body,
        timeout,
        timer: None,
        armed: false,
    }
    .boxed_unsync()
}

/// A response body failing with `connection-read-timeout` when no data
/// arrives for `timeout` while it is waited for. The timer is armed only
/// when the body has nothing ready (a body that arrives whole never needs
/// one) and disarmed by every frame.
struct BetweenBytesTimeout<B> {
    body: UpstreamBody<B>,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the timer runs for the current wait.
    armed: bool,
}

impl<B> Body for BetweenBytesTimeout<B> {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.armed = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(HttpError::from(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = || tokio::time::Instant::now() + this.timeout;
                let timer = match this.timer.as_mut() {
                    Some(timer) if this.armed => timer,
                    Some(timer) => {
                        timer.as_mut().reset(deadline());
                        timer
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline()))),
                };
                this.armed = true;
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], uri: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AllowedHosts::parse(&entries)
            .unwrap()
            .allows(&uri.parse().unwrap())
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        assert!(allows(
            &["http://127.0.0.1:8080"],
            "http://127.0.0.1:8080/x"
        ));
        assert!(!allows(
            &["http://127.0.0.1:8080"],
            "http://127.0.0.1:8081/x"
        ));
        assert!(!allows(
            &["http://127.0.0.1:8080"],
            "https://127.0.0.1:8080/x"
        ));
        assert!(allows(
            &["https://api.openai.com"],
            "https://api.openai.com/v1"
        ));
        assert!(!allows(
            &["https://api.openai.com"],
            "https://api.openai.com:8443/v1"
        ));
        assert!(!allows(&["https://api.openai.com"], "https://evil.com/"));
    }

    #[test]
    fn wildcards() {
        assert!(allows(&["http://localhost:*"], "http://localhost:1234/"));
        assert!(allows(&["http://localhost:*"], "http://localhost/"));
        assert!(allows(
            &["https://*.example.com"],
            "https://a.b.example.com/"
        ));
        assert!(!allows(&["https://*.example.com"], "https://example.com/"));
        assert!(!allows(
            &["https://*.example.com"],
            "https://badexample.com/"
        ));
        assert!(allows(
            &["https://*.example.com"],
            "https://API.Example.COM/"
        ));
        assert!(allows(&["http://Upstream:8080"], "http://upstream:8080/"));
        assert!(allows(&["http://*:*"], "http://anything:9/"));
        assert!(!allows(&["http://*:*"], "https://anything:9/"));
        assert!(allows(&["*://*:*"], "https://anything:9/"));
        assert!(allows(
            &["http://127.0.0.1:8000..8010"],
            "http://127.0.0.1:8005/"
        ));
        assert!(!allows(
            &["http://127.0.0.1:8000..8010"],
            "http://127.0.0.1:8011/"
        ));
        assert!(allows(&["http://[::1]:80"], "http://[::1]/"));
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(!allows(&[], "http://127.0.0.1/"));
    }

    #[test]
    fn rejects_malformed_entries() {
        for bad in [
            "example.com",
            "ftp://x",
            "*://x",
            "http://a*b.com",
            "http://x:port",
            "http://x/path",
            "http://x:9..1",
        ] {
            assert!(AllowedHosts::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
