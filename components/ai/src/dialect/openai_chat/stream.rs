//! OpenAI Chat streams: `chat.completion.chunk` data events ending in
//! `[DONE]`, tool calls as index-keyed fragments, and a final usage chunk
//! with empty `choices` when the client asked for it.

use super::types::{
    InChunk, InDelta, OutChunk, OutChunkChoice, OutDelta, OutFunctionDelta, OutToolCallDelta,
    WireThinkingBlock,
};
use super::{finish_reason_in, finish_reason_out, fold_id, unfold_id, usage_in, usage_out};
use crate::dialect::message::{BlockIndices, MessageState};
use crate::dialect::{Dialect, StreamOptions, wire};
use crate::errors::{ApiError, ErrorKind, TranslateError};
use crate::ir::{BlockStart, Delta, StopReason, StreamEvent, Usage};
use crate::sse;

const DONE: &str = "[DONE]";

/// The block a decoder has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
    Thinking(usize),
    Tool { index: usize, call: usize },
}

impl Open {
    fn index(self) -> usize {
        match self {
            Open::Text(index) | Open::Thinking(index) | Open::Tool { index, .. } => index,
        }
    }
}

/// Reads OpenAI Chat chunks into IR events. Tool call fragments are keyed
/// by their `index`; text, reasoning and each call become blocks in the
/// order they begin.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    indices: BlockIndices,
    open: Option<Open>,
    /// OpenAI indices of the calls seen so far.
    calls: Vec<usize>,
    finished: bool,
    ended: bool,
    usage: Usage,
}

