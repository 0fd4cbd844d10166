//! Gemini `generateContent` wire types: owned structs to read, borrowed
//! ones to write.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::dialect::wire::is_zero;
use crate::ir::Json;

/// `generateContent` body, as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest {
    #[serde(default)]
    pub contents: Vec<InContent>,
    #[serde(default)]
    pub system_instruction: Option<InContent>,
    #[serde(default)]
    pub tools: Vec<InTools>,
    #[serde(default)]
    pub tool_config: Option<ToolConfig>,
    #[serde(default)]
    pub generation_config: Option<InGenerationConfig>,
}

/// A turn, as read.
#[derive(Debug, Deserialize)]
pub struct InContent {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<InPart>,
}

/// A part, as read: every field of every kind.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InPart {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thought: bool,
    #[serde(default)]
    pub thought_signature: Option<String>,
    #[serde(default)]
    pub inline_data: Option<Blob>,
    #[serde(default)]
    pub file_data: Option<FileData>,
    #[serde(default)]
    pub function_call: Option<InFunctionCall>,
    #[serde(default)]
    pub function_response: Option<InFunctionResponse>,
}

/// Inline bytes, both ways.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    pub mime_type: String,
    pub data: String,
}

/// A file by URI, both ways.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    #[serde(default)]
    pub mime_type: Option<String>,
    pub file_uri: String,
}

/// `functionCall`, as read.
#[derive(Debug, Deserialize)]
pub struct InFunctionCall {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub args: Option<Json>,
}

/// `functionResponse`, as read.
#[derive(Debug, Deserialize)]
pub struct InFunctionResponse {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub response: Option<Json>,
}

/// One entry of `tools`, as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InTools {
    #[serde(default)]
    pub function_declarations: Option<Vec<InFunctionDeclaration>>,
}

/// A function declaration, as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFunctionDeclaration {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub parameters_json_schema: Option<Json>,
}

/// `toolConfig`, both ways.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    pub function_calling_config: FunctionCallingConfig,
}

/// `toolConfig.functionCallingConfig`, both ways.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_function_names: Vec<String>,
}

/// `generationConfig`, as read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InGenerationConfig {
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub stop_sequences: Vec<String>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub candidate_count: Option<u32>,
    #[serde(default)]
    pub response_mime_type: Option<String>,
    #[serde(default)]
    pub response_schema: Option<Value>,
    #[serde(default)]
    pub response_json_schema: Option<Json>,
    #[serde(default)]
    pub thinking_config: Option<ThinkingConfig>,
}

/// `thinkingConfig`, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
}

/// `generateContent` body, as written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<OutContent<'a>>,
    pub contents: Vec<OutContent<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<OutTools<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "OutGenerationConfig::is_empty")]
    pub generation_config: OutGenerationConfig<'a>,
}

/// A turn, as written.
#[derive(Debug, Serialize)]
pub struct OutContent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub parts: Vec<OutPart<'a>>,
}

/// A part, as written.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutPart<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub thought: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<OutFunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_response: Option<OutFunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<&'a str>,
}

/// `functionCall`, as written.
#[derive(Debug, Serialize)]
pub struct OutFunctionCall<'a> {
    pub name: &'a str,
    pub args: &'a RawValue,
}

/// `functionResponse`, as written.
#[derive(Debug, Serialize)]
pub struct OutFunctionResponse<'a> {
    pub name: &'a str,
    pub response: Value,
}

/// One entry of `tools`, as written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutTools<'a> {
    pub function_declarations: Vec<OutFunctionDeclaration<'a>>,
}

/// A function declaration, as written.
#[derive(Debug, Serialize)]
pub struct OutFunctionDeclaration<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// `generationConfig`, as written.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutGenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

impl OutGenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_empty()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.response_mime_type.is_none()
            && self.response_schema.is_none()
            && self.thinking_config.is_none()
    }
}

/// A response or stream chunk, as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResponse {
    #[serde(default)]
    pub candidates: Vec<InCandidate>,
    #[serde(default)]
    pub usage_metadata: Option<WireUsage>,
    #[serde(default)]
    pub model_version: String,
    #[serde(default)]
    pub response_id: String,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    /// An error event inside a stream.
    #[serde(default)]
    pub error: Option<Value>,
}

/// A candidate, as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InCandidate {
    #[serde(default)]
    pub content: Option<InContent>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: u32,
}

/// Why a prompt was blocked.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

/// A response or stream chunk, as written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutResponse<'a> {
    pub candidates: [OutCandidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<WireUsage>,
    pub model_version: &'a str,
    pub response_id: &'a str,
}

/// A candidate, as written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutCandidate<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<OutContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'static str>,
    pub index: u32,
}

/// `usageMetadata`, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub candidates_token_count: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub thoughts_token_count: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_content_token_count: u64,
    #[serde(default)]
    pub total_token_count: u64,
}
