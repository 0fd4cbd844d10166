//! OpenAI Chat response bodies.

use super::types::{ChatResponse, OutChoice, OutResponse};
use super::{
    assistant_in, assistant_out, finish_reason_in, finish_reason_out, usage_in, usage_out,
};
use crate::dialect::wire;
use crate::errors::TranslateError;
use crate::ir::{Block, Response, StopReason};

/// Reads an OpenAI Chat response body (its first choice).
pub fn parse_response(body: &[u8]) -> Result<Response, TranslateError> {
    let wire: ChatResponse = serde_json::from_slice(body)?;
    let choice = wire
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| TranslateError::invalid("response without choices"))?;
    let content = assistant_in(choice.message)?;
    let mut stop_reason = choice.finish_reason.as_deref().map(finish_reason_in);
    // Some compatible backends say `stop` after calling tools.
    if stop_reason == Some(StopReason::EndTurn)
        && content.iter().any(|b| matches!(b, Block::ToolUse(_)))
    {
        stop_reason = Some(StopReason::ToolUse);
    }
    Ok(Response {
        id: wire.id,
        model: wire.model,
        created: wire.created,
        content,
        stop_reason,
        stop_sequence: None,
        usage: wire.usage.as_ref().map(usage_in).unwrap_or_default(),
    })
}

/// Writes an OpenAI Chat response body.
pub fn render_response(response: &Response) -> Result<Vec<u8>, TranslateError> {
    let out = OutResponse {
        id: &response.id,
        object: "chat.completion",
        created: response.created,
        model: &response.model,
        choices: [OutChoice {
            index: 0,
            message: assistant_out(&response.content)?,
            finish_reason: Some(finish_reason_out(
                response.stop_reason.unwrap_or(StopReason::EndTurn),
            )),
        }],
        usage: usage_out(&response.usage),
    };
    Ok(wire::to_bytes(&out))
}
