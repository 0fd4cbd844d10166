//! OpenAI Chat Completions (`POST /v1/chat/completions`), both ways.
//!
//! Reasoning travels in the two common extensions: `reasoning_content`
//! (text, DeepSeek/vLLM) and `thinking_blocks` (LiteLLM; blocks with their
//! signatures, so thinking survives a round trip through an OpenAI client).
//! A bare thought signature right before a tool call (Gemini attaches them
//! to `functionCall` parts) is folded into that call's id as
//! `<id>__thought__<signature>`: clients echo tool call ids verbatim, so the
//! signature comes back with the call and its result.
//!
//! Prompt-cache breakpoints are read from content parts and tools
//! (`cache_control`, LiteLLM's convention, so OpenAI clients can use
//! Anthropic's cache) but not written: OpenAI caches by itself.

mod request;
mod response;
mod stream;
mod types;

pub(crate) use request::tool_choice_mode;

pub use request::{parse_request, render_request};
pub use response::{parse_response, render_response};
pub use stream::{Decoder, Encoder};

use std::borrow::Cow;

use crate::dialect::wire::{self, TextOr};
use crate::errors::TranslateError;
use crate::ir::{Block, Image, ImageSource, StopReason, Text, Thinking, ToolUse, Usage};
use types::{
    CompletionDetails, InImageUrl, InMessage, InPart, OutContent, OutFunctionCall, OutImageUrl,
    OutMessage, OutPart, OutToolCall, PartKind, PromptDetails, WireThinkingBlock, WireUsage,
};

/// Separates a tool call id from a folded thought signature.
const THOUGHT_SEPARATOR: &str = "__thought__";

fn fold_id(id: &str, signature: &str) -> String {
    format!("{id}{THOUGHT_SEPARATOR}{signature}")
}

/// Splits a tool call id into the provider's id and a folded signature.
fn unfold_id(id: String) -> (String, Option<String>) {
    match id.split_once(THOUGHT_SEPARATOR) {
        Some((id, signature)) => (id.to_owned(), Some(signature.to_owned())),
        None => (id, None),
    }
}

