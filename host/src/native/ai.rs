//! AI routes on the native lane: the AI component plans the call from the
//! request body; the host sends its provider attempts over the pooled
//! client as the core's attempt driver says (retries with backoff, then
//! fallbacks), and streams the translated answer back chunk by chunk, the
//! translator called once per upstream chunk. The same rules as the
//! component lane (see the `gateway` component's `ai` module).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use upshift_core::GatewayError;
use upshift_core::access_log::{LateUsage, Served};
use upshift_core::ai::{
    ANSWER_LIMIT, AnswerFor, BODY_LIMIT, Credential, DRAIN_LIMIT, MissingKey, PickedVersion, Spent,
    provider_headers, retry_after_s, streams,
};
use upshift_core::attempts::{Attempts, Ended};
use upshift_core::head::Incoming as Head;

use crate::client_body::ClientBody;
use upshift_core::phases::Decision;
use upshift_core::policy::Outcome;
use upshift_core::response::{self, ServedBy};
use wasmtime::component::ResourceAny;
use wasmtime_wasi_http::WasiBody;

use super::bindings::exports::upshift::ai::ai::{self, Attempt, Plan, Reply};
use super::body::ForwardBody;
use super::proxy::Context;
use super::{NativeGateway, PolicySet, lock};
use crate::capabilities::outbound_http::UpstreamBody;
use upshift_core::clock::now_ms;

/// A resource of the AI component that is dropped with this handle.
struct Owned {
    policies: Arc<Mutex<PolicySet>>,
    resource: Option<ResourceAny>,
}

impl Owned {
    fn new(policies: &Arc<Mutex<PolicySet>>, resource: ResourceAny) -> Self {
        Owned {
            policies: policies.clone(),
            resource: Some(resource),
        }
    }

    fn get(&self) -> ResourceAny {
        self.resource.expect("held until dropped")
    }

