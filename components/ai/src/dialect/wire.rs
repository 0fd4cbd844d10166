//! Serde helpers shared by the dialects' wire types.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::errors::TranslateError;
use crate::ir::{CacheControl, Json};

/// A field that is either a plain string or a list (OpenAI `content`,
/// Anthropic `system`, OpenAI `stop`).
///
/// Deserialized without buffering, so [`RawValue`]s inside the list keep
/// working (serde's untagged enums cannot hold them).
#[derive(Debug, Clone)]
pub enum TextOr<T> {
    /// The string form.
    Text(String),
    /// The list form.
    Items(Vec<T>),
}

impl<T> Default for TextOr<T> {
    fn default() -> Self {
        TextOr::Items(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TextOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = TextOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(s))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TextOr::Items(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(TextOr::Items(items))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

impl<T: Serialize> Serialize for TextOr<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TextOr::Text(text) => serializer.serialize_str(text),
            TextOr::Items(items) => items.serialize(serializer),
        }
    }
}

/// Anthropic's `cache_control`, also accepted on OpenAI content parts (the
/// LiteLLM convention) so OpenAI clients can place cache breakpoints.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct WireCacheControl {
    /// Always `ephemeral`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `5m` or `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

impl From<WireCacheControl> for CacheControl {
    fn from(wire: WireCacheControl) -> Self {
        CacheControl { ttl: wire.ttl }
    }
}

impl From<&CacheControl> for WireCacheControl {
    fn from(cache: &CacheControl) -> Self {
        WireCacheControl {
            kind: "ephemeral".to_owned(),
            ttl: cache.ttl.clone(),
        }
    }
}

/// Renders an optional IR cache breakpoint.
pub fn cache_out(cache: &Option<CacheControl>) -> Option<WireCacheControl> {
    cache.as_ref().map(WireCacheControl::from)
}

/// Validates JSON text (a tool call's `arguments` string) and keeps it
/// verbatim. An empty string, which some providers send for tools without
/// parameters, stands for `{}`.
pub fn json_text(text: String) -> Result<Json, TranslateError> {
    if text.trim().is_empty() {
        return Ok(empty_object());
    }
    RawValue::from_string(text)
        .map_err(|e| TranslateError::invalid(format!("tool arguments are not JSON: {e}")))
}

/// `{}`.
pub fn empty_object() -> Json {
    RawValue::from_string("{}".to_owned()).expect("{} is JSON")
}

/// Serializes `value` as kept-verbatim JSON text.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Json {
    serde_json::value::to_raw_value(value).expect("JSON values serialize")
}

/// Splits a `data:<media type>;base64,<data>` URL.
pub fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

/// Serializes a wire value to bytes.
pub fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    serde_json::to_writer(&mut out, value).expect("wire types serialize");
    out
}

/// Serializes a wire value to a string (an SSE `data` payload).
pub fn to_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("wire types serialize")
}

/// `skip_serializing_if` for flags that default to false.
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// `skip_serializing_if` for counts that default to zero.
pub fn is_zero(n: &u64) -> bool {
    *n == 0
}
