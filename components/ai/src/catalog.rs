//! Model aliases and the OpenAI `GET /v1/models` listing.

use serde::Serialize;
use upshift_config::Config;

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

/// The model aliases of one config version.
#[derive(Debug, Default)]
pub struct Catalog {
    /// `(alias, provider)` in document order.
    models: Vec<(String, String)>,
}

impl Catalog {
    /// Compiles the `ai` section of `config`.
    pub fn new(config: &Config) -> Self {
        let models = config
            .ai
            .iter()
            .flat_map(|ai| &ai.models)
            .map(|m| (m.alias.clone(), m.provider.clone()))
            .collect();
        Catalog { models }
    }

    /// The JSON body of OpenAI's `GET /v1/models`, one entry per alias.
    pub fn list_models(&self) -> String {
        let list = List {
            object: "list",
            data: self
                .models
                .iter()
                .map(|(alias, provider)| Model {
                    id: alias,
                    object: "model",
                    created: 0,
                    owned_by: provider,
                })
                .collect(),
        };
        serde_json::to_string(&list).expect("model list serializes")
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
}
