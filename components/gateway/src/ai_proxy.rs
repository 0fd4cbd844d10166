//! The AI routes: the request goes to the AI component to be planned, then
//! to the providers it names, in order, until one answers; the answer comes
//! back translated, whole or streamed chunk by chunk.
//!
//! - The request body is read whole (up to [`BODY_LIMIT`], else 413): the
//!   AI component translates it, and fallbacks send it again.
//! - Provider keys are read from the gateway's variables, by the name the
//!   plan gives; they never cross into the AI component or the logs.
//! - An attempt falls back to the next one on 429, a 5xx, a timeout, a
//!   refused connection, or a connection closed before the first byte of
//!   the answer, after the retries its model allows (with exponential
//!   backoff, or the provider's `retry-after`). A stream that has started
//!   is the client's.
//! - A stream ends when the translator says the client's stream is
//!   complete, which may be before the upstream's (a token budget ran out):
//!   the rest of the upstream is not read.
//! - A call with a split (a model alias with a split, a prompt template)
//!   asks the splitter for its version first, then reports the first
//!   attempt and, once the answer is counted, its cost: a rollout judges
//!   model versions on errors, latency and cost per request.

use std::rc::Rc;
use std::time::{Duration, Instant};

use upshift_config::ai::MAX_RETRY_WAIT_MS;

use crate::attempts;
use crate::bindings::ai::{Attempt, Call, Plan, Reply, Translator};
use crate::bindings::router::RouteMatch;
use crate::bindings::splitter::{self, Outcome, Upstream};
use crate::bindings::types::{Consumer, RequestHead};
use crate::body::Contents;
use crate::config::Loaded;
use crate::errors::Refusal;
use crate::forwarding::Header;
use crate::upstream::{self, Outgoing};
use spin_sdk::wasip3::http::types::{ErrorCode, Fields, Method, Request, Response};
use spin_sdk::wasip3::wit_bindgen::{self, StreamReader, StreamResult};
use spin_sdk::wasip3::{wit_future, wit_stream};

/// Largest request body an AI route takes.
pub const BODY_LIMIT: usize = 10 << 20;

/// Most of an oversized request body read (and dropped) before refusing it.
const DRAIN_LIMIT: usize = 4 * BODY_LIMIT;

/// Largest non-streamed provider answer read.
const ANSWER_LIMIT: usize = 64 << 20;

/// Request headers that carry credentials.
const CREDENTIALS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// Read size of bodies.
const CHUNK: usize = 16 * 1024;

/// The version of a split call, as the splitter picked it.
struct Picked {
    config: Rc<Loaded>,
    route: String,
    service: String,
    upstream: Upstream,
}

impl Picked {
    /// Asks the splitter which version of `call`'s split serves it, and
    /// makes it the call's; `None` without a split, or when the splitter
    /// has no answer (the call keeps its default).
    fn of(
        config: &Rc<Loaded>,
        call: &Call,
        head: &RequestHead,
        matched: &RouteMatch,
        consumer: Option<&Consumer>,
    ) -> Option<Picked> {
        let service = call.split()?;
        let selection = config
            .splitter
            .choose(&matched.route, &service, head, consumer, attempts::now_ms())
            .ok()?;
        call.choose(&selection.primary.version).then(|| Picked {
            config: Rc::clone(config),
            route: matched.route.clone(),
            service,
            upstream: selection.primary,
        })
    }

    /// Reports how the version's first attempt went.
    fn attempt(&self, outcome: Outcome, started: Instant) {
        let attempt = splitter::Attempt {
            upstream: self.upstream.clone(),
            outcome,
            latency_ms: attempts::millis(started),
        };
        self.config
            .splitter
            .report(&self.route, &self.service, &attempt, attempts::now_ms());
    }

    /// Reports what the call cost.
    fn cost(&self, call: &Call) {
        self.config.splitter.report_cost(
            &self.route,
            &self.service,
            &self.upstream.version,
            call.cost_nano_usd(),
        );
    }
}

