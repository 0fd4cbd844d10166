//! OpenAI Responses streams: typed events (`response.created`,
//! `response.output_item.added`, `response.output_text.delta`,
//! `response.function_call_arguments.delta`, …, `response.completed`),
//! each with a `sequence_number`.
//!
//! The encoder keeps the text of the open item and the finished items:
//! the protocol's `*.done` events and `response.completed` repeat them.

use serde::Serialize;
use serde_json::{Value, json};

use super::response::{status_out, stop_reason_in};
use super::types::{InEvent, OutPart, OutTypedItem};
use super::{reasoning_item, usage_in, usage_out};
use crate::dialect::message::{BlockIndices, MessageState};
use crate::dialect::{Dialect, StreamOptions, wire};
use crate::errors::{ApiError, ErrorKind, TranslateError};
use crate::ir::{BlockStart, Delta, StopReason, StreamEvent, Usage};
use crate::sse;

/// What kind of block a decoder has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Tool,
}

/// Reads Responses events into IR events.
#[derive(Debug, Default)]
pub struct Decoder {
    indices: BlockIndices,
    open: Option<(usize, Kind)>,
    called_tool: bool,
    ended: bool,
}

impl Decoder {
    /// Reads one event.
    pub fn decode(
        &mut self,
        event: &sse::Event,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), TranslateError> {
        if self.ended {
            return Ok(());
        }
        let wire: InEvent = serde_json::from_str(&event.data)?;
        match wire.kind.as_str() {
            "response.created" => {
                let response = wire.response.unwrap_or_else(empty_response);
                out.push(StreamEvent::MessageStart {
                    id: response.id,
                    model: response.model,
                    created: response.created_at,
                    usage: Usage::default(),
                });
            }
            "response.output_item.added" => {
                let Some(item) = wire.item else {
                    return Ok(());
                };
                match item.kind.as_deref() {
                    Some("function_call") => {
                        self.called_tool = true;
                        let start = BlockStart::ToolUse {
                            id: item.call_id.unwrap_or_default(),
                            name: item.name.unwrap_or_default(),
                        };
                        let index = self.open(Kind::Tool, start, out);
                        if let Some(arguments) = item.arguments.filter(|a| !a.is_empty()) {
                            out.push(StreamEvent::BlockDelta {
                                index,
                                delta: Delta::Json(arguments),
                            });
                        }
                    }
                    Some("reasoning") => {
                        self.open(Kind::Thinking, BlockStart::Thinking, out);
                    }
                    _ => {}
                }
            }
            "response.content_part.added" => {
                self.ensure(Kind::Text, out);
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                let index = self.ensure(Kind::Text, out);
                self.delta(out, index, wire.delta.map(Delta::Text));
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                let index = self.ensure(Kind::Thinking, out);
                self.delta(out, index, wire.delta.map(Delta::Thinking));
            }
            "response.function_call_arguments.delta" => {
                if let Some((index, Kind::Tool)) = self.open {
                    self.delta(out, index, wire.delta.map(Delta::Json));
                }
            }
            "response.content_part.done" => {
                if let Some((_, Kind::Text)) = self.open {
                    self.close(out);
                }
            }
            "response.output_item.done" => {
                let signature = wire.item.and_then(|item| item.encrypted_content);
                if let Some(signature) = signature.filter(|s| !s.is_empty()) {
                    let index = self.ensure(Kind::Thinking, out);
                    self.delta(out, index, Some(Delta::Signature(signature)));
                }
                self.close(out);
            }
            "response.completed" | "response.incomplete" => {
                self.close(out);
                self.ended = true;
                let response = wire.response.unwrap_or_else(empty_response);
                let stop_reason = stop_reason_in(
                    response.status.as_deref(),
                    response.incomplete_details.as_ref(),
                    self.called_tool,
                );
                out.push(StreamEvent::MessageDelta {
                    stop_reason: Some(stop_reason),
                    stop_sequence: None,
                    usage: response.usage.as_ref().map(usage_in),
                });
                out.push(StreamEvent::MessageStop);
            }
            "response.failed" | "error" => {
                self.ended = true;
                let value: Value = serde_json::from_str(&event.data)?;
                let error = value.pointer("/response/error").unwrap_or(&value).clone();
                let mut api_error = ApiError::new(
                    ErrorKind::Server,
                    error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("upstream failed"),
                );
                api_error.code = error.get("code").and_then(Value::as_str).map(str::to_owned);
                if let Some(kind) = api_error.code.as_deref().and_then(kind_of_code) {
                    api_error.kind = kind;
                }
                out.push(StreamEvent::Error(api_error));
            }
            _ => {}
        }
        Ok(())
    }

