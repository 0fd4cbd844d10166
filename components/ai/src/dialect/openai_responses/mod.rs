//! OpenAI Responses (`POST /v1/responses`), both ways, stateless: input
//! items carry the whole conversation (`previous_response_id` is refused).
//!
//! Reasoning items read as thinking blocks (summary text, and
//! `encrypted_content` as the signature) and are written in responses and
//! streams, but not in requests: OpenAI accepts only reasoning items it
//! produced itself. Item ids are not kept; written items get ids from their
//! position (`msg_0`, `fc_1`, `rs_2`).

mod request;
mod response;
mod stream;
mod types;

pub use request::{parse_request, render_request};
pub use response::{parse_response, render_response};
pub use stream::{Decoder, Encoder};

use crate::dialect::wire::{self, TextOr};
use crate::errors::TranslateError;
use crate::ir::{Block, Image, ImageSource, Text, Thinking, ToolUse, Usage};
use types::{InItem, InPart, InputDetails, OutPart, OutTypedItem, OutputDetails, WireUsage};

fn usage_in(wire: &WireUsage) -> Usage {
    Usage {
        input_tokens: wire.input_tokens,
        output_tokens: wire.output_tokens,
        cache_read_tokens: wire.input_tokens_details.cached_tokens,
        cache_write_tokens: 0,
        reasoning_tokens: wire.output_tokens_details.reasoning_tokens,
    }
}

fn usage_out(usage: &Usage) -> WireUsage {
    WireUsage {
        input_tokens: usage.input_tokens,
        input_tokens_details: InputDetails {
            cached_tokens: usage.cache_read_tokens,
        },
        output_tokens: usage.output_tokens,
        output_tokens_details: OutputDetails {
            reasoning_tokens: usage.reasoning_tokens,
        },
        total_tokens: usage.total_tokens(),
    }
}

fn parts_in(content: Option<TextOr<InPart>>) -> Result<Vec<Block>, TranslateError> {
    match content {
        None => Ok(Vec::new()),
        Some(TextOr::Text(text)) => Ok(vec![Block::Text(Text::plain(text))]),
        Some(TextOr::Items(parts)) => parts.into_iter().map(part_in).collect(),
    }
}

fn part_in(part: InPart) -> Result<Block, TranslateError> {
    Ok(match part.kind.as_str() {
        "input_text" | "output_text" | "summary_text" => {
            Block::Text(Text::plain(part.text.unwrap_or_default()))
        }
        "refusal" => Block::Text(Text::plain(part.refusal.unwrap_or_default())),
        "input_image" => {
            let url = part
                .image_url
                .ok_or_else(|| TranslateError::unsupported("input_image without image_url"))?;
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
            Block::Image(Image {
                source,
                detail: part.detail,
                cache_control: None,
            })
        }
        other => {
            return Err(TranslateError::unsupported(format!(
                "Responses content part type `{other}`"
            )));
        }
    })
}

/// Reads an assistant-side item (message, function call, reasoning).
fn output_item_in(item: InItem, kind: &str) -> Result<Vec<Block>, TranslateError> {
    Ok(match kind {
        "message" => parts_in(item.content)?,
        "function_call" => vec![Block::ToolUse(ToolUse {
            id: item
                .call_id
                .ok_or_else(|| TranslateError::invalid("function_call without call_id"))?,
            name: item
                .name
                .ok_or_else(|| TranslateError::invalid("function_call without name"))?,
            input: wire::json_text(item.arguments.unwrap_or_default())?,
            cache_control: None,
        })],
        "reasoning" => {
            let text = item
                .summary
                .unwrap_or_default()
                .into_iter()
                .filter_map(|part| part.text)
                .collect::<Vec<_>>()
                .join("\n\n");
            vec![Block::Thinking(Thinking {
                text,
                signature: item.encrypted_content.filter(|s| !s.is_empty()),
            })]
        }
        other => {
            return Err(TranslateError::unsupported(format!(
                "Responses item type `{other}`"
            )));
        }
    })
}

/// Writes the blocks of a response as output items: consecutive texts
/// share a message item.
fn output_items(blocks: &[Block]) -> Vec<OutTypedItem<'static>> {
    let mut items: Vec<OutTypedItem<'static>> = Vec::new();
    for block in blocks {
        let id = Some(item_id(block, items.len()));
        match block {
            Block::Text(text) => {
                let part = OutPart::OutputText {
                    text: text.text.clone(),
                    annotations: [],
                };
                match items.last_mut() {
                    Some(OutTypedItem::Message { content, .. }) => content.push(part),
                    _ => items.push(OutTypedItem::Message {
                        id,
                        status: Some("completed"),
                        role: "assistant",
                        content: vec![part],
                    }),
                }
            }
            Block::ToolUse(call) => items.push(OutTypedItem::FunctionCall {
                id,
                status: Some("completed"),
                call_id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.input.get().to_owned(),
            }),
            Block::Thinking(thinking) => items.push(reasoning_item(
                id,
                &thinking.text,
                thinking.signature.clone(),
            )),
            Block::RedactedThinking { data } => {
                items.push(reasoning_item(id, "", Some(data.clone())))
            }
            Block::Image(_) | Block::ToolResult(_) => {}
        }
    }
    items
}

fn reasoning_item(
    id: Option<String>,
    text: &str,
    signature: Option<String>,
) -> OutTypedItem<'static> {
    OutTypedItem::Reasoning {
        id,
        summary: if text.is_empty() {
            Vec::new()
        } else {
            vec![OutPart::SummaryText {
                text: text.to_owned(),
            }]
        },
        encrypted_content: signature,
    }
}

/// The id of the output item at `position` that holds `block`.
fn item_id(block: &Block, position: usize) -> String {
    let prefix = match block {
        Block::ToolUse(_) => "fc",
        Block::Thinking(_) | Block::RedactedThinking { .. } => "rs",
        _ => "msg",
    };
    format!("{prefix}_{position}")
}
