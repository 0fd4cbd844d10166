//! Requests on the native lane: the head is packed once, the core's phases
//! decide with this worker's policy set, and proxy routes go upstream over
//! the pooled client, the bodies streaming through without a copy. AI
//! routes go to [`super::ai`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, Request, Response, Uri};
use http_body_util::BodyExt as _;
use hyper::upgrade::OnUpgrade;
use upshift_core::GatewayError;
use upshift_core::access_log::Served;
use upshift_core::attempts::{Attempts, Ended, try_timeout_ms};
use upshift_core::clock::{millis_since, now_ms};
use upshift_core::forwarding::{self, ClientSide};
use upshift_core::grpc;
use upshift_core::head::Incoming as Head;

use crate::client_body::ClientBody;
use upshift_core::phases::{self, Decision};
use upshift_core::policy::{Count, Outcome, Selection, Upstream, UpstreamAttempt};
use upshift_core::response;
use upshift_core::tables::{Route, Tables, Target};
use upshift_model::{keys, metrics};
use wasmtime_wasi_http::WasiBody;

use super::body::{ForwardBody, RequestBody};
use super::call_end::{CallEnd, Pending};
use super::shadow;
use super::websocket::{Relayed, Tally, WebSockets};
use super::{NativeGateway, PolicySet, Side, canary, lock};
use crate::capabilities::outbound_http::{UpstreamBody, between_bytes_timeout};
use crate::watched_body::Watched;

/// Everything a request of the native lane carries along.
pub struct Context<'a> {
    /// The lane.
    pub lane: &'a Arc<NativeGateway>,
    /// The policy set the request decides and reports with.
    pub policies: Arc<Mutex<PolicySet>>,
    /// What its components name by position.
    pub tables: Arc<Tables>,
    /// The gateway's request id.
    pub request_id: &'a str,
    /// The worker serving it.
    pub worker: usize,
}

/// Serves `request` of client `peer`, with id `request_id`, on the native
/// lane of `lane`, as worker `worker`; what it did goes in `served`.
pub async fn serve(
    lane: &Arc<NativeGateway>,
    worker: usize,
    request: Request<ClientBody>,
    (peer, request_id): (SocketAddr, &str),
    websockets: &WebSockets,
    served: &mut Served,
) -> Result<Response<WasiBody>, GatewayError> {
    if let Some(detail) = lane.unknown() {
        return Err(GatewayError::ConfigStoreUnavailable(detail));
    }
    let (mut parts, body) = request.into_parts();
    let canary = lane.canary.run();
    let started = canary.as_ref().map(|_| Instant::now());
    let (policies, side) = lane.policies(worker);
    let answer = serve_parts(
        lane,
        (worker, policies),
        &mut parts,
        body,
        (peer, request_id),
        websockets,
        served,
    )
    .await;
    if let Err(GatewayError::ComponentFailed { component, detail }) = &answer {
        tracing::error!(
            %request_id,
            %component,
            method = %parts.method,
            path = parts.uri.path(),
            "component failed: {detail}"
        );
        if let Some(run) = &canary
            && side == Side::Canary
            && *component == *run.name
        {
            lane.canary.failed(run, detail.clone());
        }
    }
    if let (Some(run), Some(started)) = (&canary, started) {
        let status = match &answer {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        let latency_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        lane.add(canary::counts(run, side, status.as_u16(), latency_ms))
            .await;
    }
    answer
}

async fn serve_parts(
    lane: &Arc<NativeGateway>,
    (worker, policies): (usize, Arc<Mutex<PolicySet>>),
    parts: &mut http::request::Parts,
    body: ClientBody,
    (peer, request_id): (SocketAddr, &str),
    websockets: &WebSockets,
    served: &mut Served,
) -> Result<Response<WasiBody>, GatewayError> {
    let authority = authority(&parts.uri, &parts.headers)?;
    let client_ip = peer.ip().to_string();
    let head = Head {
        method: &parts.method,
        scheme: parts.uri.scheme_str().unwrap_or("http"),
        authority,
        uri: &parts.uri,
        headers: &parts.headers,
        client_ip: Some(&client_ip),
        request_id,
    };
    let packed = head.pack();
    let (decision, tables) = phases::decide_with_key_sets(
        || {
            let mut policies = lock(&policies);
            let unconfigured = policies.version == 0;
            let tables = policies.tables.clone();
            let decision =
                phases::decide(&mut *policies, &tables, &packed, unconfigured, now_ms())?;
            Ok((decision, tables))
        },
        async |url| lane.fetch_key_set(worker, url).await,
    )
    .await?;
    served.decided(&decision, &tables);
    let cx = Context {
        lane,
        policies,
        tables,
        request_id,
        worker,
    };
    let handshake = forwarding::is_websocket(&parts.headers);
    if decision.selection.as_ref().is_some_and(|s| s.hooks_due) {
        lane.hooks.wake(&decision.route.service);
    }
    match &decision.selection {
        Some(selection) => {
            // The head is decided on: its headers move on without a copy
            // (the authority may be the Host header's: it is copied first).
            let authority = authority.to_owned();
            let headers = std::mem::take(&mut parts.headers);
            let forward = Forward {
                method: &parts.method,
                uri: &parts.uri,
                headers,
                authority: &authority,
                client_ip: &client_ip,
            };
            if handshake {
                let client = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
                    GatewayError::UpgradeNotSupported(
                        "WebSocket needs an HTTP/1.1 connection".into(),
                    )
                })?;
                let websocket = (client, websockets);
                return relay_websocket(&cx, &decision, selection, forward, websocket, served)
                    .await;
            }
            proxy(&cx, &decision, selection, forward, body, served).await
        }
        None if handshake => Err(GatewayError::UpgradeNotSupported(
            "AI routes take no WebSocket".into(),
        )),
        None => super::ai::serve(&cx, &head, &decision, body, served).await,
    }
}