    /// The upstream closed; without `response.completed` it was cut off.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.ended {
            self.ended = true;
            out.push(StreamEvent::Error(ApiError::new(
                ErrorKind::Server,
                "upstream stream ended early",
            )));
        }
    }

    fn delta(&self, out: &mut Vec<StreamEvent>, index: usize, delta: Option<Delta>) {
        if let Some(delta) = delta {
            out.push(StreamEvent::BlockDelta { index, delta });
        }
    }

    /// The open block of `kind`, opening one if needed.
    fn ensure(&mut self, kind: Kind, out: &mut Vec<StreamEvent>) -> usize {
        match self.open {
            Some((index, open)) if open == kind => index,
            _ => {
                let start = match kind {
                    Kind::Thinking => BlockStart::Thinking,
                    _ => BlockStart::Text,
                };
                self.open(kind, start, out)
            }
        }
    }

    fn open(&mut self, kind: Kind, start: BlockStart, out: &mut Vec<StreamEvent>) -> usize {
        self.close(out);
        let index = self.indices.start(start, out);
        self.open = Some((index, kind));
        index
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
        }
    }
}

fn empty_response() -> super::types::InResponse {
    serde_json::from_str("{}").expect("an empty response parses")
}

fn kind_of_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "rate_limit_exceeded" | "insufficient_quota" => ErrorKind::RateLimit,
        "server_error" => ErrorKind::Server,
        "invalid_prompt" => ErrorKind::InvalidRequest,
        _ => return None,
    })
}

/// The output item the encoder is filling.
#[derive(Debug)]
enum Open {
    Message {
        id: String,
        text: String,
    },
    Reasoning {
        id: String,
        text: String,
        signature: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// A delta event, written without building a JSON tree.
#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<u32>,
    delta: &'a str,
}

/// Writes IR events as Responses events.
#[derive(Debug)]
pub struct Encoder {
    message: MessageState,
    sequence: u64,
    items: Vec<OutTypedItem<'static>>,
    open: Option<Open>,
    ended: bool,
}

impl Encoder {
    /// An encoder for a client with these options.
    pub fn new(options: StreamOptions) -> Self {
        Encoder {
            message: MessageState::new(options.created),
            sequence: 0,
            items: Vec::new(),
            open: None,
            ended: false,
        }
    }

    /// Writes one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<sse::Event>) {
        if self.ended {
            return;
        }
        let output_index = self.items.len();
        match event {
            StreamEvent::MessageStart { .. } => {
                self.message.observe(event);
                let response = self.response_json("in_progress", None, false);
                self.emit(out, "response.created", json!({"response": response}));
            }
            StreamEvent::BlockStart { block, .. } => match block {
                BlockStart::Text => {
                    let id = format!("msg_{output_index}");
                    self.emit(
                        out,
                        "response.output_item.added",
                        json!({"output_index": output_index, "item": {
                            "id": id, "type": "message", "status": "in_progress",
                            "role": "assistant", "content": []}}),
                    );
                    self.emit(
                        out,
                        "response.content_part.added",
                        json!({"item_id": id, "output_index": output_index, "content_index": 0,
                               "part": {"type": "output_text", "text": "", "annotations": []}}),
                    );
                    self.open = Some(Open::Message {
                        id,
                        text: String::new(),
                    });
                }
                BlockStart::Thinking => {
                    let id = format!("rs_{output_index}");
                    self.emit(
                        out,
                        "response.output_item.added",
                        json!({"output_index": output_index,
                               "item": {"id": id, "type": "reasoning", "summary": []}}),
                    );
                    self.open = Some(Open::Reasoning {
                        id,
                        text: String::new(),
                        signature: String::new(),
                    });
                }
                BlockStart::RedactedThinking { data } => {
                    let item =
                        reasoning_item(Some(format!("rs_{output_index}")), "", Some(data.clone()));
                    self.emit(
                        out,
                        "response.output_item.added",
                        json!({"output_index": output_index, "item": item}),
                    );
                    self.finish_item(out, item);
                }
                BlockStart::ToolUse { id: call_id, name } => {
                    let id = format!("fc_{output_index}");
                    self.emit(
                        out,
                        "response.output_item.added",
                        json!({"output_index": output_index, "item": {
                            "id": id, "type": "function_call", "status": "in_progress",
                            "call_id": call_id, "name": name, "arguments": ""}}),
                    );
                    self.open = Some(Open::Call {
                        id,
                        call_id: call_id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    });
                }
            },
            StreamEvent::BlockDelta { delta, .. } => self.delta(out, delta, output_index),
            StreamEvent::BlockStop { .. } => self.close(out, output_index),
            StreamEvent::MessageDelta { .. } => self.message.observe(event),
            StreamEvent::MessageStop => {
                let (status, _) =
                    status_out(self.message.stop_reason.unwrap_or(StopReason::EndTurn));
                let response = self.response_json(status, self.message.stop_reason, true);
                let kind = if status == "completed" {
                    "response.completed"
                } else {
                    "response.incomplete"
                };
                self.emit(out, kind, json!({"response": response}));
                self.ended = true;
            }
            StreamEvent::Error(error) => {
                let body = error.to_value(Dialect::OpenAiResponses);
                let body = &body["error"];
                self.emit(
                    out,
                    "error",
                    json!({"code": body["code"], "message": body["message"], "param": body["param"]}),
                );
                self.ended = true;
            }
        }
    }

