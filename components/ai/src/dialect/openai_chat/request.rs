//! OpenAI Chat request bodies.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::types::{
    ChatRequest, InRole, OutFunction, OutJsonSchema, OutMessage, OutRequest, OutResponseFormat,
    OutTool, StreamOptionsWire, ToolKind,
};
use super::{assistant_in, assistant_out, parts_in, parts_out, tool_call_id, unfold_id};
use crate::dialect::wire::{self, TextOr};
use crate::errors::TranslateError;
use crate::ir::{
    Block, Effort, Message, Reasoning, Request, ResponseFormat, Role, Sampling, Text, Tool,
    ToolChoice, ToolResult,
};

/// Reads an OpenAI Chat request body. System and developer messages become
/// the system prompt wherever they stand; consecutive tool messages become
/// one user message of tool results.
pub fn parse_request(body: &[u8]) -> Result<Request, TranslateError> {
    let wire: ChatRequest = serde_json::from_slice(body)?;
    if wire.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported("`n` greater than 1"));
    }
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::with_capacity(wire.messages.len());
    for message in wire.messages {
        match message.role {
            InRole::System | InRole::Developer => {
                for block in parts_in(message.content)? {
                    match block {
                        Block::Text(text) => system.push(text),
                        _ => return Err(TranslateError::invalid("system content must be text")),
                    }
                }
            }
            InRole::User => messages.push(Message {
                role: Role::User,
                content: parts_in(message.content)?,
            }),
            InRole::Assistant => messages.push(Message {
                role: Role::Assistant,
                content: assistant_in(message)?,
            }),
            InRole::Tool => {
                let id = message
                    .tool_call_id
                    .ok_or_else(|| TranslateError::invalid("tool message without tool_call_id"))?;
                let result = Block::ToolResult(ToolResult {
                    tool_use_id: unfold_id(id).0,
                    content: parts_in(message.content)?,
                    is_error: false,
                    cache_control: None,
                });
                match messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last
                                .content
                                .iter()
                                .all(|b| matches!(b, Block::ToolResult(_))) =>
                    {
                        last.content.push(result)
                    }
                    _ => messages.push(Message {
                        role: Role::User,
                        content: vec![result],
                    }),
                }
            }
        }
    }

    let tools = wire
        .tools
        .into_iter()
        .map(|tool| {
            if tool.kind != ToolKind::Function {
                return Err(TranslateError::unsupported("tools other than functions"));
            }
            Ok(Tool {
                name: tool.function.name,
                description: tool.function.description,
                parameters: tool.function.parameters,
                strict: tool.function.strict,
                cache_control: tool.cache_control.map(Into::into),
            })
        })
        .collect::<Result<_, _>>()?;

    let tool_choice = match wire.tool_choice {
        None => None,
        Some(Value::String(choice)) => Some(tool_choice_mode(&choice)?),
        Some(choice) => match choice.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(ToolChoice::Tool(name.to_owned())),
            None => {
                return Err(TranslateError::invalid(
                    "tool_choice object without function.name",
                ));
            }
        },
    };

    let response_format = match wire.response_format {
        None => None,
        Some(format) => Some(match format.kind.as_str() {
            "text" => ResponseFormat::Text,
            "json_object" => ResponseFormat::JsonObject,
            "json_schema" => {
                let schema = format.json_schema.ok_or_else(|| {
                    TranslateError::invalid("json_schema format without json_schema")
                })?;
                ResponseFormat::JsonSchema {
                    name: schema.name,
                    description: schema.description,
                    schema: schema.schema.unwrap_or_else(wire::empty_object),
                    strict: schema.strict,
                }
            }
            other => {
                return Err(TranslateError::unsupported(format!(
                    "response_format type `{other}`"
                )));
            }
        }),
    };

    let effort = match wire.reasoning_effort.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(effort) => Some(Some(Effort::parse(effort).ok_or_else(|| {
            TranslateError::invalid(format!("unknown reasoning_effort `{effort}`"))
        })?)),
    };
    let reasoning = match (wire.thinking, effort) {
        (Some(thinking), _) if thinking.kind == "disabled" => Some(Reasoning::Disabled),
        (Some(thinking), effort) => Some(Reasoning::Enabled {
            effort: effort.flatten(),
            budget_tokens: thinking.budget_tokens,
        }),
        (None, Some(None)) => Some(Reasoning::Disabled),
        (None, Some(Some(effort))) => Some(Reasoning::Enabled {
            effort: Some(effort),
            budget_tokens: None,
        }),
        (None, None) => None,
    };

    Ok(Request {
        model: wire.model,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: wire.parallel_tool_calls,
        sampling: Sampling {
            max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_k: None,
            stop: match wire.stop {
                None => Vec::new(),
                Some(TextOr::Text(stop)) => vec![stop],
                Some(TextOr::Items(stop)) => stop,
            },
            seed: wire.seed,
            frequency_penalty: wire.frequency_penalty,
            presence_penalty: wire.presence_penalty,
        },
        reasoning,
        response_format,
        stream: wire.stream,
        include_usage: wire.stream_options.is_some_and(|o| o.include_usage),
        user: wire.user,
    })
}

