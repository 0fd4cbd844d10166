//! The HTTP handler: the request's head is packed once, the core's phases
//! decide (route → authenticate → select), then the proxy or the AI lane
//! does the I/O.

use http::request::Parts;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::wasip3::http::types::{ErrorCode, Response};
use spin_sdk::wasip3::random::random::get_random_u64;
use upshift_core::clock::now_ms;
use upshift_core::head::Incoming;
use upshift_core::{GatewayError, forwarding, grpc, phases, request_id};

use crate::{ai, config, key_sets, proxy};

#[spin_sdk::http_service]
async fn handle(request: Request) -> Result<Response, ErrorCode> {
    let (parts, mut body) = request.into_parts();
    let grpc = grpc::is_grpc(&parts.headers);
    let request_id = match parts.headers.get("x-request-id") {
        Some(id) if request_id::is_acceptable(id.as_bytes()) => {
            id.to_str().unwrap_or_default().to_owned()
        }
        _ => request_id::from_random(get_random_u64(), get_random_u64()),
    };
    let Some(raw) = body.take_unstarted() else {
        return refuse(&GatewayError::BodyConsumed, &request_id, grpc);
    };
    match serve(parts, &request_id, raw).await {
        Ok(response) => Ok(response),
        Err(error) => refuse(&error, &request_id, grpc),
    }
}

/// What the runtime says about the client side of the request.
pub struct Client {
    /// `http` or `https`.
    pub scheme: String,
    /// Host and port the client asked for.
    pub authority: String,
    /// The peer's IP address.
    pub ip: Option<String>,
}

impl Client {
    /// Reads the request's URI, `host` and Spin's `spin-*` headers.
    fn of(parts: &Parts) -> Self {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let scheme = parts
            .uri
            .scheme_str()
            .or_else(|| header("spin-full-url").and_then(|u| u.split_once("://").map(|(s, _)| s)))
            .unwrap_or("http")
            .to_owned();
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| header("host"))
            .unwrap_or_default()
            .to_owned();
        let ip = header("spin-client-addr").map(|addr| match addr.rsplit_once(':') {
            Some((ip, _)) => ip.trim_start_matches('[').trim_end_matches(']').to_owned(),
            None => addr.to_owned(),
        });
        Client {
            scheme,
            authority,
            ip,
        }
    }
}

/// Decides and serves one request.
async fn serve(
    parts: Parts,
    request_id: &str,
    raw: spin_sdk::wasip3::http::types::Request,
) -> Result<Response, GatewayError> {
    if forwarding::is_websocket(&parts.headers) {
        return Err(GatewayError::UpgradeNotSupported(
            "WebSocket is proxied by the bundled host's native lane; wasi:http, \
             which this gateway serves on, has no protocol upgrades"
                .into(),
        ));
    }
    if grpc::is_grpc(&parts.headers) {
        return Err(GatewayError::ProtocolNotSupported(
            "gRPC is proxied by the bundled host's native lane; this gateway sends its \
             upstream requests over wasi:http as HTTP/1.1, and gRPC needs HTTP/2"
                .into(),
        ));
    }
    let config = config::current()?;
    let client = Client::of(&parts);
    let incoming = Incoming {
        method: &parts.method,
        scheme: &client.scheme,
        authority: &client.authority,
        uri: &parts.uri,
        headers: &parts.headers,
        client_ip: client.ip.as_deref(),
        request_id,
    };
    let head = incoming.pack();
    let unconfigured = config.version == 0;
    let decision = phases::decide_with_key_sets(
        || phases::decide(&mut &*config, &config.tables, &head, unconfigured, now_ms()),
        key_sets::fetch,
    )
    .await?;
    if decision.selection.as_ref().is_some_and(|s| s.hooks_due) {
        crate::hooks::wake(&decision.route.service);
    }
    match &decision.selection {
        Some(selection) => {
            proxy::serve(
                &config, &parts, &client, request_id, &decision, selection, raw,
            )
            .await
        }
        None => ai::serve(&config, &incoming, &decision, raw).await,
    }
}

/// The error response for `error`: JSON, or a trailers-only gRPC answer
/// to a gRPC call.
fn refuse(error: &GatewayError, request_id: &str, grpc: bool) -> Result<Response, ErrorCode> {
    if grpc {
        let mut response = http::Response::new(String::new());
        *response.headers_mut() = error.grpc_headers(request_id);
        return response.into_response();
    }
    let mut builder = http::Response::builder()
        .status(error.status())
        .header("content-type", "application/json")
        .header("x-request-id", request_id);
    for (name, value) in error.headers() {
        builder = builder.header(name, value);
    }
    builder
        .body(error.body(request_id))
        .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))?
        .into_response()
}
