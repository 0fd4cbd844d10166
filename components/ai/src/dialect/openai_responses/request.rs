//! OpenAI Responses request bodies.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::types::{
    OutContent, OutFormat, OutItem, OutPart, OutRequest, OutTextConfig, OutTool, OutTypedItem,
    ReasoningConfig, ResponsesRequest,
};
use super::{output_item_in, parts_in};
use crate::dialect::openai_chat::tool_choice_mode;
use crate::dialect::wire::{self, TextOr};
use crate::errors::TranslateError;
use crate::ir::{
    Block, Effort, ImageSource, Message, Reasoning, Request, ResponseFormat, Role, Sampling, Text,
    Tool, ToolChoice, ToolResult,
};

/// Reads a Responses request body. Consecutive assistant-side items
/// (messages, calls, reasoning) form one assistant message; consecutive
/// call outputs one user message.
pub fn parse_request(body: &[u8]) -> Result<Request, TranslateError> {
    let wire: ResponsesRequest = serde_json::from_slice(body)?;
    if wire.previous_response_id.is_some() {
        return Err(TranslateError::unsupported(
            "previous_response_id (send the conversation as input items)",
        ));
    }
    let mut system: Vec<Text> = wire.instructions.into_iter().map(Text::plain).collect();
    let mut messages: Vec<Message> = Vec::new();
    let items = match wire.input {
        TextOr::Text(text) => {
            messages.push(Message {
                role: Role::User,
                content: vec![Block::Text(Text::plain(text))],
            });
            Vec::new()
        }
        TextOr::Items(items) => items,
    };
    for item in items {
        let kind = item.kind.clone().unwrap_or_else(|| "message".to_owned());
        let (role, blocks) = match (kind.as_str(), item.role.as_deref()) {
            ("message", Some("system" | "developer")) => {
                for block in parts_in(item.content)? {
                    match block {
                        Block::Text(text) => system.push(text),
                        _ => return Err(TranslateError::invalid("system content must be text")),
                    }
                }
                continue;
            }
            ("message", Some("user")) => (Role::User, parts_in(item.content)?),
            ("function_call_output", _) => {
                let tool_use_id = item.call_id.ok_or_else(|| {
                    TranslateError::invalid("function_call_output without call_id")
                })?;
                let result = ToolResult {
                    tool_use_id,
                    content: parts_in(item.output)?,
                    is_error: false,
                    cache_control: None,
                };
                (Role::User, vec![Block::ToolResult(result)])
            }
            ("message", Some("assistant")) | ("function_call" | "reasoning", _) => {
                (Role::Assistant, output_item_in(item, &kind)?)
            }
            ("message", role) => {
                return Err(TranslateError::invalid(format!(
                    "unknown role `{}`",
                    role.unwrap_or("")
                )));
            }
            (other, _) => {
                return Err(TranslateError::unsupported(format!(
                    "Responses input item type `{other}`"
                )));
            }
        };
        let is_results =
            |blocks: &[Block]| blocks.iter().all(|b| matches!(b, Block::ToolResult(_)));
        match messages.last_mut() {
            Some(last)
                if last.role == role
                    && (role == Role::Assistant
                        || (is_results(&last.content) && is_results(&blocks))) =>
            {
                last.content.extend(blocks)
            }
            _ => messages.push(Message {
                role,
                content: blocks,
            }),
        }
    }

    let mut tools = Vec::with_capacity(wire.tools.len());
    for tool in wire.tools {
        if tool.kind != "function" {
            return Err(TranslateError::unsupported(format!(
                "Responses tool type `{}`",
                tool.kind
            )));
        }
        tools.push(Tool {
            name: tool
                .name
                .ok_or_else(|| TranslateError::invalid("function tool without name"))?,
            description: tool.description,
            parameters: tool.parameters,
            // The Responses API defaults to strict schemas.
            strict: Some(tool.strict.unwrap_or(true)),
            cache_control: None,
        });
    }

    let tool_choice = match wire.tool_choice {
        None => None,
        Some(Value::String(choice)) => Some(tool_choice_mode(&choice)?),
        Some(choice) => match choice.get("name").and_then(Value::as_str) {
            Some(name) => Some(ToolChoice::Tool(name.to_owned())),
            None => {
                return Err(TranslateError::unsupported(
                    "tool_choice without a function name",
                ));
            }
        },
    };

    let response_format = match wire.text.and_then(|text| text.format) {
        None => None,
        Some(format) => Some(match format.kind.as_str() {
            "text" => ResponseFormat::Text,
            "json_object" => ResponseFormat::JsonObject,
            "json_schema" => ResponseFormat::JsonSchema {
                name: format.name.unwrap_or_else(|| "response".to_owned()),
                description: format.description,
                schema: format.schema.unwrap_or_else(wire::empty_object),
                strict: format.strict,
            },
            other => {
                return Err(TranslateError::unsupported(format!(
                    "text.format type `{other}`"
                )));
            }
        }),
    };

    let reasoning = match wire.reasoning.and_then(|r| r.effort) {
        None => None,
        Some(effort) if effort == "none" => Some(Reasoning::Disabled),
        Some(effort) => Some(Reasoning::Enabled {
            effort: Some(Effort::parse(&effort).ok_or_else(|| {
                TranslateError::invalid(format!("unknown reasoning effort `{effort}`"))
            })?),
            budget_tokens: None,
        }),
    };

    Ok(Request {
        model: wire.model,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: wire.parallel_tool_calls,
        sampling: Sampling {
            max_tokens: wire.max_output_tokens,
            temperature: wire.temperature,
            top_p: wire.top_p,
            ..Sampling::default()
        },
        reasoning,
        response_format,
        stream: wire.stream,
        include_usage: wire.stream,
        user: wire.user,
    })
}

