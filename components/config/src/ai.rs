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
}

/// Tokens (prompt plus completion) a consumer or a tenant may use per UTC
/// day and/or calendar month. A call is refused (429 `budget_exceeded`)
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
        match (budget.tokens_per_day, budget.tokens_per_month) {
            (None, None) => report(at, "set tokens_per_day, tokens_per_month or both".into()),
            (day, month) => {
                for (field, value) in [("tokens_per_day", day), ("tokens_per_month", month)] {
                    if value == Some(0) {
                        report(format!("{at}.{field}"), "must be above 0".into());
                    }
                }
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

/// A budget period: a UTC day or calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
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
        let (year, month, day) = civil_from_days(days);
        match self {
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
                (format!("{year:04}-{month:02}"), end - now_s)
            }
        }
    }
}

/// `(year, month, day)` of a count of days since 1970-01-01 (Howard
/// Hinnant's algorithm, for dates from 1970 on).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a date from 1970 on.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
            "ai.budgets[5]: set tokens_per_day, tokens_per_month or both",
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
