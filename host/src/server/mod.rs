//! The HTTP front end: worker threads, each with its own single-threaded
//! runtime and its own listening socket on the same address
//! (`SO_REUSEPORT`: the kernel spreads connections over them), serving
//! HTTP/1.1 and HTTP/2. A request goes to what its trigger route names: a
//! component (with Spin's `spin-*` headers), or an Upshift gateway on the
//! native lane. Failures become JSON errors without affecting other
//! requests. The admin API (the trigger routes under `/admin`, and the
//! component registry) has a listener of its own, on the loopback
//! interface by default, and is not on the public one unless asked for.
//!
//! The listener holds up against hostile clients ([`Limits`]): a request
//! head must arrive within a deadline and stay within a size and a count
//! of headers, connections beyond a limit get a `503` with `retry-after`,
//! and an HTTP/1.1 request needs exactly one `Host`. With certificates
//! ([`crate::capabilities::tls::server`]) every connection is TLS, HTTP/2 or HTTP/1.1 by
//! ALPN; without, HTTP/2 is spoken in clear to clients that start with it. On SIGTERM (or
//! Ctrl-C) the workers stop accepting, let the requests in flight finish
//! up to a deadline, close idle connections, and the process exits 0 once
//! counters are written; a second signal exits at once.
//!
//! [`connections`] accepts a worker's connections and drains them,
//! [`requests`] takes each request where its route says, [`components`]
//! runs those that go to a component, [`errors`] makes the answers to
//! failures and [`request_ids`] numbers the requests.

mod components;
mod connections;
mod errors;
mod request_ids;
mod requests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use http::HeaderName;
use tokio::net::TcpSocket;
use tokio::signal::unix::SignalKind;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::concurrency::RunPermits;
use crate::native::{WebSocketLimits, WebSockets};
use crate::runtime::Runtime;

use self::connections::accept;

/// The header that carries a request's id, both ways.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Connections a worker's socket queues before accepting them.
const BACKLOG: u32 = 1024;

/// How the front end runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Requests running guest code of components at once.
    pub max_concurrency: usize,
    /// What a client may ask of the listener.
    pub limits: Limits,
    /// TLS settings: every connection is TLS when given.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What a client may ask of the listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a request head may take to arrive (slowloris), counted from
    /// when the connection waits for one: also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Size of a request head (HTTP/1.1), or of its header list (HTTP/2).
    pub max_header_bytes: usize,
    /// Headers of an HTTP/1.1 request.
    pub max_headers: usize,
    /// Connections open at once; more get a `503`.
    pub max_connections: usize,
    /// Concurrent streams of an HTTP/2 connection.
    pub max_streams: u32,
    /// Time a request body may go without data before the request fails
    /// with a `408`.
    pub body_read_timeout: Duration,
    /// Time in-flight requests get to finish after SIGTERM.
    pub drain_timeout: Duration,
    /// Limits of relayed WebSocket connections.
    pub websocket: WebSocketLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 << 10,
            max_headers: 100,
            max_connections: 10_000,
            max_streams: 256,
            body_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            websocket: WebSocketLimits::default(),
        }
    }
}

/// Binds `workers` sockets to `addr` (port 0: a free port, the same for
/// all), for the workers to accept on.
pub fn bind(addr: SocketAddr, workers: usize) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let mut bound = addr;
    let mut listeners = Vec::with_capacity(workers.max(1));
    for _ in 0..workers.max(1) {
        let socket = if bound.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.set_nodelay(true)?;
        socket.bind(bound)?;
        let listener = socket.listen(BACKLOG)?;
        bound = listener.local_addr()?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// Serves `runtime` on `listeners` (one worker thread each) until the
/// process is interrupted. The workers are the data plane: spawned from
/// the calling thread (the main one), they keep its priority, above the
/// control plane's (see [`crate::priority`]). With a native lane, component
/// requests (the admin API) run on the runtime this is called on.
pub async fn serve(
    runtime: Runtime,
    listeners: Vec<std::net::TcpListener>,
    admin: std::net::TcpListener,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let local_addr = listeners[0].local_addr()?;
    let admin_addr = admin.local_addr()?;
    let shared = Arc::new(Shared {
        // The runtime this runs on: the control plane's.
        control: runtime
            .offload_components
            .then(tokio::runtime::Handle::current),
        runtime,
        permits: RunPermits::new(options.max_concurrency),
        local_addr,
        limits: options.limits,
        open: AtomicUsize::new(0),
        tls: options.tls.map(TlsAcceptor::from),
        websockets: WebSockets::new(options.limits.websocket),
    });
    tokio::spawn(crate::native::watch_websocket_versions(
        shared.websockets.clone(),
        shared.runtime.kv.clone(),
    ));
    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::with_capacity(listeners.len() + 1);
    let planes = listeners
        .into_iter()
        .map(|listener| (Plane::Public, listener))
        .chain([(Plane::Admin, admin)]);
    for (worker, (plane, listener)) in planes.enumerate() {
        let (shared, stopped) = (shared.clone(), stopped.clone());
        let name = match plane {
            Plane::Public => format!("worker-{worker}"),
            Plane::Admin => "admin".to_owned(),
        };
        workers.push(std::thread::Builder::new().name(name).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a worker runtime");
            runtime.block_on(accept(shared, listener, worker, plane, stopped));
        })?);
    }
    let scheme = if shared.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        workers = options.workers.max(1),
        "listening on {scheme}://{local_addr}"
    );
    tracing::info!(
        public_too = shared.runtime.admin_public,
        "admin API on http://{admin_addr}"
    );
    shutdown_signal().await;
    tracing::info!(
        deadline_s = options.limits.drain_timeout.as_secs(),
        "draining: no new connections, requests in flight finish"
    );
    stop.send_replace(true);
    let drained = tokio::task::spawn_blocking(move || {
        for worker in workers {
            let _ = worker.join();
        }
    });
    tokio::select! {
        _ = drained => {}
        () = shutdown_signal() => {
            tracing::warn!("second signal: exiting without waiting");
            std::process::exit(1);
        }
    }
    if let Err(error) = shared.runtime.kv.flush() {
        tracing::error!("counters not written at exit: {error}");
    }
    tracing::info!("drained, exiting");
    Ok(())
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plane {
    /// The public listener: every trigger route but the admin ones (unless
    /// they are asked for there too).
    Public,
    /// The admin listener: the trigger routes under `/admin`, and the
    /// component registry.
    Admin,
}

/// What every worker serves with: the runtime, the limits, the counts.
struct Shared {
    runtime: Runtime,
    /// Where component requests run when not on the workers.
    control: Option<tokio::runtime::Handle>,
    permits: RunPermits,
    local_addr: SocketAddr,
    limits: Limits,
    /// Connections open now.
    open: AtomicUsize,
    tls: Option<TlsAcceptor>,
    /// Relayed WebSocket connections.
    websockets: WebSockets,
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(terminate) => {
                terminate.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}
