//! gRPC through the gateway: which requests are gRPC calls, the deadline a
//! call carries, how a call's status counts, and the gateway's own errors
//! in gRPC's form (a trailers-only response: `200`, `grpc-status` and
//! `grpc-message`), since a gRPC client reads no JSON envelope.
//!
//! Statuses count as the HTTP statuses grpc-gateway maps them to, so the
//! counters, retries (`retry_on` 503 retries `UNAVAILABLE`) and rollout
//! analysis judge a call as they judge a request: a `200` carrying
//! `grpc-status: 14` is a 503.

use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::error::GatewayError;
use crate::forwarding::REQUEST_ID;

/// The call's status, in the response headers (trailers-only) or trailers.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// The status's message, percent-encoded.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// The deadline the client gave the call.
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// What `grpc-message` percent-encodes: controls, `%` and every non-ASCII
/// byte (gRPC over HTTP/2, "Responses").
const MESSAGE_ESCAPED: &AsciiSet = &CONTROLS.add(b'%');

/// gRPC status codes the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// The client's argument or request is not acceptable.
    InvalidArgument = 3,
    /// The deadline ran out.
    DeadlineExceeded = 4,
    /// The caller may not make the call.
    PermissionDenied = 7,
    /// A limit ran out (rate, size).
    ResourceExhausted = 8,
    /// No route serves the method, or this lane cannot.
    Unimplemented = 12,
    /// The gateway itself failed.
    Internal = 13,
    /// The upstream could not be reached.
    Unavailable = 14,
    /// No valid credentials.
    Unauthenticated = 16,
}

/// Whether `headers` are a gRPC call's: `content-type: application/grpc`,
/// alone or with a `+format` or parameters (gRPC-Web, which is another
/// protocol, is not).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(.."application/grpc".len()).map(|p| (p, v)))
        .is_some_and(|(prefix, value)| {
            prefix.eq_ignore_ascii_case("application/grpc")
                && matches!(value.as_bytes().get(prefix.len()), None | Some(b'+' | b';'))
        })
}

/// The call's deadline from `grpc-timeout` (up to 8 digits and a unit:
/// `H`, `M`, `S`, `m`, `u`, `n`); `None` if absent or malformed.
pub fn deadline(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The call status in `headers` (response headers of a trailers-only
/// answer, or trailers), if any.
pub fn status(headers: &HeaderMap) -> Option<u32> {
    headers.get(GRPC_STATUS)?.to_str().ok()?.trim().parse().ok()
}

/// The HTTP status a gRPC status counts as (grpc-gateway's mapping);
/// unknown codes count as 500.
pub fn http_equivalent(code: u32) -> u16 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

impl GatewayError {
    /// The gRPC status this error answers a gRPC call with.
    pub fn grpc_code(&self) -> Code {
        match self {
            GatewayError::RouteNotFound { .. }
            | GatewayError::UpgradeNotSupported(_)
            | GatewayError::ProtocolNotSupported(_) => Code::Unimplemented,
            GatewayError::Refused { status, .. } => match status {
                401 => Code::Unauthenticated,
                403 => Code::PermissionDenied,
                404 => Code::Unimplemented,
                413 | 429 => Code::ResourceExhausted,
                400..=499 => Code::InvalidArgument,
                503 => Code::Unavailable,
                _ => Code::Internal,
            },
            GatewayError::UpstreamTimeout { .. } | GatewayError::RequestBodyTimeout => {
                Code::DeadlineExceeded
            }
            GatewayError::UpstreamUnavailable { .. }
            | GatewayError::UpstreamTlsFailed { .. }
            | GatewayError::ConfigStoreUnavailable(_) => Code::Unavailable,
            GatewayError::BadRequest(_) | GatewayError::BadRequestBody(_) => Code::InvalidArgument,
            GatewayError::RequestTooLarge { .. } => Code::ResourceExhausted,
            GatewayError::UpstreamNotAllowed { .. }
            | GatewayError::BadTarget { .. }
            | GatewayError::BodyConsumed
            | GatewayError::ConfigUnloadable { .. }
            | GatewayError::ComponentFailed { .. } => Code::Internal,
        }
    }

    /// The headers of this error's trailers-only gRPC answer to the call
    /// `request_id` (its status is `200`): the status and its message
    /// (`code: message`), and the error's own headers.
    pub fn grpc_headers(&self, request_id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(
            GRPC_STATUS,
            HeaderValue::from(u16::from(self.grpc_code() as u8)),
        );
        let message = format!("{}: {self}", self.code());
        let encoded = utf8_percent_encode(&message, MESSAGE_ESCAPED).to_string();
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            headers.insert(GRPC_MESSAGE, value);
        }
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID, value);
        }
        for (name, value) in self.headers() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn grpc_calls_are_known_by_their_content_type() {
        for grpc in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC;charset=utf-8",
        ] {
            assert!(is_grpc(&with(CONTENT_TYPE, grpc)), "{grpc}");
        }
        for other in [
            "application/grpc-web",
            "application/json",
            "application/grp",
        ] {
            assert!(!is_grpc(&with(CONTENT_TYPE, other)), "{other}");
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn deadlines_read_every_unit_and_refuse_the_malformed() {
        let read = |v: &str| deadline(&with(GRPC_TIMEOUT, v));
        assert_eq!(read("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(read("3M"), Some(Duration::from_secs(180)));
        assert_eq!(read("1S"), Some(Duration::from_secs(1)));
        assert_eq!(read("250m"), Some(Duration::from_millis(250)));
        assert_eq!(read("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(read("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "S", "100", "123456789S", "1s", "-1S", "1.5S"] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn statuses_count_as_their_http_equivalent() {
        assert_eq!(status(&with(GRPC_STATUS, "14")), Some(14));
        assert_eq!(status(&with(GRPC_STATUS, "x")), None);
        assert_eq!(http_equivalent(0), 200);
        assert_eq!(http_equivalent(14), 503);
        assert_eq!(http_equivalent(4), 504);
        assert_eq!(http_equivalent(5), 404);
        assert_eq!(http_equivalent(99), 500);
    }

    #[test]
    fn errors_answer_in_grpc_form_with_an_encoded_message() {
        let error = GatewayError::UpstreamUnavailable {
            target: "h2c://10.0.0.1:50051".into(),
            detail: "connection refused, 100% — gone".into(),
        };
        let headers = error.grpc_headers("req-1");
        assert_eq!(headers[CONTENT_TYPE], "application/grpc");
        assert_eq!(headers[GRPC_STATUS], "14");
        let message = headers[GRPC_MESSAGE].to_str().unwrap();
        assert!(message.starts_with("upstream_unavailable: upstream h2c://"));
        assert!(message.ends_with("100%25 %E2%80%94 gone"), "{message}");
        assert_eq!(headers[REQUEST_ID], "req-1");
        let refused = GatewayError::Refused {
            status: 429,
            code: "rate_limited".into(),
            message: "slow down".into(),
            headers: vec![("retry-after".into(), "3".into())],
        };
        let headers = refused.grpc_headers("r");
        assert_eq!(headers[GRPC_STATUS], "8");
        assert_eq!(headers["retry-after"], "3");
    }
}
