//! What a request resolves to: the alias its routing rules choose, and
//! the provider attempts of each variant (the model, then its fallbacks),
//! or an answer at once.

use std::cell::{Cell, OnceCell};

use upshift_model::ai as config_ai;

use super::endpoints::{ApiEndpoint, endpoint, error_dialect};
use super::{Catalog, Incoming, Resolution};
use crate::Dialect;
use upshift_model::store::Store;

use crate::best_effort::BestEffort;
use crate::call::{self, Call, Caller, Head, ProviderRequest, Reply, Variant};
use crate::errors::{ApiError, ErrorKind};
use crate::usage;

/// What a call's variant is made of, before its attempts are planned.
pub(super) struct Draft {
    pub(super) version: String,
    pub(super) body: Vec<u8>,
    pub(super) ir: OnceCell<Option<crate::ir::Request>>,
    /// Index into [`Catalog::aliases`] of the model that answers.
    pub(super) alias: usize,
}

/// What every variant of a call shares.
pub(super) struct CallShape<'a> {
    pub(super) ingress: Dialect,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
    pub(super) embeddings: bool,
    pub(super) split: Option<String>,
    /// What the cache key is made of besides the body: the endpoint and
    /// the alias (or prompt) asked for.
    pub(super) cache_scope: [&'a str; 2],
}

/// A routing rule of an alias, compiled.
#[derive(Debug)]
pub(super) struct Rule {
    pub(super) consumers: Vec<String>,
    pub(super) tenants: Vec<String>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) min_prompt_tokens: Option<u64>,
    /// Index into [`Catalog::aliases`].
    pub(super) target: usize,
}

impl Rule {
    pub(super) fn matches(
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

/// An error answer in `dialect`.
pub(super) fn refusal(
    dialect: Dialect,
    kind: ErrorKind,
    code: &str,
    message: String,
    param: Option<&str>,
) -> Resolution {
    Resolution::Reply(Reply::error(
        dialect,
        &ApiError {
            kind,
            message,
            code: Some(code.to_owned()),
            param: param.map(str::to_owned),
        },
    ))
}

impl Catalog {
    /// Plans `request` for `caller`: the model list, a call of the alias's
    /// model and its fallbacks, or an answer at once: an error in the
    /// client's dialect (a budget used up among them) or a cached answer.
    pub fn plan(&self, request: &Incoming<'_>, caller: Caller, store: &dyn Store) -> Resolution {
        let store = &BestEffort(store);
        let api = endpoint(request.method, request.path);
        let embeddings = api == Some(ApiEndpoint::Embeddings);
        let ingress = match api {
            Some(ApiEndpoint::Models) => {
                return Resolution::Reply(Reply::json(200, self.list_models().into_bytes()));
            }
            Some(ApiEndpoint::Chat(dialect)) => dialect,
            Some(ApiEndpoint::Embeddings) => Dialect::OpenAiChat,
            Some(ApiEndpoint::Prompt) => return self.plan_prompt(request, caller, store),
            None => {
                return Resolution::Reply(Reply::error(
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
        let setup = CallShape {
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

    /// The call of `drafts` (the variants a split picks from; one without):
    /// refused when a budget is used up, answered from the cache when it
    /// holds the answer, else each variant's model and its fallbacks.
    pub(super) fn call(
        &self,
        setup: &CallShape<'_>,
        drafts: Vec<Draft>,
        request: &Incoming<'_>,
        caller: Caller,
        store: &BestEffort<'_>,
    ) -> Resolution {
        let ingress = setup.ingress;
        let budgets = match self.budget_keys(ingress, &caller, request.now_ms, store) {
            Ok(found) => found,
            Err(reply) => return Resolution::Reply(reply),
        };
        let (cache, cache_status) = match self.cached(setup, request, &caller, store) {
            Ok(slot) => slot,
            Err(reply) => return Resolution::Reply(reply),
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
                        return Resolution::Reply(Reply::error(ingress, &error.to_api_error()));
                    }
                    Err(_) => {}
                }
            }
            if !variant.attempts.is_empty() {
                call.variants.push(variant);
            }
        }
        Resolution::Call(Box::new(call))
    }

    fn attempt(
        &self,
        call: &Call,
        variant: &Variant,
        index: usize,
        headers: &[(String, String)],
    ) -> Result<ProviderRequest, crate::TranslateError> {
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
            return Ok(ProviderRequest {
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
        Ok(ProviderRequest {
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
