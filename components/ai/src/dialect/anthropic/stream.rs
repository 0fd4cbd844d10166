//! Anthropic SSE streams: `message_start`, `content_block_*`,
//! `message_delta`, `message_stop`, `ping`, `error`.

use super::types::{InEvent, OutDelta, OutEvent, OutMessageDelta, OutResponse, OutStartBlock};
use super::{JSON_TOOL, stop_reason_in, stop_reason_out, usage_in, usage_out};
use crate::dialect::{Dialect, wire};
use crate::errors::{ApiError, ErrorKind, TranslateError};
use crate::ir::{BlockStart, Delta, StopReason, StreamEvent, Usage};
use crate::sse;

/// Reads Anthropic stream events into IR events.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Cumulative usage.
    usage: Usage,
    /// The index of a [`JSON_TOOL`] block, streamed on as text.
    json_block: Option<usize>,
    /// Whether a real tool was called.
    called_tool: bool,
    /// `message_delta` brought a stop reason.
    stopped: bool,
    /// `message_stop` or an error was seen.
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
        let index = || {
            wire.index
                .ok_or_else(|| TranslateError::Stream(format!("{} without index", wire.kind)))
        };
        match wire.kind.as_str() {
            "message_start" => {
                let message = wire.message.ok_or_else(|| {
                    TranslateError::Stream("message_start without message".into())
                })?;
                self.usage = usage_in(&message.usage);
                out.push(StreamEvent::MessageStart {
                    id: message.id,
                    model: message.model,
                    created: 0,
                    usage: self.usage,
                });
            }
            "content_block_start" => {
                let index = index()?;
                let block = wire.content_block.ok_or_else(|| {
                    TranslateError::Stream("content_block_start without content_block".into())
                })?;
                let (start, initial) = match block.kind.as_str() {
                    "text" => (BlockStart::Text, block.text.map(Delta::Text)),
                    "thinking" => (BlockStart::Thinking, block.thinking.map(Delta::Thinking)),
                    "redacted_thinking" => (
                        BlockStart::RedactedThinking {
                            data: block.data.unwrap_or_default(),
                        },
                        None,
                    ),
                    "tool_use" if block.name.as_deref() == Some(JSON_TOOL) => {
                        self.json_block = Some(index);
                        (BlockStart::Text, None)
                    }
                    "tool_use" => {
                        self.called_tool = true;
                        let start = BlockStart::ToolUse {
                            id: block.id.unwrap_or_default(),
                            name: block.name.unwrap_or_default(),
                        };
                        (start, None)
                    }
                    other => {
                        return Err(TranslateError::unsupported(format!(
                            "Anthropic content block type `{other}`"
                        )));
                    }
                };
                out.push(StreamEvent::BlockStart {
                    index,
                    block: start,
                });
                if let Some(delta) = initial.filter(|d| !d.is_empty()) {
                    out.push(StreamEvent::BlockDelta { index, delta });
                }
            }
            "content_block_delta" => {
                let index = index()?;
                let Some(delta) = wire.delta else {
                    return Err(TranslateError::Stream(
                        "content_block_delta without delta".into(),
                    ));
                };
                let delta = match delta.kind.as_deref() {
                    Some("text_delta") => Delta::Text(delta.text.unwrap_or_default()),
                    Some("input_json_delta") if self.json_block == Some(index) => {
                        Delta::Text(delta.partial_json.unwrap_or_default())
                    }
                    Some("input_json_delta") => Delta::Json(delta.partial_json.unwrap_or_default()),
                    Some("thinking_delta") => Delta::Thinking(delta.thinking.unwrap_or_default()),
                    Some("signature_delta") => {
                        Delta::Signature(delta.signature.unwrap_or_default())
                    }
                    // Citations and future delta types carry nothing the
                    // other dialects can show.
                    _ => return Ok(()),
                };
                out.push(StreamEvent::BlockDelta { index, delta });
            }
            "content_block_stop" => out.push(StreamEvent::BlockStop { index: index()? }),
            "message_delta" => {
                if let Some(usage) = &wire.usage {
                    self.usage.merge(&usage_in(usage));
                }
                let (mut stop_reason, stop_sequence) = match wire.delta {
                    Some(delta) => (
                        delta.stop_reason.as_deref().map(stop_reason_in),
                        delta.stop_sequence,
                    ),
                    None => (None, None),
                };
                if self.json_block.is_some()
                    && !self.called_tool
                    && stop_reason == Some(StopReason::ToolUse)
                {
                    stop_reason = Some(StopReason::EndTurn);
                }
                self.stopped |= stop_reason.is_some();
                out.push(StreamEvent::MessageDelta {
                    stop_reason,
                    stop_sequence,
                    usage: Some(self.usage),
                });
            }
            "message_stop" => {
                self.ended = true;
                out.push(StreamEvent::MessageStop);
            }
            "error" => {
                self.ended = true;
                out.push(StreamEvent::Error(ApiError::in_stream(
                    Dialect::Anthropic,
                    event,
                )));
            }
            // `ping` and event types added later.
            _ => {}
        }
        Ok(())
    }

    /// The upstream closed: a stream that stopped without `message_stop`
    /// is completed, one cut off before its stop reason is an error.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.ended {
            self.ended = true;
            out.push(if self.stopped {
                StreamEvent::MessageStop
            } else {
                StreamEvent::Error(ApiError::new(
                    ErrorKind::Server,
                    "upstream stream ended early",
                ))
            });
        }
    }
}

