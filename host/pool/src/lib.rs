//! Upstream HTTP/1.1 connections, kept and reused; and HTTP/2 ones,
//! shared ([`Multiplexed`]).
//!
//! A [`Pool`] keeps the idle connections of each upstream (scheme and
//! authority) in shards, one per worker thread, so that workers never wait
//! on each other's lock. The newest idle connection is taken first; a
//! connection goes back once its response body has been read to the end
//! (one dropped earlier is closed); a request that a reused connection could
//! not send, because the upstream closed it meanwhile, is sent again on
//! another. A connection idle longer than [`Pool::IDLE_TIMEOUT`] is not
//! reused: it is closed when the pool next comes across it.
//!
//! hyper-util's pooled client does the same with a lock shared by every
//! thread, a hash of the key on each checkout and return, and a task spawned
//! per request to wait for the connection to be free again; `bench/README.md`
//! gives what that costs on a proxied request.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use tower_service::Service;

mod multiplexed;
pub use multiplexed::Multiplexed;

/// An error a connector or a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request's URI names no scheme and authority to connect to.
    #[error("the request URI `{0}` has no scheme and authority")]
    NotAbsolute(Uri),
    /// Connecting took longer than the timeout.
    #[error("connecting timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The connector failed (DNS, TCP, TLS).
    #[error("connecting failed: {0}")]
    Connect(#[source] BoxError),
    /// The HTTP exchange failed.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The upstream a connection goes to.
type Key = (Scheme, Authority);

/// Idle connections to upstreams, with the connector that opens new ones.
pub struct Pool<C, B> {
    connector: C,
    shards: Box<[Arc<Shard<B>>]>,
}

impl<C, B> Pool<C, B>
where
    C: Service<Uri> + Clone,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    C::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// How long a connection may stay idle before it is closed.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

    /// A pool connecting through `connector`, with `shards` shards (one
    /// per worker thread; at least one).
    pub fn new(connector: C, shards: usize) -> Self {
        Pool {
            connector,
            shards: (0..shards.max(1))
                .map(|_| Arc::new(Shard::new(Self::IDLE_TIMEOUT)))
                .collect(),
        }
    }

    /// Sends `request` (absolute URI) from shard `shard` on an idle
    /// connection to its upstream, or on a new one made within
    /// `connect_timeout`. The request goes in origin form, with a `Host`
    /// header if it has none.
    pub async fn send(
        &self,
        shard: usize,
        mut request: Request<B>,
        connect_timeout: Option<Duration>,
    ) -> Result<Response<Pooled<B>>, Error> {
        let key = to_origin_form(&mut request)?;
        let shard = &self.shards[shard % self.shards.len()];
        loop {
            let (mut sender, reused) = match shard.take(&key) {
                Some(sender) => (sender, true),
                None => (self.connect(&key, connect_timeout).await?, false),
            };
            if let Err(error) = sender.ready().await {
                // A kept connection closed while idle: take another one.
                if reused {
                    continue;
                }
                return Err(error.into());
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let back = GiveBack {
                        shard: shard.clone(),
                        key,
                        sender,
                    };
                    return Ok(response.map(|body| Pooled::new(body, back)));
                }
                Err(mut error) => match error.take_message() {
                    // Not sent: the upstream closed the kept connection first.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(error.into_error().into()),
                },
            }
        }
    }

    /// Sends `request` (absolute URI) on a new connection of its own, for
    /// a protocol upgrade (WebSocket): the connection never goes back to
    /// the pool, and after a `101` the response's upgrade
    /// (`hyper::upgrade::on`) carries it on.
    pub async fn send_upgrade(
        &self,
        mut request: Request<B>,
        connect_timeout: Option<Duration>,
    ) -> Result<Response<Incoming>, Error> {
        let key = to_origin_form(&mut request)?;
        let io = open(&self.connector, &key, connect_timeout).await?;
        let (mut sender, connection) = http1::handshake(io).await?;
        tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        Ok(sender.send_request(request).await?)
    }

    /// A new connection to `key`, its I/O driven by a task of its own.
    async fn connect(&self, key: &Key, timeout: Option<Duration>) -> Result<SendRequest<B>, Error> {
        let io = open(&self.connector, key, timeout).await?;
        let (sender, connection) = http1::handshake(io).await?;
        // Its errors reach the request that was on it.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// A new transport to `key` through `connector`, made within `timeout`.
async fn open<C>(
    connector: &C,
    (scheme, authority): &Key,
    timeout: Option<Duration>,
) -> Result<C::Response, Error>
where
    C: Service<Uri> + Clone,
    C::Error: Into<BoxError>,
{
    let uri = Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query("/")
        .build()
        .expect("a scheme and an authority make a URI");
    let mut connector = connector.clone();
    let connecting = async move {
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| Error::Connect(e.into()))?;
        connector
            .call(uri)
            .await
            .map_err(|e| Error::Connect(e.into()))
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, connecting)
            .await
            .map_err(|_| Error::ConnectTimeout(limit))?,
        None => connecting.await,
    }
}

