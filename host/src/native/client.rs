//! The native lane's upstream client: pooled connections (a shard per
//! worker) with the TLS settings the component lane uses, sending the
//! client's body as it streams in, or a held copy.

use std::time::Duration;

use super::body::ForwardBody;
use upshift_core::GatewayError;

use crate::client_body::ClientBodyError;
use crate::outbound::{Failure, OutboundClients, UpstreamBody, classify};
use crate::tls::TlsConfigs;

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

    /// Sends `request` for `component` from worker `worker`, and waits up
    /// to `timeout` for the connection and the response head.
    pub async fn send(
        &self,
        worker: usize,
        component: &str,
        request: http::Request<ForwardBody>,
        timeout: Duration,
    ) -> Result<http::Response<UpstreamBody<ForwardBody>>, GatewayError> {
        // Named only in errors: made only for them.
        let uri = request.uri().clone();
        let target = || {
            format!(
                "{}://{}",
                uri.scheme_str().unwrap_or("http"),
                uri.authority().map_or("", |a| a.as_str())
            )
        };
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let sending = self.clients.send(worker, component, request, Some(timeout));
        match tokio::time::timeout(timeout, sending).await {
            Err(_) => Err(GatewayError::UpstreamTimeout {
                target: target(),
                timeout_ms,
            }),
            Ok(Ok(response)) => Ok(response),
            // The client's body stalled: not the upstream's doing.
            Ok(Err(error)) => Err(match ClientBodyError::stall_in(&error) {
                Some(stalled) => stalled,
                None => match classify(&error) {
                    Failure::ConnectTimeout => GatewayError::UpstreamTimeout {
                        target: target(),
                        timeout_ms,
                    },
                    Failure::TlsCertificate(detail) | Failure::TlsProtocol(detail) => {
                        GatewayError::UpstreamTlsFailed {
                            target: target(),
                            detail,
                        }
                    }
                    Failure::Connect(io) => GatewayError::UpstreamUnavailable {
                        target: target(),
                        detail: io.to_string(),
                    },
                    Failure::Refused => GatewayError::UpstreamUnavailable {
                        target: target(),
                        detail: "connection refused".into(),
                    },
                    Failure::Protocol(detail) => GatewayError::UpstreamUnavailable {
                        target: target(),
                        detail,
                    },
                },
            }),
        }
    }
}
