//! Fake AI providers on 127.0.0.1 that follow each provider's wire format
//! as its public API reference documents it (the gateway's side of each
//! format is in the dialect modules, `components/ai/src/dialect/`, and
//! recorded exchanges are in `tests/ai-conformance/`): OpenAI Chat
//! Completions (`POST …/chat/completions`) and Anthropic Messages
//! (`POST /v1/messages`), whole or streamed as server-sent events, with
//! text and tool calls, and their error bodies; OpenAI's
//! `POST …/embeddings` too; and Google Gemini
//! (`POST /v1beta/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse`).
//!
//! Like many simple servers, a provider refuses a body without a
//! `content-length` (411), so every AI test shows that the gateway sends
//! one.
//!
//! Each provider records every request it gets (path, headers, JSON body)
//! and answers with the next [`Answer`] of its script (the last one
//! repeats). A streamed answer can be held after its first content event
//! until the test opens the provider's [`Gate`], to show that the client
//! gets what was sent before the rest exists.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

type Body = BoxBody<Bytes, Infallible>;

/// The API a fake provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
}

impl Kind {
    /// What a fake provider of this kind serves, so that tests running
    /// over every provider skip what it does not.
    pub fn capabilities(self) -> Capabilities {
        Capabilities {
            responses_api: false,
            embeddings: self == Kind::OpenAi,
            tool_call_ids: self != Kind::Gemini,
        }
    }
}

/// What a fake provider serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// OpenAI's Responses API (`POST …/responses`): no fake serves it, so
    /// a call the gateway makes in that dialect finds no route.
    pub responses_api: bool,
    /// OpenAI's embeddings (`POST …/embeddings`).
    pub embeddings: bool,
    /// Whether its tool calls carry ids: Gemini's function calls have none,
    /// the gateway makes them up.
    pub tool_call_ids: bool,
}

/// A tool call a provider makes.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The call id.
    pub id: &'static str,
    /// The tool's name.
    pub name: &'static str,
    /// The arguments, JSON text, sent in these fragments when streamed.
    pub fragments: Vec<&'static str>,
}

impl ToolCall {
    /// The whole arguments text.
    pub fn arguments(&self) -> String {
        self.fragments.concat()
    }
}

/// One answer of a provider.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A completion: text in pieces (streamed one piece per event), then
    /// tool calls; usage as given.
    Complete {
        /// The text, in the pieces a stream sends.
        text: Vec<&'static str>,
        /// Tool calls after the text.
        tools: Vec<ToolCall>,
        /// Prompt tokens reported.
        input_tokens: u64,
        /// Completion tokens reported.
        output_tokens: u64,
    },
    /// An error status with the provider's error body.
    Error {
        /// The status.
        status: u16,
        /// The error type (`rate_limit_error`, `overloaded_error`, …).
        kind: &'static str,
        /// The message.
        message: &'static str,
    },
    /// Reads the request, then closes the connection without answering.
    Close,
    /// Another answer, after a wait.
    Delayed(std::time::Duration, Box<Answer>),
}

impl Answer {
    /// A text answer with usage.
    pub fn text(pieces: &[&'static str], input_tokens: u64, output_tokens: u64) -> Answer {
        Answer::Complete {
            text: pieces.to_vec(),
            tools: Vec::new(),
            input_tokens,
            output_tokens,
        }
    }
}

/// A request a provider got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
    /// The body's length in bytes.
    pub length: usize,
}

impl Received {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::header_of(&self.headers, name)
    }
}

/// Holds streamed answers after their first content event until opened.
#[derive(Clone)]
pub struct Gate(Arc<Semaphore>);

impl Gate {
    /// Lets every held stream go on.
    pub fn open(&self) {
        self.0.add_permits(1_000);
    }
}

struct State {
    kind: Kind,
    script: Vec<Answer>,
    received: Vec<Received>,
    gate: Option<Gate>,
}

