//! A request's way through the front end: its request id and trace
//! context, the route or the registry it goes to, and its access log
//! entry when telemetry is on.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use http::header::{CONNECTION, HOST};
use http::{HeaderValue, Request, Response, Version};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio_util::task::AbortOnDropHandle;
use upshift_core::access_log::{Entry, LateUsage, Served};
use upshift_core::trace::{TRACEPARENT, TraceContext};
use upshift_core::{GatewayError, grpc, request_id};
use wasmtime_wasi_http::WasiBody;

use super::errors::{ErrorCode, error_response};
use super::request_ids::{new_request_id, random_u64, random_u128};
use super::{Plane, REQUEST_ID, Shared};
use crate::client_body::ClientBody;
use crate::registry::Registry;
use crate::runtime::Target;
use crate::telemetry::{BytesIn, Pending, Recorded};
use crate::watched_body::Watched;

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
    pub(super) async fn handle(
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
