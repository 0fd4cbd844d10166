//! Gemini request bodies.

use serde_json::Value;

use super::schema::{from_gemini, to_gemini};
use super::types::{
    FunctionCallingConfig, GenerateRequest, OutContent, OutFunctionDeclaration,
    OutGenerationConfig, OutPart, OutRequest, OutTools, ThinkingConfig, ToolConfig,
};
use super::{CallIds, part_in, parts_out};
use crate::dialect::wire;
use crate::errors::TranslateError;
use crate::ir::{
    Block, Effort, Message, Reasoning, Request, ResponseFormat, Role, Sampling, Text, Tool,
    ToolChoice,
};

const JSON_MIME: &str = "application/json";

/// Reads a Gemini request body. `model` and `stream` come from the URL:
/// the caller sets them.
pub fn parse_request(body: &[u8]) -> Result<Request, TranslateError> {
    let wire: GenerateRequest = serde_json::from_slice(body)?;
    let system = wire
        .system_instruction
        .map(|content| {
            content
                .parts
                .into_iter()
                .filter_map(|part| part.text)
                .map(Text::plain)
                .collect()
        })
        .unwrap_or_default();

    let mut ids = CallIds::new("call_".to_owned());
    let mut messages = Vec::with_capacity(wire.contents.len());
    for content in wire.contents {
        let role = match content.role.as_deref() {
            Some("model") => Role::Assistant,
            _ => Role::User,
        };
        let mut blocks = Vec::with_capacity(content.parts.len());
        for part in content.parts {
            part_in(part, &mut ids, &mut blocks)?;
        }
        messages.push(Message {
            role,
            content: blocks,
        });
    }

    let mut tools = Vec::new();
    for group in wire.tools {
        let declarations = group.function_declarations.ok_or_else(|| {
            TranslateError::unsupported("Gemini built-in tools (search, code execution, …)")
        })?;
        for declaration in declarations {
            let parameters = match (declaration.parameters_json_schema, declaration.parameters) {
                (Some(schema), _) => Some(schema),
                (None, Some(schema)) => Some(wire::to_json(&from_gemini(&schema))),
                (None, None) => None,
            };
            tools.push(Tool {
                name: declaration.name,
                description: declaration.description,
                parameters,
                strict: None,
                cache_control: None,
            });
        }
    }

    let tool_choice = match wire.tool_config {
        None => None,
        Some(config) => {
            let config = config.function_calling_config;
            match config.mode.as_deref() {
                Some("NONE") => Some(ToolChoice::None),
                Some("ANY") => match <[String; 1]>::try_from(config.allowed_function_names) {
                    Ok([name]) => Some(ToolChoice::Tool(name)),
                    Err(_) => Some(ToolChoice::Any),
                },
                Some(_) => Some(ToolChoice::Auto),
                None => None,
            }
        }
    };

    let config = wire.generation_config.unwrap_or_default();
    if config.candidate_count.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported("candidateCount greater than 1"));
    }
    let response_format = match config.response_mime_type.as_deref() {
        Some(JSON_MIME) => Some(
            match (config.response_json_schema, config.response_schema) {
                (Some(schema), _) => json_schema(schema),
                (None, Some(schema)) => json_schema(wire::to_json(&from_gemini(&schema))),
                (None, None) => ResponseFormat::JsonObject,
            },
        ),
        _ => None,
    };
    let reasoning = config.thinking_config.map(|thinking| {
        let effort = match thinking.thinking_level.as_deref() {
            Some("low") | Some("LOW") => Some(Effort::Low),
            Some("medium") | Some("MEDIUM") => Some(Effort::Medium),
            Some("high") | Some("HIGH") => Some(Effort::High),
            _ => None,
        };
        match thinking.thinking_budget {
            Some(0) => Reasoning::Disabled,
            budget => Reasoning::Enabled {
                effort,
                budget_tokens: budget.and_then(|b| u32::try_from(b).ok()),
            },
        }
    });

    Ok(Request {
        model: String::new(),
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: None,
        sampling: Sampling {
            max_tokens: config.max_output_tokens,
            temperature: config.temperature,
            top_p: config.top_p,
            top_k: config.top_k,
            stop: config.stop_sequences,
            seed: config.seed,
            frequency_penalty: config.frequency_penalty,
            presence_penalty: config.presence_penalty,
        },
        reasoning,
        response_format,
        stream: false,
        include_usage: false,
        user: None,
    })
}