/// Serves a request of an AI route.
pub async fn serve(
    config: &Rc<Loaded>,
    head: &RequestHead,
    matched: &RouteMatch,
    consumer: Option<&Consumer>,
    raw: Request,
) -> Result<Response, Refusal> {
    let path = matched.upstream_path.split('?').next().unwrap_or_default();
    let body = match read_request(raw).await {
        Ok(body) => body,
        Err(refusal) => {
            let reply = config
                .ai
                .refuse(path, refusal.status, &refusal.code, &refusal.message);
            return send_reply(reply, head, &matched.route, None, None);
        }
    };
    // The AI component sees the client's headers (for model rules, the
    // cache and Anthropic's version headers), never its credentials.
    let client_headers: Vec<(String, String)> = head
        .headers
        .iter()
        .filter(|(name, _)| !CREDENTIALS.contains(&name.as_str()))
        .cloned()
        .collect();
    let plan = config.ai.plan(
        &head.method,
        path,
        &client_headers,
        &body,
        consumer,
        attempts::now_ms(),
    );
    match plan {
        Plan::Reply(reply) => send_reply(reply, head, &matched.route, None, None),
        Plan::Call(call) => {
            let picked = Picked::of(config, &call, head, matched, consumer);
            run(call, head, matched, picked).await
        }
    }
}

/// Tries the call's attempts in order, each as often as its retries allow.
async fn run(
    call: Call,
    head: &RequestHead,
    matched: &RouteMatch,
    picked: Option<Picked>,
) -> Result<Response, Refusal> {
    let attempts = call.attempts();
    let picked_version = picked.as_ref().map(|p| p.upstream.version.clone());
    let version = picked_version.as_deref();
    let mut failure = None;
    for (index, attempt) in attempts.iter().enumerate() {
        let headers = match provider_headers(attempt, &head.request_id).await {
            Ok(headers) => headers,
            Err((code, message)) => {
                failure = Some((call.unavailable(502, &code, &message), None));
                continue;
            }
        };
        let mut tries = 0;
        let tried = loop {
            // The splitter judges a version by its first try.
            let report = picked.as_ref().filter(|_| index == 0 && tries == 0);
            let tried = try_once(&call, index, attempt, headers.clone(), matched, report).await;
            if let Tried::Failed { retry_after, .. } = &tried
                && let Some(wait) = backoff(attempt, tries, *retry_after)
            {
                spin_sdk::time::sleep(wait).await;
                tries += 1;
                continue;
            }
            break tried;
        };
        match tried {
            Tried::Answer { status, body } => {
                let reply = call.respond(index as u32, status, &body);
                let response = send_reply(reply, head, &matched.route, Some(attempt), version);
                call_done(call, picked)();
                return response;
            }
            Tried::Stream(streamed) => {
                let translator = call.stream(index as u32);
                let answer = Answer {
                    head,
                    route: &matched.route,
                    attempt,
                    version,
                };
                return stream_back(translator, streamed, answer, call_done(call, picked));
            }
            Tried::Failed {
                reply, answered, ..
            } => failure = Some((reply, answered.then_some(attempt))),
        }
    }
    let (reply, served_by) = failure.unwrap_or_else(|| {
        let reply = call.unavailable(
            502,
            upstream::UNAVAILABLE,
            "no provider could take the request",
        );
        (reply, None)
    });
    send_reply(reply, head, &matched.route, served_by, version)
}

/// How one try of an attempt ended.
enum Tried {
    /// A whole answer for the client: a success, or an error that does
    /// not fall back.
    Answer { status: u16, body: Vec<u8> },
    /// A stream that has begun.
    Stream(Streamed),
    /// A failure that falls back: the client's answer if nothing later
    /// serves, whether the provider answered it, and the seconds its
    /// `retry-after` asked for.
    Failed {
        reply: Reply,
        answered: bool,
        retry_after: Option<u64>,
    },
}

