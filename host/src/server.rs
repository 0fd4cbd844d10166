//! The HTTP front end: accepts connections (HTTP/1.1 and HTTP/2), routes each
//! request to a trigger component, adds Spin's `spin-*` headers and turns
//! component failures into JSON errors without affecting other requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::signal::unix::SignalKind;
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, TrapOrPanicError};

use crate::concurrency::RunPermits;
use crate::routes::RouteMatch;
use crate::runtime::{ComponentService, Runtime};

/// Response body type (the same as the components' bodies).
type Body = WasiBody;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Serves `runtime` on `listener` until the process is interrupted.
///
/// At most `max_concurrency` requests run guest code at once; others wait
/// (see [`RunPermits`]).
pub async fn serve(
    runtime: Runtime,
    listener: TcpListener,
    max_concurrency: usize,
) -> anyhow::Result<()> {
    let local_addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        runtime,
        permits: RunPermits::new(max_concurrency),
        local_addr,
    });
    tracing::info!("listening on http://{local_addr}");
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accept failed: {error}");
                    continue;
                }
            },
            () = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
        };
        // Small, intermittent writes (e.g. SSE) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(shared.handle(request, peer).await) }
            });
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "connection closed with error: {error}");
            }
        });
    }
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

struct Shared {
    runtime: Runtime,
    permits: RunPermits,
    local_addr: SocketAddr,
}

impl Shared {
    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let path = request.uri().path().to_owned();
        let Some(matched) = self.runtime.router.route(&path) else {
            return error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no route matches {path}"),
                &request_id,
            );
        };
        let component: &Arc<ComponentService> = matched.target;
        let method = request.method().clone();
        let request = match self.component_request(request, &matched, peer, &request_id) {
            Ok(request) => request,
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "invalid Host header",
                    &request_id,
                );
            }
        };

        // Dropped when the response head is ready, or with this future when
        // the client goes away first.
        let permit = self.permits.start().await;
        let result = component
            .handler
            .handle((request_id.as_str().into(), permit.slot()), request)
            .await;
        drop(permit);

        let error = match result {
            Ok(response) => return response,
            Err(error) => error,
        };
        let message = if error.is::<ExpirationError>() {
            "component did not respond in time".to_owned()
        } else if error.is::<TrapOrPanicError>() {
            "component trapped (out of memory, execution time limit or a bug)".to_owned()
        } else {
            error.root_cause().to_string()
        };
        tracing::error!(
            %request_id,
            component = %component.name,
            %method,
            %path,
            "component failed: {message}"
        );
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "component_failed",
            &message,
            &request_id,
        )
    }

    /// The request as the component sees it: an absolute URI and Spin's
    /// `spin-*` headers (overwriting any the client sent). Fails on a `Host`
    /// that does not form a valid URI.
    fn component_request(
        &self,
        mut request: Request<Incoming>,
        matched: &RouteMatch<'_, Arc<ComponentService>>,
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
        Ok(request.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync()))
    }
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

/// A JSON error response: `{"error":{"code","message","request_id"}}`.
fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<Body> {
    let body = serde_json::json!({
        "error": { "code": code, "message": message, "request_id": request_id }
    });
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
