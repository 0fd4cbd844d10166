//! Upstream HTTP/2 connections: one per upstream, every request to it a
//! stream of its own on that connection (gRPC servers and other `h2c://`
//! and `h2://` targets).
//!
//! The first request to an upstream connects while the others wait for
//! that connection, so a burst opens one connection, not one each. A
//! connection the upstream closed (or a `GOAWAY`) is replaced by the next
//! request. Requests go in absolute form: HTTP/2 sends the scheme and
//! authority as pseudo-headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, Uri};
use hyper::body::Body;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

use crate::{BoxError, Error, Key, Pooled, open};

/// The one connection to an upstream, made by whichever request needs it
/// first.
type Slot<B> = Arc<tokio::sync::Mutex<Option<SendRequest<B>>>>;

/// Shared HTTP/2 connections to upstreams, with the connector that opens
/// new ones (its TLS offers only `h2` by ALPN).
pub struct Multiplexed<C, B> {
    connector: C,
    connections: Mutex<HashMap<Key, Slot<B>>>,
}

impl<C, B> Multiplexed<C, B>
where
    C: Service<Uri> + Clone,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    C::Error: Into<BoxError>,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// How often an idle connection is pinged, and how long a ping may
    /// go unanswered before the connection counts as broken.
    pub const KEEP_ALIVE: Duration = Duration::from_secs(20);

    /// Connections made through `connector`.
    pub fn new(connector: C) -> Self {
        Multiplexed {
            connector,
            connections: Mutex::default(),
        }
    }

    /// Sends `request` (absolute URI) as a new stream on the connection to
    /// its upstream, connecting within `connect_timeout` when there is none.
    pub async fn send(
        &self,
        mut request: Request<B>,
        connect_timeout: Option<Duration>,
    ) -> Result<Response<Pooled<B>>, Error> {
        let uri = request.uri();
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(Error::NotAbsolute(uri.clone()));
        };
        let key = (scheme.clone(), authority.clone());
        // `:authority` says it.
        request.headers_mut().remove(http::header::HOST);
        let mut sender = self.sender(&key, connect_timeout).await?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        Ok(response.map(Pooled::shared))
    }

    /// The open connection to `key`, or a new one.
    async fn sender(
        &self,
        key: &Key,
        connect_timeout: Option<Duration>,
    ) -> Result<SendRequest<B>, Error> {
        let slot = self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let mut connection = slot.lock().await;
        if let Some(sender) = connection.as_ref().filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        let io = open(&self.connector, key, connect_timeout).await?;
        let (sender, driver) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Self::KEEP_ALIVE)
            .keep_alive_timeout(Self::KEEP_ALIVE)
            .handshake(io)
            .await?;
        // Its errors reach the requests that were on it.
        tokio::spawn(async move {
            let _ = driver.await;
        });
        *connection = Some(sender.clone());
        Ok(sender)
    }
}
