//! Prompt templates: `POST …/prompts/{name}` filled in with the request's
//! variables, one variant per version.

use std::cell::OnceCell;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use upshift_model::PromptMessage;
use upshift_model::ai as config_ai;

use super::endpoints::prompt_name;
use super::plan::{CallShape, Draft, refusal};
use super::{Catalog, Incoming, Resolution};
use crate::Dialect;
use crate::best_effort::BestEffort;
use crate::call::{Caller, HeadStreamOptions};
use crate::errors::ErrorKind;

/// A prompt template, compiled.
#[derive(Debug)]
pub(super) struct PromptTemplate {
    pub(super) name: String,
    pub(super) versions: Vec<TemplateVersion>,
}

/// One version of a prompt template.
#[derive(Debug)]
pub(super) struct TemplateVersion {
    pub(super) name: String,
    /// Index into [`Catalog::aliases`].
    pub(super) alias: usize,
    pub(super) messages: Vec<PromptMessage>,
    pub(super) max_tokens: Option<u32>,
    pub(super) temperature: Option<f64>,
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

impl Catalog {
    /// Plans `POST …/prompts/{name}`: each version's messages filled in
    /// with the request's `variables`, as an OpenAI chat completion of the
    /// version's model; the splitter service `prompt:{name}` picks the
    /// version.
    pub(super) fn plan_prompt(
        &self,
        request: &Incoming<'_>,
        caller: Caller,
        store: &BestEffort<'_>,
    ) -> Resolution {
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
        let setup = CallShape {
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
        version: &TemplateVersion,
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
}
