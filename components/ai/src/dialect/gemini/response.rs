//! Gemini response bodies.

use super::types::{GenerateResponse, OutCandidate, OutContent, OutResponse};
use super::{
    CallIds, finish_reason_in, finish_reason_out, part_in, parts_out, usage_in, usage_out,
};
use crate::dialect::wire;
use crate::errors::TranslateError;
use crate::ir::{Block, Response, StopReason};

/// The prefix of call ids synthesized for one response.
pub(super) fn call_prefix(response_id: &str) -> String {
    if response_id.is_empty() {
        "call_".to_owned()
    } else {
        format!("call_{response_id}_")
    }
}

/// Reads a Gemini response body (its first candidate). A blocked prompt
/// reads as an empty answer stopped by the content filter.
pub fn parse_response(body: &[u8]) -> Result<Response, TranslateError> {
    let wire: GenerateResponse = serde_json::from_slice(body)?;
    let mut ids = CallIds::new(call_prefix(&wire.response_id));
    let mut content = Vec::new();
    let mut stop_reason = None;
    if let Some(candidate) = wire.candidates.into_iter().find(|c| c.index == 0) {
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            part_in(part, &mut ids, &mut content)?;
        }
        stop_reason = candidate.finish_reason.as_deref().map(finish_reason_in);
    } else if wire.prompt_feedback.and_then(|f| f.block_reason).is_some() {
        stop_reason = Some(StopReason::ContentFilter);
    }
    if stop_reason == Some(StopReason::EndTurn)
        && content.iter().any(|b| matches!(b, Block::ToolUse(_)))
    {
        stop_reason = Some(StopReason::ToolUse);
    }
    Ok(Response {
        id: wire.response_id,
        model: wire.model_version,
        created: 0,
        content,
        stop_reason,
        stop_sequence: None,
        usage: wire
            .usage_metadata
            .as_ref()
            .map(usage_in)
            .unwrap_or_default(),
    })
}

/// Writes a Gemini response body.
pub fn render_response(response: &Response) -> Result<Vec<u8>, TranslateError> {
    let out = OutResponse {
        candidates: [OutCandidate {
            content: Some(OutContent {
                role: Some("model"),
                parts: parts_out(&response.content, &[])?,
            }),
            finish_reason: Some(finish_reason_out(
                response.stop_reason.unwrap_or(StopReason::EndTurn),
            )),
            index: 0,
        }],
        usage_metadata: Some(usage_out(&response.usage)),
        model_version: &response.model,
        response_id: &response.id,
    };
    Ok(wire::to_bytes(&out))
}
