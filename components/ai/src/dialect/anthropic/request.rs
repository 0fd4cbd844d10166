//! Anthropic request bodies.

use serde_json::value::RawValue;

use super::types::{
    MessagesRequest, OutMessage, OutRequest, OutTool, WireMetadata, WireThinking, WireToolChoice,
};
use super::{JSON_TOOL, block_in, content_out};
use crate::dialect::wire::{self, TextOr};
use crate::errors::TranslateError;
use crate::ir::{
    Block, Message, Reasoning, Request, ResponseFormat, Role, Sampling, Text, Tool, ToolChoice,
};

/// `max_tokens` when the client set none; Anthropic requires one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The smallest thinking budget Anthropic accepts.
const MIN_THINKING_BUDGET: u32 = 1024;

/// The input schema of a tool that declares no parameters.
const EMPTY_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;

/// The schema of the [`JSON_TOOL`] for `json_object` mode.
const ANY_OBJECT_SCHEMA: &str = r#"{"type":"object"}"#;

const JSON_TOOL_DESCRIPTION: &str =
    "Give your final answer by calling this tool: its input is the JSON response.";

/// Reads an Anthropic request body.
pub fn parse_request(body: &[u8]) -> Result<Request, TranslateError> {
    let wire: MessagesRequest = serde_json::from_slice(body)?;
    let system = match wire.system {
        None => Vec::new(),
        Some(TextOr::Text(text)) => vec![Text::plain(text)],
        Some(TextOr::Items(blocks)) => blocks
            .into_iter()
            .map(|block| match block_in(block)? {
                Block::Text(text) => Ok(text),
                _ => Err(TranslateError::invalid("system blocks must be text")),
            })
            .collect::<Result<_, _>>()?,
    };
    let messages = wire
        .messages
        .into_iter()
        .map(|message| {
            let role = match message.role.as_str() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(TranslateError::invalid(format!("unknown role `{other}`")));
                }
            };
            let content = match message.content {
                TextOr::Text(text) => vec![Block::Text(Text::plain(text))],
                TextOr::Items(blocks) => {
                    blocks.into_iter().map(block_in).collect::<Result<_, _>>()?
                }
            };
            Ok(Message { role, content })
        })
        .collect::<Result<_, _>>()?;

    let mut response_format = None;
    let mut tools = Vec::with_capacity(wire.tools.len());
    for tool in wire.tools {
        if let Some(kind) = tool.kind.as_deref().filter(|kind| *kind != "custom") {
            return Err(TranslateError::unsupported(format!(
                "Anthropic server tool `{kind}`"
            )));
        }
        if tool.name == JSON_TOOL {
            let schema = tool.input_schema.unwrap_or_else(wire::empty_object);
            response_format = Some(if is_any_object(&schema) {
                ResponseFormat::JsonObject
            } else {
                ResponseFormat::JsonSchema {
                    name: "response".to_owned(),
                    description: None,
                    schema,
                    strict: None,
                }
            });
            continue;
        }
        tools.push(Tool {
            name: tool.name,
            description: tool.description,
            parameters: tool.input_schema,
            strict: None,
            cache_control: tool.cache_control.map(Into::into),
        });
    }

    let mut parallel_tool_calls = None;
    let tool_choice = match wire.tool_choice {
        None => None,
        Some(choice) => {
            parallel_tool_calls = choice.disable_parallel_tool_use.map(|disable| !disable);
            match choice.kind.as_str() {
                "auto" => Some(ToolChoice::Auto),
                "any" => Some(ToolChoice::Any),
                "none" => Some(ToolChoice::None),
                "tool" => match choice.name {
                    Some(name) if name == JSON_TOOL => None,
                    Some(name) => Some(ToolChoice::Tool(name)),
                    None => return Err(TranslateError::invalid("tool_choice `tool` without name")),
                },
                other => {
                    return Err(TranslateError::invalid(format!(
                        "unknown tool_choice type `{other}`"
                    )));
                }
            }
        }
    };

    let reasoning = match wire.thinking {
        None => None,
        Some(thinking) => match thinking.kind.as_str() {
            "enabled" => Some(Reasoning::Enabled {
                effort: None,
                budget_tokens: thinking.budget_tokens,
            }),
            "disabled" => Some(Reasoning::Disabled),
            other => {
                return Err(TranslateError::unsupported(format!(
                    "thinking type `{other}`"
                )));
            }
        },
    };

    Ok(Request {
        model: wire.model,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        sampling: Sampling {
            max_tokens: Some(wire.max_tokens),
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_k: wire.top_k,
            stop: wire.stop_sequences,
            ..Sampling::default()
        },
        reasoning,
        response_format,
        stream: wire.stream,
        include_usage: wire.stream,
        user: wire.metadata.and_then(|m| m.user_id),
    })
}

