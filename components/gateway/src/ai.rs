//! AI routes on the component lane: the AI component plans the call from
//! the request body, the gateway sends its provider attempts as the core's
//! attempt driver says (retries with backoff, then fallbacks), and the
//! answer comes back translated, whole or streamed chunk by chunk.
//!
//! - The request body is read whole (up to [`BODY_LIMIT`], else 413): the
//!   AI component translates it, and retries send it again.
//! - Provider keys come from the gateway's variables, by the name the plan
//!   gives; they never cross into the AI component.
//! - A successful event stream goes to the translator chunk by chunk; any
//!   other answer is read whole and answered with `respond` (which streams
//!   a whole answer to a streaming client). An answer whose reply is a 429
//!   or a 5xx falls back, as does a failure to connect or a stream that
//!   closes before its first byte. A stream that has started is the client's.
//! - A call with a split (a model alias with versions, a prompt template)
//!   asks the splitter for its version, reports the first try and then the
//!   call's cost, so that a rollout judges model versions too.

use std::rc::Rc;
use std::time::Instant;

use spin_sdk::wasip3::http::types::{Fields, Method, Request, Response};
use spin_sdk::wasip3::wit_bindgen::{self, StreamReader, StreamResult};
use spin_sdk::wasip3::{wit_future, wit_stream};
use upshift_core::GatewayError;
use upshift_core::ai::{
    ANSWER_LIMIT, AnswerFor, BODY_LIMIT, Credential, DRAIN_LIMIT, MissingKey, PickedVersion, Spent,
    provider_headers, retry_after_s, streams,
};
use upshift_core::attempts::{Attempts, Ended};
use upshift_core::head::Incoming;
use upshift_core::phases::Decision;
use upshift_core::policy::{Outcome, Upstream};
use upshift_core::response::{self, ServedBy};

use crate::bindings::ai::{Attempt, Call, Plan, Reply, Translator};
use crate::body::{TrailersReader, read_whole};
use crate::config::{self, Loaded};
use crate::upstream;
use upshift_core::clock::now_ms;

/// Read size of bodies.
const CHUNK: usize = 16 * 1024;

/// The version of a split call, as the splitter picked it, with the
/// config version that reports on it.
struct Picked {
    config: Rc<Loaded>,
    version: PickedVersion,
}

impl Picked {
    /// Asks the splitter which version of `call`'s split serves it and
    /// makes it the call's; `None` without a split, or when the splitter
    /// has no answer (the call keeps its default).
    fn of(config: &Rc<Loaded>, call: &Call, head: &str, decision: &Decision) -> Option<Picked> {
        let service = call.split()?;
        let route = decision.matched.route;
        let consumer = decision.authenticated.consumer;
        let selection = config
            .splitter
            .choose(route, Some(&service), head, consumer, now_ms())
            .ok()?;
        if selection.hooks_due {
            crate::hooks::wake(&service);
        }
        let upstream = Upstream::from(selection.primary);
        let (version, _) = config.tables.target(&service, upstream).ok()?;
        call.choose(&version.name).then(|| Picked {
            config: Rc::clone(config),
            version: PickedVersion {
                route,
                version: version.name.clone(),
                service,
                upstream,
            },
        })
    }

    /// Reports how the version's first try went.
    fn attempt(&self, outcome: Outcome, started: Instant) {
        let picked = &self.version;
        let tried = picked.first_try(outcome, started);
        let counts = self.config.splitter.report(
            picked.route,
            Some(&picked.service),
            (&tried).into(),
            now_ms(),
        );
        config::add(counts);
    }

    /// Reports what the call came to: its cost, speed and refusal. It
    /// started at `started`; its first bytes reached the client at `first`
    /// (`None` for a whole answer).
    fn answered(&self, call: &Call, started: Instant, first: Option<Instant>) {
        let picked = &self.version;
        let answer = Spent::from(&call.answered()).answer(started, first);
        let counts = self.config.splitter.report_answer(
            picked.route,
            &picked.service,
            picked.upstream.version,
            (&answer).into(),
        );
        config::add(counts);
    }
}

/// Serves a request of an AI route.
pub async fn serve(
    config: &Rc<Loaded>,
    incoming: &Incoming<'_>,
    decision: &Decision,
    raw: Request,
) -> Result<Response, GatewayError> {
    let path = match &decision.matched.upstream_path {
        Some(path) => path.split('?').next().unwrap_or_default(),
        None => incoming.uri.path(),
    };
    let mut answer = AnswerFor {
        request_id: incoming.request_id,
        route: &decision.route.name,
        version: None,
    };
    let body = match read_request(raw).await {
        Ok(body) => body,
        Err(error) => {
            let reply = config.ai.refuse(
                path,
                error.status().as_u16(),
                error.code(),
                &error.to_string(),
            );
            return send_reply(reply, &answer, None);
        }
    };
    // The AI component sees the client's headers (for model rules, the
    // cache and Anthropic's version headers), never its credentials.
    let head = incoming.pack_without_credentials();
    let consumer = decision.authenticated.consumer;
    match config.ai.plan(path, &head, &body, consumer, now_ms()) {
        Plan::Reply(reply) => send_reply(reply, &answer, None),
        Plan::Call(call) => {
            let picked = Picked::of(config, &call, &incoming.pack(), decision);
            answer.version = picked.as_ref().map(|p| p.version.version.clone());
            run(call, &answer, decision.route.timeout_ms, picked).await
        }
    }
}

