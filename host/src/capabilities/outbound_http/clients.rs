//! Upstream connections: pools of kept HTTP/1.1 connections and shared
//! HTTP/2 ones, one per TLS setting, and why a request on them failed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Body;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use upshift_pool::{Multiplexed, Pool};
use wasmtime_wasi_http::WasiBody;

use crate::capabilities::tls::TlsConfigs;

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