/// The client's request head, for forwarding.
struct Forward<'a> {
    method: &'a http::Method,
    uri: &'a Uri,
    headers: HeaderMap,
    authority: &'a str,
    client_ip: &'a str,
}

/// The authority the client asked for: the URI's (HTTP/2), else the one
/// `Host` header (HTTP/1.1 requires exactly one, RFC 9112 §3.2).
fn authority<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Result<&'a str, GatewayError> {
    if let Some(authority) = uri.authority() {
        return Ok(authority.as_str());
    }
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(host), None) => host
            .to_str()
            .ok()
            .filter(|h| h.parse::<http::uri::Authority>().is_ok())
            .ok_or_else(|| GatewayError::BadRequest("the Host header is not a valid host".into())),
        (None, _) => Err(GatewayError::BadRequest(
            "the request has no Host header".into(),
        )),
        (Some(_), Some(_)) => Err(GatewayError::BadRequest(
            "the request has more than one Host header".into(),
        )),
    }
}

/// Forwards a request of a proxy route to `selection`. A gRPC call's
/// deadline (`grpc-timeout`) bounds each attempt, and its status counts:
/// from the head of a trailers-only answer (so `UNAVAILABLE` is retried
/// as a 503), else from the trailers when the body ends.
async fn proxy(
    cx: &Context<'_>,
    decision: &Decision,
    selection: &Selection,
    mut forward: Forward<'_>,
    body: ClientBody,
    served: &mut Served,
) -> Result<Response<WasiBody>, GatewayError> {
    let route = &decision.route;
    let index = decision.matched.route;
    let grpc = grpc::is_grpc(&forward.headers);
    let deadline = grpc.then(|| grpc::deadline(&forward.headers)).flatten();
    let replay = selection.retry.attempts > 0 || selection.shadow.is_some();
    let mut body = RequestBody::take(body, replay, grpc).await?;
    let mut headers = upstream_headers(cx, decision, &mut forward);
    let path_and_query = upstream_path(decision, forward.uri);
    let mut attempts = Attempts::proxy(selection, body.replayable());
    let timeout = Duration::from_millis(u64::from(try_timeout_ms(
        route.timeout_ms,
        &selection.retry,
        body.replayable(),
    )));
    let timeout = deadline.map_or(timeout, |deadline| timeout.min(deadline));
    let (answer, attempt, status_in_trailers) = loop {
        let upstream = selection.candidate(attempts.current());
        let (version, target) = cx.tables.target(&route.service, upstream)?;
        // The headers are copied only when a retry or a shadow may send them again.
        let headers = if replay {
            headers.clone()
        } else {
            std::mem::take(&mut headers)
        };
        let request = upstream_request(
            forward.method,
            target,
            path_and_query,
            headers,
            body.next()?,
        )?;
        let started = Instant::now();
        let result = send(cx, request, timeout, target.http2).await;
        let mut attempt = attempt_of(upstream, started, &result)?;
        let took = started.elapsed();
        let service = (&route.service, &version.name);
        served.attempted(service, target, took, attempt.outcome);
        let grpc_status = match &result {
            Ok(response) if grpc => grpc::status(response.headers()),
            _ => None,
        };
        if let Some(code) = grpc_status {
            attempt.outcome = Outcome::Status(grpc::http_equivalent(code));
        }
        let status_in_trailers =
            grpc && grpc_status.is_none() && attempt.outcome == Outcome::Status(200);
        if !status_in_trailers {
            let counts = tally(
                &cx.policies,
                (index, route),
                selection,
                &version.name,
                &attempt,
                grpc_status,
                now_ms(),
            );
            cx.lane.add(counts).await;
        }
        let ended = match attempt.outcome {
            Outcome::Status(status) => Ended::Answered {
                status,
                retry_after_s: None,
            },
            Outcome::Failed | Outcome::TimedOut => Ended::NoAnswer,
        };
        let budget = || lock(&cx.policies).allow_retry(index, now_ms());
        if attempts.next(ended, budget).is_none() {
            break (result?, attempt, status_in_trailers);
        }
    };
    let primary_body = match (&selection.shadow, body.held()) {
        (Some(copy), Some(held)) => {
            let request = shadow::Copied {
                method: forward.method,
                path_and_query,
                headers,
                body: held,
            };
            shadow::send(cx, (index, route), *copy, request, attempt)
        }
        _ => None,
    };
    let (mut parts, upstream_body) = answer.into_parts();
    forwarding::to_client(&mut parts.headers, cx.request_id);
    let (version, _) = cx.tables.target(&route.service, attempt.upstream)?;
    let rate_limit = decision.authenticated.rate_limit;
    response::add_proxied(&mut parts.headers, route, version, rate_limit);
    let mut body = between_bytes_timeout(upstream_body, timeout);
    if let Some(to) = primary_body {
        body = Watched::new(body, shadow::Tee::new(to)).boxed_unsync();
    }
    if status_in_trailers {
        let pending = Pending {
            lane: cx.lane.clone(),
            policies: cx.policies.clone(),
            route: (index, route.clone()),
            selection: selection.clone(),
            version: version.name.clone(),
            attempt,
        };
        return Ok(Response::from_parts(
            parts,
            Watched::new(body, CallEnd::new(pending)).boxed_unsync(),
        ));
    }
    Ok(Response::from_parts(parts, body))
}

