//! Sending a request upstream and its response back, bodies streamed.

use crate::body::Contents;
use crate::errors::Refusal;
use crate::forwarding::Header;
use spin_sdk::wasip3::http::types::{
    ErrorCode, Fields, Method, Request, RequestOptions, Response, Scheme,
};
use spin_sdk::wasip3::wit_bindgen::{self, FutureReader};
use spin_sdk::wasip3::{http::client, wit_future};

/// Refusal code of an upstream that did not answer in time.
pub const TIMEOUT: &str = "upstream_timeout";

/// Refusal code of an upstream that could not be reached or broke off.
pub const UNAVAILABLE: &str = "upstream_unavailable";

/// Refusal code of an `https` upstream whose TLS handshake failed (most
/// often: a certificate the gateway does not trust).
pub const TLS_FAILED: &str = "upstream_tls_failed";

/// The head of the request to send upstream.
pub struct Outgoing<'a> {
    /// Method to use.
    pub method: Method,
    /// Base URL of the target.
    pub target: &'a str,
    /// Path and query after the router's rewrite.
    pub path_and_query: &'a str,
    /// Headers to send.
    pub headers: Vec<Header>,
    /// Connect, first-byte and between-bytes timeout.
    pub timeout_ms: u32,
}

/// Sends `outgoing` with `contents` (streamed, not read here) and returns the
/// upstream response with its body still streaming.
pub async fn send(
    contents: Contents,
    outgoing: Outgoing<'_>,
) -> Result<(u16, Vec<Header>, Response), Refusal> {
    let target: http::Uri = outgoing.target.parse().map_err(|_| {
        Refusal::new(
            502,
            "bad_target",
            format!("target {:?} is not a URL", outgoing.target),
        )
    })?;
    let scheme = match target.scheme_str() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let authority = target.authority().map(|a| a.as_str()).unwrap_or_default();
    let base = target.path().trim_end_matches('/');
    let path_and_query = format!("{base}{}", outgoing.path_and_query);

    let headers = Fields::from_list(&outgoing.headers).map_err(|e| {
        Refusal::new(
            400,
            "bad_header",
            format!("a request header cannot be forwarded: {e:?}"),
        )
    })?;
    let options = RequestOptions::new();
    let timeout = Some(u64::from(outgoing.timeout_ms) * 1_000_000);
    // A runtime that does not support a timeout keeps its own default.
    let _ = options.set_connect_timeout(timeout);
    let _ = options.set_first_byte_timeout(timeout);
    let _ = options.set_between_bytes_timeout(timeout);

    let (request, sent) = Request::new(
        headers,
        Some(contents.stream),
        contents.trailers,
        Some(options),
    );
    let invalid = |what: &str| Refusal::new(502, "bad_target", format!("invalid upstream {what}"));
    request
        .set_method(&outgoing.method)
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid("authority"))?;
    request
        .set_path_with_query(Some(&path_and_query))
        .map_err(|()| invalid("path"))?;
    match contents.done {
        Some(done) => relay(sent, done),
        None => wit_bindgen::spawn(async move {
            let _ = sent.await;
        }),
    }

    let response = client::send(request)
        .await
        .map_err(|e| upstream_failed(&e, outgoing.target, outgoing.timeout_ms))?;
    let status = response.get_status_code();
    let headers = response.get_headers().copy_all();
    Ok((status, headers, response))
}

/// A response to the client with `headers` and the still-streaming body of
/// `upstream`.
pub fn stream_back(
    status: u16,
    headers: &[Header],
    upstream: Response,
) -> Result<Response, ErrorCode> {
    let headers =
        Fields::from_list(headers).map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
    let (upstream_done, upstream_result) = wit_future::new(|| Ok(()));
    let (body, trailers) = Response::consume_body(upstream, upstream_result);
    let (response, sent) = Response::new(headers, Some(body), trailers);
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::HttpProtocolError)?;
    relay(sent, upstream_done);
    Ok(response)
}

/// Reports how the outgoing body transfer ended to the side it came from.
fn relay(
    sent: FutureReader<Result<(), ErrorCode>>,
    done: wit_bindgen::FutureWriter<Result<(), ErrorCode>>,
) {
    wit_bindgen::spawn(async move {
        let _ = done.write(sent.await).await;
    });
}

/// The refusal for a failed upstream call: 504 for timeouts, 502 otherwise.
fn upstream_failed(error: &ErrorCode, target: &str, timeout_ms: u32) -> Refusal {
    match error {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => Refusal::new(
            504,
            TIMEOUT,
            format!("upstream {target} did not answer within {timeout_ms} ms"),
        ),
        ErrorCode::TlsCertificateError
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsAlertReceived(_) => Refusal::new(
            502,
            TLS_FAILED,
            format!(
                "upstream {target}: the TLS handshake failed ({error:?}); a certificate \
                 from a private authority needs its roots in the runtime config's \
                 [[client_tls]]"
            ),
        ),
        ErrorCode::HttpRequestDenied => Refusal::new(
            502,
            "upstream_not_allowed",
            format!("outbound requests to {target} are not allowed for the gateway"),
        ),
        other => Refusal::new(
            502,
            UNAVAILABLE,
            format!("upstream {target} failed: {other:?}"),
        ),
    }
}
