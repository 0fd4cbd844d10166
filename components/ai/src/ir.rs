//! The internal representation every dialect translates through.
//!
//! It is modeled on content blocks with indices (the superset of what the
//! providers can say), not on OpenAI Chat Completions: a message is an
//! ordered list of [`Block`]s, thinking keeps its signature, tool input is
//! kept as the JSON text the caller sent, and a stream is a sequence of
//! [`StreamEvent`]s that open, fill and close indexed blocks.

use serde_json::value::RawValue;

use crate::errors::ApiError;

/// JSON text kept verbatim (tool input, JSON schemas): translating between
/// dialects never re-serializes it.
pub type Json = Box<RawValue>;

/// A chat request in any dialect.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The model as the client named it (Gemini carries it in the URL).
    pub model: String,
    /// System prompt blocks, in order.
    pub system: Vec<Text>,
    /// The conversation; tool results are blocks of user messages.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// How the model must use the tools.
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Sampling parameters.
    pub sampling: Sampling,
    /// Extended thinking / reasoning effort.
    pub reasoning: Option<Reasoning>,
    /// Structured output.
    pub response_format: Option<ResponseFormat>,
    /// Whether the response streams.
    pub stream: bool,
    /// An OpenAI Chat client's `stream_options.include_usage`: whether its
    /// stream ends with a usage chunk. (Requests to OpenAI upstreams always
    /// ask for usage; other dialects always report it.)
    pub include_usage: bool,
    /// An end-user identifier for abuse monitoring.
    pub user: Option<String>,
}

/// A run of text, optionally a prompt-cache breakpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Text {
    /// The text.
    pub text: String,
    /// Marks the end of a cacheable prefix (Anthropic `cache_control`).
    pub cache_control: Option<CacheControl>,
}

impl Text {
    /// Plain text without a cache breakpoint.
    pub fn plain(text: impl Into<String>) -> Self {
        Text {
            text: text.into(),
            cache_control: None,
        }
    }
}

/// A prompt-cache breakpoint (`{"type": "ephemeral", "ttl": "1h"}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheControl {
    /// Time to live (`"5m"`, `"1h"`), provider default when absent.
    pub ttl: Option<String>,
}

/// Who speaks a message. System prompts live in [`Request::system`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client, including tool results.
    User,
    /// The model.
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// Ordered content blocks.
    pub content: Vec<Block>,
}

/// One content block.
#[derive(Debug, Clone)]
pub enum Block {
    /// Text.
    Text(Text),
    /// An image.
    Image(Image),
    /// A tool call made by the model.
    ToolUse(ToolUse),
    /// The result of a tool call, sent by the client.
    ToolResult(ToolResult),
    /// Visible reasoning, or a bare signature (Gemini `thoughtSignature`
    /// attached to the part that follows it).
    Thinking(Thinking),
    /// Reasoning the provider encrypted; only that provider can read it.
    RedactedThinking {
        /// The opaque payload.
        data: String,
    },
}

/// An image, by URL or inline.
#[derive(Debug, Clone)]
pub struct Image {
    /// Where the bytes are.
    pub source: ImageSource,
    /// OpenAI's `detail` (`low`, `high`, `auto`).
    pub detail: Option<String>,
    /// Prompt-cache breakpoint.
    pub cache_control: Option<CacheControl>,
}

/// The bytes of an image.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// Fetched by the provider.
    Url {
        /// The URL.
        url: String,
        /// The media type when the dialect states it (Gemini `fileData`).
        media_type: Option<String>,
    },
    /// Inline base64.
    Base64 {
        /// `image/png`, `image/jpeg`, …
        media_type: String,
        /// Base64 without a data-URL prefix.
        data: String,
    },
}

/// A tool call.
#[derive(Debug, Clone)]
pub struct ToolUse {
    /// The call id results refer to (synthesized for Gemini).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments: JSON text of an object.
    pub input: Json,
    /// Prompt-cache breakpoint.
    pub cache_control: Option<CacheControl>,
}

