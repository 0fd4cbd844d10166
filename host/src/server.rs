//! The HTTP front end: accepts connections (HTTP/1.1 and HTTP/2), routes each
//! request to a trigger component, adds Spin's `spin-*` headers and turns
//! component failures into JSON errors without affecting other requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::handler::ExpirationError;

use crate::runtime::{ComponentService, Runtime};

/// Response body type.
type Body = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Serves `runtime` on `listener` until the process is interrupted.
///
/// At most `max_concurrency` requests run inside components at once; others wait.
pub async fn serve(
    runtime: Runtime,
    listener: TcpListener,
    max_concurrency: usize,
) -> anyhow::Result<()> {
    let local_addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        runtime,
        permits: Semaphore::new(max_concurrency.max(1)),
        local_addr,
    });
    tracing::info!("listening on http://{local_addr}");
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accept failed: {error}");
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => {
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

struct Shared {
    runtime: Runtime,
    permits: Semaphore,
    local_addr: SocketAddr,
}

impl Shared {
    async fn handle(&self, mut request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
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

        let authority = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| self.local_addr.to_string());
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let full_url = format!("http://{authority}{path_and_query}");
        match full_url.parse::<Uri>() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "invalid Host header",
                    &request_id,
                );
            }
        }
        let route = matched.route;
        let spin_headers = [
            ("spin-full-url", full_url.clone()),
            ("spin-path-info", matched.path_info.clone()),
            ("spin-matched-route", route.raw().to_owned()),
            ("spin-raw-component-route", route.raw().to_owned()),
            ("spin-component-route", route.base().to_owned()),
            ("spin-base-path", "/".to_owned()),
            ("spin-client-addr", peer.to_string()),
            ("x-request-id", request_id.clone()),
        ];
        for (name, value) in spin_headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                request
                    .headers_mut()
                    .insert(HeaderName::from_static(name), value);
            }
        }

        let method = request.method().clone();
        let request =
            request.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
        let result = {
            let _permit = self
                .permits
                .acquire()
                .await
                .expect("semaphore is never closed");
            component.handler.handle((), request).await
        };
        match result {
            Ok(response) => {
                tracing::debug!(%request_id, component = %component.name, %method, %path, status = response.status().as_u16(), "handled");
                response
            }
            Err(error) => {
                let message = if error.is::<ExpirationError>() {
                    "component did not respond in time".to_owned()
                } else {
                    format!("{error:#}")
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
        }
    }
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
