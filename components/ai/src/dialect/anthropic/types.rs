//! Anthropic Messages wire types: flat, owned structs to read, tagged,
//! borrowed ones to write.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::dialect::wire::{TextOr, WireCacheControl, is_false};
use crate::ir::Json;

/// `POST /v1/messages` body, as read.
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub max_tokens: u32,
    #[serde(default)]
    pub system: Option<TextOr<InBlock>>,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub stop_sequences: Vec<String>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub tools: Vec<InTool>,
    #[serde(default)]
    pub tool_choice: Option<WireToolChoice>,
    #[serde(default)]
    pub thinking: Option<WireThinking>,
    #[serde(default)]
    pub metadata: Option<WireMetadata>,
    #[serde(default)]
    pub stream: bool,
}

/// A message, as read.
#[derive(Debug, Deserialize)]
pub struct InMessage {
    pub role: String,
    pub content: TextOr<InBlock>,
}

/// Any content block, as read: every field of every block type, so that
/// tool input can stay a [`RawValue`].
#[derive(Debug, Deserialize)]
pub struct InBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub source: Option<WireImageSource>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub input: Option<Json>,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    #[serde(default)]
    pub content: Option<TextOr<InBlock>>,
    #[serde(default)]
    pub is_error: bool,
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub cache_control: Option<WireCacheControl>,
}

/// An image source, both ways.
#[derive(Debug, Deserialize, Serialize)]
pub struct WireImageSource {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A tool definition, as read.
#[derive(Debug, Deserialize)]
pub struct InTool {
    /// Server tools (`web_search_20250305`, …) have a type; custom tools
    /// have none or `custom`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Option<Json>,
    #[serde(default)]
    pub cache_control: Option<WireCacheControl>,
}

/// `tool_choice`, both ways.
#[derive(Debug, Deserialize, Serialize)]
pub struct WireToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

/// `thinking`, both ways.
#[derive(Debug, Deserialize, Serialize)]
pub struct WireThinking {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
}

/// `metadata`, both ways.
#[derive(Debug, Deserialize, Serialize)]
pub struct WireMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `POST /v1/messages` body, as written.
#[derive(Debug, Serialize)]
pub struct OutRequest<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<OutContent<'a>>,
    pub messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<WireToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<WireThinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<WireMetadata>,
    #[serde(skip_serializing_if = "is_false")]
    pub stream: bool,
}

/// A message, as written.
#[derive(Debug, Serialize)]
pub struct OutMessage<'a> {
    pub role: &'static str,
    pub content: OutContent<'a>,
}

/// Content as written: a plain string when it is one uncached text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OutContent<'a> {
    Text(&'a str),
    Blocks(Vec<OutBlock<'a>>),
}

/// A content block, as written.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutBlock<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<WireCacheControl>,
    },
    Image {
        source: WireImageSource,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<WireCacheControl>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<WireCacheControl>,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<OutContent<'a>>,
        #[serde(skip_serializing_if = "is_false")]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<WireCacheControl>,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
}

/// A tool definition, as written.
#[derive(Debug, Serialize)]
pub struct OutTool<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub input_schema: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<WireCacheControl>,
}

/// A response body, as read.
#[derive(Debug, Deserialize)]
pub struct InResponse {
    pub id: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub content: Vec<InBlock>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: WireUsage,
}

/// A response body, as written (also the `message` of `message_start`).
#[derive(Debug, Serialize)]
pub struct OutResponse<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<OutBlock<'a>>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<&'a str>,
    pub usage: WireUsage,
}

/// Token counts, both ways.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct WireUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: u64,
}

/// Any stream event, as read.
#[derive(Debug, Deserialize)]
pub struct InEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: Option<InResponse>,
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default)]
    pub content_block: Option<InBlock>,
    #[serde(default)]
    pub delta: Option<InDelta>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// The `delta` of `content_block_delta` and `message_delta`, as read.
#[derive(Debug, Deserialize)]
pub struct InDelta {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub partial_json: Option<String>,
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// A stream event, as written.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutEvent<'a> {
    MessageStart {
        message: OutResponse<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: OutStartBlock<'a>,
    },
    ContentBlockDelta {
        index: usize,
        delta: OutDelta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: OutMessageDelta<'a>,
        usage: WireUsage,
    },
    MessageStop,
}

/// The block of `content_block_start`, as written.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutStartBlock<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
    },
    RedactedThinking {
        data: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: serde_json::Map<String, serde_json::Value>,
    },
}

/// The delta of `content_block_delta`, as written.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum OutDelta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

/// The delta of `message_delta`, as written.
#[derive(Debug, Serialize)]
pub struct OutMessageDelta<'a> {
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<&'a str>,
}
