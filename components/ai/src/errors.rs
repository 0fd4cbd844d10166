//! Translation failures, and provider error bodies in every dialect.
//!
//! [`ApiError`] is the normalized form of an error a provider returned
//! (as an HTTP error body or mid-stream). [`ApiError::parse`] reads any
//! dialect's body; [`ApiError::render`] writes one with the status code
//! that dialect's clients expect: a rate limit stays 429, Anthropic's
//! `overloaded_error` (529) becomes 503 for OpenAI and Gemini clients and
//! 529 again for Anthropic clients.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dialect::Dialect;

/// Why a body could not be translated.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The body is not JSON of the expected shape.
    #[error("malformed body: {0}")]
    Json(#[from] serde_json::Error),
    /// The body is JSON but breaks a rule of its dialect.
    #[error("invalid body: {0}")]
    Invalid(String),
    /// The body uses a feature the target dialect cannot express.
    #[error("not translatable: {0}")]
    Unsupported(String),
    /// A stream event arrived out of order or malformed.
    #[error("malformed stream: {0}")]
    Stream(String),
}

impl TranslateError {
    /// An [`TranslateError::Invalid`] with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        TranslateError::Invalid(message.into())
    }

    /// An [`TranslateError::Unsupported`] with this message.
    pub fn unsupported(message: impl Into<String>) -> Self {
        TranslateError::Unsupported(message.into())
    }

    /// The error a client gets for a request that failed to translate.
    pub fn to_api_error(&self) -> ApiError {
        ApiError::new(ErrorKind::InvalidRequest, self.to_string())
    }
}

/// The normalized class of a provider error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request is wrong.
    InvalidRequest,
    /// 401: missing or bad credentials.
    Authentication,
    /// 403: the credentials may not do this.
    PermissionDenied,
    /// 404: unknown model or endpoint.
    NotFound,
    /// 413: the request is too large.
    RequestTooLarge,
    /// 429: rate limit or quota.
    RateLimit,
    /// 500: the provider failed.
    Server,
    /// 503 (Anthropic 529): the provider is overloaded; retry later.
    Overloaded,
    /// 504: the provider timed out.
    Timeout,
}

impl ErrorKind {
    /// The kind an HTTP status stands for.
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimit,
            503 | 529 => ErrorKind::Overloaded,
            504 | 408 => ErrorKind::Timeout,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Server,
        }
    }

    /// The status a client of `dialect` expects for this kind.
    pub fn status(self, dialect: Dialect) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Server => 500,
            ErrorKind::Overloaded if dialect == Dialect::Anthropic => 529,
            ErrorKind::Overloaded => 503,
            ErrorKind::Timeout => 504,
        }
    }

    fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Server | ErrorKind::Overloaded => "server_error",
            ErrorKind::Timeout => "timeout_error",
        }
    }

    fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Server => "api_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
        }
    }

    fn from_anthropic_type(kind: &str) -> Option<Self> {
        Some(match kind {
            "invalid_request_error" => ErrorKind::InvalidRequest,
            "authentication_error" => ErrorKind::Authentication,
            "permission_error" | "billing_error" => ErrorKind::PermissionDenied,
            "not_found_error" => ErrorKind::NotFound,
            "request_too_large" => ErrorKind::RequestTooLarge,
            "rate_limit_error" => ErrorKind::RateLimit,
            "api_error" => ErrorKind::Server,
            "overloaded_error" => ErrorKind::Overloaded,
            "timeout_error" => ErrorKind::Timeout,
            _ => return None,
        })
    }

    fn gemini_status(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "INVALID_ARGUMENT",
            ErrorKind::Authentication => "UNAUTHENTICATED",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::RateLimit => "RESOURCE_EXHAUSTED",
            ErrorKind::Server => "INTERNAL",
            ErrorKind::Overloaded => "UNAVAILABLE",
            ErrorKind::Timeout => "DEADLINE_EXCEEDED",
        }
    }

    fn from_gemini_status(status: &str) -> Option<Self> {
        Some(match status {
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
                ErrorKind::InvalidRequest
            }
            "UNAUTHENTICATED" => ErrorKind::Authentication,
            "PERMISSION_DENIED" => ErrorKind::PermissionDenied,
            "NOT_FOUND" => ErrorKind::NotFound,
            "RESOURCE_EXHAUSTED" => ErrorKind::RateLimit,
            "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => ErrorKind::Server,
            "UNAVAILABLE" => ErrorKind::Overloaded,
            "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
            _ => return None,
        })
    }
}

