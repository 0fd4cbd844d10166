//! Gemini streams (`streamGenerateContent?alt=sse`): each `data:` event is
//! a whole `GenerateContentResponse` carrying only new parts, there are no
//! event names and no end marker, the last chunk has the finish reason and
//! the usage, and function calls arrive whole.

use serde::Serialize;
use serde_json::Value;

use super::types::{GenerateResponse, OutFunctionCall, OutPart, WireUsage};
use super::{CallIds, finish_reason_in, finish_reason_out, part_in, usage_in, usage_out};
use crate::dialect::message::{BlockIndices, MessageState};
use crate::dialect::{Dialect, wire};
use crate::errors::{ApiError, ErrorKind, TranslateError};
use crate::ir::{Block, BlockStart, Delta, StopReason, StreamEvent, Usage};
use crate::sse;

/// Reads Gemini chunks into IR events.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    indices: BlockIndices,
    /// The open block: its index and whether it is thinking.
    open: Option<(usize, bool)>,
    ids: Option<CallIds>,
    called: bool,
    usage: Usage,
    ended: bool,
    /// Blocks of the current chunk (kept to reuse the allocation).
    blocks: Vec<Block>,
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
        let chunk: GenerateResponse = serde_json::from_str(&event.data)?;
        if chunk.error.is_some() {
            self.ended = true;
            out.push(StreamEvent::Error(ApiError::in_stream(
                Dialect::Gemini,
                event,
            )));
            return Ok(());
        }
        if let Some(usage) = &chunk.usage_metadata {
            self.usage.merge(&usage_in(usage));
        }
        if !self.started {
            self.started = true;
            self.ids = Some(CallIds::new(super::response::call_prefix(
                &chunk.response_id,
            )));
            out.push(StreamEvent::MessageStart {
                id: chunk.response_id,
                model: chunk.model_version,
                created: 0,
                usage: self.usage,
            });
        }
        let ids = self.ids.as_mut().expect("set at the first chunk");
        let mut finish = None;
        let mut blocks = std::mem::take(&mut self.blocks);
        for candidate in chunk.candidates.into_iter().filter(|c| c.index == 0) {
            for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                part_in(part, ids, &mut blocks)?;
            }
            finish = finish.or(candidate.finish_reason);
        }
        for block in blocks.drain(..) {
            self.block(block, out)?;
        }
        self.blocks = blocks;
        let blocked = chunk.prompt_feedback.and_then(|f| f.block_reason).is_some();
        let stop_reason = match finish {
            Some(reason) => Some(finish_reason_in(&reason)),
            None if blocked => Some(StopReason::ContentFilter),
            None => None,
        };
        if let Some(mut stop_reason) = stop_reason {
            self.close(out);
            if stop_reason == StopReason::EndTurn && self.called {
                stop_reason = StopReason::ToolUse;
            }
            self.ended = true;
            out.push(StreamEvent::MessageDelta {
                stop_reason: Some(stop_reason),
                stop_sequence: None,
                usage: Some(self.usage),
            });
            out.push(StreamEvent::MessageStop);
        }
        Ok(())
    }

    /// The upstream closed; without a finish reason the stream was cut off.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.ended {
            self.ended = true;
            out.push(StreamEvent::Error(ApiError::new(
                ErrorKind::Server,
                "upstream stream ended early",
            )));
        }
    }

    fn block(&mut self, block: Block, out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        match block {
            Block::Thinking(thinking) if thinking.is_bare_signature() => {
                self.close(out);
                let index = self.indices.start(BlockStart::Thinking, out);
                push_delta(out, index, thinking.signature.map(Delta::Signature));
                out.push(StreamEvent::BlockStop { index });
            }
            Block::Thinking(thinking) => {
                let index = self.open(true, out);
                push_delta(out, index, Some(Delta::Thinking(thinking.text)));
                push_delta(out, index, thinking.signature.map(Delta::Signature));
            }
            Block::Text(text) => {
                let index = self.open(false, out);
                push_delta(out, index, Some(Delta::Text(text.text)));
            }
            Block::ToolUse(call) => {
                self.close(out);
                self.called = true;
                let start = BlockStart::ToolUse {
                    id: call.id,
                    name: call.name,
                };
                let index = self.indices.start(start, out);
                push_delta(out, index, Some(Delta::Json(call.input.get().to_owned())));
                out.push(StreamEvent::BlockStop { index });
            }
            Block::Image(_) => {
                return Err(TranslateError::unsupported("image output in a stream"));
            }
            Block::ToolResult(_) | Block::RedactedThinking { .. } => {
                return Err(TranslateError::Stream(
                    "unexpected part in a model response".into(),
                ));
            }
        }
        Ok(())
    }

    /// The open text (or thinking) block, opening one if needed.
    fn open(&mut self, thinking: bool, out: &mut Vec<StreamEvent>) -> usize {
        if let Some((index, open_thinking)) = self.open
            && open_thinking == thinking
        {
            return index;
        }
        self.close(out);
        let start = if thinking {
            BlockStart::Thinking
        } else {
            BlockStart::Text
        };
        let index = self.indices.start(start, out);
        self.open = Some((index, thinking));
        index
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
        }
    }
}

fn push_delta(out: &mut Vec<StreamEvent>, index: usize, delta: Option<Delta>) {
    match delta {
        Some(Delta::Text(s) | Delta::Thinking(s) | Delta::Json(s) | Delta::Signature(s))
            if s.is_empty() => {}
        Some(delta) => out.push(StreamEvent::BlockDelta { index, delta }),
        None => {}
    }
}