fn is_any_object(schema: &RawValue) -> bool {
    serde_json::from_str::<serde_json::Value>(schema.get())
        .is_ok_and(|v| v == serde_json::json!({"type": "object"}))
}

/// Writes an Anthropic request body. Sampling parameters Anthropic lacks
/// (`seed`, penalties) are dropped; unsigned thinking is not sent back.
pub fn render_request(request: &Request) -> Result<Vec<u8>, TranslateError> {
    let empty_schema = RawValue::from_string(EMPTY_SCHEMA.to_owned()).expect("schema is JSON");
    let any_object = RawValue::from_string(ANY_OBJECT_SCHEMA.to_owned()).expect("schema is JSON");

    let system = match request.system.as_slice() {
        [] => None,
        blocks => Some(content_out_text(blocks)),
    };
    let messages = request
        .messages
        .iter()
        .map(|message| OutMessage {
            role: match message.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            content: content_out(&message.content, true),
        })
        .collect();

    let mut tools: Vec<OutTool> = request
        .tools
        .iter()
        .map(|tool| OutTool {
            name: &tool.name,
            description: tool.description.as_deref(),
            input_schema: tool.parameters.as_deref().unwrap_or(&empty_schema),
            cache_control: wire::cache_out(&tool.cache_control),
        })
        .collect();

    let thinking_on = matches!(request.reasoning, Some(Reasoning::Enabled { .. }));
    let mut tool_choice = request.tool_choice.as_ref().map(|choice| {
        let (kind, name) = match choice {
            ToolChoice::Auto => ("auto", None),
            ToolChoice::None => ("none", None),
            ToolChoice::Any => ("any", None),
            ToolChoice::Tool(name) => ("tool", Some(name.clone())),
        };
        WireToolChoice {
            kind: kind.to_owned(),
            name,
            disable_parallel_tool_use: None,
        }
    });
    let json_schema = match &request.response_format {
        Some(ResponseFormat::JsonObject) => Some(&*any_object),
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(&**schema),
        Some(ResponseFormat::Text) | None => None,
    };
    if let Some(schema) = json_schema {
        // Forcing the tool is only possible when no other tool competes and
        // thinking is off (Anthropic refuses forced tools with thinking).
        if tools.is_empty() && !thinking_on {
            tool_choice = Some(WireToolChoice {
                kind: "tool".to_owned(),
                name: Some(JSON_TOOL.to_owned()),
                disable_parallel_tool_use: None,
            });
        }
        tools.push(OutTool {
            name: JSON_TOOL,
            description: Some(JSON_TOOL_DESCRIPTION),
            input_schema: schema,
            cache_control: None,
        });
    }
    if let Some(parallel) = request.parallel_tool_calls.filter(|_| !tools.is_empty()) {
        tool_choice
            .get_or_insert_with(|| WireToolChoice {
                kind: "auto".to_owned(),
                name: None,
                disable_parallel_tool_use: None,
            })
            .disable_parallel_tool_use = Some(!parallel);
    }

    let max_tokens = request.sampling.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let thinking = request.reasoning.map(|reasoning| match reasoning {
        Reasoning::Disabled => WireThinking {
            kind: "disabled".to_owned(),
            budget_tokens: None,
        },
        Reasoning::Enabled { budget_tokens, .. } => {
            // A budget derived from an effort level must fit under
            // max_tokens; an explicit one is passed as given.
            let budget = budget_tokens.unwrap_or_else(|| {
                let derived = reasoning.budget_tokens().unwrap_or(MIN_THINKING_BUDGET);
                derived
                    .min(max_tokens.saturating_sub(1))
                    .max(MIN_THINKING_BUDGET)
            });
            WireThinking {
                kind: "enabled".to_owned(),
                budget_tokens: Some(budget),
            }
        }
    });

    let out = OutRequest {
        model: &request.model,
        max_tokens,
        system,
        messages,
        stop_sequences: &request.sampling.stop,
        temperature: request.sampling.temperature,
        top_p: request.sampling.top_p,
        top_k: request.sampling.top_k,
        tools,
        tool_choice,
        thinking,
        metadata: request.user.as_ref().map(|user| WireMetadata {
            user_id: Some(user.clone()),
        }),
        stream: request.stream,
    };
    Ok(wire::to_bytes(&out))
}

/// The system prompt: a string for one uncached block, else text blocks.
fn content_out_text(blocks: &[Text]) -> super::types::OutContent<'_> {
    use super::types::{OutBlock, OutContent};
    match blocks {
        [
            Text {
                text,
                cache_control: None,
            },
        ] => OutContent::Text(text),
        _ => OutContent::Blocks(
            blocks
                .iter()
                .map(|text| OutBlock::Text {
                    text: &text.text,
                    cache_control: wire::cache_out(&text.cache_control),
                })
                .collect(),
        ),
    }
}
