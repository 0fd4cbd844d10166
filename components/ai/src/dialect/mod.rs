//! The wire dialects, each parsed into and rendered from the [IR](crate::ir).

pub mod anthropic;
pub mod gemini;
mod message;
pub mod openai_chat;
pub mod openai_responses;
mod wire;

pub(crate) use message::MessageState;

use crate::errors::TranslateError;
use crate::ir::{Request, Response, StreamEvent};
use crate::sse;

/// An API shape spoken by clients or providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Chat Completions (`/v1/chat/completions`), also spoken by
    /// every OpenAI-compatible provider.
    OpenAiChat,
    /// OpenAI Responses (`/v1/responses`).
    OpenAiResponses,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Google Gemini `generateContent` / `streamGenerateContent?alt=sse`.
    Gemini,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 4] = [
        Dialect::OpenAiChat,
        Dialect::OpenAiResponses,
        Dialect::Anthropic,
        Dialect::Gemini,
    ];

    /// A stable name: `openai-chat`, `openai-responses`, `anthropic`,
    /// `gemini`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenAiChat => "openai-chat",
            Dialect::OpenAiResponses => "openai-responses",
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
        }
    }

    /// The dialect of a [`Dialect::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Dialect::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Reads a request body.
    pub fn parse_request(self, body: &[u8]) -> Result<Request, TranslateError> {
        match self {
            Dialect::OpenAiChat => openai_chat::parse_request(body),
            Dialect::OpenAiResponses => openai_responses::parse_request(body),
            Dialect::Anthropic => anthropic::parse_request(body),
            Dialect::Gemini => gemini::parse_request(body),
        }
    }

    /// Writes a request body.
    pub fn render_request(self, request: &Request) -> Result<Vec<u8>, TranslateError> {
        match self {
            Dialect::OpenAiChat => openai_chat::render_request(request),
            Dialect::OpenAiResponses => openai_responses::render_request(request),
            Dialect::Anthropic => anthropic::render_request(request),
            Dialect::Gemini => gemini::render_request(request),
        }
    }

    /// Reads a (non-streamed) response body.
    pub fn parse_response(self, body: &[u8]) -> Result<Response, TranslateError> {
        match self {
            Dialect::OpenAiChat => openai_chat::parse_response(body),
            Dialect::OpenAiResponses => openai_responses::parse_response(body),
            Dialect::Anthropic => anthropic::parse_response(body),
            Dialect::Gemini => gemini::parse_response(body),
        }
    }

    /// Writes a (non-streamed) response body.
    pub fn render_response(self, response: &Response) -> Result<Vec<u8>, TranslateError> {
        match self {
            Dialect::OpenAiChat => openai_chat::render_response(response),
            Dialect::OpenAiResponses => openai_responses::render_response(response),
            Dialect::Anthropic => anthropic::render_response(response),
            Dialect::Gemini => gemini::render_response(response),
        }
    }
}

/// What a stream encoder needs to know about its client.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamOptions {
    /// The client asked for a final usage chunk (OpenAI
    /// `stream_options.include_usage`); other dialects always report usage.
    pub include_usage: bool,
    /// Unix seconds for OpenAI's `created` when the upstream gives none.
    pub created: u64,
}

/// Reads one dialect's stream events into IR events, keeping the state the
/// dialect needs between events.
#[derive(Debug)]
pub enum Decoder {
    /// OpenAI Chat chunks.
    OpenAiChat(openai_chat::Decoder),
    /// OpenAI Responses events.
    OpenAiResponses(openai_responses::Decoder),
    /// Anthropic events.
    Anthropic(anthropic::Decoder),
    /// Gemini chunks.
    Gemini(gemini::Decoder),
}

impl Decoder {
    /// A decoder at the start of a stream of `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        match dialect {
            Dialect::OpenAiChat => Decoder::OpenAiChat(Default::default()),
            Dialect::OpenAiResponses => Decoder::OpenAiResponses(Default::default()),
            Dialect::Anthropic => Decoder::Anthropic(Default::default()),
            Dialect::Gemini => Decoder::Gemini(Default::default()),
        }
    }

    /// Reads one upstream event, appending zero or more IR events.
    pub fn decode(
        &mut self,
        event: &sse::Event,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), TranslateError> {
        match self {
            Decoder::OpenAiChat(d) => d.decode(event, out),
            Decoder::OpenAiResponses(d) => d.decode(event, out),
            Decoder::Anthropic(d) => d.decode(event, out),
            Decoder::Gemini(d) => d.decode(event, out),
        }
    }

    /// The upstream closed: appends what completes the stream (or an error
    /// event when it was cut off).
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        match self {
            Decoder::OpenAiChat(d) => d.finish(out),
            Decoder::OpenAiResponses(d) => d.finish(out),
            Decoder::Anthropic(d) => d.finish(out),
            Decoder::Gemini(d) => d.finish(out),
        }
    }
}

/// Writes IR events as one dialect's stream events.
#[derive(Debug)]
pub enum Encoder {
    /// OpenAI Chat chunks.
    OpenAiChat(openai_chat::Encoder),
    /// OpenAI Responses events.
    OpenAiResponses(openai_responses::Encoder),
    /// Anthropic events.
    Anthropic(anthropic::Encoder),
    /// Gemini chunks.
    Gemini(gemini::Encoder),
}

impl Encoder {
    /// An encoder at the start of a stream of `dialect`.
    pub fn new(dialect: Dialect, options: StreamOptions) -> Self {
        match dialect {
            Dialect::OpenAiChat => Encoder::OpenAiChat(openai_chat::Encoder::new(options)),
            Dialect::OpenAiResponses => {
                Encoder::OpenAiResponses(openai_responses::Encoder::new(options))
            }
            Dialect::Anthropic => Encoder::Anthropic(Default::default()),
            Dialect::Gemini => Encoder::Gemini(Default::default()),
        }
    }

    /// Writes one IR event, appending zero or more downstream events.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<sse::Event>) {
        match self {
            Encoder::OpenAiChat(e) => e.encode(event, out),
            Encoder::OpenAiResponses(e) => e.encode(event, out),
            Encoder::Anthropic(e) => e.encode(event, out),
            Encoder::Gemini(e) => e.encode(event, out),
        }
    }

    /// Called after the events of one upstream event: sends what an
    /// encoder gathered (Gemini puts the parts of one upstream event in one
    /// chunk).
    pub fn flush(&mut self, out: &mut Vec<sse::Event>) {
        if let Encoder::Gemini(e) = self {
            e.flush(out);
        }
    }
}
