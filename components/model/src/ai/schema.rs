//! The types of the `ai` section: providers, model aliases, prices,
//! budgets, the answer cache and prompt templates.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The AI section: who serves which model alias.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ai {
    /// Provider endpoints, beside the built-in ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<Provider>,
    /// Model aliases, e.g. `chat-default` → a provider's model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelAlias>,
    /// Token budgets of consumers and tenants, enforced before each call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
    /// The exact-match cache of non-streamed answers; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Cache>,
    /// Prompt templates served at `POST /prompts/{name}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<Prompt>,
}

/// A prompt template served as its own endpoint, `POST /prompts/{name}`
/// with `{"variables": {...}}`: its messages, with `{{variable}}` filled
/// in, go to a model as a chat completion. Its versions are the versions of
/// the splitter service `prompt:{name}`, so a new version can be split or
/// rolled out like any upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// The endpoint's last path segment.
    pub name: String,
    /// The template's versions; without weights the first takes all requests.
    pub versions: Vec<PromptVersion>,
}

/// One version of a prompt template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptVersion {
    /// Version name, e.g. `v2`.
    pub name: String,
    /// Share of the prompt's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The model alias that answers (its rules and split are not followed;
    /// its fallbacks are).
    pub model: String,
    /// The messages, with `{{variable}}` placeholders.
    pub messages: Vec<PromptMessage>,
    /// Most tokens the answer may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
}

/// One message of a prompt template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptMessage {
    /// `system`, `user` or `assistant`.
    pub role: PromptRole,
    /// The text, with `{{variable}}` placeholders.
    pub content: String,
}

/// Who speaks a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptRole {
    /// Instructions.
    System,
    /// The user's turn.
    User,
    /// An example answer.
    Assistant,
}

impl PromptRole {
    /// The role's name in OpenAI's chat format.
    pub fn name(self) -> &'static str {
        match self {
            PromptRole::System => "system",
            PromptRole::User => "user",
            PromptRole::Assistant => "assistant",
        }
    }
}

/// Tokens (prompt plus completion) a consumer or a tenant may use per
/// minute, UTC day and/or calendar month. A call is refused (429 `budget_exceeded`)
/// once the period's count has reached the budget; the call that crosses
/// it completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The consumer it applies to (or `tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// The tenant it applies to, all its consumers together (or `consumer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Tokens per clock minute (UTC): a tokens-per-minute limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Tokens per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// Tokens per calendar month (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_month: Option<u64>,
}

/// The exact-match answer cache: a non-streamed request whose body (keys
/// sorted, whitespace dropped) and tenant match an answered one within
/// `ttl_s` gets the same answer without a provider call. Requests with
/// `cache-control: no-store` are neither answered from nor kept in it;
/// `no-cache` skips the lookup but keeps the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// How long an answer is served from the cache, in seconds.
    pub ttl_s: u32,
}

/// Longest cache lifetime: a week.
pub(crate) const MAX_CACHE_TTL_S: u32 = 7 * 24 * 3600;

/// A provider endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Name models refer to.
    pub name: String,
    /// The API the provider speaks.
    pub kind: ProviderKind,
    /// Base URL; defaults to the official endpoint of `openai`, `anthropic`
    /// and `gemini`, required for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The Spin variable holding the API key; none sends no key (a local
    /// Ollama or vLLM, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_variable: Option<String>,
    /// Azure OpenAI's `api-version` (required for `azure`, refused otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

/// The API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI (`{base_url}/chat/completions`, `authorization: Bearer`).
    Openai,
    /// Any OpenAI-compatible API: Mistral, Groq, Together, OpenRouter,
    /// Ollama, vLLM (same paths and key header as OpenAI).
    OpenaiCompatible,
    /// Azure OpenAI (`{base_url}/openai/deployments/{model}/chat/completions
    /// ?api-version=…`, `api-key` header; the model is the deployment).
    Azure,
    /// Anthropic Messages (`{base_url}/v1/messages`, `x-api-key`).
    Anthropic,
    /// Google Gemini (`{base_url}/v1beta/models/{model}:generateContent`,
    /// `x-goog-api-key`).
    Gemini,
}

impl ProviderKind {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai_compatible",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }

    /// The official endpoint, for the kinds that have one.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::OpenaiCompatible | ProviderKind::Azure => None,
        }
    }
}

