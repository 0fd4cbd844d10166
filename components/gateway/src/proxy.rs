//! Proxy routes on the component lane: the request goes to the splitter's
//! upstreams, tried as the core's attempt driver says, each try reported
//! to the splitter (whose counts go to the store); a shadow copy goes out
//! in the background; the answer streams back with the gateway's headers.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use spin_sdk::wasip3::http::types::{Method, Response};
use spin_sdk::wasip3::wit_bindgen;
use upshift_core::GatewayError;
use upshift_core::attempts::{Attempts, Ended, try_timeout_ms};
use upshift_core::forwarding::{self, ClientSide};
use upshift_core::phases::Decision;
use upshift_core::policy::{Outcome, Selection, ShadowCopy, UpstreamAttempt};
use upshift_core::response;

use crate::body::{Body, Held};
use crate::config::{self, Loaded};
use crate::service::Client;
use crate::upstream::{self, Header, Outgoing};
use upshift_core::clock::{millis_since, now_ms};

/// Header that marks a shadow copy for the upstream.
pub const SHADOW_MARKER: &str = "x-upshift-shadow";

/// Serves a request of a proxy route to `selection`.
pub async fn serve(
    config: &Rc<Loaded>,
    parts: &Parts,
    client: &Client,
    request_id: &str,
    decision: &Decision,
    selection: &Selection,
    raw: spin_sdk::wasip3::http::types::Request,
) -> Result<Response, GatewayError> {
    let route = &decision.route;
    let index = decision.matched.route;
    let method = raw.get_method();
    let replay = selection.retry.attempts > 0 || selection.shadow.is_some();
    let mut body = Body::take(raw, replay).await?;
    let mut headers = parts.headers.clone();
    forwarding::to_upstream(
        &mut headers,
        &ClientSide {
            client_ip: client.ip.as_deref(),
            proto: &client.scheme,
            host: &client.authority,
            request_id,
            identity: &decision.authenticated.upstream_headers,
        },
    );
    let headers = upstream::header_list(&headers);
    let path_and_query = match &decision.matched.upstream_path {
        Some(path) => path.as_str(),
        None => parts.uri.path_and_query().map_or("/", |p| p.as_str()),
    };
    let mut attempts = Attempts::proxy(selection, body.replayable());
    let timeout_ms = try_timeout_ms(route.timeout_ms, &selection.retry, body.replayable());
    let (status, answer, attempt) = loop {
        let upstream = selection.candidate(attempts.current());
        let (version, url) = config.tables.target(&route.service, upstream)?;
        if url.http2 {
            return Err(http2_unsupported(&url.url));
        }
        let started = Instant::now();
        let result = upstream::send(
            body.contents()?,
            Outgoing {
                method: method.clone(),
                target: url,
                path_and_query,
                headers: headers.clone(),
                timeout_ms,
            },
        )
        .await;
        // A failure that is not the upstream's doing is neither counted nor retried.
        let outcome = match &result {
            Ok((status, _)) => Outcome::Status(*status),
            Err(error) => error.outcome().ok_or_else(|| error.clone())?,
        };
        let attempt = UpstreamAttempt {
            upstream,
            outcome,
            latency_ms: millis_since(started),
        };
        // The splitter sees the attempts it needs; the others are counted here.
        if attempt.reported(selection) {
            report(config, index, &attempt);
        } else {
            let counts = attempt.counts(&route.name, &route.service, &version.name);
            config::add_each(counts.into_iter().map(|c| (c.key, c.delta)));
        }
        let ended = match outcome {
            Outcome::Status(status) => Ended::Answered {
                status,
                retry_after_s: None,
            },
            Outcome::Failed | Outcome::TimedOut => Ended::NoAnswer,
        };
        let budget = || config.splitter.allow_retry(index, now_ms());
        if attempts.next(ended, budget).is_none() {
            let (status, answer) = result?;
            break (status, answer, attempt);
        }
    };
    if let (Some(copy), Some(held)) = (&selection.shadow, body.held()) {
        let mirror = Mirror {
            route: index,
            service: route.service.clone(),
            method,
            path_and_query: path_and_query.to_owned(),
            headers,
        };
        shadow(config.clone(), *copy, mirror, held, attempt);
    }
    let mut back = upstream::header_map(&answer);
    forwarding::to_client(&mut back, request_id);
    let (version, _) = config.tables.target(&route.service, attempt.upstream)?;
    response::add_proxied(&mut back, route, version, decision.authenticated.rate_limit);
    crate::add_build_label(&mut back);
    upstream::stream_back(status, &back, answer)
}

/// Reports an attempt of route `route` to the splitter and adds its counts.
fn report(config: &Loaded, route: u32, attempt: &UpstreamAttempt) {
    let counts = config
        .splitter
        .report(route, None, attempt.into(), now_ms());
    config::add(counts);
}

/// What a shadow copy needs to know about the client's request.
struct Mirror {
    route: u32,
    service: Arc<str>,
    method: Method,
    path_and_query: String,
    headers: Vec<Header>,
}

/// Sends `copy` of the request in the background and records how it
/// compared with `primary`: however slowly it ends, the client's response
/// never waits for it.
fn shadow(
    config: Rc<Loaded>,
    copy: ShadowCopy,
    mirror: Mirror,
    body: &Held,
    primary: UpstreamAttempt,
) {
    let Ok(contents) = body.contents() else {
        return;
    };
    let mut headers = mirror.headers;
    headers.push((SHADOW_MARKER.to_owned(), b"true".to_vec()));
    let Ok((_, url)) = config.tables.target(&mirror.service, copy.upstream) else {
        return;
    };
    let url = url.clone();
    wit_bindgen::spawn(async move {
        let started = Instant::now();
        let result = upstream::send(
            contents,
            Outgoing {
                method: mirror.method,
                target: &url,
                path_and_query: &mirror.path_and_query,
                headers,
                timeout_ms: copy.timeout_ms,
            },
        )
        .await;
        let outcome = match &result {
            Ok((status, _)) => Outcome::Status(*status),
            Err(error) => error.outcome().unwrap_or(Outcome::Failed),
        };
        let shadow = UpstreamAttempt {
            upstream: copy.upstream,
            outcome,
            latency_ms: millis_since(started),
        };
        let counts = config.splitter.report_shadow(
            mirror.route,
            None,
            (&shadow).into(),
            (&primary).into(),
            now_ms(),
        );
        config::add(counts);
    });
}

/// The error for a target that speaks only HTTP/2.
fn http2_unsupported(url: &str) -> GatewayError {
    GatewayError::ProtocolNotSupported(format!(
        "target {url} speaks HTTP/2, which this gateway's wasi:http requests do not; \
         the bundled host's native lane serves it"
    ))
}