/// A provider error, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What went wrong, as a class.
    pub kind: ErrorKind,
    /// The provider's message.
    pub message: String,
    /// A machine-readable code, when the provider gave one (OpenAI `code`,
    /// or the provider's own error type when it is more specific than
    /// [`ErrorKind`]).
    pub code: Option<String>,
    /// The offending parameter (OpenAI `param`).
    pub param: Option<String>,
}

/// The most characters of a body that is not a JSON error kept in a
/// message: enough for a proxy's headline, not its whole page.
const MAX_EXCERPT: usize = 200;

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            code: None,
            param: None,
        }
    }

    /// Reads an error body of `dialect` returned with `status` (pass 500 for
    /// an error event inside a stream, which has no status). Bodies of
    /// another shape (an HTML page from a proxy, say) keep their text as the
    /// message and take their kind from the status.
    pub fn parse(dialect: Dialect, status: u16, body: &[u8]) -> Self {
        let fallback = ErrorKind::from_status(status);
        let parsed = match dialect {
            Dialect::OpenAiChat | Dialect::OpenAiResponses => parse_openai(body, fallback),
            Dialect::Anthropic => parse_anthropic(body, fallback),
            Dialect::Gemini => parse_gemini(body, fallback),
        };
        parsed
            .or_else(|| parse_any(body, fallback))
            .unwrap_or_else(|| {
                let mut message = excerpt(body);
                if message.is_empty() {
                    message = format!("upstream returned status {status}");
                }
                ApiError::new(fallback, message)
            })
    }

    /// The error event `event` of a stream of `dialect` (an error inside a
    /// stream has no status of its own: read as a 500).
    pub(crate) fn in_stream(dialect: Dialect, event: &crate::sse::Event) -> Self {
        Self::parse(dialect, 500, event.data.as_bytes())
    }

    /// The error for a provider answer whose body is not JSON at all: an
    /// HTML page from a load balancer, plain text, nothing. `None` when the
    /// body is JSON. The status the client gets comes with it: the one the
    /// answer had when that was an error, 502 when a success cannot be read
    /// (`bad_provider_response`). The message names the provider, the
    /// status and what the body said, e.g. `provider openai answered 502
    /// with a text/html body: Bad Gateway`.
    ///
    /// The body is parsed rather than its content type trusted: proxies
    /// label their pages loosely, and the type is not always at hand.
    pub fn not_json(provider: &str, status: u16, body: &[u8]) -> Option<(u16, Self)> {
        if serde_json::from_slice::<IgnoredAny>(body).is_ok() {
            return None;
        }
        let text = excerpt(body);
        let message = if text.is_empty() {
            format!("provider {provider} answered {status} with an empty body")
        } else {
            let media_type = if is_markup(body) {
                "text/html"
            } else {
                "text/plain"
            };
            format!("provider {provider} answered {status} with a {media_type} body: {text}")
        };
        let (client_status, code) = match status {
            400..=599 => (status, None),
            _ => (502, Some("bad_provider_response".to_owned())),
        };
        let error = ApiError {
            kind: ErrorKind::from_status(client_status),
            message,
            code,
            param: None,
        };
        Some((client_status, error))
    }

    /// The status code and JSON body a client of `dialect` gets.
    pub fn render(&self, dialect: Dialect) -> (u16, Vec<u8>) {
        let status = self.kind.status(dialect);
        (status, self.to_value(dialect).to_string().into_bytes())
    }

    /// The JSON body for `dialect`, as a value.
    pub fn to_value(&self, dialect: Dialect) -> Value {
        match dialect {
            Dialect::OpenAiChat | Dialect::OpenAiResponses => serde_json::to_value(OpenAiBody {
                error: OpenAiError {
                    message: self.message.clone(),
                    kind: Some(self.kind.openai_type().to_owned()),
                    param: self.param.clone(),
                    code: self.code.clone().map(Value::String),
                },
            })
            .expect("error body serializes"),
            Dialect::Anthropic => serde_json::json!({
                "type": "error",
                "error": {"type": self.kind.anthropic_type(), "message": self.message},
            }),
            Dialect::Gemini => serde_json::json!({
                "error": {
                    "code": self.kind.status(dialect),
                    "message": self.message,
                    "status": self.kind.gemini_status(),
                },
            }),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct OpenAiBody {
    error: OpenAiError,
}

#[derive(Serialize, Deserialize)]
struct OpenAiError {
    #[serde(default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    param: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

fn parse_openai(body: &[u8], fallback: ErrorKind) -> Option<ApiError> {
    let OpenAiBody { error } = serde_json::from_slice(body).ok()?;
    let by_type = match error.kind.as_deref() {
        Some("insufficient_quota" | "rate_limit_error" | "requests" | "tokens") => {
            Some(ErrorKind::RateLimit)
        }
        Some("authentication_error") => Some(ErrorKind::Authentication),
        Some("permission_error") => Some(ErrorKind::PermissionDenied),
        Some("not_found_error") => Some(ErrorKind::NotFound),
        Some("timeout_error") => Some(ErrorKind::Timeout),
        _ => None,
    };
    // The status says more than OpenAI's loosely used `type`, except in a
    // mid-stream error, which has no status of its own.
    let kind = if fallback == ErrorKind::Server {
        by_type.unwrap_or(fallback)
    } else {
        fallback
    };
    let code = match error.code {
        Some(Value::String(code)) => Some(code),
        Some(Value::Number(code)) => Some(code.to_string()),
        _ => None,
    };
    Some(ApiError {
        kind,
        message: error.message,
        code,
        param: error.param,
    })
}

#[derive(Deserialize)]
struct AnthropicBody {
    error: AnthropicError,
}

#[derive(Deserialize)]
struct AnthropicError {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

fn parse_anthropic(body: &[u8], fallback: ErrorKind) -> Option<ApiError> {
    let AnthropicBody { error } = serde_json::from_slice(body).ok()?;
    let kind = ErrorKind::from_anthropic_type(&error.kind).unwrap_or(fallback);
    let code = (kind.anthropic_type() != error.kind).then_some(error.kind);
    Some(ApiError {
        kind,
        message: error.message,
        code,
        param: None,
    })
}

#[derive(Deserialize)]
struct GeminiBody {
    error: GeminiError,
}

#[derive(Deserialize)]
struct GeminiError {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: Option<String>,
}

fn parse_gemini(body: &[u8], fallback: ErrorKind) -> Option<ApiError> {
    // Streaming endpoints sometimes wrap the error in a one-element array.
    let GeminiBody { error } = if body.trim_ascii_start().starts_with(b"[") {
        let [only] = serde_json::from_slice::<[GeminiBody; 1]>(body).ok()?;
        only
    } else {
        serde_json::from_slice(body).ok()?
    };
    let kind = error
        .status
        .as_deref()
        .and_then(ErrorKind::from_gemini_status)
        .or(error.code.map(ErrorKind::from_status))
        .unwrap_or(fallback);
    let code = error.status.filter(|status| status != kind.gemini_status());
    Some(ApiError {
        kind,
        message: error.message,
        code,
        param: None,
    })
}

/// Whether a body is markup (an HTML or XML page) rather than plain text.
fn is_markup(body: &[u8]) -> bool {
    body.trim_ascii_start().starts_with(b"<")
}

/// What a body that is not a JSON error says, readably: markup without its
/// tags (and without scripts and styles, which say nothing to a reader),
/// whitespace collapsed, cut at [`MAX_EXCERPT`] characters.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = if is_markup(body) {
        strip_tags(&text)
    } else {
        text.into_owned()
    };
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(MAX_EXCERPT) {
        Some((end, _)) => format!("{}…", &collapsed[..end]),
        None => collapsed,
    }
}

/// The text of markup: tags, comments, scripts and styles become spaces,
/// and the common entities their characters.
fn strip_tags(markup: &str) -> String {
    let mut text = String::with_capacity(markup.len());
    let mut rest = markup;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        text.push(' ');
        let tag = &rest[open..];
        let end = if tag.starts_with("<!--") {
            tag.find("-->").map(|end| end + 3)
        } else if let Some(element) = ["script", "style"]
            .into_iter()
            .find(|element| starts_with_ignore_case(&tag[1..], element))
        {
            let close = format!("</{element}");
            tag.as_bytes()
                .windows(close.len())
                .position(|window| window.eq_ignore_ascii_case(close.as_bytes()))
                .and_then(|at| tag[at..].find('>').map(|end| at + end + 1))
        } else {
            tag.find('>').map(|end| end + 1)
        };
        rest = &tag[end.unwrap_or(tag.len())..];
    }
    text.push_str(rest);
    [
        ("&nbsp;", " "),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ]
    .into_iter()
    .fold(text, |text, (entity, character)| {
        text.replace(entity, character)
    })
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Any of the three shapes, for providers that answer in a dialect other
/// than the one they were asked in (OpenAI-compatible fronts of others).
fn parse_any(body: &[u8], fallback: ErrorKind) -> Option<ApiError> {
    parse_anthropic(body, fallback)
        .or_else(|| parse_gemini(body, fallback))
        .or_else(|| parse_openai(body, fallback))
}

#[cfg(test)]
mod tests;