    /// Calls the AI component with this resource.
    fn call<R>(
        &self,
        call: impl FnOnce(
            &ai::Guest,
            &mut wasmtime::Store<super::policy::PolicyState>,
            ResourceAny,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, GatewayError> {
        let resource = self.get();
        lock(&self.policies).with_ai(|guest, store, _| call(guest, store, resource))
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(resource) = self.resource.take() {
            let _ = lock(&self.policies).with_ai(|_, store, _| resource.resource_drop(store));
        }
    }
}

/// Serves a request of an AI route.
pub async fn serve(
    cx: &Context<'_>,
    head: &Head<'_>,
    decision: &Decision,
    body: ClientBody,
    served: &mut Served,
) -> Result<Response<WasiBody>, GatewayError> {
    let path = match &decision.matched.upstream_path {
        Some(path) => path.split('?').next().unwrap_or_default().to_owned(),
        None => head.uri.path().to_owned(),
    };
    let mut answer = AnswerFor {
        request_id: cx.request_id,
        route: &decision.route.name,
        version: None,
    };
    let body = match read_request(body, head.headers).await {
        Ok(body) => body,
        Err(error) => {
            let (status, code, message) =
                (error.status().as_u16(), error.code(), error.to_string());
            let reply = lock(&cx.policies).with_ai(|g, store, catalog| {
                g.catalog()
                    .call_refuse(store, catalog, &path, status, code, &message)
            })?;
            return reply_response(reply, &answer, None);
        }
    };
    // The AI component sees the client's headers (for model rules, the
    // cache and Anthropic's version headers), never its credentials.
    let ai_head = head.pack_without_credentials();
    let consumer = decision.authenticated.consumer;
    let plan = lock(&cx.policies).with_ai(|g, store, catalog| {
        g.catalog()
            .call_plan(store, catalog, &path, &ai_head, &body, consumer, now_ms())
    })?;
    let call = match plan {
        Plan::Reply(reply) => return reply_response(reply, &answer, None),
        Plan::Call(call) => Owned::new(&cx.policies, call),
    };
    let picked = pick(cx, &call, &head.pack(), decision)?;
    answer.version = picked.as_ref().map(|p| p.version.clone());
    run(cx, call, &answer, decision.route.timeout_ms, picked, served).await
}

/// Asks the splitter which version of the call's split serves it, and makes
/// it the call's; `None` without a split, or without an answer.
fn pick(
    cx: &Context<'_>,
    call: &Owned,
    head: &str,
    decision: &Decision,
) -> Result<Option<PickedVersion>, GatewayError> {
    let Some(service) = call.call(|g, store, call| g.call().call_split(store, call))? else {
        return Ok(None);
    };
    let consumer = decision.authenticated.consumer;
    let route = decision.matched.route;
    let chosen = {
        use upshift_core::Policy as _;
        lock(&cx.policies).choose(route, Some(&service), head, consumer, now_ms())
    };
    let Ok(selection) = chosen else {
        return Ok(None);
    };
    if selection.hooks_due {
        cx.lane.hooks.wake(&service);
    }
    let Ok((version, _)) = cx.tables.target(&service, selection.primary) else {
        return Ok(None);
    };
    let version = version.name.clone();
    let taken = call.call(|g, store, call| g.call().call_choose(store, call, &version))?;
    Ok(taken.then_some(PickedVersion {
        route,
        service,
        upstream: selection.primary,
        version,
    }))
}

/// What one try gave the client.
enum Answered {
    /// A whole answer, replied to.
    Replied(Reply),
    /// A stream that has begun.
    Stream(Response<UpstreamBody<ForwardBody>>),
    /// No answer: the client's reply if nothing later serves.
    Failed(Reply),
}

/// Tries the call's attempts as the attempt driver says.
async fn run(
    cx: &Context<'_>,
    call: Owned,
    answer: &AnswerFor<'_>,
    timeout_ms: u32,
    picked: Option<PickedVersion>,
    served: &mut Served,
) -> Result<Response<WasiBody>, GatewayError> {
    let started = Instant::now();
    let plans = call.call(|g, store, call| g.call().call_attempts(store, call))?;
    let mut attempts = Attempts::ai(plans.iter().map(|a| (a.retries, a.backoff_ms)));
    let mut first = true;
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    loop {
        let index = attempts.current();
        let attempt = &plans[index];
        let report = picked.as_ref().filter(|_| std::mem::take(&mut first));
        served.trying_ai(&attempt.alias, (&attempt.provider, &attempt.model));
        let tried = Instant::now();
        let (answered, ended) = match try_once(cx, &call, index, attempt, timeout, report).await {
            Ok(tried) => tried,
            Err(Unsent::MissingKey(missing)) => {
                let message = missing.to_string();
                let reply = call.call(|g, store, call| {
                    g.call()
                        .call_unavailable(store, call, 502, MissingKey::CODE, &message)
                })?;
                (Answered::Failed(reply), Ended::Unusable)
            }
            Err(Unsent::Failed(error)) => return Err(error),
        };
        let outcome = match &ended {
            Ended::Answered { status, .. } => Outcome::Status(*status),
            Ended::NoAnswer | Ended::Unusable => Outcome::Failed,
        };
        served.called_provider(
            (&attempt.provider, &attempt.model),
            tried.elapsed(),
            outcome,
        );
        let next = match &answered {
            Answered::Stream(_) => None,
            _ => attempts.next(ended, || true),
        };
        let Some(next) = next else {
            let served_by = matches!(answered, Answered::Replied(_) | Answered::Stream(_))
                .then(|| served_by(attempt));
            return match answered {
                Answered::Replied(reply) => {
                    let response = reply_response(reply, answer, served_by);
                    let timing = Timing {
                        started,
                        first: None,
                    };
                    let spent = spent(&call);
                    if let Some(usage) = spent.and_then(|spent| spent.usage()) {
                        served.used(usage);
                    }
                    report_answer(cx.lane, &call, spent, picked.as_ref(), timing).await;
                    response
                }
                Answered::Failed(reply) => reply_response(reply, answer, None),
                Answered::Stream(upstream) => {
                    let picked = picked.map(|p| (p, started));
                    stream_response(cx, call, index, upstream, answer, served_by, picked)
                }
            };
        };
        if !next.wait.is_zero() {
            tokio::time::sleep(next.wait).await;
        }
    }
}

/// Why a try was not made.
enum Unsent {
    /// The provider's key is not set.
    MissingKey(MissingKey),
    /// The AI component failed.
    Failed(GatewayError),
}

impl From<GatewayError> for Unsent {
    fn from(error: GatewayError) -> Self {
        Unsent::Failed(error)
    }
}

fn served_by(attempt: &Attempt) -> ServedBy<'_> {
    ServedBy {
        provider: &attempt.provider,
        model: &attempt.model,
        alias: &attempt.alias,
    }
}

/// When an answer's parts reached the client.
struct Timing {
    /// When the call started.
    started: Instant,
    /// When the first bytes of the answer went out; `None` for a whole
    /// answer (or a stream that sent nothing), whose first token counts
    /// as arriving at its end.
    first: Option<Instant>,
}

/// What the call's answers cost, as the AI component counted them.
fn spent(call: &Owned) -> Option<Spent> {
    call.call(|g, store, call| g.call().call_answered(store, call))
        .ok()
        .map(|answered| Spent::from(&answered))
}

/// Reports what the call came to (its cost, speed and refusal), for the
/// picked version.
async fn report_answer(
    lane: &NativeGateway,
    call: &Owned,
    spent: Option<Spent>,
    picked: Option<&PickedVersion>,
    timing: Timing,
) {
    let (Some(picked), Some(spent)) = (picked, spent) else {
        return;
    };
    let answer = spent.answer(timing.started, timing.first);
    let counts = lock(&call.policies).report_answer(
        picked.route,
        &picked.service,
        picked.upstream.version,
        &answer,
    );
    lane.add(counts).await;
}

/// Sends attempt `index` once; how it ended for the client and for the
/// attempt driver.
async fn try_once(
    cx: &Context<'_>,
    call: &Owned,
    index: usize,
    attempt: &Attempt,
    timeout: Duration,
    report: Option<&PickedVersion>,
) -> Result<(Answered, Ended), Unsent> {
    let credential = attempt.credential.as_ref().map(|c| Credential {
        variable: &c.variable,
        header: &c.header,
        prefix: &c.prefix,
    });
    let headers = provider_headers(
        &attempt.headers,
        cx.request_id,
        &attempt.provider,
        credential,
        |variable| cx.lane.variables.get(variable).cloned(),
    )
    .map_err(Unsent::MissingKey)?;
    let failed = |error: &GatewayError| -> Result<(Answered, Ended), Unsent> {
        let (status, code, message) = (error.status().as_u16(), error.code(), error.to_string());
        let reply = call.call(|g, store, call| {
            g.call()
                .call_unavailable(store, call, status, code, &message)
        })?;
        Ok((Answered::Failed(reply), Ended::NoAnswer))
    };
    let request = match provider_request(attempt, headers) {
        Ok(request) => request,
        Err(error) => return failed(&error),
    };
    let started = Instant::now();
    let sent = if cx.lane.allowed.allows(request.uri()) {
        cx.lane
            .client
            .send((cx.worker, false), &cx.lane.name, request, timeout)
            .await
    } else {
        Err(GatewayError::UpstreamNotAllowed {
            target: attempt.url.clone(),
        })
    };
    if let Some(picked) = report {
        let outcome = match &sent {
            Ok(response) => Some(Outcome::Status(response.status().as_u16())),
            Err(error) => error.outcome(),
        };
        if let Some(outcome) = outcome {
            let tried = picked.first_try(outcome, started);
            let counts =
                lock(&cx.policies).report(picked.route, Some(&picked.service), &tried, now_ms());
            cx.lane.add(counts).await;
        }
    }
    let response = match sent {
        Ok(response) => response,
        Err(error) => return failed(&error),
    };
    let status = response.status().as_u16();
    let retry_after = retry_after_s(response.headers().get("retry-after").map(|v| v.as_bytes()));
    let content_type = response.headers().get("content-type").map(|v| v.as_bytes());
    let streaming = call.call(|g, store, call| g.call().call_streaming(store, call))?;
    if streams(streaming, status, content_type) {
        let ended = Ended::Answered {
            status,
            retry_after_s: None,
        };
        return Ok((Answered::Stream(response), ended));
    }
    let body = match read_answer(response.into_body(), timeout).await {
        Ok(body) => body,
        Err(detail) => {
            return failed(&GatewayError::UpstreamUnavailable {
                target: attempt.provider.clone(),
                detail,
            });
        }
    };
    let reply = call.call(|g, store, call| {
        g.call()
            .call_respond(store, call, index as u32, status, &body)
    })?;
    let ended = Ended::Answered {
        status: reply.status,
        retry_after_s: retry_after,
    };
    Ok((Answered::Replied(reply), ended))
}

/// The provider request of `attempt`, its body's length known.
fn provider_request(
    attempt: &Attempt,
    headers: Vec<(String, Vec<u8>)>,
) -> Result<Request<ForwardBody>, GatewayError> {
    let bad = || GatewayError::BadTarget {
        target: attempt.url.clone(),
    };
    let mut request = Request::new(ForwardBody::bytes(attempt.body.clone()));
    *request.method_mut() = attempt.method.parse().map_err(|_| bad())?;
    *request.uri_mut() = attempt.url.parse().map_err(|_| bad())?;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_bytes(&value).map_err(|_| bad())?;
        request.headers_mut().append(name, value);
    }
    // A known length goes as one: some providers refuse chunked bodies.
    request.headers_mut().insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(attempt.body.len()),
    );
    Ok(request)
}