/// The outcome of a tool call.
#[derive(Debug, Clone)]
pub struct ToolResult {
    /// The [`ToolUse::id`] this answers.
    pub tool_use_id: String,
    /// Text and image blocks.
    pub content: Vec<Block>,
    /// Whether the tool failed.
    pub is_error: bool,
    /// Prompt-cache breakpoint.
    pub cache_control: Option<CacheControl>,
}

/// Model reasoning with its integrity signature.
#[derive(Debug, Clone, Default)]
pub struct Thinking {
    /// The reasoning text (empty for a bare signature).
    pub text: String,
    /// The provider's signature, required to send thinking back.
    pub signature: Option<String>,
}

impl Thinking {
    /// Whether this block only carries a signature.
    pub fn is_bare_signature(&self) -> bool {
        self.text.is_empty() && self.signature.is_some()
    }
}

/// A tool the model may call.
#[derive(Debug, Clone)]
pub struct Tool {
    /// The name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Option<Json>,
    /// OpenAI strict schema adherence.
    pub strict: Option<bool>,
    /// Prompt-cache breakpoint.
    pub cache_control: Option<CacheControl>,
}

/// How the model must use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call (OpenAI `required`, Anthropic `any`).
    Any,
    /// This tool.
    Tool(String),
}

/// Sampling parameters.
#[derive(Debug, Clone, Default)]
pub struct Sampling {
    /// Output token limit.
    pub max_tokens: Option<u32>,
    /// Temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling (Anthropic, Gemini).
    pub top_k: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Deterministic sampling seed (OpenAI, Gemini).
    pub seed: Option<i64>,
    /// Frequency penalty (OpenAI, Gemini).
    pub frequency_penalty: Option<f64>,
    /// Presence penalty (OpenAI, Gemini).
    pub presence_penalty: Option<f64>,
}

/// Extended thinking settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    /// Thinking switched off explicitly.
    Disabled,
    /// Thinking on, by effort level, token budget, or both.
    Enabled {
        /// OpenAI `reasoning_effort`.
        effort: Option<Effort>,
        /// Anthropic `budget_tokens`, Gemini `thinkingBudget`.
        budget_tokens: Option<u32>,
    },
}

/// OpenAI reasoning effort levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// `minimal`.
    Minimal,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
}

impl Effort {
    /// The OpenAI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }

    /// Parses the OpenAI spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            _ => return None,
        })
    }

    /// The thinking budget an effort level stands for when a provider wants
    /// tokens: 512, 1024, 2048 or 4096.
    pub fn budget_tokens(self) -> u32 {
        match self {
            Effort::Minimal => 512,
            Effort::Low => 1024,
            Effort::Medium => 2048,
            Effort::High => 4096,
        }
    }

    /// The effort level a token budget stands for (inverse of
    /// [`Effort::budget_tokens`], rounding up).
    pub fn from_budget(budget: u32) -> Self {
        match budget {
            0..=512 => Effort::Minimal,
            513..=1024 => Effort::Low,
            1025..=2048 => Effort::Medium,
            _ => Effort::High,
        }
    }
}

impl Reasoning {
    /// The effort level, derived from the budget when only that is known.
    pub fn effort(self) -> Option<Effort> {
        match self {
            Reasoning::Disabled => None,
            Reasoning::Enabled {
                effort,
                budget_tokens,
            } => effort.or(budget_tokens.map(Effort::from_budget)),
        }
    }

    /// The token budget, derived from the effort level when only that is
    /// known (`None` when neither is).
    pub fn budget_tokens(self) -> Option<u32> {
        match self {
            Reasoning::Disabled => Some(0),
            Reasoning::Enabled {
                effort,
                budget_tokens,
            } => budget_tokens.or(effort.map(Effort::budget_tokens)),
        }
    }
}

/// Structured output.
#[derive(Debug, Clone)]
pub enum ResponseFormat {
    /// Free text (the default, stated explicitly).
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema's name (OpenAI requires one).
        name: String,
        /// What the schema is for.
        description: Option<String>,
        /// The JSON Schema.
        schema: Json,
        /// OpenAI strict schema adherence.
        strict: Option<bool>,
    },
}

