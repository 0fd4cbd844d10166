//! Requests to components: refused when a component cannot serve them
//! (WebSocket, gRPC), given Spin's `spin-*` headers, and run within the
//! host's concurrency cap, on the control plane when the native lane
//! keeps the workers.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::HOST;
use http::{HeaderName, HeaderValue, Request, Response, Uri};
use http_body_util::BodyExt as _;
use tokio_util::task::AbortOnDropHandle;
use upshift_core::{GatewayError, forwarding, grpc};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, TrapOrPanicError};

use super::Shared;
use crate::client_body::{ClientBody, ClientBodyError};
use crate::routes::RouteMatch;
use crate::runtime::{ComponentService, Target};

impl Shared {
    pub(super) async fn component(
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
