//! Anthropic response bodies.

use super::types::{InResponse, OutResponse};
use super::{JSON_TOOL, block_in, block_out, stop_reason_in, stop_reason_out, usage_in, usage_out};
use crate::dialect::wire;
use crate::errors::TranslateError;
use crate::ir::{Block, Response, StopReason, Text};

/// Reads an Anthropic response body. A call of the [`JSON_TOOL`] becomes
/// the text of the answer.
pub fn parse_response(body: &[u8]) -> Result<Response, TranslateError> {
    let wire: InResponse = serde_json::from_slice(body)?;
    let mut content = Vec::with_capacity(wire.content.len());
    let mut answered_in_json = false;
    for block in wire.content {
        match block_in(block)? {
            Block::ToolUse(call) if call.name == JSON_TOOL => {
                answered_in_json = true;
                content.push(Block::Text(Text::plain(call.input.get())));
            }
            block => content.push(block),
        }
    }
    let mut stop_reason = wire.stop_reason.as_deref().map(stop_reason_in);
    let other_tools = content.iter().any(|b| matches!(b, Block::ToolUse(_)));
    if answered_in_json && !other_tools && stop_reason == Some(StopReason::ToolUse) {
        stop_reason = Some(StopReason::EndTurn);
    }
    Ok(Response {
        id: wire.id,
        model: wire.model,
        created: 0,
        content,
        stop_reason,
        stop_sequence: wire.stop_sequence,
        usage: usage_in(&wire.usage),
    })
}

/// Writes an Anthropic response body.
pub fn render_response(response: &Response) -> Result<Vec<u8>, TranslateError> {
    let out = OutResponse {
        id: &response.id,
        kind: "message",
        role: "assistant",
        model: &response.model,
        content: response
            .content
            .iter()
            .filter_map(|block| block_out(block, false))
            .collect(),
        stop_reason: response.stop_reason.map(stop_reason_out),
        stop_sequence: response.stop_sequence.as_deref(),
        usage: usage_out(&response.usage),
    };
    Ok(wire::to_bytes(&out))
}