/// The providers every document has unless it redefines them.
const BUILT_IN: [(&str, ProviderKind, &str); 3] = [
    ("openai", ProviderKind::Openai, "openai_api_key"),
    ("anthropic", ProviderKind::Anthropic, "anthropic_api_key"),
    ("gemini", ProviderKind::Gemini, "gemini_api_key"),
];

/// A model name clients use, bound to a provider's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAlias {
    /// Name clients send as `model`.
    pub alias: String,
    /// The provider serving it: a name under `providers` or a built-in one.
    pub provider: String,
    /// The provider's model id (Azure: the deployment name).
    pub model: String,
    /// Aliases tried in order when this one fails with 429, a 5xx, a
    /// timeout or a connection closed before the first byte. Their own
    /// fallbacks are not followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// What a million tokens cost, for the cost counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Rules that send some requests for this alias to another alias, tried
    /// in order; the first that matches wins. The other alias's own rules
    /// are not followed; its fallbacks are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<ModelRule>,
    /// Other aliases that take a share of this alias's requests (percent;
    /// the alias keeps the rest): a model canary or an A/B test. The alias
    /// and these are the versions of the splitter service `model:{alias}`,
    /// so a rollout can move the shares and judge them (errors, latency,
    /// cost per request). The other aliases' own rules and splits are not
    /// followed; their fallbacks are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<ModelShare>,
    /// Tries of this alias's provider again, after a pause, before its
    /// fallbacks, on the failures that fall back. Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<ModelRetries>,
}

/// Retries of a model's provider with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRetries {
    /// Tries after the first, 1–5.
    pub attempts: u32,
    /// The first pause in milliseconds; each next one doubles. A
    /// provider's `retry-after` that asks for longer is waited instead, up
    /// to [`MAX_RETRY_WAIT_MS`]; one asking for more is not retried.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u32,
}

/// The longest a retry of a model waits.
pub const MAX_RETRY_WAIT_MS: u32 = 10_000;

fn default_backoff_ms() -> u32 {
    250
}

/// A share of an alias's requests that another alias serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelShare {
    /// The alias that serves the share.
    #[serde(rename = "use")]
    pub alias: String,
    /// Percent of the requests, 0–100.
    pub weight: u32,
}

/// Requests matching `match` use alias `use` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRule {
    /// What the request must be; every condition given must hold.
    #[serde(rename = "match")]
    pub when: ModelMatch,
    /// The alias that serves matching requests.
    #[serde(rename = "use")]
    pub alias: String,
}

/// Conditions on a request for a model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMatch {
    /// The consumer is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
    /// The consumer's tenant is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// Request headers with exactly these values (lower-case names).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// The prompt is estimated at this many tokens or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_prompt_tokens: Option<u64>,
}

impl ModelMatch {
    /// Whether no condition is given.
    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
            && self.tenants.is_empty()
            && self.headers.is_empty()
            && self.min_prompt_tokens.is_none()
    }
}

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt tokens.
    pub input_per_mtok: f64,
    /// Per million completion tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost of a call in nano-USD (10⁻⁹ USD), rounded to the nearest:
    /// exact for prices with up to three decimals.
    pub fn cost_nanousd(&self, input_tokens: u64, output_tokens: u64) -> u64 {
        let cost = input_tokens as f64 * self.input_per_mtok * 1_000.0
            + output_tokens as f64 * self.output_per_mtok * 1_000.0;
        cost.round() as u64
    }
}

impl Ai {
    /// The provider called `name`: from the document, else built in.
    pub fn provider(&self, name: &str) -> Option<Cow<'_, Provider>> {
        if let Some(provider) = self.providers.iter().find(|p| p.name == name) {
            return Some(Cow::Borrowed(provider));
        }
        BUILT_IN
            .iter()
            .find(|(built_in, _, _)| *built_in == name)
            .map(|&(name, kind, variable)| {
                Cow::Owned(Provider {
                    name: name.to_owned(),
                    kind,
                    base_url: None,
                    api_key_variable: Some(variable.to_owned()),
                    api_version: None,
                })
            })
    }

    /// The alias called `name`.
    pub fn model(&self, alias: &str) -> Option<&ModelAlias> {
        self.models.iter().find(|m| m.alias == alias)
    }
}

impl Provider {
    /// The base URL in force, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .or(self.kind.default_base_url())
            .unwrap_or_default()
            .trim_end_matches('/')
    }
}

/// Whether `name` can name a Spin variable: lower-case ASCII letters,
/// digits and `_`, starting with a letter.
pub fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
