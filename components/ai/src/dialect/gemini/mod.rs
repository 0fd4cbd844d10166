//! Google Gemini `generateContent` and `streamGenerateContent?alt=sse`,
//! both ways (Google AI Studio and Vertex AI share the body).
//!
//! The model and streaming are chosen by the URL, not the body: after
//! [`parse_request`] the caller sets `model` and `stream` from the path.
//!
//! Gemini function calls have no ids (or optional ones), so ids are
//! synthesized (`call_<n>` in requests, `call_<responseId>_<n>` in
//! responses) and `functionResponse`s are matched to calls by name and
//! order. Rendering towards Gemini resolves each tool result's name from
//! the call it answers and sends no ids. A part's `thoughtSignature` becomes
//! a bare-signature thinking block just before the part's own block, and is
//! attached to the next part again on the way back.

mod request;
mod response;
mod schema;
mod stream;
mod types;

pub use request::{parse_request, render_request};
pub use response::{parse_response, render_response};
pub use schema::{from_gemini as schema_from_gemini, to_gemini as schema_to_gemini};
pub use stream::{Decoder, Encoder};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::dialect::wire;
use crate::errors::TranslateError;
use crate::ir::{
    Block, Image, ImageSource, Json, StopReason, Text, Thinking, ToolResult, ToolUse, Usage,
};
use types::{
    Blob, FileData, InFunctionCall, InFunctionResponse, InPart, OutFunctionCall, OutPart, WireUsage,
};

/// Gives ids to function calls and matches function responses to them.
#[derive(Debug)]
struct CallIds {
    prefix: String,
    count: usize,
    /// Calls not answered yet: `(name, id)`.
    pending: Vec<(String, String)>,
}

impl CallIds {
    fn new(prefix: String) -> Self {
        CallIds {
            prefix,
            count: 0,
            pending: Vec::new(),
        }
    }

    fn call(&mut self, call: &InFunctionCall) -> String {
        let id = call
            .id
            .clone()
            .unwrap_or_else(|| format!("{}{}", self.prefix, self.count));
        self.count += 1;
        self.pending.push((call.name.clone(), id.clone()));
        id
    }

    fn response(&mut self, response: &InFunctionResponse) -> String {
        let position = match &response.id {
            Some(id) => self.pending.iter().position(|(_, pending)| pending == id),
            None => self
                .pending
                .iter()
                .position(|(name, _)| *name == response.name),
        };
        match (position, &response.id) {
            (Some(position), _) => self.pending.remove(position).1,
            (None, Some(id)) => id.clone(),
            (None, None) => format!("{}{}", self.prefix, response.name),
        }
    }
}

fn finish_reason_in(reason: &str) -> StopReason {
    match reason {
        "STOP" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            StopReason::ContentFilter
        }
        _ => StopReason::Other,
    }
}

fn finish_reason_out(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::ToolUse
        | StopReason::PauseTurn => "STOP",
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::Other => "OTHER",
    }
}

/// Gemini's `candidatesTokenCount` excludes thoughts; the IR's output
/// includes them.
fn usage_in(wire: &WireUsage) -> Usage {
    Usage {
        input_tokens: wire.prompt_token_count,
        output_tokens: wire.candidates_token_count + wire.thoughts_token_count,
        cache_read_tokens: wire.cached_content_token_count,
        cache_write_tokens: 0,
        reasoning_tokens: wire.thoughts_token_count,
    }
}

fn usage_out(usage: &Usage) -> WireUsage {
    WireUsage {
        prompt_token_count: usage.input_tokens,
        candidates_token_count: usage.output_tokens.saturating_sub(usage.reasoning_tokens),
        thoughts_token_count: usage.reasoning_tokens,
        cached_content_token_count: usage.cache_read_tokens,
        total_token_count: usage.total_tokens(),
    }
}

/// Reads one part into up to two blocks (a signature, then the content).
fn part_in(part: InPart, ids: &mut CallIds, out: &mut Vec<Block>) -> Result<(), TranslateError> {
    let signature = part.thought_signature.filter(|s| !s.is_empty());
    if part.thought {
        out.push(Block::Thinking(Thinking {
            text: part.text.unwrap_or_default(),
            signature,
        }));
        return Ok(());
    }
    if let Some(signature) = signature {
        out.push(Block::Thinking(Thinking {
            text: String::new(),
            signature: Some(signature),
        }));
    }
    if let Some(call) = part.function_call {
        let id = ids.call(&call);
        out.push(Block::ToolUse(ToolUse {
            id,
            name: call.name,
            input: call.args.unwrap_or_else(wire::empty_object),
            cache_control: None,
        }));
    } else if let Some(response) = part.function_response {
        let tool_use_id = ids.response(&response);
        let (content, is_error) = match &response.response {
            Some(response) => tool_result_in(response),
            None => (String::new(), false),
        };
        out.push(Block::ToolResult(ToolResult {
            tool_use_id,
            content: vec![Block::Text(Text::plain(content))],
            is_error,
            cache_control: None,
        }));
    } else if let Some(blob) = part.inline_data {
        if !blob.mime_type.starts_with("image/") {
            return Err(TranslateError::unsupported(format!(
                "inline data of type `{}`",
                blob.mime_type
            )));
        }
        out.push(Block::Image(Image {
            source: ImageSource::Base64 {
                media_type: blob.mime_type,
                data: blob.data,
            },
            detail: None,
            cache_control: None,
        }));
    } else if let Some(file) = part.file_data {
        out.push(Block::Image(Image {
            source: ImageSource::Url {
                url: file.file_uri,
                media_type: file.mime_type,
            },
            detail: None,
            cache_control: None,
        }));
    } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
        out.push(Block::Text(Text::plain(text)));
    }
    Ok(())
}

