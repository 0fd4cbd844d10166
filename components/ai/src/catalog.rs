//! The AI API of one config version: model aliases, their providers and
//! fallbacks; the OpenAI `GET /v1/models` listing, and the plan of each
//! call.

use std::cell::{Cell, OnceCell};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use upshift_config::ai::{self as config_ai, usage_keys};
use upshift_config::{Config, ModelRetries, Period, Price, PromptMessage};

use crate::Dialect;
use crate::call::{
    self, Attempt, CacheSlot, Cached, Call, Caller, Head, HeadStreamOptions, Reply, Store, Variant,
};
use crate::errors::{ApiError, ErrorKind};
use crate::provider::Endpoint;
use crate::usage;

/// One entry of OpenAI's model list.
#[derive(Debug, Serialize)]
struct Model<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

/// OpenAI's list envelope.
#[derive(Debug, Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Model<'a>>,
}

/// A model alias, resolved.
#[derive(Debug)]
struct Alias {
    alias: String,
    /// Index into [`Catalog::endpoints`].
    endpoint: usize,
    model: String,
    /// Indices into [`Catalog::aliases`].
    fallbacks: Vec<usize>,
    price: Option<Price>,
    retries: Option<ModelRetries>,
    rules: Vec<Rule>,
    /// Aliases that take a share of this one's requests, by index; the
    /// splitter service `model:{alias}` picks among them and this one.
    split: Vec<usize>,
}

/// A prompt template, compiled.
#[derive(Debug)]
struct Prompt {
    name: String,
    versions: Vec<PromptVersion>,
}

/// One version of a prompt template.
#[derive(Debug)]
struct PromptVersion {
    name: String,
    /// Index into [`Catalog::aliases`].
    alias: usize,
    messages: Vec<PromptMessage>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
}

/// What a call's variant is made of, before its attempts are planned.
struct Draft {
    version: String,
    body: Vec<u8>,
    ir: OnceCell<Option<crate::ir::Request>>,
    /// Index into [`Catalog::aliases`] of the model that answers.
    alias: usize,
}

/// The budget counters a call adds its tokens to.
struct Budgets {
    keys: Vec<String>,
    /// Counters of the minute before, removed once the call is counted.
    stale: Vec<String>,
    /// Tokens left in the tightest budget.
    allowance: Option<u64>,
}

/// What every variant of a call shares.
struct Setup<'a> {
    ingress: Dialect,
    stream: bool,
    include_usage: bool,
    embeddings: bool,
    split: Option<String>,
    /// What the cache key is made of besides the body: the endpoint and
    /// the alias (or prompt) asked for.
    cache_scope: [&'a str; 2],
}

/// The body of `POST /prompts/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptRequest {
    #[serde(default)]
    variables: Map<String, Value>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<HeadStreamOptions>,
}

/// A routing rule of an alias, compiled.
#[derive(Debug)]
struct Rule {
    consumers: Vec<String>,
    tenants: Vec<String>,
    headers: Vec<(String, String)>,
    min_prompt_tokens: Option<u64>,
    /// Index into [`Catalog::aliases`].
    target: usize,
}

impl Rule {
    fn matches(
        &self,
        caller: &Caller,
        headers: &[(String, String)],
        prompt_tokens: &mut dyn FnMut() -> u64,
    ) -> bool {
        let one_of = |list: &[String], value: Option<&String>| {
            list.is_empty() || value.is_some_and(|v| list.contains(v))
        };
        one_of(&self.consumers, caller.consumer.as_ref())
            && one_of(&self.tenants, caller.tenant.as_ref())
            && self
                .headers
                .iter()
                .all(|wanted| headers.iter().any(|h| h == wanted))
            && self
                .min_prompt_tokens
                .is_none_or(|min| prompt_tokens() >= min)
    }
}

/// A token budget, compiled.
#[derive(Debug)]
struct Budget {
    /// `consumer` or `tenant`.
    scope: Scope,
    name: String,
    per_minute: Option<u64>,
    per_day: Option<u64>,
    per_month: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Consumer,
    Tenant,
}

/// The model aliases of one config version.
#[derive(Debug, Default)]
pub struct Catalog {
    /// In document order.
    aliases: Vec<Alias>,
    endpoints: Vec<Endpoint>,
    budgets: Vec<Budget>,
    /// Cache lifetime in milliseconds; no cache when absent.
    cache_ttl_ms: Option<u64>,
    prompts: Vec<Prompt>,
}

