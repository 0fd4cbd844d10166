//! JSON Schema ↔ the OpenAPI subset Gemini accepts in `parameters` and
//! `responseSchema`.
//!
//! Towards Gemini: local `$ref`s are inlined (to a bounded depth), type
//! names are upper-cased, `["T", "null"]` and `anyOf` with `{"type":
//! "null"}` become `nullable`, `const` becomes a one-value `enum`, `oneOf`
//! becomes `anyOf`, and keywords Gemini rejects (`additionalProperties`,
//! `$schema`, `$defs`, `strict`, …) are dropped. Back from Gemini: type
//! names are lower-cased and `nullable` becomes a `"null"` type.

use serde_json::{Map, Value, json};

/// Keywords Gemini's schema accepts.
const ALLOWED: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// How deep `$ref`s are inlined; a recursive schema is cut off below.
const MAX_REF_DEPTH: usize = 8;

/// Converts a JSON Schema to Gemini's subset.
pub fn to_gemini(schema: &Value) -> Value {
    convert(schema, schema, 0)
}

fn convert(node: &Value, root: &Value, depth: usize) -> Value {
    let Value::Object(map) = node else {
        return node.clone();
    };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        return match resolve(root, reference) {
            Some(target) if depth < MAX_REF_DEPTH => convert(target, root, depth + 1),
            _ => json!({"type": "OBJECT"}),
        };
    }
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "type" => match value {
                Value::String(name) => {
                    out.insert("type".into(), Value::String(name.to_uppercase()));
                }
                Value::Array(names) => {
                    let mut types = names.iter().filter_map(Value::as_str);
                    if let Some(name) = types.clone().find(|t| *t != "null") {
                        out.insert("type".into(), Value::String(name.to_uppercase()));
                    }
                    if types.any(|t| t == "null") {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                }
                _ => {}
            },
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            "properties" => {
                if let Value::Object(properties) = value {
                    let properties = properties
                        .iter()
                        .map(|(name, schema)| (name.clone(), convert(schema, root, depth)))
                        .collect();
                    out.insert("properties".into(), Value::Object(properties));
                }
            }
            "items" => {
                out.insert("items".into(), convert(value, root, depth));
            }
            "anyOf" | "oneOf" => {
                let Value::Array(variants) = value else {
                    continue;
                };
                let is_null = |v: &&Value| v.get("type").and_then(Value::as_str) == Some("null");
                if variants.iter().any(|v| is_null(&v)) {
                    out.insert("nullable".into(), Value::Bool(true));
                }
                let variants: Vec<Value> = variants
                    .iter()
                    .filter(|v| !is_null(v))
                    .map(|v| convert(v, root, depth))
                    .collect();
                match <[Value; 1]>::try_from(variants) {
                    Ok([Value::Object(only)]) => out.extend(only),
                    Ok([other]) => {
                        out.insert("anyOf".into(), Value::Array(vec![other]));
                    }
                    Err(variants) => {
                        out.insert("anyOf".into(), Value::Array(variants));
                    }
                }
            }
            key if ALLOWED.contains(&key) => {
                out.insert(key.to_owned(), value.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// Resolves a local reference (`#/$defs/Name`, `#/definitions/Name`).
fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    root.pointer(reference.strip_prefix('#')?)
}

/// Converts a Gemini schema to JSON Schema.
pub fn from_gemini(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let nullable = map.get("nullable") == Some(&Value::Bool(true));
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "nullable" => {}
            "type" => {
                let name = Value::String(value.as_str().unwrap_or("object").to_lowercase());
                let value = if nullable {
                    Value::Array(vec![name, Value::String("null".into())])
                } else {
                    name
                };
                out.insert("type".into(), value);
            }
            "properties" => {
                if let Value::Object(properties) = value {
                    let properties = properties
                        .iter()
                        .map(|(name, schema)| (name.clone(), from_gemini(schema)))
                        .collect();
                    out.insert("properties".into(), Value::Object(properties));
                }
            }
            "items" => {
                out.insert("items".into(), from_gemini(value));
            }
            "anyOf" => {
                let variants = value.as_array().map_or(&[][..], Vec::as_slice);
                out.insert(
                    "anyOf".into(),
                    Value::Array(variants.iter().map(from_gemini).collect()),
                );
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_json_schema_for_gemini() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "City"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                "kind": {"const": "weather"},
                "place": {"$ref": "#/$defs/Place"},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}
            },
            "required": ["city"],
            "$defs": {"Place": {"type": "object", "properties": {"lat": {"type": "number"}}}}
        });
        assert_eq!(
            to_gemini(&schema),
            json!({
                "type": "OBJECT",
                "properties": {
                    "city": {"type": "STRING", "description": "City"},
                    "unit": {"type": "STRING", "nullable": true, "enum": ["c", "f"]},
                    "kind": {"enum": ["weather"]},
                    "place": {"type": "OBJECT", "properties": {"lat": {"type": "NUMBER"}}},
                    "note": {"type": "STRING", "nullable": true}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn recursive_references_are_cut_off() {
        let schema = json!({"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
                            "$ref": "#/$defs/Node"});
        let converted = to_gemini(&schema).to_string();
        assert!(converted.matches("OBJECT").count() > MAX_REF_DEPTH);
    }

    #[test]
    fn gemini_schemas_read_back_as_json_schema() {
        let gemini = json!({"type": "OBJECT", "properties": {"unit": {"type": "STRING", "nullable": true}},
                            "required": ["unit"]});
        assert_eq!(
            from_gemini(&gemini),
            json!({"type": "object", "properties": {"unit": {"type": ["string", "null"]}},
                   "required": ["unit"]})
        );
    }
}