fn finish_reason_in(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

fn finish_reason_out(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::PauseTurn
        | StopReason::Other => "stop",
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

fn usage_in(wire: &WireUsage) -> Usage {
    let prompt = wire.prompt_tokens_details.as_ref();
    Usage {
        input_tokens: wire.prompt_tokens,
        output_tokens: wire.completion_tokens,
        cache_read_tokens: prompt.map_or(0, |d| d.cached_tokens),
        cache_write_tokens: prompt.map_or(0, |d| d.cache_creation_input_tokens),
        reasoning_tokens: wire
            .completion_tokens_details
            .as_ref()
            .map_or(0, |d| d.reasoning_tokens),
    }
}

fn usage_out(usage: &Usage) -> WireUsage {
    WireUsage {
        prompt_tokens: usage.input_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: usage.total_tokens(),
        prompt_tokens_details: Some(PromptDetails {
            cached_tokens: usage.cache_read_tokens,
            cache_creation_input_tokens: usage.cache_write_tokens,
        }),
        completion_tokens_details: Some(CompletionDetails {
            reasoning_tokens: usage.reasoning_tokens,
        }),
    }
}

/// Reads the parts of a user or tool message.
fn parts_in(content: Option<TextOr<InPart>>) -> Result<Vec<Block>, TranslateError> {
    match content {
        None => Ok(Vec::new()),
        Some(TextOr::Text(text)) => Ok(vec![Block::Text(Text::plain(text))]),
        Some(TextOr::Items(parts)) => parts.into_iter().map(part_in).collect(),
    }
}

fn part_in(part: InPart) -> Result<Block, TranslateError> {
    let cache_control = part.cache_control.map(Into::into);
    match part.kind {
        PartKind::Text => Ok(Block::Text(Text {
            text: part.text.unwrap_or_default(),
            cache_control,
        })),
        PartKind::Refusal => Ok(Block::Text(Text::plain(part.refusal.unwrap_or_default()))),
        PartKind::ImageUrl => {
            let (url, detail) = match part.image_url {
                Some(InImageUrl::Object { url, detail }) => (url, detail),
                Some(InImageUrl::Url(url)) => (url, None),
                None => return Err(TranslateError::invalid("image_url part without image_url")),
            };
            let source = match wire::parse_data_url(&url) {
                Some((media_type, data)) => ImageSource::Base64 {
                    media_type: media_type.to_owned(),
                    data: data.to_owned(),
                },
                None => ImageSource::Url {
                    url,
                    media_type: None,
                },
            };
            Ok(Block::Image(Image {
                source,
                detail,
                cache_control,
            }))
        }
        PartKind::InputAudio => Err(TranslateError::unsupported("audio input")),
        PartKind::File => Err(TranslateError::unsupported("file input")),
        PartKind::Other => Err(TranslateError::unsupported("unknown content part type")),
    }
}

/// Reads an assistant message: thinking, then text, then tool calls.
fn assistant_in(message: InMessage) -> Result<Vec<Block>, TranslateError> {
    let mut blocks = Vec::new();
    match message.thinking_blocks.filter(|b| !b.is_empty()) {
        Some(thinking_blocks) => {
            // Streamed responses deliver the text as `reasoning_content` and
            // only the signature in `thinking_blocks`.
            let mut reasoning = message.reasoning_content.filter(|_| {
                thinking_blocks
                    .iter()
                    .all(|b| b.thinking.as_deref().unwrap_or("").is_empty())
            });
            for block in thinking_blocks {
                blocks.push(match block.kind.as_str() {
                    "redacted_thinking" => Block::RedactedThinking {
                        data: block.data.unwrap_or_default(),
                    },
                    _ => Block::Thinking(Thinking {
                        text: reasoning.take().or(block.thinking).unwrap_or_default(),
                        signature: block.signature.filter(|s| !s.is_empty()),
                    }),
                });
            }
        }
        None => {
            if let Some(text) = message.reasoning_content.filter(|t| !t.is_empty()) {
                blocks.push(Block::Thinking(Thinking {
                    text,
                    signature: None,
                }));
            }
        }
    }
    for block in parts_in(message.content)? {
        match block {
            Block::Text(text) if text.text.is_empty() && text.cache_control.is_none() => {}
            Block::Text(_) => blocks.push(block),
            _ => return Err(TranslateError::invalid("assistant content must be text")),
        }
    }
    if let Some(refusal) = message.refusal.filter(|r| !r.is_empty()) {
        blocks.push(Block::Text(Text::plain(refusal)));
    }
    for call in message.tool_calls.unwrap_or_default() {
        let (id, signature) = unfold_id(call.id);
        if let Some(signature) = signature {
            blocks.push(Block::Thinking(Thinking {
                text: String::new(),
                signature: Some(signature),
            }));
        }
        blocks.push(Block::ToolUse(ToolUse {
            id,
            name: call.function.name,
            input: wire::json_text(call.function.arguments)?,
            cache_control: None,
        }));
    }
    Ok(blocks)
}

/// The id a tool call has on the OpenAI side: with the bare signature that
/// precedes it folded in.
fn tool_call_id<'a>(blocks: &'a [Block], position: usize, id: &'a str) -> Cow<'a, str> {
    match position.checked_sub(1).map(|p| &blocks[p]) {
        Some(Block::Thinking(thinking)) if thinking.is_bare_signature() => {
            Cow::Owned(fold_id(id, thinking.signature.as_deref().unwrap_or("")))
        }
        _ => Cow::Borrowed(id),
    }
}

/// Writes an assistant message.
fn assistant_out(blocks: &[Block]) -> Result<OutMessage<'_>, TranslateError> {
    let mut texts: Vec<&str> = Vec::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut signed = false;
    let mut tool_calls = Vec::new();
    for (position, block) in blocks.iter().enumerate() {
        match block {
            Block::Text(text) => texts.push(&text.text),
            Block::Thinking(thinking) => {
                let folded = thinking.is_bare_signature()
                    && matches!(blocks.get(position + 1), Some(Block::ToolUse(_)));
                if folded {
                    continue;
                }
                signed |= thinking.signature.is_some();
                reasoning.push_str(&thinking.text);
                thinking_blocks.push(WireThinkingBlock {
                    kind: "thinking".to_owned(),
                    thinking: Some(thinking.text.clone()),
                    signature: thinking.signature.clone(),
                    data: None,
                });
            }
            Block::RedactedThinking { data } => {
                signed = true;
                thinking_blocks.push(WireThinkingBlock {
                    kind: "redacted_thinking".to_owned(),
                    thinking: None,
                    signature: None,
                    data: Some(data.clone()),
                });
            }
            Block::ToolUse(call) => tool_calls.push(OutToolCall {
                id: tool_call_id(blocks, position, &call.id),
                kind: "function",
                function: OutFunctionCall {
                    name: &call.name,
                    arguments: call.input.get(),
                },
            }),
            Block::Image(_) => {
                return Err(TranslateError::unsupported(
                    "images in assistant messages of OpenAI Chat",
                ));
            }
            Block::ToolResult(_) => {
                return Err(TranslateError::invalid(
                    "tool result in an assistant message",
                ));
            }
        }
    }
    let content = match texts.as_slice() {
        [] => None,
        [text] => Some(OutContent::Text(Cow::Borrowed(text))),
        texts => Some(OutContent::Text(Cow::Owned(texts.concat()))),
    };
    Ok(OutMessage {
        role: "assistant",
        content,
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        thinking_blocks: if signed { thinking_blocks } else { Vec::new() },
        tool_calls,
        tool_call_id: None,
    })
}

/// Writes user content: a string for one text, else parts.
fn parts_out<'a>(blocks: &[&'a Block]) -> OutContent<'a> {
    if let [Block::Text(text)] = blocks {
        return OutContent::Text(Cow::Borrowed(&text.text));
    }
    OutContent::Parts(
        blocks
            .iter()
            .filter_map(|block| match block {
                Block::Text(text) => Some(OutPart::Text { text: &text.text }),
                Block::Image(image) => Some(OutPart::ImageUrl {
                    image_url: OutImageUrl {
                        url: match &image.source {
                            ImageSource::Url { url, .. } => Cow::Borrowed(url.as_str()),
                            ImageSource::Base64 { media_type, data } => {
                                Cow::Owned(format!("data:{media_type};base64,{data}"))
                            }
                        },
                        detail: image.detail.as_deref(),
                    },
                }),
                _ => None,
            })
            .collect(),
    )
}