/// What one try gave the client.
enum Answered {
    /// A whole answer, replied to.
    Replied(Reply),
    /// A stream that has begun.
    Stream(Streamed),
    /// No answer: the client's reply if nothing later serves.
    Failed(Reply),
}

/// Tries the call's attempts as the attempt driver says.
async fn run(
    call: Call,
    answer: &AnswerFor<'_>,
    timeout_ms: u32,
    picked: Option<Picked>,
) -> Result<Response, GatewayError> {
    let started = Instant::now();
    let plans = call.attempts();
    let mut attempts = Attempts::ai(plans.iter().map(|a| (a.retries, a.backoff_ms)));
    let mut first = true;
    loop {
        let index = attempts.current();
        let attempt = &plans[index];
        let report = picked.as_ref().filter(|_| std::mem::take(&mut first));
        let (outcome, ended) =
            match try_once(&call, index, attempt, answer, timeout_ms, report).await {
                Ok(outcome) => outcome,
                Err(missing) => {
                    let reply = call.unavailable(502, MissingKey::CODE, &missing.to_string());
                    (Answered::Failed(reply), Ended::Unusable)
                }
            };
        let next = match &outcome {
            Answered::Stream(_) => None,
            _ => attempts.next(ended, || true),
        };
        let Some(next) = next else {
            let served_by = matches!(outcome, Answered::Replied(_) | Answered::Stream(_))
                .then(|| served_by(attempt));
            return match outcome {
                Answered::Replied(reply) => {
                    let response = send_reply(reply, answer, served_by);
                    if let Some(picked) = &picked {
                        picked.answered(&call, started, None);
                    }
                    response
                }
                Answered::Failed(reply) => send_reply(reply, answer, None),
                Answered::Stream(streamed) => {
                    let translator = call.stream(index as u32);
                    let done = move |first| {
                        if let Some(picked) = &picked {
                            picked.answered(&call, started, first);
                        }
                    };
                    stream_back(translator, streamed, answer, served_by, done)
                }
            };
        };
        if !next.wait.is_zero() {
            spin_sdk::time::sleep(next.wait).await;
        }
    }
}

fn served_by(attempt: &Attempt) -> ServedBy<'_> {
    ServedBy {
        provider: &attempt.provider,
        model: &attempt.model,
        alias: &attempt.alias,
    }
}

/// Sends attempt `index` once; how it ended for the client and for the
/// attempt driver. A missing provider key is an error: nothing was sent.
async fn try_once(
    call: &Call,
    index: usize,
    attempt: &Attempt,
    answer: &AnswerFor<'_>,
    timeout_ms: u32,
    report: Option<&Picked>,
) -> Result<(Answered, Ended), MissingKey> {
    let credential = attempt.credential.as_ref().map(|c| Credential {
        variable: &c.variable,
        header: &c.header,
        prefix: &c.prefix,
    });
    let key = match &attempt.credential {
        Some(c) => spin_sdk::variables::get(&c.variable).await.ok(),
        None => None,
    };
    let mut headers = provider_headers(
        &attempt.headers,
        answer.request_id,
        &attempt.provider,
        credential,
        |_| key,
    )?;
    // A known length goes as one: some providers refuse chunked bodies.
    headers.push((
        "content-length".into(),
        attempt.body.len().to_string().into_bytes(),
    ));
    let failed = |error: &GatewayError| {
        let reply = call.unavailable(error.status().as_u16(), error.code(), &error.to_string());
        (Answered::Failed(reply), Ended::NoAnswer)
    };
    let started = Instant::now();
    let sent = send(attempt, headers, timeout_ms).await;
    if let Some(picked) = report {
        let outcome = match &sent {
            Ok(response) => Some(Outcome::Status(response.get_status_code())),
            Err(error) => error.outcome(),
        };
        if let Some(outcome) = outcome {
            picked.attempt(outcome, started);
        }
    }
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Ok(failed(&error)),
    };
    let status = response.get_status_code();
    let fields = response.get_headers();
    let retry_after = retry_after_s(fields.get("retry-after").first().map(Vec::as_slice));
    let streaming = streams(
        call.streaming(),
        status,
        fields.get("content-type").first().map(Vec::as_slice),
    );
    let (body, trailers) = Response::consume_body(response, wit_future::new(|| Ok(())).1);
    if streaming {
        return Ok(match first_bytes(body).await {
            Some((first, rest)) => (
                Answered::Stream(Streamed {
                    first,
                    rest,
                    trailers,
                }),
                Ended::Answered {
                    status,
                    retry_after_s: None,
                },
            ),
            None => failed(&GatewayError::UpstreamUnavailable {
                target: attempt.provider.clone(),
                detail: "the stream closed before its first byte".into(),
            }),
        });
    }
    let body = match read_whole(body, trailers, ANSWER_LIMIT).await {
        Ok(body) => body,
        Err(detail) => {
            return Ok(failed(&GatewayError::UpstreamUnavailable {
                target: attempt.provider.clone(),
                detail,
            }));
        }
    };
    let reply = call.respond(index as u32, status, &body);
    let ended = Ended::Answered {
        status: reply.status,
        retry_after_s: retry_after,
    };
    Ok((Answered::Replied(reply), ended))
}