/// A running fake provider; stops when the test's runtime ends.
pub struct Provider {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Provider {
    /// Starts a provider of `kind` answering with `script`, in order.
    pub async fn start(kind: Kind, script: Vec<Answer>) -> Provider {
        assert!(!script.is_empty(), "a provider needs at least one answer");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            kind,
            script,
            received: Vec::new(),
            gate: None,
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Provider { addr, state }
    }

    /// The base URL a config names: with `/v1` for OpenAI (as OpenAI's own
    /// clients take it), without for Anthropic.
    pub fn base_url(&self) -> String {
        match self.state.lock().unwrap().kind {
            Kind::OpenAi => format!("http://{}/v1", self.addr),
            Kind::Anthropic | Kind::Gemini => format!("http://{}", self.addr),
        }
    }

    /// Holds streamed answers after their first content event until the
    /// returned gate opens.
    pub fn hold_streams(&self) -> Gate {
        let gate = Gate(Arc::new(Semaphore::new(0)));
        self.state.lock().unwrap().gate = Some(gate.clone());
        gate
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, String> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if req.method() == hyper::Method::POST && !req.headers().contains_key("content-length") {
        return Ok(json_response(
            411,
            json!({"error": {"message": "a body needs a content-length"}}),
        ));
    }
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (kind, answer, gate) = {
        let mut state = state.lock().unwrap();
        state.received.push(Received {
            path: path.clone(),
            headers,
            body: body.clone(),
            length: bytes.len(),
        });
        let n = state.received.len() - 1;
        let answer = state.script[n.min(state.script.len() - 1)].clone();
        (state.kind, answer, state.gate.clone())
    };
    if kind.capabilities().embeddings && path.ends_with("/embeddings") {
        return Ok(json_response(200, embeddings(&body)));
    }
    // Gemini names the model and whether to stream in the path.
    let gemini = path
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| match rest.split_once(':') {
            Some((model, "generateContent")) => Some((model.to_owned(), false)),
            Some((model, "streamGenerateContent?alt=sse")) => Some((model.to_owned(), true)),
            _ => None,
        });
    let expected = match kind {
        // Azure deployments: `…/chat/completions?api-version=…`.
        Kind::OpenAi => path
            .split('?')
            .next()
            .is_some_and(|p| p.ends_with("/chat/completions")),
        Kind::Anthropic => path == "/v1/messages",
        Kind::Gemini => gemini.is_some(),
    };
    if !expected {
        return Ok(json_response(
            404,
            json!({"error": {"message": format!("no route {path}")}}),
        ));
    }
    let (model, stream) = match gemini {
        Some(found) => found,
        None => (
            body["model"].as_str().unwrap_or_default().to_owned(),
            body["stream"].as_bool().unwrap_or(false),
        ),
    };
    let answer = match answer {
        Answer::Delayed(wait, answer) => {
            tokio::time::sleep(wait).await;
            *answer
        }
        answer => answer,
    };
    match answer {
        // An error from the service makes hyper close the connection
        // without a response.
        Answer::Close => Err("closing without an answer".to_owned()),
        Answer::Delayed(..) => Err("one delay per answer".to_owned()),
        Answer::Error {
            status,
            kind: error_kind,
            message,
        } => Ok(json_response(status, error_body(kind, error_kind, message))),
        Answer::Complete {
            text,
            tools,
            input_tokens,
            output_tokens,
        } => {
            let usage = (input_tokens, output_tokens);
            if !stream {
                return Ok(json_response(
                    200,
                    whole(kind, &model, &text, &tools, usage),
                ));
            }
            let include_usage = body["stream_options"]["include_usage"]
                .as_bool()
                .unwrap_or(false);
            // Held after the first text event: OpenAI's role chunk and first
            // piece; Anthropic's message_start, block start, ping and first
            // delta.
            let hold_at = match kind {
                Kind::OpenAi => 2,
                Kind::Anthropic => 4,
                Kind::Gemini => 1,
            };
            let events = events(kind, &model, &text, &tools, usage, include_usage);
            Ok(sse_response(events, gate.map(|g| (g, hold_at))))
        }
    }
}

fn json_response(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

/// Sends `events` one frame each; with a gate, holds before event
/// `hold_at` until it opens.
fn sse_response(events: Vec<String>, gate: Option<(Gate, usize)>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        for (i, event) in events.into_iter().enumerate() {
            if let Some((gate, hold_at)) = &gate
                && i == *hold_at
            {
                let _ = gate.0.acquire().await.map(|p| p.forget());
            }
            if tx.send(Ok(Frame::data(Bytes::from(event)))).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("response")
}

/// OpenAI's embeddings answer: one three-number vector per input (a string
/// or a list of strings), a token per input word.
fn embeddings(request: &Value) -> Value {
    let inputs: Vec<&str> = match &request["input"] {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let tokens: usize = inputs.iter().map(|i| i.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let n = text.len() as f64;
            json!({"object": "embedding", "index": i, "embedding": [n, n / 2.0, 0.5]})
        })
        .collect();
    json!({"object": "list", "data": data, "model": request["model"],
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

fn error_body(kind: Kind, error_kind: &str, message: &str) -> Value {
    match kind {
        Kind::OpenAi => json!({"error": {"message": message, "type": error_kind,
                                         "param": null, "code": null}}),
        Kind::Gemini => {
            let status = match error_kind {
                "rate_limit_error" => "RESOURCE_EXHAUSTED",
                "overloaded_error" => "UNAVAILABLE",
                _ => "INTERNAL",
            };
            json!({"error": {"code": 0, "message": message, "status": status}})
        }
        Kind::Anthropic => json!({"type": "error",
                                  "error": {"type": error_kind, "message": message}}),
    }
}

/// A whole response body.
fn whole(kind: Kind, model: &str, text: &[&str], tools: &[ToolCall], usage: (u64, u64)) -> Value {
    let text = text.concat();
    match kind {
        Kind::OpenAi => {
            let tool_calls: Vec<Value> = tools
                .iter()
                .map(|t| {
                    json!({"id": t.id, "type": "function",
                                "function": {"name": t.name, "arguments": t.arguments()}})
                })
                .collect();
            let mut message = json!({"role": "assistant", "content": text, "refusal": null});
            if !tool_calls.is_empty() {
                message["tool_calls"] = Value::Array(tool_calls);
            }
            json!({
                "id": "chatcmpl-fake1", "object": "chat.completion", "created": 1741487325,
                "model": model, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": null,
                             "finish_reason": if tools.is_empty() { "stop" } else { "tool_calls" }}],
                "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
                          "total_tokens": usage.0 + usage.1}
            })
        }
        Kind::Gemini => {
            let mut parts = Vec::new();
            if !text.is_empty() {
                parts.push(json!({"text": text}));
            }
            for t in tools {
                let args: Value = serde_json::from_str(&t.arguments()).expect("tool args");
                parts.push(json!({"functionCall": {"name": t.name, "args": args}}));
            }
            json!({
                "candidates": [{"content": {"role": "model", "parts": parts},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": usage.0, "candidatesTokenCount": usage.1,
                                  "totalTokenCount": usage.0 + usage.1},
                "modelVersion": model, "responseId": "resp-fake1"
            })
        }
        Kind::Anthropic => {
            let mut content = Vec::new();
            if !text.is_empty() {
                content.push(json!({"type": "text", "text": text}));
            }
            for t in tools {
                let input: Value = serde_json::from_str(&t.arguments()).expect("tool input");
                content
                    .push(json!({"type": "tool_use", "id": t.id, "name": t.name, "input": input}));
            }
            json!({
                "id": "msg_fake1", "type": "message", "role": "assistant", "model": model,
                "content": content,
                "stop_reason": if tools.is_empty() { "end_turn" } else { "tool_use" },
                "stop_sequence": null,
                "usage": {"input_tokens": usage.0, "output_tokens": usage.1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
            })
        }
    }
}

/// The events of a streamed response, each a complete SSE event.
fn events(
    kind: Kind,
    model: &str,
    text: &[&str],
    tools: &[ToolCall],
    usage: (u64, u64),
    include_usage: bool,
) -> Vec<String> {
    let data = |value: Value| format!("data: {value}\n\n");
    let named = |name: &str, value: Value| format!("event: {name}\ndata: {value}\n\n");
    let mut out = Vec::new();
    match kind {
        Kind::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                let mut chunk = json!({"id": "chatcmpl-fake1", "object": "chat.completion.chunk",
                    "created": 1741487325, "model": model, "system_fingerprint": "fp_fake",
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
                if include_usage {
                    chunk["usage"] = Value::Null;
                }
                chunk
            };
            out.push(data(chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )));
            for piece in text {
                out.push(data(chunk(json!({"content": piece}), Value::Null)));
            }
            for (i, t) in tools.iter().enumerate() {
                out.push(data(chunk(
                    json!({"tool_calls": [{"index": i, "id": t.id, "type": "function",
                                           "function": {"name": t.name, "arguments": ""}}]}),
                    Value::Null,
                )));
                for fragment in &t.fragments {
                    out.push(data(chunk(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}),
                        Value::Null,
                    )));
                }
            }
            let finish = if tools.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            out.push(data(chunk(json!({}), finish.into())));
            if include_usage {
                out.push(data(
                    json!({"id": "chatcmpl-fake1", "object": "chat.completion.chunk",
                    "created": 1741487325, "model": model, "choices": [],
                    "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
                              "total_tokens": usage.0 + usage.1}}),
                ));
            }
            out.push("data: [DONE]\n\n".to_owned());
        }
        Kind::Gemini => {
            // New parts only in each chunk; calls arrive whole; the last
            // chunk also has the finish reason and the usage. No end marker.
            let chunk = |parts: Value, last: bool| {
                let mut candidate =
                    json!({"content": {"role": "model", "parts": parts}, "index": 0});
                let mut chunk = json!({"modelVersion": model, "responseId": "resp-fake1"});
                if last {
                    candidate["finishReason"] = "STOP".into();
                    chunk["usageMetadata"] = json!({"promptTokenCount": usage.0,
                        "candidatesTokenCount": usage.1, "totalTokenCount": usage.0 + usage.1});
                }
                chunk["candidates"] = json!([candidate]);
                chunk
            };
            let mut parts: Vec<Value> = text.iter().map(|piece| json!([{"text": piece}])).collect();
            for t in tools {
                let args: Value = serde_json::from_str(&t.arguments()).expect("tool args");
                parts.push(json!([{"functionCall": {"name": t.name, "args": args}}]));
            }
            if parts.is_empty() {
                parts.push(json!([]));
            }
            let last = parts.len() - 1;
            for (i, part) in parts.into_iter().enumerate() {
                out.push(data(chunk(part, i == last)));
            }
        }
        Kind::Anthropic => {
            out.push(named(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": "msg_fake1", "type": "message", "role": "assistant", "content": [],
                "model": model, "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": usage.0, "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
            ));
            let mut index = 0;
            if !text.is_empty() {
                out.push(named(
                    "content_block_start",
                    json!({"type": "content_block_start",
                    "index": 0, "content_block": {"type": "text", "text": ""}}),
                ));
                out.push(named("ping", json!({"type": "ping"})));
                for piece in text {
                    out.push(named(
                        "content_block_delta",
                        json!({"type": "content_block_delta",
                        "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                    ));
                }
                out.push(named(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ));
                index = 1;
            }
            for t in tools {
                out.push(named(
                    "content_block_start",
                    json!({"type": "content_block_start",
                    "index": index, "content_block": {"type": "tool_use", "id": t.id,
                    "name": t.name, "input": {}}}),
                ));
                for fragment in &t.fragments {
                    out.push(named(
                        "content_block_delta",
                        json!({"type": "content_block_delta",
                        "index": index, "delta": {"type": "input_json_delta",
                        "partial_json": fragment}}),
                    ));
                }
                out.push(named(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                ));
                index += 1;
            }
            let stop = if tools.is_empty() {
                "end_turn"
            } else {
                "tool_use"
            };
            out.push(named(
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": usage.1}}),
            ));
            out.push(named("message_stop", json!({"type": "message_stop"})));
        }
    }
    out
}
