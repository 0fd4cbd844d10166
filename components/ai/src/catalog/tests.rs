//! The catalog's model list and endpoint names.

use super::*;
use crate::Dialect;

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