/// Sends attempt `index` of `call` once, reporting its outcome for the
/// picked version when asked to.
async fn try_once(
    call: &Call,
    index: usize,
    attempt: &Attempt,
    headers: Vec<Header>,
    matched: &RouteMatch,
    report: Option<&Picked>,
) -> Tried {
    let failed = |status, code: &str, message: &str| Tried::Failed {
        reply: call.unavailable(status, code, message),
        answered: false,
        retry_after: None,
    };
    let started = Instant::now();
    let sent = send(attempt, headers, matched.timeout_ms).await;
    if let Some(picked) = report {
        let outcome = match &sent {
            Ok((status, _)) => Some(Outcome::Status(*status)),
            Err(refusal) => attempts::outcome_of(refusal),
        };
        if let Some(outcome) = outcome {
            picked.attempt(outcome, started);
        }
    }
    let (status, response) = match sent {
        Ok(answer) => answer,
        Err(refusal) => return failed(refusal.status, &refusal.code, &refusal.message),
    };
    let retry_after = response
        .get_headers()
        .get("retry-after")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    let (body, trailers) = Response::consume_body(response, wit_future::new(|| Ok(())).1);
    if call.streaming() && (200..300).contains(&status) {
        return match first_bytes(body).await {
            Some((first, rest)) => Tried::Stream(Streamed {
                first,
                rest,
                trailers,
            }),
            None => failed(
                502,
                upstream::UNAVAILABLE,
                &format!(
                    "provider {} closed the stream before its first byte",
                    attempt.provider
                ),
            ),
        };
    }
    let body = match read_answer(body, trailers).await {
        Ok(body) => body,
        Err(message) => {
            let message = format!("provider {}: {message}", attempt.provider);
            return failed(502, upstream::UNAVAILABLE, &message);
        }
    };
    if falls_back(status) {
        return Tried::Failed {
            reply: call.respond(index as u32, status, &body),
            answered: true,
            retry_after,
        };
    }
    Tried::Answer { status, body }
}

/// The pause before another try of `attempt` after `tries` retries, if
/// it has one left: its backoff, doubled per retry, or what the provider's
/// `retry-after` asks when that is longer. A provider asking for more than
/// [`MAX_RETRY_WAIT_MS`] is not retried.
fn backoff(attempt: &Attempt, tries: u32, retry_after_s: Option<u64>) -> Option<Duration> {
    if tries >= attempt.retries {
        return None;
    }
    let max = u64::from(MAX_RETRY_WAIT_MS);
    let base = (u64::from(attempt.backoff_ms) << tries.min(16)).min(max);
    let asked = retry_after_s.map_or(0, |s| s.saturating_mul(1000));
    (asked <= max).then(|| Duration::from_millis(asked.max(base)))
}

/// What to do once the call's answer is counted: report its cost for the
/// picked version.
fn call_done(call: Call, picked: Option<Picked>) -> impl FnOnce() + 'static {
    move || {
        if let Some(picked) = picked {
            picked.cost(&call);
        }
    }
}

/// Whether a provider's status sends the request to the next attempt.
fn falls_back(status: u16) -> bool {
    status == 429 || status >= 500
}

/// The attempt's headers with its key, read from the variable it names.
async fn provider_headers(
    attempt: &Attempt,
    request_id: &str,
) -> Result<Vec<Header>, (String, String)> {
    let mut headers: Vec<Header> = attempt
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
        .collect();
    headers.push(("x-request-id".into(), request_id.as_bytes().to_vec()));
    if let Some(credential) = &attempt.credential {
        let key = spin_sdk::variables::get(&credential.variable)
            .await
            .ok()
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                (
                    "provider_key_missing".to_owned(),
                    format!(
                        "the key of provider {} is not set: give the variable `{}` a value",
                        attempt.provider, credential.variable
                    ),
                )
            })?;
        let mut value = credential.prefix.clone().into_bytes();
        value.extend_from_slice(key.as_bytes());
        headers.push((credential.header.clone(), value));
    }
    Ok(headers)
}

