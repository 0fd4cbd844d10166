//! The HTTP handler: one request through router, auth, splitter and upstream.

use crate::ai_proxy;
use crate::attempts::{self, Forward};
use crate::bindings::router::RouteKind;
use crate::bindings::types::RequestHead;
use crate::body::Body;
use crate::config::{self, Loaded};
use crate::errors::Refusal;
use crate::forwarding::{self, ClientSide, Header};
use crate::request_id;
use crate::shadow::{self, Mirror};
use crate::upstream;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::wasip3::http::types::{ErrorCode, Response};
use spin_sdk::wasip3::random::random::get_random_u64;

#[spin_sdk::http_service]
async fn handle(request: Request) -> Result<Response, ErrorCode> {
    let (parts, mut body) = request.into_parts();
    let headers: Vec<Header> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let request_id = match parts.headers.get("x-request-id") {
        Some(id) if request_id::is_acceptable(id.as_bytes()) => {
            id.to_str().unwrap_or_default().to_owned()
        }
        _ => request_id::from_random(get_random_u64(), get_random_u64()),
    };
    let head = request_head(&parts, &headers, &request_id);
    let Some(raw) = body.take_unstarted() else {
        return refuse(
            &Refusal::new(500, "body_consumed", "request body already read"),
            &request_id,
        );
    };
    match proxy(head, &headers, raw).await {
        Ok(response) => Ok(response),
        Err(refusal) => refuse(&refusal, &request_id),
    }
}

/// Routes, authenticates and splits `head`, then forwards the request.
async fn proxy(
    head: RequestHead,
    headers: &[Header],
    raw: spin_sdk::wasip3::http::types::Request,
) -> Result<Response, Refusal> {
    let config = config::current().await?;
    let Some(matched) = config.routes.resolve(&head) else {
        return Err(no_route(&config, &head));
    };
    let passed = config
        .auth
        .authenticate(&matched.route, &head, attempts::now_ms())
        .map_err(Refusal::from)?;
    let consumer = passed.consumer;
    if matched.kind == RouteKind::Ai {
        return ai_proxy::serve(&config, &head, &matched, consumer.as_ref(), raw).await;
    }
    let selection = config
        .splitter
        .choose(
            &matched.route,
            &matched.service,
            &head,
            consumer.as_ref(),
            attempts::now_ms(),
        )
        .map_err(Refusal::from)?;
    let method = raw.get_method();
    let replay = selection.retry.attempts > 0 || selection.shadow.is_some();
    let mut body = Body::take(raw, replay).await?;
    let client = ClientSide {
        client_ip: head.client_ip.as_deref(),
        proto: &head.scheme,
        host: &head.authority,
        request_id: &head.request_id,
    };
    let forward = Forward {
        method: &method,
        headers: &forwarding::upstream_headers(headers, &client),
    };
    let answer = attempts::run(&config.splitter, &matched, &selection, &forward, &mut body).await?;
    if let (Some(copy), Some(held)) = (selection.shadow.clone(), body.held()) {
        let mirror = Mirror {
            route: matched.route.clone(),
            service: selection.service.clone(),
            method: method.clone(),
            path_and_query: matched.upstream_path.clone(),
            headers: forward.headers.to_vec(),
        };
        shadow::spawn(config.clone(), copy, mirror, held, answer.attempt.clone());
    }
    let mut back = forwarding::downstream_headers(&answer.headers, &head.request_id);
    back.extend(
        selection
            .response_headers
            .into_iter()
            .chain(passed.response_headers)
            .map(|(name, value)| (name, value.into_bytes())),
    );
    back.push(("x-upshift-route".into(), matched.route.into_bytes()));
    back.push((
        "x-upshift-upstream".into(),
        format!("{}@{}", selection.service, answer.attempt.upstream.version).into_bytes(),
    ));
    upstream::stream_back(answer.status, &back, answer.response)
        .map_err(|e| Refusal::new(502, upstream::UNAVAILABLE, format!("{e:?}")))
}

fn no_route(config: &Loaded, head: &RequestHead) -> Refusal {
    let hint = if config.version == 0 {
        " (no config has been applied yet)"
    } else {
        ""
    };
    Refusal::new(
        404,
        "route_not_found",
        format!("no route matches {} {}{}", head.method, head.path, hint),
    )
}

/// The JSON error response for `refusal`.
fn refuse(refusal: &Refusal, request_id: &str) -> Result<Response, ErrorCode> {
    let mut builder = http::Response::builder()
        .status(refusal.status)
        .header("content-type", "application/json")
        .header("x-request-id", request_id);
    for (name, value) in &refusal.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(refusal.body(request_id))
        .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))?
        .into_response()
}

/// The request as the policy components see it.
fn request_head(parts: &http::request::Parts, headers: &[Header], request_id: &str) -> RequestHead {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let scheme = parts
        .uri
        .scheme_str()
        .map(str::to_owned)
        .or_else(|| {
            header("spin-full-url").and_then(|u| u.split_once("://").map(|(s, _)| s.to_owned()))
        })
        .unwrap_or_else(|| "http".to_owned());
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| header("host"))
        .unwrap_or_default();
    let client_ip = header("spin-client-addr").map(|addr| match addr.rsplit_once(':') {
        Some((ip, _)) => ip.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => addr,
    });
    RequestHead {
        method: parts.method.as_str().to_owned(),
        scheme,
        authority,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .filter(|(n, _)| !n.starts_with("spin-"))
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
        client_ip,
        request_id: request_id.to_owned(),
    }
}