/// Writes a Responses request body. The system prompt becomes
/// `instructions`; stop sequences, seeds, penalties and thinking blocks
/// have no Responses equivalent and are dropped.
pub fn render_request(request: &Request) -> Result<Vec<u8>, TranslateError> {
    let instructions = (!request.system.is_empty()).then(|| {
        request
            .system
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    });
    let mut input = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        match message.role {
            Role::User => {
                let mut rest = Vec::new();
                for block in &message.content {
                    match block {
                        Block::ToolResult(result) => {
                            input.push(OutItem::Typed(OutTypedItem::FunctionCallOutput {
                                call_id: &result.tool_use_id,
                                output: result
                                    .content
                                    .iter()
                                    .filter_map(|b| match b {
                                        Block::Text(text) => Some(text.text.as_str()),
                                        _ => None,
                                    })
                                    .collect(),
                            }));
                        }
                        Block::Text(_) | Block::Image(_) => rest.push(block),
                        _ => {
                            return Err(TranslateError::invalid(
                                "user messages hold text, images and tool results",
                            ));
                        }
                    }
                }
                if !rest.is_empty() {
                    input.push(OutItem::Message {
                        role: "user",
                        content: user_content(&rest),
                    });
                }
            }
            Role::Assistant => {
                let mut text = String::new();
                for block in &message.content {
                    match block {
                        Block::Text(t) => text.push_str(&t.text),
                        Block::ToolUse(call) => {
                            flush_assistant_text(&mut input, &mut text);
                            input.push(OutItem::Typed(OutTypedItem::FunctionCall {
                                id: None,
                                status: None,
                                call_id: call.id.clone(),
                                name: call.name.clone(),
                                arguments: call.input.get().to_owned(),
                            }));
                        }
                        _ => {}
                    }
                }
                flush_assistant_text(&mut input, &mut text);
            }
        }
    }

    let out = OutRequest {
        model: &request.model,
        instructions,
        input,
        tools: request
            .tools
            .iter()
            .map(|tool| OutTool {
                kind: "function",
                name: &tool.name,
                description: tool.description.as_deref(),
                parameters: tool.parameters.as_deref(),
                strict: tool.strict.unwrap_or(false),
            })
            .collect(),
        tool_choice: request.tool_choice.as_ref().map(|choice| match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Any => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "name": name}),
        }),
        parallel_tool_calls: request.parallel_tool_calls,
        max_output_tokens: request.sampling.max_tokens,
        temperature: request.sampling.temperature,
        top_p: request.sampling.top_p,
        text: request
            .response_format
            .as_ref()
            .map(|format| OutTextConfig {
                format: match format {
                    ResponseFormat::Text => OutFormat::Text,
                    ResponseFormat::JsonObject => OutFormat::JsonObject,
                    ResponseFormat::JsonSchema {
                        name,
                        description,
                        schema,
                        strict,
                    } => OutFormat::JsonSchema {
                        name,
                        description: description.as_deref(),
                        schema,
                        strict: *strict,
                    },
                },
            }),
        reasoning: request.reasoning.map(|reasoning| ReasoningConfig {
            effort: Some(reasoning.effort().map_or("none", Effort::as_str).to_owned()),
        }),
        stream: request.stream,
        user: request.user.as_deref(),
    };
    Ok(wire::to_bytes(&out))
}

fn flush_assistant_text(input: &mut Vec<OutItem>, text: &mut String) {
    if !text.is_empty() {
        input.push(OutItem::Message {
            role: "assistant",
            content: OutContent::Text(Cow::Owned(std::mem::take(text))),
        });
    }
}

fn user_content<'a>(blocks: &[&'a Block]) -> OutContent<'a> {
    if let [Block::Text(text)] = blocks {
        return OutContent::Text(Cow::Borrowed(&text.text));
    }
    OutContent::Parts(
        blocks
            .iter()
            .filter_map(|block| match block {
                Block::Text(text) => Some(OutPart::InputText { text: &text.text }),
                Block::Image(image) => Some(OutPart::InputImage {
                    image_url: match &image.source {
                        ImageSource::Url { url, .. } => url.clone(),
                        ImageSource::Base64 { media_type, data } => {
                            format!("data:{media_type};base64,{data}")
                        }
                    },
                    detail: image.detail.as_deref(),
                }),
                _ => None,
            })
            .collect(),
    )
}