/// An AI API request as the gateway hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// Path after the route's rewrite, without the query.
    pub path: &'a str,
    /// Request headers, lower-case names.
    pub headers: &'a [(String, String)],
    /// The whole body.
    pub body: &'a [u8],
    /// Unix milliseconds.
    pub now_ms: u64,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Plan {
    /// Answer at once.
    Reply(Reply),
    /// Call providers.
    Call(Box<Call>),
}

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

/// An error answer in `dialect`.
fn refusal(
    dialect: Dialect,
    kind: ErrorKind,
    code: &str,
    message: String,
    param: Option<&str>,
) -> Plan {
    Plan::Reply(Reply::error(
        dialect,
        &ApiError {
            kind,
            message,
            code: Some(code.to_owned()),
            param: param.map(str::to_owned),
        },
    ))
}

/// The prompt a `…/prompts/{name}` path names.
fn prompt_name(path: &str) -> Option<&str> {
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

impl Catalog {
    /// Compiles the `ai` section of `config` (validated: every provider and
    /// fallback exists).
    pub fn new(config: &Config) -> Self {
        let Some(ai) = &config.ai else {
            return Catalog::default();
        };
        let mut endpoints: Vec<Endpoint> = Vec::new();
        let mut aliases = Vec::with_capacity(ai.models.len());
        for model in &ai.models {
            let Some(provider) = ai.provider(&model.provider) else {
                continue;
            };
            let endpoint = match endpoints.iter().position(|e| e.name == provider.name) {
                Some(i) => i,
                None => {
                    endpoints.push(Endpoint::new(&provider));
                    endpoints.len() - 1
                }
            };
            aliases.push(Alias {
                alias: model.alias.clone(),
                endpoint,
                model: model.model.clone(),
                fallbacks: Vec::new(),
                price: model.price,
                retries: model.retries,
                rules: Vec::new(),
                split: Vec::new(),
            });
        }
        for model in &ai.models {
            let Some(position) = aliases.iter().position(|a| a.alias == model.alias) else {
                continue;
            };
            let fallbacks = model
                .fallbacks
                .iter()
                .filter_map(|name| aliases.iter().position(|a| &a.alias == name))
                .collect();
            let rules = model
                .rules
                .iter()
                .filter_map(|rule| {
                    Some(Rule {
                        consumers: rule.when.consumers.clone(),
                        tenants: rule.when.tenants.clone(),
                        headers: rule.when.headers.clone().into_iter().collect(),
                        min_prompt_tokens: rule.when.min_prompt_tokens,
                        target: aliases.iter().position(|a| a.alias == rule.alias)?,
                    })
                })
                .collect();
            let split = model
                .split
                .iter()
                .filter_map(|share| aliases.iter().position(|a| a.alias == share.alias))
                .collect();
            aliases[position].fallbacks = fallbacks;
            aliases[position].rules = rules;
            aliases[position].split = split;
        }
        let prompts = ai
            .prompts
            .iter()
            .map(|prompt| Prompt {
                name: prompt.name.clone(),
                versions: prompt
                    .versions
                    .iter()
                    .filter_map(|v| {
                        Some(PromptVersion {
                            name: v.name.clone(),
                            alias: aliases.iter().position(|a| a.alias == v.model)?,
                            messages: v.messages.clone(),
                            max_tokens: v.max_tokens,
                            temperature: v.temperature,
                        })
                    })
                    .collect(),
            })
            .collect();
        let budgets = ai
            .budgets
            .iter()
            .filter_map(|b| {
                let (scope, name) = match (&b.consumer, &b.tenant) {
                    (Some(consumer), _) => (Scope::Consumer, consumer),
                    (None, Some(tenant)) => (Scope::Tenant, tenant),
                    (None, None) => return None,
                };
                Some(Budget {
                    scope,
                    name: name.clone(),
                    per_minute: b.tokens_per_minute,
                    per_day: b.tokens_per_day,
                    per_month: b.tokens_per_month,
                })
            })
            .collect();
        Catalog {
            aliases,
            endpoints,
            budgets,
            cache_ttl_ms: ai.cache.map(|c| u64::from(c.ttl_s) * 1000),
            prompts,
        }
    }

    /// The JSON body of OpenAI's `GET /v1/models`, one entry per alias.
    pub fn list_models(&self) -> String {
        let list = List {
            object: "list",
            data: self
                .aliases
                .iter()
                .map(|alias| Model {
                    id: &alias.alias,
                    object: "model",
                    created: 0,
                    owned_by: &self.endpoints[alias.endpoint].name,
                })
                .collect(),
        };
        serde_json::to_string(&list).expect("model list serializes")
    }

    /// Plans `request` for `caller`: the model list, a call of the alias's
    /// model and its fallbacks, or an answer at once: an error in the
    /// client's dialect (a budget used up among them) or a cached answer.
    pub fn plan(&self, request: &Incoming<'_>, caller: Caller, store: &dyn Store) -> Plan {
        let api = endpoint(request.method, request.path);
        let embeddings = api == Some(ApiEndpoint::Embeddings);
        let ingress = match api {
            Some(ApiEndpoint::Models) => {
                return Plan::Reply(Reply::json(200, self.list_models().into_bytes()));
            }
            Some(ApiEndpoint::Chat(dialect)) => dialect,
            Some(ApiEndpoint::Embeddings) => Dialect::OpenAiChat,
            Some(ApiEndpoint::Prompt) => return self.plan_prompt(request, caller, store),
            None => {
                return Plan::Reply(Reply::error(
                    error_dialect(request.path),
                    &ApiError {
                        kind: ErrorKind::NotFound,
                        message: format!(
                            "no AI endpoint for {} {}: use POST /v1/chat/completions, \
                             POST /v1/messages, POST /v1/responses, POST /v1/embeddings, \
                             POST /prompts/{{name}} or GET /v1/models",
                            request.method, request.path
                        ),
                        code: Some("unknown_endpoint".to_owned()),
                        param: None,
                    },
                ));
            }
        };
        let refuse = |kind, code: &str, message: String, param: Option<&str>| {
            refusal(ingress, kind, code, message, param)
        };
        let head: Head = match serde_json::from_slice(request.body) {
            Ok(head) => head,
            Err(error) => {
                return refuse(
                    ErrorKind::InvalidRequest,
                    "invalid_json",
                    format!("the request body is not a JSON object: {error}"),
                    None,
                );
            }
        };
        let Some(name) = head.model.filter(|m| !m.is_empty()) else {
            return refuse(
                ErrorKind::InvalidRequest,
                "missing_model",
                "the request names no model".to_owned(),
                Some("model"),
            );
        };
        let Some(asked) = self.aliases.iter().position(|a| a.alias == name) else {
            return refuse(
                ErrorKind::NotFound,
                "model_not_found",
                format!("the model `{name}` does not exist; GET /v1/models lists the models"),
                Some("model"),
            );
        };
        // The client's request in the IR, parsed once if a rule or a
        // translation needs it.
        let ir = OnceCell::new();
        let mut prompt_tokens = || match ir.get_or_init(|| ingress.parse_request(request.body).ok())
        {
            Some(parsed) if !embeddings => usage::estimate_request(parsed),
            _ => usage::estimate_text(&String::from_utf8_lossy(request.body)),
        };
        let primary = self.aliases[asked]
            .rules
            .iter()
            .find(|rule| rule.matches(&caller, request.headers, &mut prompt_tokens))
            .map_or(asked, |rule| rule.target);
        let stream = head.stream.unwrap_or(false) && !embeddings;
        let alias = &self.aliases[primary];
        let drafts = std::iter::once(primary)
            .chain(alias.split.iter().copied())
            .map(|index| Draft {
                version: self.aliases[index].alias.clone(),
                body: request.body.to_vec(),
                ir: ir.clone(),
                alias: index,
            })
            .collect();
        let setup = Setup {
            ingress,
            stream,
            include_usage: head
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            embeddings,
            split: (!alias.split.is_empty()).then(|| config_ai::model_service(&alias.alias)),
            cache_scope: [
                if embeddings {
                    "embeddings"
                } else {
                    ingress.name()
                },
                &alias.alias,
            ],
        };
        self.call(&setup, drafts, request, caller, store)
    }

    /// Plans `POST …/prompts/{name}`: each version's messages filled in
    /// with the request's `variables`, as an OpenAI chat completion of the
    /// version's model; the splitter service `prompt:{name}` picks the
    /// version.
    fn plan_prompt(&self, request: &Incoming<'_>, caller: Caller, store: &dyn Store) -> Plan {
        let ingress = Dialect::OpenAiChat;
        let name = prompt_name(request.path).unwrap_or_default();
        let Some(prompt) = self.prompts.iter().find(|p| p.name == name) else {
            return refusal(
                ingress,
                ErrorKind::NotFound,
                "prompt_not_found",
                format!("there is no prompt `{name}`"),
                None,
            );
        };
        let asked: PromptRequest = match serde_json::from_slice(request.body) {
            Ok(asked) => asked,
            Err(error) => {
                return refusal(
                    ingress,
                    ErrorKind::InvalidRequest,
                    "invalid_json",
                    format!(
                        "a prompt takes {{\"variables\": {{...}}, \"stream\": false}}: {error}"
                    ),
                    None,
                );
            }
        };
        let value = |name: &str| {
            asked.variables.get(name).map(|v| match v {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
        };
        let mut drafts = Vec::with_capacity(prompt.versions.len());
        for version in &prompt.versions {
            let body = match self.prompt_body(version, asked.stream, &value) {
                Ok(body) => body,
                Err(missing) => {
                    return refusal(
                        ingress,
                        ErrorKind::InvalidRequest,
                        "missing_variable",
                        format!("the prompt `{name}` needs the variable `{missing}`"),
                        Some(&format!("variables.{missing}")),
                    );
                }
            };
            drafts.push(Draft {
                version: version.name.clone(),
                body,
                ir: OnceCell::new(),
                alias: version.alias,
            });
        }
        let setup = Setup {
            ingress,
            stream: asked.stream,
            include_usage: asked
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            embeddings: false,
            split: Some(config_ai::prompt_service(&prompt.name)),
            cache_scope: ["prompt", &prompt.name],
        };
        self.call(&setup, drafts, request, caller, store)
    }

    /// A prompt version as an OpenAI chat request; `Err` names a variable
    /// without a value.
    fn prompt_body(
        &self,
        version: &PromptVersion,
        stream: bool,
        value: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<u8>, String> {
        let messages = version
            .messages
            .iter()
            .map(|m| {
                let content = config_ai::render(&m.content, value)?;
                Ok(json!({ "role": m.role.name(), "content": content }))
            })
            .collect::<Result<Vec<Value>, String>>()?;
        let mut body = json!({
            "model": self.aliases[version.alias].alias,
            "messages": messages,
            "stream": stream,
        });
        if let Some(max_tokens) = version.max_tokens {
            body["max_tokens"] = max_tokens.into();
        }
        if let Some(temperature) = version.temperature {
            body["temperature"] = temperature.into();
        }
        Ok(serde_json::to_vec(&body).expect("a JSON value serializes"))
    }

    /// The call of `drafts` (the variants a split picks from; one without):
    /// refused when a budget is used up, answered from the cache when it
    /// holds the answer, else each variant's model and its fallbacks.
    fn call(
        &self,
        setup: &Setup<'_>,
        drafts: Vec<Draft>,
        request: &Incoming<'_>,
        caller: Caller,
        store: &dyn Store,
    ) -> Plan {
        let ingress = setup.ingress;
        let budgets = match self.budget_keys(ingress, &caller, request.now_ms, store) {
            Ok(found) => found,
            Err(reply) => return Plan::Reply(reply),
        };
        let (cache, cache_status) = match self.cache_ttl_ms {
            Some(ttl_ms) if !setup.stream => {
                let directives = cache_control(request.headers);
                if directives.no_store {
                    (None, Some("bypass"))
                } else {
                    let digest = cache_digest(setup.cache_scope, &caller, request.body);
                    let key = usage_keys::cache(&digest);
                    if !directives.no_cache
                        && let Some(cached) = store.get(&key).and_then(|v| Cached::decode(&v))
                        && cached.expires_ms > request.now_ms
                    {
                        let counted = usage_keys::usage(
                            caller.tenant.as_deref(),
                            caller.consumer.as_deref(),
                            &cached.alias,
                            usage_keys::CACHE_HITS,
                        );
                        store.add(&counted, 1);
                        return Plan::Reply(cached.reply());
                    }
                    (Some(CacheSlot { key, ttl_ms }), Some("miss"))
                }
            }
            _ => (None, None),
        };
        let mut call = Call {
            ingress,
            stream: setup.stream,
            include_usage: setup.include_usage,
            variants: Vec::with_capacity(drafts.len()),
            chosen: Cell::new(0),
            split: setup.split.clone(),
            embeddings: setup.embeddings,
            caller,
            now_ms: request.now_ms,
            budget_keys: budgets.keys,
            stale_keys: budgets.stale,
            allowance: budgets.allowance,
            cache,
            cache_status,
            spent: Cell::new(0),
            answered: Cell::default(),
        };
        for (v, draft) in drafts.into_iter().enumerate() {
            let mut variant = Variant {
                version: draft.version,
                body: draft.body,
                ir: draft.ir,
                attempts: Vec::new(),
            };
            let chain = std::iter::once(draft.alias)
                .chain(self.aliases[draft.alias].fallbacks.iter().copied());
            for (n, index) in chain.enumerate() {
                match self.attempt(&call, &variant, index, request.headers) {
                    Ok(attempt) => variant.attempts.push(attempt),
                    // The first choice failing is the client's error; a
                    // fallback (or another variant) that cannot take this
                    // request is left out.
                    Err(error) if n == 0 && v == 0 => {
                        return Plan::Reply(Reply::error(ingress, &error.to_api_error()));
                    }
                    Err(_) => {}
                }
            }
            if !variant.attempts.is_empty() {
                call.variants.push(variant);
            }
        }
        Plan::Call(Box::new(call))
    }

    /// The budget counters of `caller`'s budgets, those of the minute
    /// before (to remove once the call is counted), and the tokens left in
    /// the tightest; or the refusal when one is used up.
    fn budget_keys(
        &self,
        ingress: Dialect,
        caller: &Caller,
        now_ms: u64,
        store: &dyn Store,
    ) -> Result<Budgets, Reply> {
        let mut keys = Vec::new();
        let mut stale = Vec::new();
        let mut allowance: Option<u64> = None;
        for budget in &self.budgets {
            let subject = match budget.scope {
                Scope::Consumer => caller.consumer.as_deref(),
                Scope::Tenant => caller.tenant.as_deref(),
            };
            if subject != Some(budget.name.as_str()) {
                continue;
            }
            let key = |period: &str| match budget.scope {
                Scope::Consumer => usage_keys::consumer_budget(&budget.name, period),
                Scope::Tenant => usage_keys::tenant_budget(&budget.name, period),
            };
            for (period, limit) in [
                (Period::Minute, budget.per_minute),
                (Period::Day, budget.per_day),
                (Period::Month, budget.per_month),
            ] {
                let Some(limit) = limit else { continue };
                let (name, left_s) = period.at(now_ms);
                if period == Period::Minute {
                    stale.push(key(&period.at(now_ms.saturating_sub(60_000)).0));
                }
                let key = key(&name);
                let used = call::counter(store, &key);
                if used >= limit {
                    let who = match budget.scope {
                        Scope::Consumer => "consumer",
                        Scope::Tenant => "tenant",
                    };
                    let mut reply = Reply::refusal(
                        ingress,
                        429,
                        "budget_exceeded",
                        &format!(
                            "{who} {} has used {used} of its {limit} tokens for {name}",
                            budget.name
                        ),
                    );
                    reply
                        .headers
                        .push(("retry-after".to_owned(), left_s.to_string()));
                    return Err(reply);
                }
                keys.push(key);
                allowance = Some(allowance.map_or(limit - used, |a| a.min(limit - used)));
            }
        }
        Ok(Budgets {
            keys,
            stale,
            allowance,
        })
    }

    fn attempt(
        &self,
        call: &Call,
        variant: &Variant,
        index: usize,
        headers: &[(String, String)],
    ) -> Result<Attempt, crate::TranslateError> {
        let alias = &self.aliases[index];
        let endpoint = &self.endpoints[alias.endpoint];
        if call.embeddings {
            let url = endpoint.embeddings_url(&alias.model).ok_or_else(|| {
                crate::TranslateError::unsupported(format!(
                    "model {} ({} provider {}) serves no embeddings",
                    alias.alias,
                    endpoint.kind.name(),
                    endpoint.name
                ))
            })?;
            return Ok(Attempt {
                alias: alias.alias.clone(),
                provider: endpoint.name.clone(),
                model: alias.model.clone(),
                dialect: Dialect::OpenAiChat,
                method: "POST",
                url,
                headers: endpoint.headers(false, headers),
                credential: endpoint.credential(),
                body: call::passthrough_body(
                    Dialect::OpenAiChat,
                    &variant.body,
                    &alias.model,
                    false,
                )?,
                price: alias.price,
                retries: alias.retries,
            });
        }
        let dialect = endpoint.dialect(call.ingress);
        let body = if dialect == call.ingress {
            call::passthrough_body(dialect, &variant.body, &alias.model, call.stream)?
        } else {
            let Some(request) = variant.request(call.ingress) else {
                // Parse again for the error message.
                return Err(call
                    .ingress
                    .parse_request(&variant.body)
                    .err()
                    .unwrap_or_else(|| crate::TranslateError::invalid("unreadable request")));
            };
            let mut request = request.clone();
            request.model = alias.model.clone();
            dialect.render_request(&request)?
        };
        Ok(Attempt {
            alias: alias.alias.clone(),
            provider: endpoint.name.clone(),
            model: alias.model.clone(),
            dialect,
            method: "POST",
            url: endpoint.url(dialect, &alias.model, call.stream),
            headers: endpoint.headers(call.stream, headers),
            credential: endpoint.credential(),
            body,
            price: alias.price,
            retries: alias.retries,
        })
    }
}

/// The `cache-control` directives the cache follows.
#[derive(Debug, Default)]
struct CacheControl {
    no_store: bool,
    no_cache: bool,
}

fn cache_control(headers: &[(String, String)]) -> CacheControl {
    let mut directives = CacheControl::default();
    for (_, value) in headers.iter().filter(|(name, _)| name == "cache-control") {
        for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
            match directive.as_str() {
                "no-store" => directives.no_store = true,
                "no-cache" => directives.no_cache = true,
                _ => {}
            }
        }
    }
    directives
}

/// What identifies a cacheable request: its endpoint (the client's dialect,
/// embeddings, or prompt) and the alias its rules chose (or the prompt),
/// its tenant (answers are not shared between tenants), and its body with
/// object keys sorted and whitespace dropped; SHA-256 in hex.
fn cache_digest(scope: [&str; 2], caller: &Caller, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in scope {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(caller.tenant.as_deref().unwrap_or("~").as_bytes());
    hasher.update([0]);
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => write_sorted(&value, &mut hasher),
        Err(_) => hasher.update(body),
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `value` as compact JSON with object keys in sorted order.
fn write_sorted(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"{");
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                write_sorted(value, hasher);
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                write_sorted(item, hasher);
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_aliases_in_openai_shape() {
        let config = Config::parse(
            "ai: {models: [{alias: chat-default, provider: anthropic, model: claude-x},\
                           {alias: embed, provider: openai, model: text-embedding-3-small}]}",
        )
        .unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&Catalog::new(&config).list_models()).unwrap();
        assert_eq!(body["object"], "list");
        assert_eq!(body["data"][0]["id"], "chat-default");
        assert_eq!(body["data"][0]["object"], "model");
        assert_eq!(body["data"][0]["owned_by"], "anthropic");
        assert_eq!(body["data"][1]["id"], "embed");
    }

    #[test]
    fn endpoints_are_named_by_their_last_segments() {
        assert_eq!(endpoint("GET", "/v1/models"), Some(ApiEndpoint::Models));
        assert_eq!(
            endpoint("POST", "/v1/chat/completions"),
            Some(ApiEndpoint::Chat(Dialect::OpenAiChat))
        );
        assert_eq!(
            endpoint("POST", "/ai/v1/messages"),
            Some(ApiEndpoint::Chat(Dialect::Anthropic))
        );
        assert_eq!(
            endpoint("POST", "/v1/responses"),
            Some(ApiEndpoint::Chat(Dialect::OpenAiResponses))
        );
        assert_eq!(
            endpoint("POST", "/v1/embeddings"),
            Some(ApiEndpoint::Embeddings)
        );
        assert_eq!(endpoint("GET", "/v1/chat/completions"), None);
        assert_eq!(endpoint("POST", "/v1/completions"), None);
    }
}
