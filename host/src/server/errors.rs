//! The answers the host makes for failures: JSON, or gRPC status headers.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Response};
use http_body_util::{BodyExt as _, Empty, Full};
use upshift_core::GatewayError;
use wasmtime_wasi_http::WasiBody;

use super::REQUEST_ID;

/// The error code of an answer the host made for a failure, for the
/// access log.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

/// The error response for `error`: JSON, or a trailers-only gRPC answer
/// to a gRPC call.
pub fn error_response(error: &GatewayError, request_id: &str, grpc: bool) -> Response<WasiBody> {
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