/// Writes an OpenAI Chat request body. Tool results become `tool`
/// messages; images in tool results, which Chat cannot carry there, follow
/// in a user message. A stream always asks for the final usage chunk: the
/// gateway counts tokens whatever the client asked for (the client's wish
/// is [`Request::include_usage`], for the downstream encoder).
pub fn render_request(request: &Request) -> Result<Vec<u8>, TranslateError> {
    let mut messages = Vec::with_capacity(request.system.len() + request.messages.len());
    for text in &request.system {
        messages.push(plain_message("system", text));
    }
    // Folded tool call ids, for the tool messages that answer them.
    let mut folded = Vec::new();
    for message in &request.messages {
        match message.role {
            Role::Assistant => {
                for (position, block) in message.content.iter().enumerate() {
                    if let Block::ToolUse(call) = block
                        && let Cow::Owned(id) = tool_call_id(&message.content, position, &call.id)
                    {
                        folded.push((call.id.as_str(), id));
                    }
                }
                messages.push(assistant_out(&message.content)?);
            }
            Role::User => {
                let mut rest = Vec::new();
                for block in &message.content {
                    match block {
                        Block::ToolResult(result) => {
                            let id = folded
                                .iter()
                                .find(|(id, _)| *id == result.tool_use_id)
                                .map_or(Cow::Borrowed(result.tool_use_id.as_str()), |(_, f)| {
                                    Cow::Owned(f.clone())
                                });
                            let (texts, images): (Vec<&Block>, Vec<&Block>) = result
                                .content
                                .iter()
                                .partition(|b| matches!(b, Block::Text(_)));
                            rest.extend(images);
                            messages.push(OutMessage {
                                role: "tool",
                                content: Some(parts_out(&texts)),
                                reasoning_content: None,
                                thinking_blocks: Vec::new(),
                                tool_calls: Vec::new(),
                                tool_call_id: Some(id),
                            });
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
                    messages.push(OutMessage {
                        role: "user",
                        content: Some(parts_out(&rest)),
                        reasoning_content: None,
                        thinking_blocks: Vec::new(),
                        tool_calls: Vec::new(),
                        tool_call_id: None,
                    });
                }
            }
        }
    }

    let out = OutRequest {
        model: &request.model,
        messages,
        tools: request.tools.iter().map(tool_out).collect(),
        tool_choice: request.tool_choice.as_ref().map(|choice| match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Any => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        }),
        parallel_tool_calls: request.parallel_tool_calls,
        max_completion_tokens: request.sampling.max_tokens,
        temperature: request.sampling.temperature,
        top_p: request.sampling.top_p,
        stop: &request.sampling.stop,
        seed: request.sampling.seed,
        frequency_penalty: request.sampling.frequency_penalty,
        presence_penalty: request.sampling.presence_penalty,
        response_format: request.response_format.as_ref().map(|format| match format {
            ResponseFormat::Text => OutResponseFormat::Text,
            ResponseFormat::JsonObject => OutResponseFormat::JsonObject,
            ResponseFormat::JsonSchema {
                name,
                description,
                schema,
                strict,
            } => OutResponseFormat::JsonSchema {
                json_schema: OutJsonSchema {
                    name,
                    description: description.as_deref(),
                    schema,
                    strict: *strict,
                },
            },
        }),
        reasoning_effort: request
            .reasoning
            .and_then(Reasoning::effort)
            .map(Effort::as_str),
        stream: request.stream,
        stream_options: request.stream.then_some(StreamOptionsWire {
            include_usage: true,
        }),
        user: request.user.as_deref(),
    };
    Ok(wire::to_bytes(&out))
}

fn plain_message<'a>(role: &'static str, text: &'a Text) -> OutMessage<'a> {
    OutMessage {
        role,
        content: Some(super::types::OutContent::Text(Cow::Borrowed(&text.text))),
        reasoning_content: None,
        thinking_blocks: Vec::new(),
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

fn tool_out(tool: &Tool) -> OutTool<'_> {
    OutTool {
        kind: "function",
        function: OutFunction {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters: tool.parameters.as_deref(),
            strict: tool.strict,
        },
    }
}

/// OpenAI's `tool_choice` modes (both OpenAI dialects name them alike).
pub(crate) fn tool_choice_mode(choice: &str) -> Result<ToolChoice, TranslateError> {
    Ok(match choice {
        "auto" => ToolChoice::Auto,
        "none" => ToolChoice::None,
        "required" => ToolChoice::Any,
        other => {
            return Err(TranslateError::invalid(format!(
                "unknown tool_choice `{other}`"
            )));
        }
    })
}
