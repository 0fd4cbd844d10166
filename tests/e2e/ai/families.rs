//! The provider families a config names (`kind:`), as the matrix sets them
//! up and sees them called: which fake provider stands in for each, the
//! model it is asked for, the URL and the key header of its calls, and what
//! a request in its wire format must hold.

use serde_json::{Value, json};

use super::{ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY};
use crate::support::providers::{Kind, Provider, Received};

/// A kind of provider the gateway calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `openai`: OpenAI itself.
    OpenAi,
    /// `openai_compatible`: Mistral, Groq, Ollama, vLLM and the like.
    OpenAiCompatible,
    /// `azure`: Azure OpenAI deployments.
    Azure,
    /// `anthropic`.
    Anthropic,
    /// `gemini`.
    Gemini,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 5] = [
        Family::OpenAi,
        Family::OpenAiCompatible,
        Family::Azure,
        Family::Anthropic,
        Family::Gemini,
    ];

    /// The config's spelling of the kind, also the cell's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Family::OpenAi => "openai",
            Family::OpenAiCompatible => "openai_compatible",
            Family::Azure => "azure",
            Family::Anthropic => "anthropic",
            Family::Gemini => "gemini",
        }
    }

    /// The wire format its fake speaks.
    pub fn kind(self) -> Kind {
        match self {
            Family::OpenAi | Family::OpenAiCompatible | Family::Azure => Kind::OpenAi,
            Family::Anthropic => Kind::Anthropic,
            Family::Gemini => Kind::Gemini,
        }
    }

    /// The provider's model (for Azure, the deployment).
    pub fn model(self) -> &'static str {
        match self {
            Family::OpenAi => "gpt-4o-mini",
            Family::OpenAiCompatible => "llama-3.1-8b",
            Family::Azure => "gpt4o-prod",
            Family::Anthropic => "claude-sonnet-4-5",
            Family::Gemini => "gemini-2.5-flash",
        }
    }

    /// Whether the gateway calls it with OpenAI's Responses API when the
    /// client speaks it (OpenAI itself takes it; the others get the
    /// request translated).
    pub fn takes_responses(self) -> bool {
        self == Family::OpenAi
    }

    /// The config's entry for a provider `name` served by `fake`.
    pub fn provider_entry(self, name: &str, fake: &Provider) -> String {
        let (base_url, variable, extra) = match self {
            Family::OpenAi | Family::OpenAiCompatible => (fake.base_url(), "openai_api_key", ""),
            Family::Azure => (
                format!("http://{}", fake.addr),
                "openai_api_key",
                ", api_version: '2024-10-21'",
            ),
            Family::Anthropic => (fake.base_url(), "anthropic_api_key", ""),
            Family::Gemini => (fake.base_url(), "gemini_api_key", ""),
        };
        format!(
            "    - {{ name: {name}, kind: {}, base_url: '{base_url}', api_key_variable: {variable}{extra} }}\n",
            self.name()
        )
    }

    /// The path and query of a call, whole or streamed.
    pub fn path(self, stream: bool) -> String {
        let model = self.model();
        match self {
            Family::OpenAi | Family::OpenAiCompatible => "/v1/chat/completions".to_owned(),
            Family::Azure => {
                format!("/openai/deployments/{model}/chat/completions?api-version=2024-10-21")
            }
            Family::Anthropic => "/v1/messages".to_owned(),
            Family::Gemini if stream => {
                format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
            }
            Family::Gemini => format!("/v1beta/models/{model}:generateContent"),
        }
    }

    /// The header that carries the provider key, and its value.
    fn key_header(self) -> (&'static str, String) {
        match self {
            Family::OpenAi | Family::OpenAiCompatible => {
                ("authorization", format!("Bearer {OPENAI_KEY}"))
            }
            Family::Azure => ("api-key", OPENAI_KEY.to_owned()),
            Family::Anthropic => ("x-api-key", ANTHROPIC_KEY.to_owned()),
            Family::Gemini => ("x-goog-api-key", GEMINI_KEY.to_owned()),
        }
    }

    /// Checks a call the gateway made for a client's question (see
    /// `Dialect::request`): its URL, its key (and never the client's), a
    /// body of known length, and the question in the family's wire format.
    pub fn check_call(self, sent: &Received, stream: bool) {
        assert_eq!(sent.path, self.path(stream));
        let (name, key) = self.key_header();
        assert_eq!(sent.header(name), Some(key.as_str()), "the provider key");
        if name != "authorization" {
            assert_eq!(
                sent.header("authorization"),
                None,
                "the client's key stays behind"
            );
        }
        // Its length is known, so it goes with one (the fake refuses chunks).
        assert_eq!(
            sent.header("content-length"),
            Some(sent.length.to_string().as_str()),
        );
        assert_eq!(sent.header("transfer-encoding"), None);
        let body = &sent.body;
        match self.kind() {
            Kind::OpenAi => {
                if self != Family::Azure {
                    assert_eq!(body["model"], self.model());
                }
                assert_eq!(
                    body["messages"],
                    json!([{"role": "system", "content": "You are terse."},
                           {"role": "user", "content": "Weather in Paris?"}])
                );
                assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
                if stream {
                    assert_eq!(body["stream"], true);
                }
            }
            Kind::Anthropic => {
                assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(body["model"], self.model());
                assert_eq!(body["system"], "You are terse.");
                assert_eq!(
                    body["messages"],
                    json!([{"role": "user", "content": "Weather in Paris?"}])
                );
                assert_eq!(
                    body["tools"],
                    json!([{"name": "get_weather", "description": "Current weather",
                            "input_schema": {"type": "object",
                                             "properties": {"city": {"type": "string"}},
                                             "required": ["city"]}}])
                );
                assert_eq!(body["tool_choice"], json!({"type": "auto"}));
                assert_eq!(body["max_tokens"], 256);
                assert_eq!(body["temperature"], 0.2);
                if stream {
                    assert_eq!(body["stream"], true);
                    assert_eq!(sent.header("accept"), Some("text/event-stream"));
                }
            }
            Kind::Gemini => check_gemini_call(body),
        }
    }
}

/// Gemini names the model and streaming in the path; the body holds the
/// question.
fn check_gemini_call(body: &Value) {
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}]})
    );
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "Weather in Paris?"}]}])
    );
    let declaration = &body["tools"][0]["functionDeclarations"][0];
    assert_eq!(declaration["name"], "get_weather");
    assert_eq!(declaration["description"], "Current weather");
    assert_eq!(
        declaration["parameters"]["properties"]["city"]["type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("string")
    );
    assert_eq!(body["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 256);
    assert_eq!(body["generationConfig"]["temperature"], 0.2);
}
