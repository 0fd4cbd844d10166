//! The `ai` section: providers, model aliases with their fallbacks and
//! prices, and the key layout of the usage counters.
//!
//! ```yaml
//! ai:
//!   providers:
//!     - { name: claude, kind: anthropic, api_key_variable: anthropic_api_key }
//!     - { name: groq, kind: openai_compatible, base_url: "https://api.groq.com/openai/v1",
//!         api_key_variable: groq_api_key }
//!   models:
//!     - { alias: chat-default, provider: claude, model: claude-sonnet-4-5,
//!         fallbacks: [chat-fast], price: { input_per_mtok: 3, output_per_mtok: 15 } }
//!     - { alias: chat-fast, provider: groq, model: llama-3.3-70b-versatile }
//! ```
//!
//! Provider keys never appear in the document: a provider names the Spin
//! variable that holds its key. `openai`, `anthropic` and `gemini` are
//! built in (the official endpoints, keys in `openai_api_key`,
//! `anthropic_api_key` and `gemini_api_key`); a provider of the same name
//! in the document replaces the built-in one.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;

use crate::time::{civil_from_days, days_from_civil};
use crate::validate::{Report, check_name, check_target_url};

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

/// The `{{variable}}` placeholders of a template text, in order; `Err`
/// with the offending text when a placeholder is not closed or its name is
/// not made of letters, digits and `_`.
pub fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{:?} is not closed with }}}}", &rest[start..]))?;
        let name = after[..end].trim();
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "{:?} is not a variable name (letters, digits and _)",
                &after[..end]
            ));
        }
        found.push(name);
        rest = &after[end + 2..];
    }
    Ok(found)
}

