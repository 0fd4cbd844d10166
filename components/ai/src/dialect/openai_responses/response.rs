//! OpenAI Responses response bodies.

use super::types::{InResponse, IncompleteDetails, OutResponse};
use super::{output_item_in, output_items, usage_in, usage_out};
use crate::dialect::wire;
use crate::errors::TranslateError;
use crate::ir::{Block, Response, StopReason};

/// The stop reason a finished response stands for.
pub(super) fn stop_reason_in(
    status: Option<&str>,
    incomplete: Option<&IncompleteDetails>,
    called_tool: bool,
) -> StopReason {
    match (status, incomplete.map(|d| d.reason.as_str())) {
        (Some("incomplete"), Some("max_output_tokens")) => StopReason::MaxTokens,
        (Some("incomplete"), Some("content_filter")) => StopReason::ContentFilter,
        (Some("incomplete" | "failed" | "cancelled"), _) => StopReason::Other,
        _ if called_tool => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// `status` and `incomplete_details` for a stop reason.
pub(super) fn status_out(reason: StopReason) -> (&'static str, Option<IncompleteDetails>) {
    let incomplete = |reason: &str| {
        (
            "incomplete",
            Some(IncompleteDetails {
                reason: reason.to_owned(),
            }),
        )
    };
    match reason {
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => {
            incomplete("max_output_tokens")
        }
        StopReason::ContentFilter => incomplete("content_filter"),
        _ => ("completed", None),
    }
}

/// Reads a Responses response body.
pub fn parse_response(body: &[u8]) -> Result<Response, TranslateError> {
    let wire: InResponse = serde_json::from_slice(body)?;
    let mut content = Vec::new();
    for item in wire.output {
        let kind = item.kind.clone().unwrap_or_else(|| "message".to_owned());
        content.extend(output_item_in(item, &kind)?);
    }
    let called_tool = content.iter().any(|b| matches!(b, Block::ToolUse(_)));
    Ok(Response {
        id: wire.id,
        model: wire.model,
        created: wire.created_at,
        stop_reason: Some(stop_reason_in(
            wire.status.as_deref(),
            wire.incomplete_details.as_ref(),
            called_tool,
        )),
        content,
        stop_sequence: None,
        usage: wire.usage.as_ref().map(usage_in).unwrap_or_default(),
    })
}

/// Writes a Responses response body.
pub fn render_response(response: &Response) -> Result<Vec<u8>, TranslateError> {
    let (status, incomplete_details) =
        status_out(response.stop_reason.unwrap_or(StopReason::EndTurn));
    let output = output_items(&response.content);
    let out = OutResponse {
        id: &response.id,
        object: "response",
        created_at: response.created,
        status,
        model: &response.model,
        output: &output,
        incomplete_details,
        usage: Some(usage_out(&response.usage)),
    };
    Ok(wire::to_bytes(&out))
}