/// Writes IR events as Anthropic stream events. The stop reason and the
/// usage are held back until `MessageStop` so that one `message_delta`
/// carries both.
#[derive(Debug, Default)]
pub struct Encoder {
    stop_reason: Option<StopReason>,
    stop_sequence: Option<String>,
    usage: Usage,
}

impl Encoder {
    /// Writes one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<sse::Event>) {
        let out_event = match event {
            StreamEvent::MessageStart {
                id, model, usage, ..
            } => {
                self.usage = *usage;
                OutEvent::MessageStart {
                    message: OutResponse {
                        id,
                        kind: "message",
                        role: "assistant",
                        model,
                        content: Vec::new(),
                        stop_reason: None,
                        stop_sequence: None,
                        usage: usage_out(usage),
                    },
                }
            }
            StreamEvent::BlockStart { index, block } => OutEvent::ContentBlockStart {
                index: *index,
                content_block: match block {
                    BlockStart::Text => OutStartBlock::Text { text: "" },
                    BlockStart::Thinking => OutStartBlock::Thinking { thinking: "" },
                    BlockStart::RedactedThinking { data } => {
                        OutStartBlock::RedactedThinking { data }
                    }
                    BlockStart::ToolUse { id, name } => OutStartBlock::ToolUse {
                        id,
                        name,
                        input: serde_json::Map::new(),
                    },
                },
            },
            StreamEvent::BlockDelta { index, delta } => OutEvent::ContentBlockDelta {
                index: *index,
                delta: match delta {
                    Delta::Text(text) => OutDelta::Text { text },
                    Delta::Json(partial_json) => OutDelta::InputJson { partial_json },
                    Delta::Thinking(thinking) => OutDelta::Thinking { thinking },
                    Delta::Signature(signature) => OutDelta::Signature { signature },
                },
            },
            StreamEvent::BlockStop { index } => OutEvent::ContentBlockStop { index: *index },
            StreamEvent::MessageDelta {
                stop_reason,
                stop_sequence,
                usage,
            } => {
                self.stop_reason = stop_reason.or(self.stop_reason);
                if stop_sequence.is_some() {
                    self.stop_sequence.clone_from(stop_sequence);
                }
                if let Some(usage) = usage {
                    self.usage.merge(usage);
                }
                return;
            }
            StreamEvent::MessageStop => {
                push(
                    out,
                    &OutEvent::MessageDelta {
                        delta: OutMessageDelta {
                            stop_reason: Some(stop_reason_out(
                                self.stop_reason.unwrap_or(StopReason::EndTurn),
                            )),
                            stop_sequence: self.stop_sequence.as_deref(),
                        },
                        usage: usage_out(&self.usage),
                    },
                );
                OutEvent::MessageStop
            }
            StreamEvent::Error(error) => {
                out.push(sse::Event::named(
                    "error",
                    error.to_value(Dialect::Anthropic).to_string(),
                ));
                return;
            }
        };
        push(out, &out_event);
    }
}

fn push(out: &mut Vec<sse::Event>, event: &OutEvent) {
    let name = match event {
        OutEvent::MessageStart { .. } => "message_start",
        OutEvent::ContentBlockStart { .. } => "content_block_start",
        OutEvent::ContentBlockDelta { .. } => "content_block_delta",
        OutEvent::ContentBlockStop { .. } => "content_block_stop",
        OutEvent::MessageDelta { .. } => "message_delta",
        OutEvent::MessageStop => "message_stop",
    };
    out.push(sse::Event::named(name, wire::to_string(event)));
}