/// Sends one attempt; the answer's head, its body still streaming.
async fn send(
    attempt: &Attempt,
    headers: Vec<Header>,
    timeout_ms: u32,
) -> Result<(u16, Response), Refusal> {
    let url: http::Uri = attempt.url.parse().map_err(|_| {
        Refusal::new(
            502,
            "bad_target",
            format!("provider URL {:?} is not a URL", attempt.url),
        )
    })?;
    let target = format!(
        "{}://{}",
        url.scheme_str().unwrap_or("http"),
        url.authority().map(|a| a.as_str()).unwrap_or_default()
    );
    let path_and_query = url.path_and_query().map_or("/", |p| p.as_str());
    let method = match attempt.method.as_str() {
        "GET" => Method::Get,
        _ => Method::Post,
    };
    let (mut writer, stream) = wit_stream::new::<u8>();
    let body = attempt.body.clone();
    wit_bindgen::spawn(async move {
        writer.write_all(body).await;
    });
    let contents = Contents {
        stream,
        trailers: wit_future::new(|| Ok(None)).1,
        done: None,
    };
    let outgoing = Outgoing {
        method,
        target: &target,
        path_and_query,
        headers,
        timeout_ms,
    };
    let (status, _, response) = upstream::send(contents, outgoing).await?;
    Ok((status, response))
}

/// The first bytes of a body and the rest of it; `None` when the body
/// ended or failed before its first byte.
async fn first_bytes(mut body: StreamReader<u8>) -> Option<(Vec<u8>, StreamReader<u8>)> {
    loop {
        let (status, chunk) = body.read(Vec::with_capacity(CHUNK)).await;
        if !chunk.is_empty() {
            return Some((chunk, body));
        }
        if matches!(status, StreamResult::Dropped | StreamResult::Cancelled) {
            return None;
        }
    }
}

type Trailers = spin_sdk::wasip3::wit_bindgen::FutureReader<
    Result<Option<spin_sdk::wasip3::http::types::Trailers>, ErrorCode>,
>;

/// A whole provider answer; an error when it broke off or is too long.
async fn read_answer(mut body: StreamReader<u8>, trailers: Trailers) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    loop {
        let (status, chunk) = body.read(Vec::with_capacity(CHUNK)).await;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > ANSWER_LIMIT {
            return Err(format!("the answer is over {ANSWER_LIMIT} bytes"));
        }
        if matches!(status, StreamResult::Dropped | StreamResult::Cancelled) {
            break;
        }
    }
    match trailers.await {
        Ok(_) => Ok(bytes),
        Err(error) => Err(format!("the answer broke off: {error:?}")),
    }
}

/// Reads the client's request body, refusing one over [`BODY_LIMIT`]. The
/// rest of a body a little over the limit is read and dropped, so the
/// client, still sending, gets the refusal; one declared far over it is
/// refused at once.
async fn read_request(request: Request) -> Result<Vec<u8>, Refusal> {
    let too_large = || {
        Refusal::new(
            413,
            "request_too_large",
            format!("AI requests are limited to {BODY_LIMIT} bytes"),
        )
    };
    let declared = request
        .get_headers()
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(too_large());
    }
    let (done, result) = wit_future::new(|| Ok(()));
    let (mut stream, trailers) = Request::consume_body(request, result);
    let mut bytes = Vec::new();
    let mut total = 0;
    loop {
        let (status, chunk) = stream.read(Vec::with_capacity(64 * 1024)).await;
        total += chunk.len();
        if total <= BODY_LIMIT {
            bytes.extend_from_slice(&chunk);
        } else if !bytes.is_empty() {
            bytes = Vec::new();
        }
        if total > DRAIN_LIMIT || matches!(status, StreamResult::Dropped | StreamResult::Cancelled)
        {
            break;
        }
    }
    if total > BODY_LIMIT {
        let _ = done.write(Ok(())).await;
        return Err(too_large());
    }
    if let Err(error) = trailers.await {
        let message = format!("the request body could not be read: {error:?}");
        let _ = done.write(Err(error)).await;
        return Err(Refusal::new(400, "bad_request_body", message));
    }
    let _ = done.write(Ok(())).await;
    Ok(bytes)
}

