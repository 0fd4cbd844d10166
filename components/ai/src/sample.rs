//! A typical chat request, for benchmarks and smoke tests.

use crate::dialect::Dialect;
use crate::errors::TranslateError;
use crate::translate::translate_request;

/// A typical OpenAI Chat request of about 2 KB: a system prompt, five turns
/// with a tool call and its result, three tools with schemas, sampling
/// parameters, streaming with usage.
pub const TYPICAL_CHAT_REQUEST: &str = include_str!("sample/typical_chat_request.json");

/// Translates [`TYPICAL_CHAT_REQUEST`] from OpenAI Chat to Anthropic: the
/// work the gateway does per request on the translate lane (the benchmark's
/// subject; the target is under 20 µs).
pub fn translate_typical_chat_request() -> Result<Vec<u8>, TranslateError> {
    translate_request(
        Dialect::OpenAiChat,
        Dialect::Anthropic,
        TYPICAL_CHAT_REQUEST.as_bytes(),
    )
}
