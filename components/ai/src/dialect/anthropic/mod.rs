//! Anthropic Messages (`POST /v1/messages`), both ways.
//!
//! Structured output has no Anthropic parameter that every model accepts,
//! so a JSON `response_format` becomes a tool named [`JSON_TOOL`] whose
//! input schema is the requested schema; its `tool_use` comes back as the
//! text of the answer, in responses and streams alike.

mod request;
mod response;
mod stream;
mod types;

pub use request::{DEFAULT_MAX_TOKENS, parse_request, render_request};
pub use response::{parse_response, render_response};
pub use stream::{Decoder, Encoder};

use crate::dialect::wire;
use crate::errors::TranslateError;
use crate::ir::{
    Block, Image, ImageSource, StopReason, Text, Thinking, ToolResult, ToolUse, Usage,
};
use types::{InBlock, OutBlock, OutContent, WireImageSource, WireUsage};

/// The tool that carries a JSON `response_format`.
pub const JSON_TOOL: &str = "upshift_json_response";

fn stop_reason_in(reason: &str) -> StopReason {
    match reason {
        "end_turn" => StopReason::EndTurn,
        "stop_sequence" => StopReason::StopSequence,
        "max_tokens" => StopReason::MaxTokens,
        "model_context_window_exceeded" => StopReason::ContextWindowExceeded,
        "tool_use" => StopReason::ToolUse,
        "pause_turn" => StopReason::PauseTurn,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

fn stop_reason_out(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn | StopReason::Other => "end_turn",
        StopReason::StopSequence => "stop_sequence",
        StopReason::MaxTokens => "max_tokens",
        StopReason::ContextWindowExceeded => "model_context_window_exceeded",
        StopReason::ToolUse => "tool_use",
        StopReason::PauseTurn => "pause_turn",
        StopReason::ContentFilter => "refusal",
    }
}

/// Anthropic's `input_tokens` exclude cache reads and writes; the IR's
/// include them.
fn usage_in(wire: &WireUsage) -> Usage {
    let cache_read = wire.cache_read_input_tokens.unwrap_or(0);
    let cache_write = wire.cache_creation_input_tokens.unwrap_or(0);
    Usage {
        input_tokens: wire.input_tokens + cache_read + cache_write,
        output_tokens: wire.output_tokens,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reasoning_tokens: 0,
    }
}

fn usage_out(usage: &Usage) -> WireUsage {
    WireUsage {
        input_tokens: usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens + usage.cache_write_tokens),
        cache_creation_input_tokens: Some(usage.cache_write_tokens),
        cache_read_input_tokens: Some(usage.cache_read_tokens),
        output_tokens: usage.output_tokens,
    }
}

/// Reads one content block.
fn block_in(block: InBlock) -> Result<Block, TranslateError> {
    let missing =
        |field: &str| TranslateError::invalid(format!("{} block without `{field}`", block.kind));
    Ok(match block.kind.as_str() {
        "text" => Block::Text(Text {
            text: block.text.ok_or_else(|| missing("text"))?,
            cache_control: block.cache_control.map(Into::into),
        }),
        "image" => {
            let source = block.source.ok_or_else(|| missing("source"))?;
            let source = match source.kind.as_str() {
                "base64" => ImageSource::Base64 {
                    media_type: source.media_type.unwrap_or_default(),
                    data: source.data.unwrap_or_default(),
                },
                "url" => ImageSource::Url {
                    url: source.url.unwrap_or_default(),
                    media_type: None,
                },
                other => {
                    return Err(TranslateError::unsupported(format!(
                        "image source type `{other}`"
                    )));
                }
            };
            Block::Image(Image {
                source,
                detail: None,
                cache_control: block.cache_control.map(Into::into),
            })
        }
        "tool_use" => Block::ToolUse(ToolUse {
            id: block.id.ok_or_else(|| missing("id"))?,
            name: block.name.ok_or_else(|| missing("name"))?,
            input: block.input.unwrap_or_else(wire::empty_object),
            cache_control: block.cache_control.map(Into::into),
        }),
        "tool_result" => Block::ToolResult(ToolResult {
            tool_use_id: block.tool_use_id.ok_or_else(|| missing("tool_use_id"))?,
            content: match block.content {
                None => Vec::new(),
                Some(wire::TextOr::Text(text)) => vec![Block::Text(Text::plain(text))],
                Some(wire::TextOr::Items(items)) => {
                    items.into_iter().map(block_in).collect::<Result<_, _>>()?
                }
            },
            is_error: block.is_error,
            cache_control: block.cache_control.map(Into::into),
        }),
        "thinking" => Block::Thinking(Thinking {
            text: block.thinking.unwrap_or_default(),
            signature: block.signature.filter(|s| !s.is_empty()),
        }),
        "redacted_thinking" => Block::RedactedThinking {
            data: block.data.ok_or_else(|| missing("data"))?,
        },
        other => {
            return Err(TranslateError::unsupported(format!(
                "Anthropic content block type `{other}`"
            )));
        }
    })
}

/// Writes one content block; `None` for blocks Anthropic cannot take back
/// (thinking without a signature, in requests).
fn block_out(block: &Block, in_request: bool) -> Option<OutBlock<'_>> {
    Some(match block {
        Block::Text(text) => OutBlock::Text {
            text: &text.text,
            cache_control: wire::cache_out(&text.cache_control),
        },
        Block::Image(image) => OutBlock::Image {
            source: match &image.source {
                ImageSource::Base64 { media_type, data } => WireImageSource {
                    kind: "base64".to_owned(),
                    media_type: Some(media_type.clone()),
                    data: Some(data.clone()),
                    url: None,
                },
                ImageSource::Url { url, .. } => WireImageSource {
                    kind: "url".to_owned(),
                    media_type: None,
                    data: None,
                    url: Some(url.clone()),
                },
            },
            cache_control: wire::cache_out(&image.cache_control),
        },
        Block::ToolUse(call) => OutBlock::ToolUse {
            id: &call.id,
            name: &call.name,
            input: &call.input,
            cache_control: wire::cache_out(&call.cache_control),
        },
        Block::ToolResult(result) => OutBlock::ToolResult {
            tool_use_id: &result.tool_use_id,
            content: (!result.content.is_empty()).then(|| content_out(&result.content, in_request)),
            is_error: result.is_error,
            cache_control: wire::cache_out(&result.cache_control),
        },
        Block::Thinking(thinking) => match (&thinking.signature, in_request) {
            (None, true) => return None,
            (signature, _) => OutBlock::Thinking {
                thinking: &thinking.text,
                signature: signature.as_deref().unwrap_or(""),
            },
        },
        Block::RedactedThinking { data } => OutBlock::RedactedThinking { data },
    })
}

/// Writes content: a plain string for one uncached text block.
fn content_out(blocks: &[Block], in_request: bool) -> OutContent<'_> {
    let blocks: Vec<OutBlock> = blocks
        .iter()
        .filter_map(|b| block_out(b, in_request))
        .collect();
    if let [
        OutBlock::Text {
            text,
            cache_control: None,
        },
    ] = blocks.as_slice()
    {
        return OutContent::Text(text);
    }
    OutContent::Blocks(blocks)
}
