//! The provider requests of a call, and the client's body as it passes
//! through to a provider of its own dialect.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use upshift_model::{ModelRetries, Price};

use crate::Dialect;
use crate::errors::TranslateError;
use crate::provider::Credential;

/// One provider request of a call.
#[derive(Debug, Clone)]
pub struct ProviderRequest {
    /// The alias this attempt serves (a fallback's own, for a fallback).
    pub alias: String,
    /// The provider's name.
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    /// The provider's dialect.
    pub dialect: Dialect,
    /// Always `POST`.
    pub method: &'static str,
    /// The whole URL.
    pub url: String,
    /// Request headers without the key.
    pub headers: Vec<(String, String)>,
    /// Where the key goes, if the provider takes one.
    pub credential: Option<Credential>,
    /// The body in the provider's dialect.
    pub body: Vec<u8>,
    /// The model's price, for the cost counter.
    pub price: Option<Price>,
    /// Tries of this attempt again before the next one, and the first
    /// pause between tries (doubling), in milliseconds.
    pub retries: Option<ModelRetries>,
}

impl ProviderRequest {
    /// Whether the body passed through untranslated.
    pub fn passthrough(&self, ingress: Dialect) -> bool {
        self.dialect == ingress
    }
}

/// The client's body for a provider of the same dialect: `model` replaced,
/// and a streamed OpenAI Chat request asks for the usage chunk.
pub(crate) fn passthrough_body(
    dialect: Dialect,
    body: &[u8],
    model: &str,
    stream: bool,
) -> Result<Vec<u8>, TranslateError> {
    let mut fields: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body)
        .map_err(|e| TranslateError::invalid(format!("the body is not a JSON object: {e}")))?;
    let json = |value: serde_json::Value| {
        serde_json::value::to_raw_value(&value).expect("JSON values serialize")
    };
    if dialect != Dialect::Gemini {
        fields.insert("model".to_owned(), json(model.into()));
    }
    if dialect == Dialect::OpenAiChat && stream {
        fields.insert(
            "stream_options".to_owned(),
            json(serde_json::json!({"include_usage": true})),
        );
    }
    Ok(serde_json::to_vec(&fields).expect("JSON values serialize"))
}