/// Fills the `{{variable}}` placeholders of `text` with `value(name)`;
/// `Err` with the first name it has no value for. The text must have passed
/// [`placeholders`].
pub fn render(text: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let name = after[..end].trim();
        out.push_str(&value(name).ok_or_else(|| name.to_owned())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The splitter service of a model alias with a split: `model:{alias}`.
pub fn model_service(alias: &str) -> String {
    format!("model:{alias}")
}

/// The splitter service of a prompt template: `prompt:{name}`.
pub fn prompt_service(prompt: &str) -> String {
    format!("prompt:{prompt}")
}

impl Ai {
    /// The services the splitter sees for the AI section: `model:{alias}`
    /// for each alias with a split (versions: the alias itself, with what
    /// the split leaves, and each alias of its split), and `prompt:{name}`
    /// for each prompt template (versions: its versions). Each version has
    /// one pseudo-target (`model://…`, `prompt://…`) that is never called,
    /// and outlier detection is off: fallbacks handle failing providers.
    pub fn services(&self) -> Vec<crate::Service> {
        let version = |name: &str, weight: Option<u32>, url: String| crate::Version {
            name: name.to_owned(),
            weight,
            targets: vec![crate::Target { url, weight: 1 }],
            deprecation: None,
        };
        let service = |name: String, versions| crate::Service {
            name,
            versions,
            balancer: crate::Balancer::default(),
            outlier_detection: crate::OutlierDetection {
                failures: 0,
                ..crate::OutlierDetection::default()
            },
        };
        let models = self.models.iter().filter(|m| !m.split.is_empty()).map(|m| {
            let shared: u32 = m.split.iter().map(|s| s.weight).sum();
            let own = version(
                &m.alias,
                Some(100_u32.saturating_sub(shared)),
                format!("model://{}", m.alias),
            );
            let others = m
                .split
                .iter()
                .map(|s| version(&s.alias, Some(s.weight), format!("model://{}", s.alias)));
            service(
                model_service(&m.alias),
                std::iter::once(own).chain(others).collect(),
            )
        });
        let prompts = self.prompts.iter().map(|p| {
            let versions = p
                .versions
                .iter()
                .map(|v| version(&v.name, v.weight, format!("prompt://{}/{}", p.name, v.name)))
                .collect();
            service(prompt_service(&p.name), versions)
        });
        models.chain(prompts).collect()
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
const MAX_CACHE_TTL_S: u32 = 7 * 24 * 3600;

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

/// Checks the AI section of `config`.
pub(crate) fn check(config: &crate::Config, ai: &Ai, report: &mut Report<'_>) {
    check_budgets(config, ai, report);
    let mut names = HashSet::new();
    for (i, provider) in ai.providers.iter().enumerate() {
        let at = format!("ai.providers[{i}]");
        check_name(&provider.name, &format!("{at}.name"), report);
        if !names.insert(provider.name.as_str()) {
            report(
                format!("{at}.name"),
                format!("duplicate provider name {:?}", provider.name),
            );
        }
        match (&provider.base_url, provider.kind.default_base_url()) {
            (Some(url), _) => {
                if let Err(message) = check_target_url(url) {
                    report(format!("{at}.base_url"), message);
                }
            }
            (None, None) => report(
                format!("{at}.base_url"),
                format!(
                    "a provider of kind {} needs a base_url",
                    provider.kind.name()
                ),
            ),
            (None, Some(_)) => {}
        }
        if let Some(variable) = &provider.api_key_variable
            && !is_variable_name(variable)
        {
            report(
                format!("{at}.api_key_variable"),
                format!(
                    "{variable:?} is not a variable name (lower-case letters, digits and _, \
                     starting with a letter); name the variable, not the key"
                ),
            );
        }
        match (provider.kind, &provider.api_version) {
            (ProviderKind::Azure, None) => report(
                format!("{at}.api_version"),
                "an azure provider needs an api_version".into(),
            ),
            (ProviderKind::Azure, Some(version))
                if version.is_empty()
                    || !version
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')) =>
            {
                report(
                    format!("{at}.api_version"),
                    format!("{version:?} is not an API version such as 2024-10-21"),
                )
            }
            (ProviderKind::Azure, Some(_)) | (_, None) => {}
            (_, Some(_)) => report(
                format!("{at}.api_version"),
                "api_version applies to azure providers only".into(),
            ),
        }
    }

    let aliases: HashSet<&str> = ai.models.iter().map(|m| m.alias.as_str()).collect();
    let mut seen = HashSet::new();
    for (i, model) in ai.models.iter().enumerate() {
        let at = format!("ai.models[{i}]");
        check_name(&model.alias, &format!("{at}.alias"), report);
        if !seen.insert(model.alias.as_str()) {
            report(
                format!("{at}.alias"),
                format!("duplicate model alias {:?}", model.alias),
            );
        }
        if ai.provider(&model.provider).is_none() {
            report(
                format!("{at}.provider"),
                format!(
                    "unknown provider {:?}: define it under ai.providers \
                     (built in: openai, anthropic, gemini)",
                    model.provider
                ),
            );
        }
        if model.model.is_empty() || model.model.chars().any(char::is_control) {
            report(
                format!("{at}.model"),
                "the provider's model id must not be empty".into(),
            );
        }
        let mut fallbacks = HashSet::new();
        for (f, fallback) in model.fallbacks.iter().enumerate() {
            let at = format!("{at}.fallbacks[{f}]");
            if fallback == &model.alias {
                report(at, "a model cannot fall back to itself".into());
            } else if !aliases.contains(fallback.as_str()) {
                report(at, format!("unknown model alias {fallback:?}"));
            } else if !fallbacks.insert(fallback.as_str()) {
                report(at, format!("{fallback:?} is listed twice"));
            }
        }
        for (r, rule) in model.rules.iter().enumerate() {
            let at = format!("{at}.rules[{r}]");
            if rule.alias == model.alias {
                report(
                    format!("{at}.use"),
                    "a rule cannot use its own alias".into(),
                );
            } else if !aliases.contains(rule.alias.as_str()) {
                report(
                    format!("{at}.use"),
                    format!("unknown model alias {:?}", rule.alias),
                );
            }
            if rule.when.is_empty() {
                report(
                    format!("{at}.match"),
                    "give at least one of consumers, tenants, headers, min_prompt_tokens".into(),
                );
            }
            for (c, consumer) in rule.when.consumers.iter().enumerate() {
                if !config.consumers.iter().any(|known| &known.name == consumer) {
                    report(
                        format!("{at}.match.consumers[{c}]"),
                        format!("unknown consumer {consumer:?}"),
                    );
                }
            }
            for name in rule.when.headers.keys() {
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !valid {
                    report(
                        format!("{at}.match.headers.{name}"),
                        format!("{name:?} is not a lower-case header name"),
                    );
                }
            }
            if rule.when.min_prompt_tokens == Some(0) {
                report(
                    format!("{at}.match.min_prompt_tokens"),
                    "must be above 0".into(),
                );
            }
        }
        if let Some(price) = &model.price {
            for (field, value) in [
                ("input_per_mtok", price.input_per_mtok),
                ("output_per_mtok", price.output_per_mtok),
            ] {
                if !(value.is_finite() && (0.0..=1_000_000.0).contains(&value)) {
                    report(
                        format!("{at}.price.{field}"),
                        "must be a price in USD between 0 and 1000000".into(),
                    );
                }
            }
        }
        check_split(model, &aliases, &at, report);
        if let Some(retries) = model.retries {
            if !(1..=5).contains(&retries.attempts) {
                report(
                    format!("{at}.retries.attempts"),
                    "must be between 1 and 5".into(),
                );
            }
            if !(1..=MAX_RETRY_WAIT_MS).contains(&retries.backoff_ms) {
                report(
                    format!("{at}.retries.backoff_ms"),
                    format!("must be between 1 and {MAX_RETRY_WAIT_MS}"),
                );
            }
        }
    }
    check_prompts(ai, &aliases, report);
}

/// An alias's split: other known aliases, each once, at most 100% in all.
fn check_split(model: &ModelAlias, aliases: &HashSet<&str>, at: &str, report: &mut Report<'_>) {
    let mut seen = HashSet::new();
    for (s, share) in model.split.iter().enumerate() {
        let at = format!("{at}.split[{s}]");
        if share.alias == model.alias {
            report(
                format!("{at}.use"),
                "an alias keeps what its split leaves; name other aliases".into(),
            );
        } else if !aliases.contains(share.alias.as_str()) {
            report(
                format!("{at}.use"),
                format!("unknown model alias {:?}", share.alias),
            );
        } else if !seen.insert(share.alias.as_str()) {
            report(
                format!("{at}.use"),
                format!("{:?} is listed twice", share.alias),
            );
        }
    }
    let total: u64 = model.split.iter().map(|s| u64::from(s.weight)).sum();
    if total > 100 {
        report(
            format!("{at}.split"),
            format!("the shares add up to {total}%, over 100%"),
        );
    }
}

/// Prompt templates: unique names, versions with known models, messages
/// whose placeholders read, sensible sampling settings.
fn check_prompts(ai: &Ai, aliases: &HashSet<&str>, report: &mut Report<'_>) {
    let mut names = HashSet::new();
    for (p, prompt) in ai.prompts.iter().enumerate() {
        let at = format!("ai.prompts[{p}]");
        check_name(&prompt.name, &format!("{at}.name"), report);
        if !names.insert(prompt.name.as_str()) {
            report(
                format!("{at}.name"),
                format!("duplicate prompt name {:?}", prompt.name),
            );
        }
        if prompt.versions.is_empty() {
            report(format!("{at}.versions"), "a prompt needs a version".into());
        }
        let mut versions = HashSet::new();
        for (v, version) in prompt.versions.iter().enumerate() {
            let at = format!("{at}.versions[{v}]");
            check_name(&version.name, &format!("{at}.name"), report);
            if !versions.insert(version.name.as_str()) {
                report(
                    format!("{at}.name"),
                    format!("duplicate version name {:?}", version.name),
                );
            }
            if !aliases.contains(version.model.as_str()) {
                report(
                    format!("{at}.model"),
                    format!("unknown model alias {:?}", version.model),
                );
            }
            if version.weight.is_some_and(|w| w > 100) {
                report(format!("{at}.weight"), "must be between 0 and 100".into());
            }
            if version.messages.is_empty() {
                report(
                    format!("{at}.messages"),
                    "a prompt needs at least one message".into(),
                );
            }
            for (m, message) in version.messages.iter().enumerate() {
                if let Err(problem) = placeholders(&message.content) {
                    report(format!("{at}.messages[{m}].content"), problem);
                }
            }
            if version.max_tokens == Some(0) {
                report(format!("{at}.max_tokens"), "must be at least 1".into());
            }
            if let Some(t) = version.temperature
                && !(t.is_finite() && (0.0..=2.0).contains(&t))
            {
                report(
                    format!("{at}.temperature"),
                    "must be between 0 and 2".into(),
                );
            }
        }
        let weights: Vec<u32> = prompt.versions.iter().filter_map(|v| v.weight).collect();
        if !weights.is_empty() && weights.iter().all(|w| *w == 0) {
            report(
                format!("{at}.versions"),
                "the weights leave no version to serve".into(),
            );
        }
    }
}

fn check_budgets(config: &crate::Config, ai: &Ai, report: &mut Report<'_>) {
    let consumers: HashSet<&str> = config.consumers.iter().map(|c| c.name.as_str()).collect();
    let tenants: HashSet<&str> = config
        .consumers
        .iter()
        .filter_map(|c| c.tenant.as_deref())
        .collect();
    let mut seen = HashSet::new();
    for (i, budget) in ai.budgets.iter().enumerate() {
        let at = format!("ai.budgets[{i}]");
        match (&budget.consumer, &budget.tenant) {
            (Some(consumer), None) => {
                if !consumers.contains(consumer.as_str()) {
                    report(
                        format!("{at}.consumer"),
                        format!("unknown consumer {consumer:?}"),
                    );
                } else if !seen.insert(("consumer", consumer.as_str())) {
                    report(
                        format!("{at}.consumer"),
                        format!("consumer {consumer:?} has another budget"),
                    );
                }
            }
            (None, Some(tenant)) => {
                if !tenants.contains(tenant.as_str()) {
                    report(
                        format!("{at}.tenant"),
                        format!("no consumer belongs to tenant {tenant:?}"),
                    );
                } else if !seen.insert(("tenant", tenant.as_str())) {
                    report(
                        format!("{at}.tenant"),
                        format!("tenant {tenant:?} has another budget"),
                    );
                }
            }
            _ => report(at.clone(), "name exactly one of consumer or tenant".into()),
        }
        let limits = [
            ("tokens_per_minute", budget.tokens_per_minute),
            ("tokens_per_day", budget.tokens_per_day),
            ("tokens_per_month", budget.tokens_per_month),
        ];
        if limits.iter().all(|(_, value)| value.is_none()) {
            report(
                at.clone(),
                "set tokens_per_minute, tokens_per_day, tokens_per_month or several".into(),
            );
        }
        for (field, value) in limits {
            if value == Some(0) {
                report(format!("{at}.{field}"), "must be above 0".into());
            }
        }
    }
    if let Some(cache) = &ai.cache
        && (cache.ttl_s == 0 || cache.ttl_s > MAX_CACHE_TTL_S)
    {
        report(
            "ai.cache.ttl_s".into(),
            format!("must be between 1 and {MAX_CACHE_TTL_S}"),
        );
    }
}

/// Key layout of the AI counters and cache (bucket `default`).
///
/// ```text
/// ai/usage/{tenant}/{consumer}/{alias}/{field}   counters per tenant, consumer and model alias
/// ai/budget/consumers/{consumer}/{period}        counter: a consumer's tokens in a period
/// ai/budget/tenants/{tenant}/{period}            counter: a tenant's tokens in a period
/// ai/cache/{sha256}                              a cached answer (expiry, then the body)
/// ```
///
/// `{alias}` is the alias that served the call (a fallback's, when one
/// did). A request without a consumer counts as consumer `~`, a consumer
/// without a tenant as tenant `~` (neither is a valid name). Tenants are
/// escaped like target URLs (`%` and `/` percent-encoded). Fields are
/// [`USAGE_FIELDS`]. A period is a UTC day (`2025-11-25`) or month
/// (`2025-11`): budget counters are kept, one key per subject and period.
/// Counters are only incremented and read as [`crate::store`] says.
pub mod usage_keys {
    use crate::keys;

    /// Prefix of every usage counter.
    pub const PREFIX: &str = "ai/usage/";

    /// The segment of an absent consumer or tenant.
    pub const NONE: &str = "~";

    /// Counter of completed calls.
    pub const REQUESTS: &str = "requests";
    /// Counter of prompt tokens.
    pub const INPUT_TOKENS: &str = "input_tokens";
    /// Counter of completion tokens.
    pub const OUTPUT_TOKENS: &str = "output_tokens";
    /// Counter of cost, in nano-USD (10⁻⁹ USD), for models with a price.
    pub const COST_NANOUSD: &str = "cost_nanousd";
    /// Counter of requests answered from the cache (no tokens counted).
    pub const CACHE_HITS: &str = "cache_hits";

    /// Every usage field.
    pub const USAGE_FIELDS: [&str; 5] = [
        REQUESTS,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
        COST_NANOUSD,
        CACHE_HITS,
    ];

    /// Counter `field` of `consumer` of `tenant` on `alias`.
    pub fn usage(tenant: Option<&str>, consumer: Option<&str>, alias: &str, field: &str) -> String {
        let tenant = tenant.map_or(NONE.to_owned(), keys::target);
        let consumer = consumer.unwrap_or(NONE);
        format!("{PREFIX}{tenant}/{consumer}/{alias}/{field}")
    }

    /// Counter of the tokens of `consumer` in `period`.
    pub fn consumer_budget(consumer: &str, period: &str) -> String {
        format!("ai/budget/consumers/{consumer}/{period}")
    }

    /// Counter of the tokens of `tenant` in `period`.
    pub fn tenant_budget(tenant: &str, period: &str) -> String {
        format!("ai/budget/tenants/{}/{period}", keys::target(tenant))
    }

    /// Key of a cached answer, by the hex digest of what it answers.
    pub fn cache(digest: &str) -> String {
        format!("ai/cache/{digest}")
    }
}

/// A budget period: a clock minute, a UTC day or a calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The clock minute (UTC).
    Minute,
    /// The UTC day.
    Day,
    /// The UTC calendar month.
    Month,
}

impl Period {
    /// The period containing `now_ms` (Unix milliseconds), as a key
    /// segment, and the seconds left until it ends.
    pub fn at(self, now_ms: u64) -> (String, u64) {
        let now_s = now_ms / 1000;
        let days = now_s / 86_400;
        let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
        match self {
            Period::Minute => (
                format!(
                    "{year:04}-{month:02}-{day:02}T{:02}:{:02}",
                    now_s % 86_400 / 3_600,
                    now_s % 3_600 / 60
                ),
                60 - now_s % 60,
            ),
            Period::Day => (
                format!("{year:04}-{month:02}-{day:02}"),
                (days + 1) * 86_400 - now_s,
            ),
            Period::Month => {
                let (next_year, next_month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                let end = days_from_civil(next_year, next_month, 1) * 86_400;
                let end = u64::try_from(end).unwrap_or(u64::MAX);
                (format!("{year:04}-{month:02}"), end - now_s)
            }
        }
    }
}

pub use usage_keys::USAGE_FIELDS;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn problems(doc: &str) -> Vec<String> {
        match Config::parse(doc) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .problems()
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    #[test]
    fn built_in_providers_need_no_definition() {
        let config = Config::parse(
            "ai: {models: [{alias: chat-default, provider: anthropic, model: claude-x}]}",
        )
        .unwrap();
        let ai = config.ai.unwrap();
        let provider = ai.provider("anthropic").unwrap();
        assert_eq!(provider.kind, ProviderKind::Anthropic);
        assert_eq!(provider.base_url(), "https://api.anthropic.com");
        assert_eq!(
            provider.api_key_variable.as_deref(),
            Some("anthropic_api_key")
        );
    }

    #[test]
    fn documents_replace_built_in_providers() {
        let config = Config::parse(
            "ai: {providers: [{name: openai, kind: openai_compatible, \
                               base_url: 'http://127.0.0.1:9/v1/'}],\
                  models: [{alias: m, provider: openai, model: x}]}",
        )
        .unwrap();
        let ai = config.ai.unwrap();
        let provider = ai.provider("openai").unwrap();
        assert_eq!(provider.kind, ProviderKind::OpenaiCompatible);
        assert_eq!(provider.base_url(), "http://127.0.0.1:9/v1");
        assert_eq!(provider.api_key_variable, None);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let found = problems(
            "ai:
  providers:
    - { name: local, kind: openai_compatible }
    - { name: az, kind: azure, base_url: 'https://x.openai.azure.com' }
    - { name: claude, kind: anthropic, api_key_variable: 'sk-ant-123', api_version: '1' }
    - { name: local, kind: gemini }
  models:
    - { alias: a, provider: nowhere, model: x, fallbacks: [a, b, zz, b] }
    - { alias: b, provider: local, model: '', price: { input_per_mtok: -1, output_per_mtok: 2 } }
    - { alias: b, provider: openai, model: gpt }",
        );
        let expected = [
            "ai.providers[0].base_url: a provider of kind openai_compatible needs a base_url",
            "ai.providers[1].api_version: an azure provider needs an api_version",
            "ai.providers[2].api_key_variable: \"sk-ant-123\" is not a variable name",
            "ai.providers[2].api_version: api_version applies to azure providers only",
            "ai.providers[3].name: duplicate provider name \"local\"",
            "ai.models[0].provider: unknown provider \"nowhere\"",
            "ai.models[0].fallbacks[0]: a model cannot fall back to itself",
            "ai.models[0].fallbacks[2]: unknown model alias \"zz\"",
            "ai.models[0].fallbacks[3]: \"b\" is listed twice",
            "ai.models[1].model: the provider's model id must not be empty",
            "ai.models[1].price.input_per_mtok: must be a price",
            "ai.models[2].alias: duplicate model alias \"b\"",
        ];
        for want in expected {
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }

    #[test]
    fn model_rules_are_checked() {
        let found = problems(
            "consumers: [{name: alice, api_keys: [alice-key-0001]}]
ai:
  models:
    - alias: chat
      provider: openai
      model: gpt
      rules:
        - { match: { tenants: [acme] }, use: long }
        - { match: { consumers: [bob], headers: { X-Tier: free } }, use: chat }
        - { match: {}, use: nowhere }
        - { match: { min_prompt_tokens: 0 }, use: long }
    - { alias: long, provider: anthropic, model: claude }",
        );
        let expected = [
            "ai.models[0].rules[1].use: a rule cannot use its own alias",
            "ai.models[0].rules[1].match.consumers[0]: unknown consumer \"bob\"",
            "ai.models[0].rules[1].match.headers.X-Tier: \"X-Tier\" is not a lower-case header name",
            "ai.models[0].rules[2].use: unknown model alias \"nowhere\"",
            "ai.models[0].rules[2].match: give at least one of",
            "ai.models[0].rules[3].match.min_prompt_tokens: must be above 0",
        ];
        for want in expected {
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }

    #[test]
    fn splits_and_prompts_are_checked() {
        let found = problems(
            "ai:
  models:
    - alias: chat
      provider: openai
      model: gpt
      split: [{ use: chat, weight: 10 }, { use: next, weight: 60 }, { use: next, weight: 50 }, { use: nope, weight: 1 }]
      retries: { attempts: 6, backoff_ms: 0 }
    - { alias: next, provider: anthropic, model: claude }
  prompts:
    - name: summarize
      versions:
        - { name: v1, model: chat, messages: [{ role: user, content: 'Sum up {{text}}' }] }
        - { name: v1, model: gone, max_tokens: 0, temperature: 3, messages: [{ role: user, content: 'Hi {{ bad name }} and {{open' }] }
    - { name: empty, versions: [] }",
        );
        let expected = [
            "ai.models[0].split[0].use: an alias keeps what its split leaves",
            "ai.models[0].split[2].use: \"next\" is listed twice",
            "ai.models[0].split[3].use: unknown model alias \"nope\"",
            "ai.models[0].split: the shares add up to 121%, over 100%",
            "ai.models[0].retries.attempts: must be between 1 and 5",
            "ai.models[0].retries.backoff_ms: must be between 1 and 10000",
            "ai.prompts[0].versions[1].name: duplicate version name \"v1\"",
            "ai.prompts[0].versions[1].model: unknown model alias \"gone\"",
            "ai.prompts[0].versions[1].messages[0].content: \" bad name \" is not a variable name",
            "ai.prompts[0].versions[1].max_tokens: must be at least 1",
            "ai.prompts[0].versions[1].temperature: must be between 0 and 2",
            "ai.prompts[1].versions: a prompt needs a version",
        ];
        for want in expected {
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }

    #[test]
    fn templates_fill_their_placeholders() {
        assert_eq!(
            placeholders("Sum up {{text}} in {{ words }} words"),
            Ok(vec!["text", "words"])
        );
        assert!(placeholders("{{open").is_err());
        let value = |name: &str| (name == "text").then(|| "a {{text}} b".to_owned());
        assert_eq!(
            render("<{{ text }}>", value).as_deref(),
            Ok("<a {{text}} b>"),
            "values are not templates"
        );
        assert_eq!(render("{{text}} {{words}}", value), Err("words".to_owned()));
    }

    #[test]
    fn splits_and_prompts_are_splitter_services() {
        let config = crate::Config::parse(
            "ai:
  models:
    - { alias: chat, provider: openai, model: gpt, split: [{ use: next, weight: 10 }] }
    - { alias: next, provider: anthropic, model: claude }
  prompts:
    - name: summarize
      versions:
        - { name: v1, model: chat, weight: 100, messages: [{ role: user, content: '{{text}}' }] }
        - { name: v2, model: next, weight: 0, messages: [{ role: user, content: '{{text}}' }] }",
        )
        .unwrap();
        let model = config.service("model:chat").unwrap();
        let versions: Vec<(&str, Option<u32>, &str)> = model
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.weight, v.targets[0].url.as_str()))
            .collect();
        assert_eq!(
            versions,
            [
                ("chat", Some(90), "model://chat"),
                ("next", Some(10), "model://next")
            ]
        );
        assert_eq!(model.outlier_detection.failures, 0);
        let prompt = config.service("prompt:summarize").unwrap();
        assert_eq!(prompt.versions[1].name, "v2");
        assert!(
            config.service("model:next").is_none(),
            "no split, no service"
        );
    }

    #[test]
    fn prices_are_exact_in_nano_usd() {
        let price = Price {
            input_per_mtok: 3.0,
            output_per_mtok: 0.15,
        };
        // 1000 × $3/M = $0.003 = 3 000 000 n$; 7 × $0.15/M = 1 050 n$.
        assert_eq!(price.cost_nanousd(1000, 7), 3_001_050);
    }

    #[test]
    fn periods_are_utc_days_and_months() {
        // 2025-11-25T23:59:30Z
        let now_ms = 1_764_115_170_000;
        assert_eq!(Period::Day.at(now_ms), ("2025-11-25".to_owned(), 30));
        assert_eq!(
            Period::Minute.at(now_ms),
            ("2025-11-25T23:59".to_owned(), 30)
        );
        assert_eq!(
            Period::Minute.at(now_ms + 30_000),
            ("2025-11-26T00:00".to_owned(), 60)
        );
        assert_eq!(
            Period::Month.at(now_ms),
            ("2025-11".to_owned(), 5 * 86_400 + 30)
        );
        // 2024-02-29T00:00:00Z, a leap day; the month ends with it.
        let leap = 1_709_164_800_000;
        assert_eq!(Period::Day.at(leap).0, "2024-02-29");
        assert_eq!(Period::Month.at(leap), ("2024-02".to_owned(), 86_400));
        // December rolls into the next year.
        assert_eq!(
            Period::Month.at(1_735_603_200_000),
            ("2024-12".to_owned(), 86_400)
        );
    }

    #[test]
    fn budgets_and_cache_are_checked() {
        let found = problems(
            "consumers: [{name: alice, tenant: acme, api_keys: [alice-key-0001]}]
ai:
  budgets:
    - { consumer: alice, tokens_per_day: 1000 }
    - { consumer: alice, tokens_per_month: 10 }
    - { consumer: bob, tokens_per_day: 5 }
    - { tenant: acme, tokens_per_day: 0 }
    - { tenant: nobody, consumer: alice, tokens_per_day: 5 }
    - { tenant: acme }
  cache: { ttl_s: 0 }",
        );
        let expected = [
            "ai.budgets[1].consumer: consumer \"alice\" has another budget",
            "ai.budgets[2].consumer: unknown consumer \"bob\"",
            "ai.budgets[3].tokens_per_day: must be above 0",
            "ai.budgets[4]: name exactly one of consumer or tenant",
            "ai.budgets[5].tenant: tenant \"acme\" has another budget",
            "ai.budgets[5]: set tokens_per_minute, tokens_per_day, tokens_per_month or several",
            "ai.cache.ttl_s: must be between 1 and",
        ];
        for want in expected {
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }

    #[test]
    fn usage_keys_name_tenant_consumer_and_alias() {
        assert_eq!(
            usage_keys::usage(Some("acme/eu"), Some("alice"), "chat", "input_tokens"),
            "ai/usage/acme%2Feu/alice/chat/input_tokens"
        );
        assert_eq!(
            usage_keys::usage(None, None, "chat", "requests"),
            "ai/usage/~/~/chat/requests"
        );
        assert_eq!(
            usage_keys::tenant_budget("acme/eu", "2025-11"),
            "ai/budget/tenants/acme%2Feu/2025-11"
        );
        assert_eq!(
            usage_keys::consumer_budget("alice", "2025-11-25"),
            "ai/budget/consumers/alice/2025-11-25"
        );
    }
}