/// A `functionResponse.response` as tool result text: the value of a lone
/// `output` or `error` key (a string as is, anything else as JSON text), or
/// the whole object as JSON text.
fn tool_result_in(response: &RawValue) -> (String, bool) {
    let text = |raw: &RawValue| match serde_json::from_str::<String>(raw.get()) {
        Ok(text) => text,
        Err(_) => raw.get().to_owned(),
    };
    let fields: std::collections::BTreeMap<String, Json> =
        serde_json::from_str(response.get()).unwrap_or_default();
    if fields.len() == 1 {
        if let Some(output) = fields.get("output") {
            return (text(output), false);
        }
        if let Some(error) = fields.get("error") {
            return (text(error), true);
        }
    }
    (response.get().to_owned(), false)
}

/// `functionResponse.response` as written.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum ResultOut<'a> {
    Output(ResultValue<'a>),
    Error(ResultValue<'a>),
}

/// A tool result's text: embedded as JSON when it is an object or array.
#[derive(Serialize)]
#[serde(untagged)]
enum ResultValue<'a> {
    Json(&'a RawValue),
    Text(&'a str),
}

/// The `functionResponse.response` for a tool result.
fn tool_result_out(result: &ToolResult) -> serde_json::Value {
    let text: String = result
        .content
        .iter()
        .filter_map(|block| match block {
            Block::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect();
    let trimmed = text.trim_start();
    let raw = (trimmed.starts_with('{') || trimmed.starts_with('['))
        .then(|| serde_json::from_str::<&RawValue>(&text).ok())
        .flatten();
    let value = match raw {
        Some(raw) => ResultValue::Json(raw),
        None => ResultValue::Text(&text),
    };
    let out = if result.is_error {
        ResultOut::Error(value)
    } else {
        ResultOut::Output(value)
    };
    serde_json::to_value(out).expect("tool results serialize")
}

/// Writes blocks as parts. A bare signature rides on the next part;
/// `names` resolves the function name of each tool result.
fn parts_out<'a>(
    blocks: &'a [Block],
    names: &[(&'a str, &'a str)],
) -> Result<Vec<OutPart<'a>>, TranslateError> {
    let mut parts = Vec::with_capacity(blocks.len());
    let mut signature: Option<&'a str> = None;
    for block in blocks {
        let part = match block {
            Block::Thinking(thinking) if thinking.is_bare_signature() => {
                signature = thinking.signature.as_deref();
                continue;
            }
            Block::Thinking(thinking) => OutPart {
                text: Some(&thinking.text),
                thought: true,
                thought_signature: thinking.signature.as_deref(),
                ..OutPart::default()
            },
            Block::RedactedThinking { .. } => continue,
            Block::Text(text) => OutPart {
                text: Some(&text.text),
                ..OutPart::default()
            },
            Block::Image(image) => image_out(image),
            Block::ToolUse(call) => OutPart {
                function_call: Some(OutFunctionCall {
                    name: &call.name,
                    args: &call.input,
                }),
                ..OutPart::default()
            },
            Block::ToolResult(result) => {
                let name = names
                    .iter()
                    .find(|(id, _)| *id == result.tool_use_id)
                    .map(|(_, name)| *name)
                    .ok_or_else(|| {
                        TranslateError::invalid(format!(
                            "tool result for unknown call `{}`",
                            result.tool_use_id
                        ))
                    })?;
                parts.push(OutPart {
                    function_response: Some(types::OutFunctionResponse {
                        name,
                        response: tool_result_out(result),
                    }),
                    thought_signature: signature.take(),
                    ..OutPart::default()
                });
                parts.extend(result.content.iter().filter_map(|block| match block {
                    Block::Image(image) => Some(image_out(image)),
                    _ => None,
                }));
                continue;
            }
        };
        parts.push(OutPart {
            thought_signature: part.thought_signature.or(signature.take()),
            ..part
        });
    }
    if let Some(signature) = signature {
        parts.push(OutPart {
            text: Some(""),
            thought_signature: Some(signature),
            ..OutPart::default()
        });
    }
    Ok(parts)
}

fn image_out(image: &Image) -> OutPart<'_> {
    match &image.source {
        ImageSource::Base64 { media_type, data } => OutPart {
            inline_data: Some(Blob {
                mime_type: media_type.clone(),
                data: data.clone(),
            }),
            ..OutPart::default()
        },
        ImageSource::Url { url, media_type } => OutPart {
            file_data: Some(FileData {
                mime_type: Some(media_type.clone().unwrap_or_else(|| guess_media_type(url))),
                file_uri: url.clone(),
            }),
            ..OutPart::default()
        },
    }
}

/// Gemini wants a MIME type for every file; guess it from the extension.
fn guess_media_type(url: &str) -> String {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let media_type = match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        _ => "image/jpeg",
    };
    media_type.to_owned()
}
