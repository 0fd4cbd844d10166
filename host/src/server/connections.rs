//! One worker's connections: accepted (over TLS when the listener has
//! certificates) within [`super::Limits::max_connections`], served with HTTP/1.1
//! or HTTP/2, and drained when the host stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::header::RETRY_AFTER;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use upshift_core::GatewayError;

use super::errors::error_response;
use super::request_ids::{self, new_request_id};
use super::{Plane, Shared};

/// How long a connection over the limit may take to be told so.
const OVERLOAD_DEADLINE: Duration = Duration::from_secs(2);

/// Accepts and serves connections on one worker until `stopped`, then
/// drains them.
pub(super) async fn accept(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    worker: usize,
    plane: Plane,
    mut stopped: watch::Receiver<bool>,
) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(listener))
    {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(worker, "cannot accept: {error}");
            return;
        }
    };
    request_ids::seed_this_worker();
    let limits = shared.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accept failed: {error}");
                    continue;
                }
            },
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        // Small, intermittent writes (e.g. SSE) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let Some(open) = Open::claim(&shared) else {
            tokio::spawn(overloaded(stream));
            continue;
        };
        let service = {
            let shared = shared.clone();
            hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(shared.handle(request, peer, worker, plane).await) }
            })
        };
        let (watcher, builder) = (graceful.watcher(), builder.clone());
        // The admin plane is for the local host: no TLS.
        let tls = shared.tls.clone().filter(|_| plane == Plane::Public);
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
                Some(acceptor) => {
                    // The handshake has the request head's deadline.
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            let connection = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                        Ok(Err(error)) => Err(format!("TLS handshake failed: {error}").into()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, "connection closed with error: {error}");
            }
            drop(open);
        });
    }
    drop(listener);
    // Relayed WebSockets are closed (1001) at once: their clients reconnect
    // elsewhere while the requests in flight finish.
    let drained = async { tokio::join!(graceful.shutdown(), shared.websockets.drain()) };
    if tokio::time::timeout(limits.drain_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            worker,
            "drain deadline passed: closing the connections left"
        );
    }
}

/// One connection counted against [`super::Limits::max_connections`].
struct Open(Arc<Shared>);

impl Open {
    fn claim(shared: &Arc<Shared>) -> Option<Open> {
        let before = shared.open.fetch_add(1, Ordering::AcqRel);
        if before >= shared.limits.max_connections {
            shared.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Open(shared.clone()))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers the first request of a connection over the limit with `503`
/// and `retry-after`, and closes it.
async fn overloaded(stream: TcpStream) {
    let service = hyper::service::service_fn(|_request| async {
        let error = GatewayError::Refused {
            status: 503,
            code: "overloaded".into(),
            message: "the gateway has all the connections it takes; retry shortly".into(),
            headers: vec![(RETRY_AFTER.as_str().to_owned(), "1".to_owned())],
        };
        Ok::<_, Infallible>(error_response(&error, &new_request_id(), false))
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(OVERLOAD_DEADLINE)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(OVERLOAD_DEADLINE, connection).await;
}