/// A whole provider answer; an error when it broke off, stalled or is too long.
async fn read_answer(
    mut body: UpstreamBody<ForwardBody>,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut bytes = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err(format!("no data for {} ms", timeout.as_millis())),
            Ok(None) => return Ok(bytes.to_vec()),
            Ok(Some(frame)) => frame.map_err(|e| format!("the answer broke off: {e}"))?,
        };
        if let Ok(data) = frame.into_data() {
            bytes.extend_from_slice(&data);
            if bytes.len() > ANSWER_LIMIT {
                return Err(format!("the answer is over {ANSWER_LIMIT} bytes"));
            }
        }
    }
}

/// Reads the client's request body, refusing one over [`BODY_LIMIT`]; a
/// body a little over the limit is read to its end and dropped, so the
/// client, still sending, reads the refusal.
async fn read_request(mut body: ClientBody, headers: &HeaderMap) -> Result<Vec<u8>, GatewayError> {
    let too_large = || GatewayError::RequestTooLarge {
        limit: BODY_LIMIT as u64,
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(too_large());
    }
    let mut bytes = BytesMut::new();
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_gateway())?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= BODY_LIMIT {
                bytes.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > BODY_LIMIT {
        return Err(too_large());
    }
    Ok(bytes.to_vec())
}