/// The headers every AI answer carries.
fn answer_headers(
    mut headers: Vec<(String, String)>,
    head: &RequestHead,
    route: &str,
    served_by: Option<&Attempt>,
    version: Option<&str>,
) -> Vec<Header> {
    headers.push(("x-request-id".into(), head.request_id.clone()));
    headers.push(("x-upshift-route".into(), route.to_owned()));
    if let Some(version) = version {
        headers.push(("x-upshift-version".into(), version.to_owned()));
    }
    if let Some(attempt) = served_by {
        headers.push((
            "x-upshift-upstream".into(),
            format!("{}@{}", attempt.provider, attempt.model),
        ));
        headers.push(("x-upshift-model".into(), attempt.alias.clone()));
    }
    headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect()
}

fn send_reply(
    reply: Reply,
    head: &RequestHead,
    route: &str,
    served_by: Option<&Attempt>,
    version: Option<&str>,
) -> Result<Response, Refusal> {
    let headers = answer_headers(reply.headers, head, route, served_by, version);
    let headers =
        Fields::from_list(&headers).map_err(|e| Refusal::new(500, "internal", format!("{e:?}")))?;
    let (mut writer, body) = wit_stream::new::<u8>();
    let bytes = reply.body;
    wit_bindgen::spawn(async move {
        writer.write_all(bytes).await;
    });
    let (response, sent) = Response::new(headers, Some(body), wit_future::new(|| Ok(None)).1);
    response
        .set_status_code(reply.status)
        .map_err(|()| Refusal::new(500, "internal", format!("status {} refused", reply.status)))?;
    wit_bindgen::spawn(async move {
        let _ = sent.await;
    });
    Ok(response)
}

/// A provider's streamed answer: its first bytes, the rest, its end.
struct Streamed {
    first: Vec<u8>,
    rest: StreamReader<u8>,
    trailers: Trailers,
}

/// Who the answer is for and who served it.
struct Answer<'a> {
    head: &'a RequestHead,
    route: &'a str,
    attempt: &'a Attempt,
    version: Option<&'a str>,
}

/// Answers with the translated stream: each upstream chunk is translated
/// and written as it arrives; `done` runs once the stream's usage is
/// counted.
fn stream_back(
    translator: Translator,
    upstream: Streamed,
    answer: Answer<'_>,
    done: impl FnOnce() + 'static,
) -> Result<Response, Refusal> {
    let Streamed {
        first,
        mut rest,
        trailers,
    } = upstream;
    let headers = answer_headers(
        translator.headers(),
        answer.head,
        answer.route,
        Some(answer.attempt),
        answer.version,
    );
    let headers =
        Fields::from_list(&headers).map_err(|e| Refusal::new(500, "internal", format!("{e:?}")))?;
    let (mut writer, body) = wit_stream::new::<u8>();
    let (response, sent) = Response::new(headers, Some(body), wit_future::new(|| Ok(None)).1);
    response
        .set_status_code(200)
        .map_err(|()| Refusal::new(500, "internal", "status 200 refused"))?;
    wit_bindgen::spawn(async move {
        let _ = sent.await;
    });
    wit_bindgen::spawn(async move {
        let mut client_gone = false;
        let out = translator.push(&first);
        if !out.is_empty() {
            client_gone = !writer.write_all(out).await.is_empty();
        }
        // The client's stream may be complete before the upstream's: the
        // budget ran out, or the provider sent its end and lingers.
        let mut ended = translator.done();
        while !client_gone && !ended {
            let (status, chunk) = rest.read(Vec::with_capacity(CHUNK)).await;
            if !chunk.is_empty() {
                let out = translator.push(&chunk);
                if !out.is_empty() {
                    client_gone = !writer.write_all(out).await.is_empty();
                }
                ended = translator.done();
            }
            if matches!(status, StreamResult::Dropped | StreamResult::Cancelled) {
                break;
            }
        }
        drop(rest);
        let complete = ended || (!client_gone && trailers.await.is_ok());
        let tail = translator.finish(complete);
        done();
        if !client_gone && !tail.is_empty() {
            writer.write_all(tail).await;
        }
    });
    Ok(response)
}
