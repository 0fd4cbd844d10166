//! OpenAI Responses wire types: flat, owned structs to read, borrowed ones
//! to write.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::dialect::wire::{TextOr, is_false};
use crate::ir::Json;

/// `POST /v1/responses` body, as read.
#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    #[serde(default)]
    pub input: TextOr<InItem>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Vec<InTool>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub text: Option<TextConfig>,
    #[serde(default)]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
}

/// An input or output item, as read: every field of every item type.
#[derive(Debug, Deserialize)]
pub struct InItem {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub content: Option<TextOr<InPart>>,
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
    #[serde(default)]
    pub output: Option<TextOr<InPart>>,
    #[serde(default)]
    pub summary: Option<Vec<InPart>>,
    #[serde(default)]
    pub encrypted_content: Option<String>,
}

/// A content part (or summary part), as read.
#[derive(Debug, Deserialize)]
pub struct InPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

/// A tool definition, as read.
#[derive(Debug, Deserialize)]
pub struct InTool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Json>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `text`, as read.
#[derive(Debug, Deserialize)]
pub struct TextConfig {
    #[serde(default)]
    pub format: Option<InFormat>,
}

/// `text.format`, as read.
#[derive(Debug, Deserialize)]
pub struct InFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<Json>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `reasoning`, both ways.
#[derive(Debug, Deserialize, Serialize)]
pub struct ReasoningConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
}

/// `POST /v1/responses` body, as written.
#[derive(Debug, Serialize)]
pub struct OutRequest<'a> {
    pub model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    pub input: Vec<OutItem<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<OutTextConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(skip_serializing_if = "is_false")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
}

/// An item, as written (input items and output items).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OutItem<'a> {
    /// `{role, content}`, the short form of a message input item.
    Message {
        role: &'static str,
        content: OutContent<'a>,
    },
    Typed(OutTypedItem<'a>),
}

/// Message content, as written.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OutContent<'a> {
    Text(std::borrow::Cow<'a, str>),
    Parts(Vec<OutPart<'a>>),
}

/// A content part, as written.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutPart<'a> {
    InputText {
        text: &'a str,
    },
    InputImage {
        image_url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<&'a str>,
    },
    OutputText {
        text: String,
        annotations: [(); 0],
    },
    SummaryText {
        text: String,
    },
}

/// A typed item, as written.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutTypedItem<'a> {
    Message {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<&'static str>,
        role: &'static str,
        content: Vec<OutPart<'a>>,
    },
    FunctionCall {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<&'static str>,
        call_id: String,
        name: String,
        arguments: String,
    },
    FunctionCallOutput {
        call_id: &'a str,
        output: String,
    },
    Reasoning {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        summary: Vec<OutPart<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
}

/// A tool definition, as written.
#[derive(Debug, Serialize)]
pub struct OutTool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<&'a RawValue>,
    pub strict: bool,
}

/// `text`, as written.
#[derive(Debug, Serialize)]
pub struct OutTextConfig<'a> {
    pub format: OutFormat<'a>,
}

/// `text.format`, as written.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutFormat<'a> {
    Text,
    JsonObject,
    JsonSchema {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a str>,
        schema: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

/// A response body (also inside stream events), as read.
#[derive(Debug, Deserialize)]
pub struct InResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub created_at: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub output: Vec<InItem>,
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// Why a response is incomplete, both ways.
#[derive(Debug, Deserialize, Serialize)]
pub struct IncompleteDetails {
    pub reason: String,
}

/// A response body, as written.
#[derive(Debug, Serialize)]
pub struct OutResponse<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created_at: u64,
    pub status: &'static str,
    pub model: &'a str,
    pub output: &'a [OutTypedItem<'a>],
    pub incomplete_details: Option<IncompleteDetails>,
    pub usage: Option<WireUsage>,
}

/// Token counts, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct WireUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: InputDetails,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub output_tokens_details: OutputDetails,
    #[serde(default)]
    pub total_tokens: u64,
}

/// `usage.input_tokens_details`, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct InputDetails {
    #[serde(default)]
    pub cached_tokens: u64,
}

/// `usage.output_tokens_details`, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OutputDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
}

/// A stream event, as read.
#[derive(Debug, Deserialize)]
pub struct InEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub response: Option<InResponse>,
    #[serde(default)]
    pub item: Option<InItem>,
    #[serde(default)]
    pub delta: Option<String>,
}