/// Relays a WebSocket connection of a proxy route. The handshake goes to
/// the version and target the splitter picked, once (an upgrade is not
/// replayed), and is counted like any attempt; after the upstream's `101`
/// the bytes flow both ways until either side closes, so a connection
/// stays on the version it started with.
async fn relay_websocket(
    cx: &Context<'_>,
    decision: &Decision,
    selection: &Selection,
    mut forward: Forward<'_>,
    (client, websockets): (OnUpgrade, &WebSockets),
    served: &mut Served,
) -> Result<Response<WasiBody>, GatewayError> {
    let route = &decision.route;
    let mut headers = upstream_headers(cx, decision, &mut forward);
    forwarding::keep_websocket_upgrade(&mut headers);
    let path_and_query = upstream_path(decision, forward.uri);
    let upstream = selection.primary;
    let (version, target) = cx.tables.target(&route.service, upstream)?;
    if target.http2 {
        return Err(GatewayError::UpgradeNotSupported(format!(
            "target {} speaks HTTP/2, over which the gateway relays no WebSocket; \
             give the version an http:// or https:// target",
            target.url
        )));
    }
    let request = upstream_request(
        forward.method,
        target,
        path_and_query,
        headers,
        ForwardBody::bytes(Bytes::new()),
    )?;
    if !cx.lane.allowed.allows(request.uri()) {
        return Err(GatewayError::UpstreamNotAllowed {
            target: request.uri().to_string(),
        });
    }
    let timeout = Duration::from_millis(u64::from(route.timeout_ms));
    let started = Instant::now();
    let result = cx
        .lane
        .client
        .upgrade(&cx.lane.name, request, timeout)
        .await;
    let attempt = attempt_of(upstream, started, &result)?;
    let took = started.elapsed();
    let service = (&route.service, &version.name);
    served.attempted(service, target, took, attempt.outcome);
    let counts = tally(
        &cx.policies,
        (decision.matched.route, route),
        selection,
        &version.name,
        &attempt,
        None,
        now_ms(),
    );
    cx.lane.add(counts).await;
    let mut answer = result?;
    let switched = answer.status() == http::StatusCode::SWITCHING_PROTOCOLS;
    let upstream_side = switched.then(|| hyper::upgrade::on(&mut answer));
    let (mut parts, body) = answer.into_parts();
    forwarding::to_client(&mut parts.headers, cx.request_id);
    if switched {
        forwarding::keep_websocket_upgrade(&mut parts.headers);
    }
    response::add_proxied(
        &mut parts.headers,
        route,
        version,
        decision.authenticated.rate_limit,
    );
    if let Some(upstream_side) = upstream_side {
        let relayed = Relayed {
            version: (route.service.clone(), version.name.clone()),
            tally: version_tally(cx.lane, route, &version.name),
        };
        websockets.spawn((client, upstream_side), relayed, cx.request_id.to_owned());
    }
    let body = body
        .map_err(|_| wasmtime_wasi_http::Error::HttpProtocolError)
        .boxed_unsync();
    Ok(Response::from_parts(parts, body))
}