fn json_schema(schema: crate::ir::Json) -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "response".to_owned(),
        description: None,
        schema,
        strict: None,
    }
}

/// Writes a Gemini request body. Consecutive messages of one role merge
/// into one turn; `parallel_tool_calls`, `user` and cache breakpoints have
/// no Gemini equivalent and are dropped.
pub fn render_request(request: &Request) -> Result<Vec<u8>, TranslateError> {
    let names: Vec<(&str, &str)> = request
        .messages
        .iter()
        .flat_map(|message| &message.content)
        .filter_map(|block| match block {
            Block::ToolUse(call) => Some((call.id.as_str(), call.name.as_str())),
            _ => None,
        })
        .collect();

    let mut contents: Vec<OutContent> = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        let parts = parts_out(&message.content, &names)?;
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role == Some(role) => last.parts.extend(parts),
            _ => contents.push(OutContent {
                role: Some(role),
                parts,
            }),
        }
    }

    let system_instruction = (!request.system.is_empty()).then(|| OutContent {
        role: None,
        parts: request
            .system
            .iter()
            .map(|text| OutPart {
                text: Some(&text.text),
                ..OutPart::default()
            })
            .collect(),
    });

    let mut declarations = Vec::with_capacity(request.tools.len());
    for tool in &request.tools {
        declarations.push(OutFunctionDeclaration {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters: tool.parameters.as_deref().map(gemini_schema).transpose()?,
        });
    }
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![OutTools {
            function_declarations: declarations,
        }]
    };

    let tool_config = request.tool_choice.as_ref().map(|choice| {
        let (mode, allowed) = match choice {
            ToolChoice::Auto => ("AUTO", Vec::new()),
            ToolChoice::None => ("NONE", Vec::new()),
            ToolChoice::Any => ("ANY", Vec::new()),
            ToolChoice::Tool(name) => ("ANY", vec![name.clone()]),
        };
        ToolConfig {
            function_calling_config: FunctionCallingConfig {
                mode: Some(mode.to_owned()),
                allowed_function_names: allowed,
            },
        }
    });

    let (response_mime_type, response_schema) = match &request.response_format {
        Some(ResponseFormat::JsonObject) => (Some(JSON_MIME), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            (Some(JSON_MIME), Some(gemini_schema(schema)?))
        }
        Some(ResponseFormat::Text) | None => (None, None),
    };
    let thinking_config = request.reasoning.map(|reasoning| match reasoning {
        Reasoning::Disabled => ThinkingConfig {
            thinking_budget: Some(0),
            ..ThinkingConfig::default()
        },
        Reasoning::Enabled { .. } => ThinkingConfig {
            thinking_budget: reasoning.budget_tokens().map(i64::from),
            thinking_level: None,
            include_thoughts: Some(true),
        },
    });

    let sampling = &request.sampling;
    let out = OutRequest {
        system_instruction,
        contents,
        tools,
        tool_config,
        generation_config: OutGenerationConfig {
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            top_k: sampling.top_k,
            max_output_tokens: sampling.max_tokens,
            stop_sequences: &sampling.stop,
            seed: sampling.seed,
            presence_penalty: sampling.presence_penalty,
            frequency_penalty: sampling.frequency_penalty,
            response_mime_type,
            response_schema,
            thinking_config,
        },
    };
    Ok(wire::to_bytes(&out))
}

fn gemini_schema(schema: &serde_json::value::RawValue) -> Result<Value, TranslateError> {
    Ok(to_gemini(&serde_json::from_str(schema.get())?))
}
