//! Sending a request upstream over `wasi:http`, and its response back,
//! bodies streamed.

use http::{HeaderMap, HeaderName, HeaderValue};
use spin_sdk::wasip3::http::types::{
    ErrorCode, Fields, Method, Request, RequestOptions, Response, Scheme,
};
use spin_sdk::wasip3::wit_bindgen::{self, FutureReader};
use spin_sdk::wasip3::{http::client, wit_future};
use upshift_core::GatewayError;
use upshift_core::tables::Target;

use crate::body::Contents;

/// A header as `wasi:http` fields take it.
pub type Header = (String, Vec<u8>);

/// The head of the request to send upstream.
pub struct Outgoing<'a> {
    /// Method to use.
    pub method: Method,
    /// The target.
    pub target: &'a Target,
    /// Path and query after the router's rewrite.
    pub path_and_query: &'a str,
    /// Headers to send (with `content-length` when the size is known).
    pub headers: Vec<Header>,
    /// Connect, first-byte and between-bytes timeout.
    pub timeout_ms: u32,
}

/// Sends `outgoing` with `contents` (streamed, not read here) and returns
/// the upstream response with its body still streaming.
pub async fn send(
    contents: Contents,
    outgoing: Outgoing<'_>,
) -> Result<(u16, Response), GatewayError> {
    let bad_target = || GatewayError::BadTarget {
        target: outgoing.target.url.to_string(),
    };
    let uri = outgoing.target.uri(outgoing.path_and_query)?;
    let scheme = match uri.scheme_str() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());

    let headers = Fields::from_list(&outgoing.headers).map_err(|e| {
        GatewayError::BadRequest(format!("a request header cannot be forwarded: {e:?}"))
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
    request
        .set_method(&outgoing.method)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path_and_query)))
        .map_err(|()| bad_target())?;
    match contents.done {
        Some(done) => relay(sent, done),
        None => wit_bindgen::spawn(async move {
            let _ = sent.await;
        }),
    }
    let response = client::send(request)
        .await
        .map_err(|e| upstream_failed(&e, &outgoing.target.url, outgoing.timeout_ms))?;
    Ok((response.get_status_code(), response))
}

/// Sends `body` to `url` (a whole URL) with `method` and `headers`, and
/// returns the response with its body still streaming.
pub async fn send_bytes(
    url: &str,
    method: Method,
    headers: Vec<Header>,
    body: Vec<u8>,
    timeout_ms: u32,
) -> Result<Response, GatewayError> {
    let bad_target = || GatewayError::BadTarget {
        target: url.to_owned(),
    };
    let uri: http::Uri = url.parse().map_err(|_| bad_target())?;
    let target = Target::new(&format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    ));
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let outgoing = Outgoing {
        method,
        target: &target,
        path_and_query,
        headers,
        timeout_ms,
    };
    Ok(send(Contents::bytes(body), outgoing).await?.1)
}

/// The headers of `response` as a header map; fields that are not valid
/// HTTP (which a runtime never hands over) are left out.
pub fn header_map(response: &Response) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in response.get_headers().copy_all() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// A header map as `wasi:http` fields take it.
pub fn header_list(map: &HeaderMap) -> Vec<Header> {
    map.iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// A response to the client with `headers` and the still-streaming body of
/// `upstream`.
pub fn stream_back(
    status: u16,
    headers: &HeaderMap,
    upstream: Response,
) -> Result<Response, GatewayError> {
    let internal = |detail: String| GatewayError::ComponentFailed {
        component: "gateway".into(),
        detail,
    };
    let headers =
        Fields::from_list(&header_list(headers)).map_err(|e| internal(format!("{e:?}")))?;
    let (upstream_done, upstream_result) = wit_future::new(|| Ok(()));
    let (body, trailers) = Response::consume_body(upstream, upstream_result);
    let (response, sent) = Response::new(headers, Some(body), trailers);
    response
        .set_status_code(status)
        .map_err(|()| internal(format!("status {status} refused")))?;
    relay(sent, upstream_done);
    Ok(response)
}

/// Reports how the outgoing body transfer ended to the side it came from.
pub fn relay(
    sent: FutureReader<Result<(), ErrorCode>>,
    done: wit_bindgen::FutureWriter<Result<(), ErrorCode>>,
) {
    wit_bindgen::spawn(async move {
        let _ = done.write(sent.await).await;
    });
}

/// The error for a failed upstream call.
fn upstream_failed(error: &ErrorCode, target: &str, timeout_ms: u32) -> GatewayError {
    let target = target.to_owned();
    match error {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => GatewayError::UpstreamTimeout { target, timeout_ms },
        ErrorCode::TlsCertificateError
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsAlertReceived(_) => GatewayError::UpstreamTlsFailed {
            target,
            detail: format!("{error:?}"),
        },
        ErrorCode::HttpRequestDenied => GatewayError::UpstreamNotAllowed { target },
        other => GatewayError::UpstreamUnavailable {
            target,
            detail: format!("{other:?}"),
        },
    }
}