impl Decoder {
    /// Reads one chunk.
    pub fn decode(
        &mut self,
        event: &sse::Event,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), TranslateError> {
        if self.ended {
            return Ok(());
        }
        if event.data.trim() == DONE {
            self.close(out);
            if !self.finished {
                self.finished = true;
                out.push(StreamEvent::MessageDelta {
                    stop_reason: Some(self.default_stop()),
                    stop_sequence: None,
                    usage: None,
                });
            }
            self.ended = true;
            out.push(StreamEvent::MessageStop);
            return Ok(());
        }
        let chunk: InChunk = serde_json::from_str(&event.data)?;
        if chunk.error.is_some() {
            self.ended = true;
            out.push(StreamEvent::Error(ApiError::in_stream(
                Dialect::OpenAiChat,
                event,
            )));
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::MessageStart {
                id: chunk.id,
                model: chunk.model,
                created: chunk.created,
                usage: Usage::default(),
            });
        }
        let mut finish = None;
        for choice in chunk.choices.into_iter().flatten().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                self.delta(delta, out)?;
            }
            finish = finish.or(choice.finish_reason);
        }
        if let Some(usage) = &chunk.usage {
            self.usage.merge(&usage_in(usage));
        }
        let usage = chunk.usage.is_some().then_some(self.usage);
        if let Some(reason) = finish {
            self.close(out);
            self.finished = true;
            let mut stop_reason = finish_reason_in(&reason);
            if stop_reason == StopReason::EndTurn {
                stop_reason = self.default_stop();
            }
            out.push(StreamEvent::MessageDelta {
                stop_reason: Some(stop_reason),
                stop_sequence: None,
                usage,
            });
        } else if usage.is_some() {
            out.push(StreamEvent::MessageDelta {
                stop_reason: None,
                stop_sequence: None,
                usage,
            });
        }
        Ok(())
    }

    /// The upstream closed: without `[DONE]` but after a finish reason the
    /// stream is complete; before one it was cut off.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.finished {
            out.push(StreamEvent::MessageStop);
        } else {
            out.push(StreamEvent::Error(ApiError::new(
                ErrorKind::Server,
                "upstream stream ended early",
            )));
        }
    }

    /// `stop` after tool calls means the model called tools.
    fn default_stop(&self) -> StopReason {
        if self.calls.is_empty() {
            StopReason::EndTurn
        } else {
            StopReason::ToolUse
        }
    }

    fn delta(&mut self, delta: InDelta, out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        let reasoning = delta
            .reasoning_content
            .or(delta.reasoning)
            .filter(|r| !r.is_empty());
        let streamed_reasoning = reasoning.is_some();
        if let Some(text) = reasoning {
            let index = self.open_block(Open::Thinking, BlockStart::Thinking, out);
            out.push(StreamEvent::BlockDelta {
                index,
                delta: Delta::Thinking(text),
            });
        }
        for block in delta.thinking_blocks.into_iter().flatten() {
            if block.kind == "redacted_thinking" {
                self.close(out);
                let index = self.indices.start(
                    BlockStart::RedactedThinking {
                        data: block.data.unwrap_or_default(),
                    },
                    out,
                );
                out.push(StreamEvent::BlockStop { index });
                continue;
            }
            let text = block
                .thinking
                .filter(|t| !t.is_empty() && !streamed_reasoning);
            let signature = block.signature.filter(|s| !s.is_empty());
            for delta in [text.map(Delta::Thinking), signature.map(Delta::Signature)]
                .into_iter()
                .flatten()
            {
                let index = self.open_block(Open::Thinking, BlockStart::Thinking, out);
                out.push(StreamEvent::BlockDelta { index, delta });
            }
        }
        if let Some(text) = delta.content.or(delta.refusal).filter(|t| !t.is_empty()) {
            let index = self.open_block(Open::Text, BlockStart::Text, out);
            out.push(StreamEvent::BlockDelta {
                index,
                delta: Delta::Text(text),
            });
        }
        for fragment in delta.tool_calls.into_iter().flatten() {
            let current = match self.open {
                Some(Open::Tool { call, .. }) => Some(call),
                _ => None,
            };
            let call = fragment.index.unwrap_or(match (&fragment.id, current) {
                (None, Some(current)) => current,
                _ => self.calls.len(),
            });
            let (name, arguments) = match fragment.function {
                Some(f) => (f.name, f.arguments),
                None => (None, None),
            };
            let index = match self.open {
                Some(Open::Tool { index, call: open }) if open == call => index,
                _ if self.calls.contains(&call) => {
                    return Err(TranslateError::Stream(format!(
                        "fragment of tool call {call} after a later block began"
                    )));
                }
                _ => {
                    self.close(out);
                    self.calls.push(call);
                    let (id, signature) =
                        unfold_id(fragment.id.unwrap_or_else(|| format!("call_{call}")));
                    if let Some(signature) = signature {
                        let index = self.indices.start(BlockStart::Thinking, out);
                        out.push(StreamEvent::BlockDelta {
                            index,
                            delta: Delta::Signature(signature),
                        });
                        out.push(StreamEvent::BlockStop { index });
                    }
                    let start = BlockStart::ToolUse {
                        id,
                        name: name.unwrap_or_default(),
                    };
                    let index = self.indices.start(start, out);
                    self.open = Some(Open::Tool { index, call });
                    index
                }
            };
            if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: Delta::Json(arguments),
                });
            }
        }
        Ok(())
    }

    /// The index of the open block of this kind, opening one if needed.
    fn open_block(
        &mut self,
        kind: fn(usize) -> Open,
        start: BlockStart,
        out: &mut Vec<StreamEvent>,
    ) -> usize {
        if let Some(open) = self.open
            && open == kind(open.index())
        {
            return open.index();
        }
        self.close(out);
        let index = self.indices.start(start, out);
        self.open = Some(kind(index));
        index
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(open) = self.open.take() {
            out.push(StreamEvent::BlockStop {
                index: open.index(),
            });
        }
    }
}

/// Writes IR events as OpenAI Chat chunks.
#[derive(Debug)]
pub struct Encoder {
    options: StreamOptions,
    message: MessageState,
    next_call: usize,
    call: Option<usize>,
    /// The open thinking block has shown text.
    thinking_text: bool,
    /// A bare signature waiting to be folded into the next call's id.
    pending_signature: Option<String>,
    ended: bool,
}

impl Encoder {
    /// An encoder for a client with these options.
    pub fn new(options: StreamOptions) -> Self {
        Encoder {
            options,
            message: MessageState::new(options.created),
            next_call: 0,
            call: None,
            thinking_text: false,
            pending_signature: None,
            ended: false,
        }
    }

