//! The AI API of one config version: model aliases, their providers and
//! fallbacks; the OpenAI `GET /v1/models` listing, and the plan of each
//! call.
//!
//! The [`Catalog`] is compiled here; what a request resolves to is worked
//! out in [`plan`] (routing rules, provider attempts), [`prompts`] (prompt
//! templates), [`budgets`] (token budgets) and [`cache`] (cached answers).

mod budgets;
mod cache;
mod endpoints;
mod plan;
mod prompts;

#[cfg(test)]
mod tests;

use serde::Serialize;
use upshift_model::{Config, ModelRetries, Price};

use crate::call::{Call, Reply};
use crate::provider::Endpoint;

use budgets::{Scope, TokenBudget};
pub use endpoints::{ApiEndpoint, endpoint, error_dialect};
use plan::Rule;
use prompts::{PromptTemplate, TemplateVersion};

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

/// The model aliases of one config version.
#[derive(Debug, Default)]
pub struct Catalog {
    /// In document order.
    aliases: Vec<Alias>,
    endpoints: Vec<Endpoint>,
    budgets: Vec<TokenBudget>,
    /// Cache lifetime in milliseconds; no cache when absent.
    cache_ttl_ms: Option<u64>,
    prompts: Vec<PromptTemplate>,
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

/// What a request resolves to: an answer at once, or a call of providers.
#[derive(Debug)]
pub enum Resolution {
    /// Answer at once.
    Reply(Reply),
    /// Call providers.
    Call(Box<Call>),
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
            .map(|prompt| PromptTemplate {
                name: prompt.name.clone(),
                versions: prompt
                    .versions
                    .iter()
                    .filter_map(|v| {
                        Some(TemplateVersion {
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
                Some(TokenBudget {
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
}