/// A complete (non-streamed) chat response.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The provider's response id.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// Unix seconds; 0 when the provider does not say (the gateway fills it).
    pub created: u64,
    /// The assistant's blocks.
    pub content: Vec<Block>,
    /// Why generation stopped.
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that matched, when the provider says.
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: Usage,
}

/// Why generation stopped, normalized across providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// A stop sequence matched.
    StopSequence,
    /// The output token limit was reached.
    MaxTokens,
    /// The context window is full.
    ContextWindowExceeded,
    /// The model called tools.
    ToolUse,
    /// A long-running turn paused (Anthropic server tools).
    PauseTurn,
    /// Output was withheld by a safety system or refused.
    ContentFilter,
    /// Anything else the provider reports (e.g. Gemini `OTHER`,
    /// `MALFORMED_FUNCTION_CALL`).
    Other,
}

/// Token counts in OpenAI's sense: input includes cached tokens, output
/// includes reasoning tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens, cached or not.
    pub input_tokens: u64,
    /// All generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Input plus output.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Folds in a later cumulative report: counts only grow, so each field
    /// keeps the larger value.
    pub fn merge(&mut self, later: &Usage) {
        self.input_tokens = self.input_tokens.max(later.input_tokens);
        self.output_tokens = self.output_tokens.max(later.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.max(later.cache_read_tokens);
        self.cache_write_tokens = self.cache_write_tokens.max(later.cache_write_tokens);
        self.reasoning_tokens = self.reasoning_tokens.max(later.reasoning_tokens);
    }
}

/// One normalized streaming event.
///
/// A well-formed stream is: `MessageStart`, then for each block
/// `BlockStart`, `BlockDelta`s, `BlockStop` (blocks do not overlap, indices
/// count up from 0), then `MessageDelta`s, then `MessageStop`. `Error` may
/// arrive at any point and ends the stream.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// The response begins.
    MessageStart {
        /// The provider's response id.
        id: String,
        /// The model that answers.
        model: String,
        /// Unix seconds, 0 when unknown.
        created: u64,
        /// Usage known at the start (usually the input side).
        usage: Usage,
    },
    /// A block opens.
    BlockStart {
        /// Position of the block in the response.
        index: usize,
        /// What kind of block.
        block: BlockStart,
    },
    /// A block grows.
    BlockDelta {
        /// The open block.
        index: usize,
        /// What to append.
        delta: Delta,
    },
    /// A block is complete.
    BlockStop {
        /// The block.
        index: usize,
    },
    /// Top-level changes near the end of the response.
    MessageDelta {
        /// Why generation stopped.
        stop_reason: Option<StopReason>,
        /// The stop sequence that matched.
        stop_sequence: Option<String>,
        /// Cumulative usage so far, when reported.
        usage: Option<Usage>,
    },
    /// The response is complete.
    MessageStop,
    /// The provider failed mid-stream.
    Error(ApiError),
}

/// The kind of a block that opens in a stream.
#[derive(Debug, Clone)]
pub enum BlockStart {
    /// Text.
    Text,
    /// Reasoning text and/or signature.
    Thinking,
    /// Encrypted reasoning, complete at start.
    RedactedThinking {
        /// The opaque payload.
        data: String,
    },
    /// A tool call whose arguments follow as partial JSON.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
    },
}

/// What a block delta appends.
#[derive(Debug, Clone)]
pub enum Delta {
    /// Text.
    Text(String),
    /// A fragment of the tool input's JSON text.
    Json(String),
    /// Reasoning text.
    Thinking(String),
    /// The thinking block's signature.
    Signature(String),
}

impl Delta {
    /// Whether it appends nothing.
    pub fn is_empty(&self) -> bool {
        match self {
            Delta::Text(s) | Delta::Json(s) | Delta::Thinking(s) | Delta::Signature(s) => {
                s.is_empty()
            }
        }
    }
}