/// What the encoder is in the middle of.
#[derive(Debug)]
enum Open {
    Text,
    Thinking {
        shown: bool,
    },
    /// A call whose argument fragments are gathered: Gemini sends calls
    /// whole.
    Tool {
        name: String,
        arguments: String,
    },
}

/// A chunk, as written by the encoder.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    candidates: [ChunkCandidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<WireUsage>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChunkCandidate<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<ChunkContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct ChunkContent<'a> {
    role: &'static str,
    parts: &'a [Value],
}

/// Writes IR events as Gemini chunks: the parts one upstream event
/// completes go out together in one chunk at [`Encoder::flush`]; parts
/// completed after the stop reason ride on the final chunk with the finish
/// reason and the usage, as Gemini sends them.
#[derive(Debug, Default)]
pub struct Encoder {
    message: MessageState,
    open: Option<Open>,
    /// A bare signature waiting for the next part.
    signature: Option<String>,
    /// Parts not sent yet.
    parts: Vec<Value>,
    ended: bool,
}

impl Encoder {
    /// Writes one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<sse::Event>) {
        if self.ended {
            return;
        }
        match event {
            StreamEvent::MessageStart { .. } => self.message.observe(event),
            StreamEvent::BlockStart { block, .. } => {
                self.open = match block {
                    BlockStart::Text => Some(Open::Text),
                    BlockStart::Thinking => Some(Open::Thinking { shown: false }),
                    BlockStart::RedactedThinking { .. } => None,
                    BlockStart::ToolUse { name, .. } => Some(Open::Tool {
                        name: name.clone(),
                        arguments: String::new(),
                    }),
                }
            }
            StreamEvent::BlockDelta { delta, .. } => match (delta, &mut self.open) {
                (Delta::Text(text), _) => {
                    let signature = self.signature.take();
                    self.push_part(OutPart {
                        text: Some(text),
                        thought_signature: signature.as_deref(),
                        ..OutPart::default()
                    });
                }
                (Delta::Thinking(text), Some(Open::Thinking { shown })) => {
                    *shown = true;
                    self.push_part(OutPart {
                        text: Some(text),
                        thought: true,
                        ..OutPart::default()
                    });
                }
                (Delta::Signature(signature), Some(Open::Thinking { shown: true })) => self
                    .push_part(OutPart {
                        text: Some(""),
                        thought: true,
                        thought_signature: Some(signature),
                        ..OutPart::default()
                    }),
                (Delta::Signature(signature), _) => self
                    .signature
                    .get_or_insert_with(String::new)
                    .push_str(signature),
                (Delta::Json(fragment), Some(Open::Tool { arguments, .. })) => {
                    arguments.push_str(fragment)
                }
                _ => {}
            },
            StreamEvent::BlockStop { .. } => {
                if let Some(Open::Tool { name, arguments }) = self.open.take() {
                    let arguments = match wire::json_text(arguments) {
                        Ok(arguments) => arguments,
                        Err(error) => {
                            let error = ApiError::new(ErrorKind::Server, error.to_string());
                            return self.encode(&StreamEvent::Error(error), out);
                        }
                    };
                    let signature = self.signature.take();
                    self.push_part(OutPart {
                        function_call: Some(OutFunctionCall {
                            name: &name,
                            args: &arguments,
                        }),
                        thought_signature: signature.as_deref(),
                        ..OutPart::default()
                    });
                }
            }
            StreamEvent::MessageDelta { .. } => self.message.observe(event),
            StreamEvent::MessageStop => {
                if let Some(signature) = self.signature.take() {
                    self.push_part(OutPart {
                        text: Some(""),
                        thought_signature: Some(&signature),
                        ..OutPart::default()
                    });
                }
                let finish =
                    finish_reason_out(self.message.stop_reason.unwrap_or(StopReason::EndTurn));
                self.push(out, Some(finish), Some(usage_out(&self.message.usage)));
                self.ended = true;
            }
            StreamEvent::Error(error) => {
                self.push(out, None, None);
                out.push(sse::Event::data(
                    error.to_value(Dialect::Gemini).to_string(),
                ));
                self.ended = true;
            }
        }
    }

    /// Sends the parts completed so far, unless the stop reason is known:
    /// then they wait for the final chunk.
    pub fn flush(&mut self, out: &mut Vec<sse::Event>) {
        if self.message.stop_reason.is_none() && !self.ended {
            self.push(out, None, None);
        }
    }

    fn push_part(&mut self, part: OutPart) {
        self.parts
            .push(serde_json::to_value(part).expect("parts serialize"));
    }

    /// Sends a chunk with the pending parts (if any), and the finish reason
    /// and usage if given; nothing when there is nothing to say.
    fn push(
        &mut self,
        out: &mut Vec<sse::Event>,
        finish_reason: Option<&'static str>,
        usage_metadata: Option<WireUsage>,
    ) {
        if self.parts.is_empty() && finish_reason.is_none() {
            return;
        }
        let chunk = Chunk {
            candidates: [ChunkCandidate {
                content: (!self.parts.is_empty()).then_some(ChunkContent {
                    role: "model",
                    parts: &self.parts,
                }),
                finish_reason,
                index: 0,
            }],
            usage_metadata,
            model_version: &self.message.model,
            response_id: &self.message.id,
        };
        out.push(sse::Event::data(wire::to_string(&chunk)));
        self.parts.clear();
    }
}
