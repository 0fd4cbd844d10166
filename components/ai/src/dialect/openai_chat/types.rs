//! OpenAI Chat Completions wire types: flat, owned structs to read,
//! borrowed ones to write.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::dialect::wire::{TextOr, WireCacheControl, is_false, is_zero};
use crate::ir::Json;

/// `POST /v1/chat/completions` body, as read.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub tools: Vec<InTool>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub stop: Option<TextOr<String>>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub response_format: Option<InResponseFormat>,
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// Anthropic-style thinking budget (LiteLLM extension).
    #[serde(default)]
    pub thinking: Option<InThinkingParam>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptionsWire>,
    #[serde(default)]
    pub user: Option<String>,
}

/// Who speaks a message, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

/// Any message, as read (requests and response choices).
#[derive(Debug, Deserialize)]
pub struct InMessage {
    pub role: InRole,
    #[serde(default)]
    pub content: Option<TextOr<InPart>>,
    #[serde(default)]
    pub tool_calls: Option<Vec<InToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub thinking_blocks: Option<Vec<WireThinkingBlock>>,
}

/// The type of a content part, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    Text,
    Refusal,
    ImageUrl,
    InputAudio,
    File,
    #[serde(other)]
    Other,
}

/// A content part, as read.
#[derive(Debug, Deserialize)]
pub struct InPart {
    #[serde(rename = "type")]
    pub kind: PartKind,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub image_url: Option<InImageUrl>,
    #[serde(default)]
    pub cache_control: Option<WireCacheControl>,
}

/// `image_url` of a content part: an object, or a bare URL string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum InImageUrl {
    Object {
        url: String,
        #[serde(default)]
        detail: Option<String>,
    },
    Url(String),
}

/// A tool call of an assistant message, as read.
#[derive(Debug, Deserialize)]
pub struct InToolCall {
    pub id: String,
    pub function: InFunctionCall,
}

/// The function of a tool call, as read.
#[derive(Debug, Deserialize)]
pub struct InFunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// A reasoning block (LiteLLM's `thinking_blocks` extension), both ways.
#[derive(Debug, Deserialize, Serialize)]
pub struct WireThinkingBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// The type of a tool definition, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    Function,
    #[serde(other)]
    Other,
}

/// A tool definition, as read.
#[derive(Debug, Deserialize)]
pub struct InTool {
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: InFunction,
    #[serde(default)]
    pub cache_control: Option<WireCacheControl>,
}

/// The function of a tool definition, as read.
#[derive(Debug, Deserialize)]
pub struct InFunction {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Json>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `response_format`, as read.
#[derive(Debug, Deserialize)]
pub struct InResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub json_schema: Option<InJsonSchema>,
}

/// `response_format.json_schema`, as read.
#[derive(Debug, Deserialize)]
pub struct InJsonSchema {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<Json>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `thinking` (LiteLLM extension), as read.
#[derive(Debug, Deserialize)]
pub struct InThinkingParam {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub budget_tokens: Option<u32>,
}

/// `stream_options`, both ways.
#[derive(Debug, Deserialize, Serialize)]
pub struct StreamOptionsWire {
    #[serde(default)]
    pub include_usage: bool,
}

/// `POST /v1/chat/completions` body, as written.
#[derive(Debug, Serialize)]
pub struct OutRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<OutResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "is_false")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptionsWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
}

/// A message, as written.
#[derive(Debug, Serialize)]
pub struct OutMessage<'a> {
    pub role: &'static str,
    pub content: Option<OutContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thinking_blocks: Vec<WireThinkingBlock>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<Cow<'a, str>>,
}

/// Content as written: a string for one text, else parts.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OutContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<OutPart<'a>>),
}

/// A content part, as written.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: OutImageUrl<'a> },
}

/// `image_url` of a content part, as written.
#[derive(Debug, Serialize)]
pub struct OutImageUrl<'a> {
    pub url: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

/// A tool call, as written.
#[derive(Debug, Serialize)]
pub struct OutToolCall<'a> {
    pub id: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: OutFunctionCall<'a>,
}

/// The function of a tool call, as written.
#[derive(Debug, Serialize)]
pub struct OutFunctionCall<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

/// A tool definition, as written.
#[derive(Debug, Serialize)]
pub struct OutTool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: OutFunction<'a>,
}

/// The function of a tool definition, as written.
#[derive(Debug, Serialize)]
pub struct OutFunction<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `response_format`, as written.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { json_schema: OutJsonSchema<'a> },
}

/// `response_format.json_schema`, as written.
#[derive(Debug, Serialize)]
pub struct OutJsonSchema<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub schema: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A response body, as read.
#[derive(Debug, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<InChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// A response choice, as read.
#[derive(Debug, Deserialize)]
pub struct InChoice {
    pub message: InMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// A response body, as written.
#[derive(Debug, Serialize)]
pub struct OutResponse<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: [OutChoice<'a>; 1],
    pub usage: WireUsage,
}

/// The one choice of a response, as written.
#[derive(Debug, Serialize)]
pub struct OutChoice<'a> {
    pub index: u32,
    pub message: OutMessage<'a>,
    pub finish_reason: Option<&'static str>,
}

/// Token counts, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionDetails>,
}

/// `usage.prompt_tokens_details`, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct PromptDetails {
    #[serde(default, deserialize_with = "null_as_zero")]
    pub cached_tokens: u64,
    /// Cache writes (reported by gateways in front of Anthropic).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_input_tokens: u64,
}

/// `usage.completion_tokens_details`, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct CompletionDetails {
    #[serde(default, deserialize_with = "null_as_zero")]
    pub reasoning_tokens: u64,
}

fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.unwrap_or(0))
}

/// A stream chunk, as read.
#[derive(Debug, Deserialize)]
pub struct InChunk {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    /// Some backends send `null` in the usage chunk.
    #[serde(default)]
    pub choices: Option<Vec<InChunkChoice>>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<Value>,
}

/// A chunk's choice, as read.
#[derive(Debug, Deserialize)]
pub struct InChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Option<InDelta>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// A chunk's delta, as read.
#[derive(Debug, Default, Deserialize)]
pub struct InDelta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// Spelling of `reasoning_content` used by OpenRouter and newer vLLM.
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub thinking_blocks: Option<Vec<WireThinkingBlock>>,
    #[serde(default)]
    pub tool_calls: Option<Vec<InToolCallDelta>>,
}

/// A tool call fragment, as read.
#[derive(Debug, Deserialize)]
pub struct InToolCallDelta {
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<InFunctionDelta>,
}

/// The function of a tool call fragment, as read.
#[derive(Debug, Deserialize)]
pub struct InFunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// A stream chunk, as written.
#[derive(Debug, Serialize)]
pub struct OutChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<OutChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
}

/// A chunk's choice, as written.
#[derive(Debug, Serialize)]
pub struct OutChunkChoice<'a> {
    pub index: u32,
    pub delta: OutDelta<'a>,
    pub finish_reason: Option<&'static str>,
}

/// A chunk's delta, as written.
#[derive(Debug, Default, Serialize)]
pub struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_blocks: Option<[WireThinkingBlock; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[OutToolCallDelta<'a>; 1]>,
}

/// A tool call fragment, as written.
#[derive(Debug, Serialize)]
pub struct OutToolCallDelta<'a> {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: OutFunctionDelta<'a>,
}

/// The function of a tool call fragment, as written.
#[derive(Debug, Serialize)]
pub struct OutFunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}