/// Puts `request` in origin form with a `Host` header; its upstream.
fn to_origin_form<B>(request: &mut Request<B>) -> Result<Key, Error> {
    let uri = request.uri();
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(Error::NotAbsolute(uri.clone()));
    };
    let key = (scheme.clone(), authority.clone());
    let origin = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(origin);
    if !request.headers().contains_key(HOST) {
        let host = HeaderValue::from_str(authority_for_host(&key))
            .expect("an authority is a valid header value");
        request.headers_mut().insert(HOST, host);
    }
    Ok(key)
}

/// The authority as `Host` gives it: without the scheme's default port.
fn authority_for_host((scheme, authority): &Key) -> &str {
    let default = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    match authority.port_u16() {
        Some(port) if Some(port) == default => authority.host(),
        _ => authority.as_str(),
    }
}

/// The idle connections of one worker.
struct Shard<B> {
    idle: Mutex<HashMap<Key, VecDeque<Idle<B>>>>,
    idle_timeout: Duration,
}

/// An idle connection and since when it is.
struct Idle<B> {
    sender: SendRequest<B>,
    since: Instant,
}

impl<B> Shard<B> {
    /// Most idle connections kept per upstream and shard; more are closed.
    const MAX_IDLE: usize = 256;

    fn new(idle_timeout: Duration) -> Self {
        Shard {
            idle: Mutex::default(),
            idle_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, VecDeque<Idle<B>>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest idle connection to `key` that is still open.
    fn take(&self, key: &Key) -> Option<SendRequest<B>> {
        let mut idle = self.lock();
        let queue = idle.get_mut(key)?;
        while let Some(kept) = queue.pop_back() {
            if !kept.sender.is_closed() && kept.since.elapsed() < self.idle_timeout {
                return Some(kept.sender);
            }
        }
        None
    }

    /// Keeps `sender` for the next request to `key`, dropping the oldest
    /// connections once they are closed or idle too long.
    fn put(&self, key: Key, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let queue = idle.entry(key).or_default();
        while queue.front().is_some_and(|oldest| {
            oldest.sender.is_closed() || oldest.since.elapsed() >= self.idle_timeout
        }) {
            queue.pop_front();
        }
        if queue.len() < Self::MAX_IDLE {
            queue.push_back(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// A connection to give back once its response is read.
struct GiveBack<B> {
    shard: Arc<Shard<B>>,
    key: Key,
    sender: SendRequest<B>,
}

/// A response body from a pooled connection: the connection goes back to
/// the pool when the body ends, and is closed if the body is dropped first.
pub struct Pooled<B> {
    body: Incoming,
    back: Option<GiveBack<B>>,
}

impl<B> Pooled<B> {
    fn new(body: Incoming, back: GiveBack<B>) -> Self {
        let mut pooled = Pooled {
            body,
            back: Some(back),
        };
        if pooled.body.is_end_stream() {
            pooled.give_back();
        }
        pooled
    }

    /// The body of a stream on a shared connection: nothing to give back.
    fn shared(body: Incoming) -> Self {
        Pooled { body, back: None }
    }

    fn give_back(&mut self) {
        if let Some(GiveBack { shard, key, sender }) = self.back.take() {
            shard.put(key, sender);
        }
    }
}

impl<B> std::fmt::Debug for Pooled<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("body", &self.body)
            .field("kept", &self.back.is_some())
            .finish()
    }
}

impl<B> Body for Pooled<B> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.give_back(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            _ => {}
        }
        polled
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

    fn origin(uri: &str) -> (Result<Key, Error>, Request<()>) {
        let mut request = Request::get(uri).body(()).unwrap();
        (to_origin_form(&mut request), request)
    }

    #[test]
    fn requests_go_in_origin_form_with_host() {
        let (key, request) = origin("http://127.0.0.1:8080/a/b?c=d");
        let (scheme, authority) = key.unwrap();
        assert_eq!(
            (scheme.as_str(), authority.as_str()),
            ("http", "127.0.0.1:8080")
        );
        assert_eq!(request.uri(), "/a/b?c=d");
        assert_eq!(request.headers()[HOST], "127.0.0.1:8080");
        let (_, request) = origin("https://example.com:443");
        assert_eq!(request.uri(), "/");
        assert_eq!(request.headers()[HOST], "example.com");
        let (_, request) = origin("http://example.com:80/x");
        assert_eq!(request.headers()[HOST], "example.com");
        let (_, request) = origin("http://example.com:443/x");
        assert_eq!(request.headers()[HOST], "example.com:443");
        assert!(matches!(origin("/x").0, Err(Error::NotAbsolute(_))));
    }
}
