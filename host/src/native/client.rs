//! The native lane's upstream client: pooled connections (a shard per
//! worker) with the TLS settings the component lane uses, sending the
//! client's body as it streams in, or a held copy.

use std::time::Duration;

use super::body::ForwardBody;
use upshift_core::GatewayError;

use crate::capabilities::outbound_http::{Failure, OutboundClients, UpstreamBody, classify};
use crate::capabilities::tls::TlsConfigs;
use crate::client_body::ClientBodyError;

/// Pooled clients for the native lane.
pub struct UpstreamClient {
    clients: OutboundClients<ForwardBody>,
}

impl UpstreamClient {
    /// Clients checking `https` upstreams as `tls` says, for `workers`
    /// workers.
    pub fn new(tls: TlsConfigs, workers: usize) -> Self {
        UpstreamClient {
            clients: OutboundClients::new(tls, workers),
        }
    }

    /// Sends `request` for `component` from worker `worker` (as a stream
    /// of the shared connection if the target speaks `http2`), and waits
    /// up to `timeout` for the connection and the response head.
    pub async fn send(
        &self,
        (worker, http2): (usize, bool),
        component: &str,
        request: http::Request<ForwardBody>,
        timeout: Duration,
    ) -> Result<http::Response<UpstreamBody<ForwardBody>>, GatewayError> {
        // Named only in errors: made only for them.
        let uri = request.uri().clone();
        let target = || target_of(&uri);
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let sending = async {
            if http2 {
                self.clients
                    .send_http2(component, request, Some(timeout))
                    .await
            } else {
                self.clients
                    .send(worker, component, request, Some(timeout))
                    .await
            }
        };
        match tokio::time::timeout(timeout, sending).await {
            Err(_) => Err(GatewayError::UpstreamTimeout {
                target: target(),
                timeout_ms,
            }),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(failed(&error, target(), timeout_ms)),
        }
    }

    /// Sends the WebSocket handshake `request` for `component` on a
    /// connection of its own, and waits up to `timeout` for the answer;
    /// after a `101` its upgrade carries the connection on.
    pub async fn upgrade(
        &self,
        component: &str,
        request: http::Request<ForwardBody>,
        timeout: Duration,
    ) -> Result<http::Response<hyper::body::Incoming>, GatewayError> {
        let target = target_of(request.uri());
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let sending = self.clients.send_upgrade(component, request, Some(timeout));
        match tokio::time::timeout(timeout, sending).await {
            Err(_) => Err(GatewayError::UpstreamTimeout { target, timeout_ms }),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(failed(&error, target, timeout_ms)),
        }
    }
}

/// `scheme://authority` of `uri`, for errors.
fn target_of(uri: &http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    )
}

/// The gateway error for a request to `target` that failed with `error`.
fn failed(error: &upshift_pool::Error, target: String, timeout_ms: u32) -> GatewayError {
    // The client's body stalled: not the upstream's doing.
    if let Some(stalled) = ClientBodyError::stall_in(error) {
        return stalled;
    }
    match classify(error) {
        Failure::ConnectTimeout => GatewayError::UpstreamTimeout { target, timeout_ms },
        Failure::TlsCertificate(detail) | Failure::TlsProtocol(detail) => {
            GatewayError::UpstreamTlsFailed { target, detail }
        }
        Failure::Connect(io) => GatewayError::UpstreamUnavailable {
            target,
            detail: io.to_string(),
        },
        Failure::Refused => GatewayError::UpstreamUnavailable {
            target,
            detail: "connection refused".into(),
        },
        Failure::Protocol(detail) => GatewayError::UpstreamUnavailable { target, detail },
    }
}
