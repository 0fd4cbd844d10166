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

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Request, Response, Uri, Version};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::SignalKind;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::AbortOnDropHandle;
use upshift_core::access_log::{Entry, LateUsage, Served};
use upshift_core::trace::{TRACEPARENT, TraceContext};
use upshift_core::{GatewayError, forwarding, grpc, request_id};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, TrapOrPanicError};

use crate::client_body::{ClientBody, ClientBodyError};
use crate::concurrency::RunPermits;
use crate::native::{WebSocketLimits, WebSockets};
use crate::registry::Registry;
use crate::routes::RouteMatch;
use crate::runtime::{ComponentService, Runtime, Target};
use crate::telemetry::{BytesIn, Pending, Recorded};
use crate::watched_body::Watched;

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

/// How long a connection over the limit may take to be told so.
const OVERLOAD_DEADLINE: Duration = Duration::from_secs(2);

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

/// Accepts and serves connections on one worker until `stopped`, then
/// drains them.
async fn accept(
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
    REQUEST_IDS.with(|ids| ids.set(seed()));
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

/// One connection counted against [`Limits::max_connections`].
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

thread_local! {
    /// State of this worker's request-id generator.
    static REQUEST_IDS: Cell<u64> = const { Cell::new(0) };
}

/// A seed no two workers share.
fn seed() -> u64 {
    let uuid = uuid::Uuid::new_v4().as_u64_pair();
    uuid.0 ^ uuid.1
}

/// A fresh request id: a UUID v4 from this worker's SplitMix64 sequence
/// (ids must be unique, not unguessable, and a system call each costs more
/// than the rest of a request's id handling).
fn new_request_id() -> String {
    request_id::from_random(random_u64(), random_u64())
}

/// The next number of this worker's SplitMix64 sequence.
fn random_u64() -> u64 {
    REQUEST_IDS.with(|state| {
        let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// 128 bits of this worker's sequence: a trace id.
fn random_u128() -> u128 {
    (u128::from(random_u64()) << 64) | u128::from(random_u64())
}

/// The error code of an answer the host made for a failure, for the
/// access log.
#[derive(Debug, Clone)]
struct ErrorCode(String);

/// The host the client asked for: the URI's authority (HTTP/2), else the
/// `Host` header.
fn requested_host<B>(request: &Request<B>) -> &str {
    request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| request.headers().get(HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or_default()
}

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

impl Shared {
    /// The request with its body cut off after the body read timeout,
    /// its bytes counted.
    fn client_body(&self, request: Request<Incoming>) -> Request<ClientBody> {
        let read = request
            .extensions()
            .get::<BytesIn>()
            .cloned()
            .unwrap_or_default();
        request.map(|body| ClientBody::new(body, self.limits.body_read_timeout, read))
    }

    /// Answers `request`: its request id and its span of the trace are
    /// settled, and its line is logged when the answer ends.
    async fn handle(
        &self,
        mut request: Request<Incoming>,
        peer: SocketAddr,
        worker: usize,
        plane: Plane,
    ) -> Response<WasiBody> {
        let arrived = Instant::now();
        let request_id = match request.headers().get(&REQUEST_ID) {
            Some(id) if request_id::is_acceptable(id.as_bytes()) => {
                id.to_str().unwrap_or_default().to_owned()
            }
            _ => new_request_id(),
        };
        let traceparent = request
            .headers()
            .get(TRACEPARENT)
            .map(HeaderValue::as_bytes);
        let trace = TraceContext::continue_or_start(traceparent, random_u128(), random_u64());
        if let Ok(value) = HeaderValue::try_from(trace.to_string()) {
            request.headers_mut().insert(TRACEPARENT, value);
        }
        // Telemetry is of traffic: the admin listener's requests leave
        // their trace in the admin API's audit.
        let telemetry = self.runtime.telemetry.as_ref();
        let Some(telemetry) = telemetry.filter(|_| plane == Plane::Public) else {
            let mut served = Served::unread();
            return self
                .answer(request, (peer, worker, plane), &request_id, &mut served)
                .await;
        };
        let arrived_at = SystemTime::now();
        let bytes_in = BytesIn::default();
        request.extensions_mut().insert(bytes_in.clone());
        let mut entry = Entry {
            request_id: request_id.clone(),
            trace_id: trace.trace_hex(),
            client_ip: Some(peer.ip().to_string()),
            method: request.method().to_string(),
            host: requested_host(&request).to_owned(),
            path: request.uri().path().to_owned(),
            ..Entry::default()
        };
        let response = self
            .answer(
                request,
                (peer, worker, plane),
                &request_id,
                &mut entry.served,
            )
            .await;
        if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
            entry.served.error = Some(code.clone());
        }
        entry.served.answered(response.headers());
        entry.status = response.status().as_u16();
        let pending = Pending {
            telemetry: telemetry.clone(),
            entry,
            trace,
            arrived: (arrived, arrived_at),
            bytes_in,
            late: response.extensions().get::<LateUsage>().cloned(),
        };
        response.map(|body| Watched::new(body, Recorded::new(pending)).boxed_unsync())
    }

    /// The answer to `request`, with what was done for it in `served`.
    async fn answer(
        &self,
        request: Request<Incoming>,
        (peer, worker, plane): (SocketAddr, usize, Plane),
        request_id: &str,
        served: &mut Served,
    ) -> Response<WasiBody> {
        let request_id = request_id.to_owned();
        let grpc = grpc::is_grpc(request.headers());
        if let Some(problem) = malformed(&request) {
            let mut response =
                error_response(&GatewayError::BadRequest(problem.into()), &request_id, grpc);
            // The framing of what follows on the connection is in doubt.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
        let path = request.uri().path();
        let (router, admin) = match plane {
            Plane::Public => (&self.runtime.router, self.runtime.admin_public),
            Plane::Admin => (&self.runtime.admin_router, true),
        };
        if admin
            && let Some(registry) = &self.runtime.registry
            && Registry::owns(path)
        {
            let registry = registry.clone();
            let result = match &self.control {
                Some(control) => AbortOnDropHandle::new(control.spawn(registry.handle(request)))
                    .await
                    .unwrap_or_else(|failed| {
                        Err(GatewayError::Refused {
                            status: 500,
                            code: "internal".into(),
                            message: format!("the component registry failed: {failed}"),
                            headers: Vec::new(),
                        })
                    }),
                None => registry.handle(request).await,
            };
            return result.unwrap_or_else(|error| error_response(&error, &request_id, grpc));
        }
        let Some(matched) = router.route(path) else {
            let error = GatewayError::RouteNotFound {
                method: request.method().to_string(),
                path: path.to_owned(),
                unconfigured: false,
            };
            return error_response(&error, &request_id, grpc);
        };
        match matched.target {
            Target::Native(lane) => {
                let request = self.client_body(request);
                let websockets = &self.websockets;
                match crate::native::serve(
                    lane,
                    worker,
                    request,
                    (peer, &request_id),
                    websockets,
                    served,
                )
                .await
                {
                    Ok(response) => response,
                    Err(error) => error_response(&error, &request_id, grpc),
                }
            }
            Target::Component(component) => self
                .component(
                    component,
                    &matched,
                    self.client_body(request),
                    peer,
                    &request_id,
                )
                .await
                .unwrap_or_else(|error| error_response(&error, &request_id, grpc)),
            Target::Composed(lane) => {
                let (service, side) = lane.service();
                let run = lane.canary.run();
                let started = Instant::now();
                let result = self
                    .component(
                        &service,
                        &matched,
                        self.client_body(request),
                        peer,
                        &request_id,
                    )
                    .await;
                if let Some(run) = run {
                    let (status, failure) = match &result {
                        Ok(response) => (response.status().as_u16(), None),
                        Err(error @ GatewayError::ComponentFailed { detail, .. }) => {
                            (error.status().as_u16(), Some(detail.clone()))
                        }
                        Err(error) => (error.status().as_u16(), None),
                    };
                    let latency_ms =
                        u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
                    lane.count(&run, side, status, latency_ms, failure).await;
                }
                result.unwrap_or_else(|error| error_response(&error, &request_id, grpc))
            }
        }
    }

    async fn component(
        &self,
        component: &Arc<ComponentService>,
        matched: &RouteMatch<'_, Target>,
        request: Request<ClientBody>,
        peer: SocketAddr,
        request_id: &str,
    ) -> Result<Response<WasiBody>, GatewayError> {
        if forwarding::is_websocket(request.headers()) {
            return Err(GatewayError::UpgradeNotSupported(
                "WebSocket is proxied on the native lane (`upshift up --lane native`); \
                 wasi:http, which components serve on, has no protocol upgrades"
                    .into(),
            ));
        }
        if grpc::is_grpc(request.headers()) {
            return Err(GatewayError::ProtocolNotSupported(
                "gRPC is proxied on the native lane (`upshift up --lane native`); \
                 components send their upstream requests as HTTP/1.1, and gRPC needs HTTP/2"
                    .into(),
            ));
        }
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let request = self
            .component_request(request, matched, peer, request_id)
            .map_err(|_| GatewayError::BadRequest("invalid Host header".into()))?;

        let run = {
            let (component, permits) = (component.clone(), self.permits.clone());
            let request_id: Arc<str> = request_id.into();
            async move {
                // Dropped when the response head is ready, or with this
                // future when the client goes away first.
                let permit = permits.start().await;
                let result = component
                    .handler
                    .handle((request_id, permit.slot()), request)
                    .await;
                drop(permit);
                result
            }
        };
        let result = match &self.control {
            // Aborted with this future when the client goes away, as on a worker.
            Some(control) => AbortOnDropHandle::new(control.spawn(run))
                .await
                .unwrap_or_else(|failed| Err(wasmtime::Error::msg(failed.to_string()))),
            None => run.await,
        };

        let error = match result {
            Ok(response) => return Ok(response),
            Err(error) => error,
        };
        let detail = if error.is::<ExpirationError>() {
            "it did not respond in time".to_owned()
        } else if error.is::<TrapOrPanicError>() {
            "it trapped (out of memory, execution time limit or a bug)".to_owned()
        } else {
            error.root_cause().to_string()
        };
        tracing::error!(
            %request_id,
            component = %component.name,
            %method,
            %path,
            "component failed: {detail}"
        );
        Err(GatewayError::ComponentFailed {
            component: component.name.to_string(),
            detail,
        })
    }

    /// The request as the component sees it: an absolute URI and Spin's
    /// `spin-*` headers (overwriting any the client sent). Fails on a `Host`
    /// that does not form a valid URI.
    fn component_request(
        &self,
        mut request: Request<ClientBody>,
        matched: &RouteMatch<'_, Target>,
        peer: SocketAddr,
        request_id: &str,
    ) -> Result<Request<WasiBody>, http::uri::InvalidUri> {
        // HTTP/2 carries the authority in the URI, HTTP/1.1 in `Host`.
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                request
                    .headers()
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| self.local_addr.to_string());
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let full_url = format!("http://{authority}{path_and_query}");
        *request.uri_mut() = full_url.parse::<Uri>()?;
        drop_connection_listed(request.headers_mut());
        let route = matched.route;
        let headers = [
            ("spin-full-url", full_url.as_str()),
            ("spin-path-info", matched.path_info.as_str()),
            ("spin-matched-route", route.raw()),
            ("spin-raw-component-route", route.raw()),
            ("spin-component-route", route.base()),
            ("spin-base-path", "/"),
            ("spin-client-addr", &peer.to_string()),
            ("x-request-id", request_id),
        ];
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                request
                    .headers_mut()
                    .insert(HeaderName::from_static(name), value);
            }
        }
        Ok(request.map(|body| {
            body.map_err(|error| match error {
                ClientBodyError::Read(error) => wasmtime_wasi_http::Error::from(error),
                ClientBodyError::Stalled(_) => wasmtime_wasi_http::Error::ConnectionReadTimeout,
            })
            .boxed_unsync()
        }))
    }
}

/// What makes a request unfit to be served, if anything: RFC 9112 wants
/// exactly one `Host` in HTTP/1.1 (§3.2). (hyper's parser refuses the other
/// malformed heads: two lengths, folded lines, a final encoding other than
/// chunked; and frames a request with both `Content-Length` and
/// `Transfer-Encoding` by the latter alone, dropping the length, §6.3.)
fn malformed<B>(request: &Request<B>) -> Option<&'static str> {
    (request.version() == Version::HTTP_11 && request.headers().get_all(HOST).iter().count() != 1)
        .then_some("an HTTP/1.1 request needs exactly one Host header")
}

/// Removes the headers a `Connection` header names (RFC 9110 §7.6.1): they
/// describe the client's hop only, and the runtime drops `Connection` itself
/// before a component could see the list.
fn drop_connection_listed(headers: &mut http::HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    headers.remove(http::header::CONNECTION);
}

/// The error response for `error`: JSON, or a trailers-only gRPC answer
/// to a gRPC call.
fn error_response(error: &GatewayError, request_id: &str, grpc: bool) -> Response<WasiBody> {
    let code = ErrorCode(error.code().to_owned());
    if grpc {
        let mut response =
            Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
        *response.headers_mut() = error.grpc_headers(request_id);
        response.extensions_mut().insert(code);
        return response;
    }
    let mut response = Response::new(
        Full::new(Bytes::from(error.body(request_id)))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = error.status();
    response.extensions_mut().insert(code);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, value);
    }
    for (name, value) in error.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    response
}