    fn delta(&mut self, out: &mut Vec<sse::Event>, delta: &Delta, output_index: usize) {
        let (kind, item_id, content_index, summary_index, text) = match (&mut self.open, delta) {
            (Some(Open::Message { id, text }), Delta::Text(delta)) => {
                text.push_str(delta);
                (
                    "response.output_text.delta",
                    id.clone(),
                    Some(0),
                    None,
                    delta,
                )
            }
            (Some(Open::Reasoning { id, text, .. }), Delta::Thinking(delta)) => {
                let first = text.is_empty();
                text.push_str(delta);
                let id = id.clone();
                if first {
                    self.emit(
                        out,
                        "response.reasoning_summary_part.added",
                        json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                               "part": {"type": "summary_text", "text": ""}}),
                    );
                }
                (
                    "response.reasoning_summary_text.delta",
                    id,
                    None,
                    Some(0),
                    delta,
                )
            }
            (Some(Open::Reasoning { signature, .. }), Delta::Signature(delta)) => {
                signature.push_str(delta);
                return;
            }
            (Some(Open::Call { id, arguments, .. }), Delta::Json(delta)) => {
                arguments.push_str(delta);
                (
                    "response.function_call_arguments.delta",
                    id.clone(),
                    None,
                    None,
                    delta,
                )
            }
            _ => return,
        };
        self.sequence += 1;
        let event = DeltaEvent {
            kind,
            sequence_number: self.sequence,
            item_id: &item_id,
            output_index,
            content_index,
            summary_index,
            delta: text,
        };
        out.push(sse::Event::named(kind, wire::to_string(&event)));
    }

    fn close(&mut self, out: &mut Vec<sse::Event>, output_index: usize) {
        let item = match self.open.take() {
            None => return,
            Some(Open::Message { id, text }) => {
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                           "text": text}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                           "part": {"type": "output_text", "text": text, "annotations": []}}),
                );
                OutTypedItem::Message {
                    id: Some(id),
                    status: Some("completed"),
                    role: "assistant",
                    content: vec![OutPart::OutputText {
                        text,
                        annotations: [],
                    }],
                }
            }
            Some(Open::Reasoning {
                id,
                text,
                signature,
            }) => {
                if !text.is_empty() {
                    self.emit(
                        out,
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                               "text": text}),
                    );
                    self.emit(
                        out,
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                               "part": {"type": "summary_text", "text": text}}),
                    );
                }
                reasoning_item(
                    Some(id),
                    &text,
                    (!signature.is_empty()).then_some(signature),
                )
            }
            Some(Open::Call {
                id,
                call_id,
                name,
                arguments,
            }) => {
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": output_index, "arguments": arguments}),
                );
                OutTypedItem::FunctionCall {
                    id: Some(id),
                    status: Some("completed"),
                    call_id,
                    name,
                    arguments,
                }
            }
        };
        self.finish_item(out, item);
    }

    fn finish_item(&mut self, out: &mut Vec<sse::Event>, item: OutTypedItem<'static>) {
        let output_index = self.items.len();
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
        );
        self.items.push(item);
    }

    /// The response object of `response.created` / `response.completed`.
    fn response_json(&self, status: &str, stop_reason: Option<StopReason>, done: bool) -> Value {
        let incomplete = stop_reason.and_then(|reason| status_out(reason).1);
        json!({
            "id": self.message.id,
            "object": "response",
            "created_at": self.message.created,
            "status": status,
            "model": self.message.model,
            "output": self.items,
            "incomplete_details": incomplete,
            "usage": done.then(|| usage_out(&self.message.usage)),
        })
    }

    /// Writes `type` and `sequence_number` into `body` and emits it.
    fn emit(&mut self, out: &mut Vec<sse::Event>, kind: &'static str, mut body: Value) {
        self.sequence += 1;
        if let Value::Object(map) = &mut body {
            map.insert("type".into(), Value::String(kind.to_owned()));
            map.insert("sequence_number".into(), Value::from(self.sequence));
        }
        out.push(sse::Event::named(kind, body.to_string()));
    }
}
