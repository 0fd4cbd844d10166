//! The endpoints of the AI API, named by the last segments of their path.

use crate::Dialect;

/// An endpoint of the AI API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiEndpoint {
    /// `GET …/models`.
    Models,
    /// A chat endpoint of this dialect.
    Chat(Dialect),
    /// `POST …/embeddings` (OpenAI's shape).
    Embeddings,
    /// `POST …/prompts/{name}`: a prompt template.
    Prompt,
}

/// The endpoint `method path` names: by its last segments, so routes may
/// mount the API under any prefix.
pub fn endpoint(method: &str, path: &str) -> Option<ApiEndpoint> {
    let path = path.trim_end_matches('/');
    match method {
        "GET" if path.ends_with("/models") || path == "models" => Some(ApiEndpoint::Models),
        "POST" if path.ends_with("/chat/completions") => {
            Some(ApiEndpoint::Chat(Dialect::OpenAiChat))
        }
        "POST" if path.ends_with("/messages") => Some(ApiEndpoint::Chat(Dialect::Anthropic)),
        "POST" if path.ends_with("/responses") => Some(ApiEndpoint::Chat(Dialect::OpenAiResponses)),
        "POST" if path.ends_with("/embeddings") => Some(ApiEndpoint::Embeddings),
        "POST" if prompt_name(path).is_some() => Some(ApiEndpoint::Prompt),
        _ => None,
    }
}

/// The prompt a `…/prompts/{name}` path names.
pub(super) fn prompt_name(path: &str) -> Option<&str> {
    let (before, name) = path.trim_end_matches('/').rsplit_once('/')?;
    (before.ends_with("/prompts") || before == "prompts")
        .then_some(name)
        .filter(|n| !n.is_empty())
}

/// The dialect errors about `path` are written in: Anthropic's for
/// `…/messages`, OpenAI's otherwise.
pub fn error_dialect(path: &str) -> Dialect {
    match endpoint("POST", path) {
        Some(ApiEndpoint::Chat(dialect)) => dialect,
        _ => Dialect::OpenAiChat,
    }
}