/// Sends one attempt; the answer with its body still streaming.
async fn send(
    attempt: &Attempt,
    headers: Vec<upstream::Header>,
    timeout_ms: u32,
) -> Result<Response, GatewayError> {
    let method = match attempt.method.as_str() {
        "GET" => Method::Get,
        _ => Method::Post,
    };
    upstream::send_bytes(
        &attempt.url,
        method,
        headers,
        attempt.body.clone(),
        timeout_ms,
    )
    .await
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

/// Reads the client's request body, refusing one over [`BODY_LIMIT`]. The
/// rest of a body a little over the limit is read and dropped, so the
/// client, still sending, gets the refusal; one declared far over it is
/// refused at once.
async fn read_request(request: Request) -> Result<Vec<u8>, GatewayError> {
    let too_large = || GatewayError::RequestTooLarge {
        limit: BODY_LIMIT as u64,
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
        let failed = crate::body::body_error(&error);
        let _ = done.write(Err(error)).await;
        return Err(failed);
    }
    let _ = done.write(Ok(())).await;
    Ok(bytes)
}

/// The client's response headers for an answer: the reply's, then the
/// gateway's.
fn answer_fields(
    reply_headers: Vec<(String, String)>,
    answer: &AnswerFor<'_>,
    served_by: Option<ServedBy<'_>>,
) -> Result<Fields, GatewayError> {
    let mut headers = response::ai_answer(reply_headers, answer, served_by);
    crate::add_build_label(&mut headers);
    Fields::from_list(&upstream::header_list(&headers)).map_err(|e| GatewayError::ComponentFailed {
        component: "gateway".into(),
        detail: format!("{e:?}"),
    })
}

fn send_reply(
    reply: Reply,
    answer: &AnswerFor<'_>,
    served_by: Option<ServedBy<'_>>,
) -> Result<Response, GatewayError> {
    let headers = answer_fields(reply.headers, answer, served_by)?;
    let (mut writer, body) = wit_stream::new::<u8>();
    let bytes = reply.body;
    wit_bindgen::spawn(async move {
        writer.write_all(bytes).await;
    });
    let (response, sent) = Response::new(headers, Some(body), wit_future::new(|| Ok(None)).1);
    response
        .set_status_code(reply.status)
        .map_err(|()| GatewayError::ComponentFailed {
            component: "gateway".into(),
            detail: format!("status {} refused", reply.status),
        })?;
    wit_bindgen::spawn(async move {
        let _ = sent.await;
    });
    Ok(response)
}

/// A provider's streamed answer: its first bytes, the rest, its end.
struct Streamed {
    first: Vec<u8>,
    rest: StreamReader<u8>,
    trailers: TrailersReader,
}

/// Answers with the translated stream: each upstream chunk is translated
/// and written as it arrives; `done` runs once the stream's usage is
/// counted, with when its first bytes reached the client.
fn stream_back(
    translator: Translator,
    upstream: Streamed,
    answer: &AnswerFor<'_>,
    served_by: Option<ServedBy<'_>>,
    done: impl FnOnce(Option<Instant>) + 'static,
) -> Result<Response, GatewayError> {
    let Streamed {
        first,
        mut rest,
        trailers,
    } = upstream;
    let headers = answer_fields(translator.headers(), answer, served_by)?;
    let (mut writer, body) = wit_stream::new::<u8>();
    let (response, sent) = Response::new(headers, Some(body), wit_future::new(|| Ok(None)).1);
    response
        .set_status_code(200)
        .map_err(|()| GatewayError::ComponentFailed {
            component: "gateway".into(),
            detail: "status 200 refused".into(),
        })?;
    wit_bindgen::spawn(async move {
        let _ = sent.await;
    });
    wit_bindgen::spawn(async move {
        let mut client_gone = false;
        let mut first_out = None;
        let out = translator.push(&first);
        if !out.is_empty() {
            first_out = Some(Instant::now());
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
                    first_out.get_or_insert_with(Instant::now);
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
        done(first_out);
        if !client_gone && !tail.is_empty() {
            writer.write_all(tail).await;
        }
    });
    Ok(response)
}