    /// Writes one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<sse::Event>) {
        if self.ended {
            return;
        }
        match event {
            StreamEvent::MessageStart { .. } => {
                self.message.observe(event);
                self.push(
                    out,
                    OutDelta {
                        role: Some("assistant"),
                        content: Some(""),
                        ..OutDelta::default()
                    },
                );
            }
            StreamEvent::BlockStart { block, .. } => match block {
                BlockStart::Text => self.flush_signature(out),
                BlockStart::Thinking => {
                    self.flush_signature(out);
                    self.thinking_text = false;
                }
                BlockStart::RedactedThinking { data } => {
                    self.flush_signature(out);
                    self.push(
                        out,
                        OutDelta {
                            thinking_blocks: Some([WireThinkingBlock {
                                kind: "redacted_thinking".to_owned(),
                                thinking: None,
                                signature: None,
                                data: Some(data.clone()),
                            }]),
                            ..OutDelta::default()
                        },
                    );
                }
                BlockStart::ToolUse { id, name } => {
                    let id = match self.pending_signature.take() {
                        Some(signature) => fold_id(id, &signature),
                        None => id.clone(),
                    };
                    let call = self.next_call;
                    self.next_call += 1;
                    self.call = Some(call);
                    self.push(
                        out,
                        OutDelta {
                            tool_calls: Some([OutToolCallDelta {
                                index: call,
                                id: Some(&id),
                                kind: Some("function"),
                                function: OutFunctionDelta {
                                    name: Some(name.as_str()),
                                    arguments: "",
                                },
                            }]),
                            ..OutDelta::default()
                        },
                    );
                }
            },
            StreamEvent::BlockDelta { delta, .. } => match delta {
                Delta::Text(text) => self.push(
                    out,
                    OutDelta {
                        content: Some(text.as_str()),
                        ..OutDelta::default()
                    },
                ),
                Delta::Thinking(text) => {
                    self.thinking_text = true;
                    self.push(
                        out,
                        OutDelta {
                            reasoning_content: Some(text.as_str()),
                            ..OutDelta::default()
                        },
                    );
                }
                Delta::Json(arguments) => {
                    if let Some(call) = self.call {
                        self.push(
                            out,
                            OutDelta {
                                tool_calls: Some([OutToolCallDelta {
                                    index: call,
                                    id: None,
                                    kind: None,
                                    function: OutFunctionDelta {
                                        name: None,
                                        arguments,
                                    },
                                }]),
                                ..OutDelta::default()
                            },
                        );
                    }
                }
                Delta::Signature(signature) if self.thinking_text => {
                    self.push_signature(out, signature.clone())
                }
                Delta::Signature(signature) => self
                    .pending_signature
                    .get_or_insert_with(String::new)
                    .push_str(signature),
            },
            StreamEvent::BlockStop { .. } => self.call = None,
            StreamEvent::MessageDelta { .. } => self.message.observe(event),
            StreamEvent::MessageStop => {
                self.flush_signature(out);
                let finish =
                    finish_reason_out(self.message.stop_reason.unwrap_or(StopReason::EndTurn));
                self.push_chunk(out, Some((OutDelta::default(), finish)), None);
                if self.options.include_usage {
                    self.push_chunk(out, None, Some(usage_out(&self.message.usage)));
                }
                out.push(sse::Event::data(DONE));
                self.ended = true;
            }
            StreamEvent::Error(error) => {
                out.push(sse::Event::data(
                    error.to_value(Dialect::OpenAiChat).to_string(),
                ));
                self.ended = true;
            }
        }
    }

    fn flush_signature(&mut self, out: &mut Vec<sse::Event>) {
        if let Some(signature) = self.pending_signature.take() {
            self.push_signature(out, signature);
        }
    }

    fn push_signature(&self, out: &mut Vec<sse::Event>, signature: String) {
        self.push(
            out,
            OutDelta {
                thinking_blocks: Some([WireThinkingBlock {
                    kind: "thinking".to_owned(),
                    thinking: Some(String::new()),
                    signature: Some(signature),
                    data: None,
                }]),
                ..OutDelta::default()
            },
        );
    }

    fn push(&self, out: &mut Vec<sse::Event>, delta: OutDelta) {
        self.push_chunk(out, Some((delta, "")), None);
    }

    /// One chunk: a choice with `delta` and a finish reason (empty for
    /// none), or no choice and the usage.
    fn push_chunk(
        &self,
        out: &mut Vec<sse::Event>,
        choice: Option<(OutDelta, &'static str)>,
        usage: Option<super::types::WireUsage>,
    ) {
        let chunk = OutChunk {
            id: &self.message.id,
            object: "chat.completion.chunk",
            created: self.message.created,
            model: &self.message.model,
            choices: choice
                .map(|(delta, finish)| OutChunkChoice {
                    index: 0,
                    delta,
                    finish_reason: (!finish.is_empty()).then_some(finish),
                })
                .into_iter()
                .collect(),
            usage,
        };
        out.push(sse::Event::data(wire::to_string(&chunk)));
    }
}