/// The client's headers, taken from `forward`, turned into the upstream
/// request's (see [`forwarding::to_upstream`]).
fn upstream_headers(cx: &Context<'_>, decision: &Decision, forward: &mut Forward<'_>) -> HeaderMap {
    let mut headers = std::mem::take(&mut forward.headers);
    forwarding::to_upstream(
        &mut headers,
        &ClientSide {
            client_ip: Some(forward.client_ip),
            proto: forward.uri.scheme_str().unwrap_or("http"),
            host: forward.authority,
            request_id: cx.request_id,
            identity: &decision.authenticated.upstream_headers,
        },
    );
    headers
}

/// The path and query to ask the upstream for: the router's rewrite, or
/// the client's.
fn upstream_path<'a>(decision: &'a Decision, uri: &'a Uri) -> &'a str {
    match &decision.matched.upstream_path {
        Some(path) => path.as_str(),
        None => uri.path_and_query().map_or("/", |p| p.as_str()),
    }
}

/// The attempt at `upstream` that began at `started` and ended with
/// `result`; a failure that is not the upstream's doing is neither counted
/// nor retried, but returned.
fn attempt_of<B>(
    upstream: Upstream,
    started: Instant,
    result: &Result<Response<B>, GatewayError>,
) -> Result<UpstreamAttempt, GatewayError> {
    let outcome = match result {
        Ok(response) => Outcome::Status(response.status().as_u16()),
        Err(error) => error.outcome().ok_or_else(|| error.clone())?,
    };
    Ok(UpstreamAttempt {
        upstream,
        outcome,
        latency_ms: millis_since(started),
    })
}

/// The counts of `attempt` at `version` of route `(index, route)`: the
/// splitter sees the attempts it needs; the others are counted here. A
/// gRPC call's status counts too.
pub fn tally(
    policies: &Mutex<PolicySet>,
    (index, route): (u32, &Route),
    selection: &Selection,
    version: &str,
    attempt: &UpstreamAttempt,
    grpc_status: Option<u32>,
    now_ms: u64,
) -> Vec<Count> {
    let mut counts = if attempt.reported(selection) {
        lock(policies).report(index, None, attempt, now_ms)
    } else {
        attempt.counts(&route.name, &route.service, version)
    };
    if let Some(code) = grpc_status {
        let field = metrics::grpc_status_field(code);
        counts.push(Count {
            key: keys::metric(&route.name, &route.service, version, &field),
            delta: 1,
        });
    }
    counts
}

/// Adds to the counters of `version` of `route`'s service, in the
/// background.
fn version_tally(lane: &Arc<NativeGateway>, route: &Route, version: &Arc<str>) -> Tally {
    let (lane, route, version) = (lane.clone(), route.clone(), version.clone());
    Box::new(move |fields| {
        let counts = fields
            .into_iter()
            .filter(|(_, delta)| *delta != 0)
            .map(|(field, delta)| Count {
                key: keys::metric(&route.name, &route.service, &version, &field),
                delta,
            })
            .collect();
        let lane = lane.clone();
        tokio::spawn(async move { lane.add(counts).await });
    })
}

/// Sends `request` if the gateway may reach its target.
async fn send(
    cx: &Context<'_>,
    request: Request<ForwardBody>,
    timeout: Duration,
    http2: bool,
) -> Result<Response<UpstreamBody<ForwardBody>>, GatewayError> {
    if !cx.lane.allowed.allows(request.uri()) {
        tracing::warn!(uri = %request.uri(), "outbound request denied: not in allowed_outbound_hosts");
        return Err(GatewayError::UpstreamNotAllowed {
            target: request.uri().to_string(),
        });
    }
    cx.lane
        .client
        .send((cx.worker, http2), &cx.lane.name, request, timeout)
        .await
}

/// The request to `target` for `path_and_query`.
pub(super) fn upstream_request(
    method: &http::Method,
    target: &Target,
    path_and_query: &str,
    headers: HeaderMap,
    body: ForwardBody,
) -> Result<Request<ForwardBody>, GatewayError> {
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = target.uri(path_and_query)?;
    *request.headers_mut() = headers;
    Ok(request)
}
