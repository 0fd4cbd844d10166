//! How each kind of provider is called: its dialect, URL, headers and
//! where its key goes.

use upshift_model::{Provider, ProviderKind};

use crate::Dialect;

/// Anthropic's API version header value.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Where a provider's key goes; the key itself stays with the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The Spin variable holding the key.
    pub variable: String,
    /// The header that carries it.
    pub header: &'static str,
    /// Text before the key in that header.
    pub prefix: &'static str,
}

/// A provider of the config, resolved.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The provider's name.
    pub name: String,
    /// What it speaks.
    pub kind: ProviderKind,
    base_url: String,
    api_version: Option<String>,
    api_key_variable: Option<String>,
}

impl Endpoint {
    /// Resolves `provider`.
    pub fn new(provider: &Provider) -> Self {
        Endpoint {
            name: provider.name.clone(),
            kind: provider.kind,
            base_url: provider.base_url().to_owned(),
            api_version: provider.api_version.clone(),
            api_key_variable: provider.api_key_variable.clone(),
        }
    }

    /// The dialect this provider is sent requests of `ingress` in: its own,
    /// except that OpenAI itself also takes the Responses API.
    pub fn dialect(&self, ingress: Dialect) -> Dialect {
        match self.kind {
            ProviderKind::Openai if ingress == Dialect::OpenAiResponses => Dialect::OpenAiResponses,
            ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::Azure => {
                Dialect::OpenAiChat
            }
            ProviderKind::Anthropic => Dialect::Anthropic,
            ProviderKind::Gemini => Dialect::Gemini,
        }
    }

    /// The URL of a call of `dialect` (see [`Endpoint::dialect`]) to `model`.
    pub fn url(&self, dialect: Dialect, model: &str, stream: bool) -> String {
        let base = &self.base_url;
        match (self.kind, dialect) {
            (ProviderKind::Azure, _) => format!(
                "{base}/openai/deployments/{}/chat/completions?api-version={}",
                segment(model),
                self.api_version.as_deref().unwrap_or_default()
            ),
            (_, Dialect::OpenAiResponses) => format!("{base}/responses"),
            (_, Dialect::OpenAiChat) => format!("{base}/chat/completions"),
            (_, Dialect::Anthropic) => format!("{base}/v1/messages"),
            (_, Dialect::Gemini) if stream => format!(
                "{base}/v1beta/models/{}:streamGenerateContent?alt=sse",
                segment(model)
            ),
            (_, Dialect::Gemini) => {
                format!("{base}/v1beta/models/{}:generateContent", segment(model))
            }
        }
    }

    /// The URL of OpenAI's embeddings endpoint for `model`, for the
    /// providers that speak it.
    pub fn embeddings_url(&self, model: &str) -> Option<String> {
        let base = &self.base_url;
        match self.kind {
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                Some(format!("{base}/embeddings"))
            }
            ProviderKind::Azure => Some(format!(
                "{base}/openai/deployments/{}/embeddings?api-version={}",
                segment(model),
                self.api_version.as_deref().unwrap_or_default()
            )),
            ProviderKind::Anthropic | ProviderKind::Gemini => None,
        }
    }

    /// Where the key goes, if the provider has one.
    pub fn credential(&self) -> Option<Credential> {
        let variable = self.api_key_variable.clone()?;
        let (header, prefix) = match self.kind {
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => ("authorization", "Bearer "),
            ProviderKind::Azure => ("api-key", ""),
            ProviderKind::Anthropic => ("x-api-key", ""),
            ProviderKind::Gemini => ("x-goog-api-key", ""),
        };
        Some(Credential {
            variable,
            header,
            prefix,
        })
    }

    /// Request headers besides the key. Anthropic clients' own
    /// `anthropic-version` and `anthropic-beta` pass to Anthropic providers.
    pub fn headers(&self, stream: bool, client: &[(String, String)]) -> Vec<(String, String)> {
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "accept".to_owned(),
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                }
                .to_owned(),
            ),
        ];
        if self.kind == ProviderKind::Anthropic {
            let version = client
                .iter()
                .find(|(name, _)| name == "anthropic-version")
                .map_or(ANTHROPIC_VERSION, |(_, value)| value.as_str());
            headers.push(("anthropic-version".to_owned(), version.to_owned()));
            headers.extend(
                client
                    .iter()
                    .filter(|(name, _)| name == "anthropic-beta")
                    .cloned(),
            );
        }
        headers
    }
}