fn reply_response(
    reply: Reply,
    answer: &AnswerFor<'_>,
    served_by: Option<ServedBy<'_>>,
) -> Result<Response<WasiBody>, GatewayError> {
    let mut response = Response::new(
        Full::new(Bytes::from(reply.body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() =
        http::StatusCode::from_u16(reply.status).map_err(|_| GatewayError::ComponentFailed {
            component: "ai".into(),
            detail: format!("status {} is not a status", reply.status),
        })?;
    *response.headers_mut() = response::ai_answer(reply.headers, answer, served_by);
    Ok(response)
}

/// Answers with the translated stream: a task reads the provider's chunks,
/// translates each as it arrives and hands it to the client; the usage is
/// counted when the stream ends, and the cost reported.
fn stream_response(
    cx: &Context<'_>,
    call: Owned,
    index: usize,
    upstream: Response<UpstreamBody<ForwardBody>>,
    answer: &AnswerFor<'_>,
    served_by: Option<ServedBy<'_>>,
    picked: Option<(PickedVersion, Instant)>,
) -> Result<Response<WasiBody>, GatewayError> {
    let translator = call.call(|g, store, call| g.call().call_stream(store, call, index as u32))?;
    let translator = Owned::new(&cx.policies, translator);
    let headers = translator.call(|g, store, t| g.translator().call_headers(store, t))?;
    let headers = response::ai_answer(headers, answer, served_by);
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>(8);
    let lane = cx.lane.clone();
    let late = LateUsage::default();
    let usage = late.clone();
    tokio::spawn(async move {
        let mut body = upstream.into_body();
        let mut client_gone = false;
        let mut ended = false;
        let mut first = None;
        let push =
            |bytes: &[u8]| translator.call(|g, store, t| g.translator().call_push(store, t, bytes));
        let done = || translator.call(|g, store, t| g.translator().call_done(store, t));
        // The client's stream may be complete before the upstream's: the
        // budget ran out, or the provider sent its end and lingers.
        let complete = loop {
            let frame = match body.frame().await {
                None => break true,
                Some(Err(_)) => break false,
                Some(Ok(frame)) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            match push(&data) {
                Ok(out) if !out.is_empty() => {
                    first.get_or_insert_with(Instant::now);
                    client_gone = sender
                        .send(Ok(Frame::data(Bytes::from(out))))
                        .await
                        .is_err();
                }
                Ok(_) => {}
                Err(_) => break false,
            }
            ended = done().unwrap_or(true);
            if client_gone || ended {
                break ended;
            }
        };
        drop(body);
        let tail =
            translator.call(|g, store, t| g.translator().call_finish(store, t, complete || ended));
        drop(translator);
        let spent = spent(&call);
        if let Some(usage) = spent.and_then(|spent| spent.usage()) {
            // Before the stream's end reaches the client, and with it the line.
            let _ = late.set(usage);
        }
        if let Some((picked, started)) = picked {
            let timing = Timing { started, first };
            report_answer(&lane, &call, spent, Some(&picked), timing).await;
        }
        if let Ok(tail) = tail
            && !client_gone
            && !tail.is_empty()
        {
            let _ = sender.send(Ok(Frame::data(Bytes::from(tail)))).await;
        }
    });
    let body = StreamBody::new(tokio_stream_of(receiver)).boxed_unsync();
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    response.extensions_mut().insert(usage);
    Ok(response)
}

/// The receiving end of a channel as a stream of frames.
fn tokio_stream_of<T>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