/// `text` as one URL path segment: unreserved characters as they are,
/// everything else percent-encoded.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(kind: ProviderKind, base_url: Option<&str>) -> Endpoint {
        Endpoint::new(&Provider {
            name: "p".into(),
            kind,
            base_url: base_url.map(str::to_owned),
            api_key_variable: Some("p_key".into()),
            api_version: (kind == ProviderKind::Azure).then(|| "2024-10-21".to_owned()),
        })
    }

    #[test]
    fn urls_follow_each_provider() {
        let openai = endpoint(ProviderKind::Openai, None);
        assert_eq!(
            openai.url(Dialect::OpenAiChat, "gpt-4o", false),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            openai.url(Dialect::OpenAiResponses, "gpt-4o", true),
            "https://api.openai.com/v1/responses"
        );
        let local = endpoint(
            ProviderKind::OpenaiCompatible,
            Some("http://ollama:11434/v1/"),
        );
        assert_eq!(local.dialect(Dialect::OpenAiResponses), Dialect::OpenAiChat);
        assert_eq!(
            local.url(Dialect::OpenAiChat, "llama3", true),
            "http://ollama:11434/v1/chat/completions"
        );
        let azure = endpoint(ProviderKind::Azure, Some("https://r.openai.azure.com"));
        assert_eq!(
            azure.url(Dialect::OpenAiChat, "my gpt", false),
            "https://r.openai.azure.com/openai/deployments/my%20gpt/chat/completions?api-version=2024-10-21"
        );
        let anthropic = endpoint(ProviderKind::Anthropic, None);
        assert_eq!(
            anthropic.url(Dialect::Anthropic, "claude", true),
            "https://api.anthropic.com/v1/messages"
        );
        let gemini = endpoint(ProviderKind::Gemini, None);
        assert_eq!(
            gemini.url(Dialect::Gemini, "gemini-2.5-flash", true),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            gemini.url(Dialect::Gemini, "gemini-2.5-flash", false),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
    }

    #[test]
    fn keys_go_in_each_providers_header() {
        let header = |kind| {
            let c = endpoint(kind, Some("http://x")).credential().unwrap();
            (c.header, c.prefix, c.variable)
        };
        assert_eq!(
            header(ProviderKind::Openai),
            ("authorization", "Bearer ", "p_key".into())
        );
        assert_eq!(header(ProviderKind::Azure).0, "api-key");
        assert_eq!(header(ProviderKind::Anthropic).0, "x-api-key");
        assert_eq!(header(ProviderKind::Gemini).0, "x-goog-api-key");
    }

    #[test]
    fn anthropic_gets_its_version_header() {
        let anthropic = endpoint(ProviderKind::Anthropic, None);
        let headers = anthropic.headers(false, &[]);
        assert!(headers.contains(&("anthropic-version".into(), ANTHROPIC_VERSION.into())));
        let client = [
            ("anthropic-version".to_owned(), "2024-01-01".to_owned()),
            ("anthropic-beta".to_owned(), "tools-2024".to_owned()),
        ];
        let headers = anthropic.headers(true, &client);
        assert!(headers.contains(&("anthropic-version".into(), "2024-01-01".into())));
        assert!(headers.contains(&("anthropic-beta".into(), "tools-2024".into())));
        assert!(headers.contains(&("accept".into(), "text/event-stream".into())));
    }
}
