//! Request translation rules beyond the conformance fixtures.

use serde_json::{Value, json};
use upshift_ai::dialect::anthropic::{DEFAULT_MAX_TOKENS, JSON_TOOL};
use upshift_ai::{Dialect, TranslateError, translate_request};

fn translate(from: Dialect, to: Dialect, body: Value) -> Result<Value, TranslateError> {
    let out = translate_request(from, to, body.to_string().as_bytes())?;
    Ok(serde_json::from_slice(&out).unwrap())
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

#[test]
fn anthropic_gets_a_default_max_tokens_and_legacy_fields_are_read() {
    let out = translate(
        Dialect::OpenAiChat,
        Dialect::Anthropic,
        chat(json!({"stop": "END"})),
    )
    .unwrap();
    assert_eq!(out["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(out["stop_sequences"], json!(["END"]));
    let out = translate(
        Dialect::OpenAiChat,
        Dialect::OpenAiChat,
        chat(json!({"max_tokens": 99})),
    )
    .unwrap();
    assert_eq!(out["max_completion_tokens"], 99);
}

#[test]
fn a_derived_thinking_budget_fits_under_max_tokens() {
    let body = chat(json!({"reasoning_effort": "high", "max_completion_tokens": 3000}));
    let out = translate(Dialect::OpenAiChat, Dialect::Anthropic, body).unwrap();
    assert_eq!(
        out["thinking"],
        json!({"type": "enabled", "budget_tokens": 2999})
    );
}

#[test]
fn unsigned_reasoning_is_not_sent_to_anthropic() {
    let body = chat(json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "reasoning_content": "the user greets me"},
        {"role": "user", "content": "how are you?"}]}));
    let out = translate(Dialect::OpenAiChat, Dialect::Anthropic, body).unwrap();
    assert_eq!(out["messages"][1]["content"], "hello");
}

#[test]
fn json_object_mode_adds_the_json_tool_without_forcing_it_over_other_tools() {
    let tool =
        json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}});
    let body = chat(json!({"response_format": {"type": "json_object"}, "tools": [tool]}));
    let out = translate(Dialect::OpenAiChat, Dialect::Anthropic, body).unwrap();
    assert_eq!(out["tools"][1]["name"], JSON_TOOL);
    assert_eq!(out["tools"][1]["input_schema"], json!({"type": "object"}));
    assert!(out.get("tool_choice").is_none());
}

#[test]
fn consecutive_tool_messages_merge_and_tool_result_images_follow_for_chat() {
    let body = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": [
            {"type": "text", "text": "captured"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}]});
    let out = translate(Dialect::Anthropic, Dialect::OpenAiChat, body).unwrap();
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "t1", "content": "captured"})
    );
    assert_eq!(
        messages[3]["content"][0]["image_url"]["url"],
        "data:image/png;base64,AAAA"
    );
}

#[test]
fn gemini_needs_the_call_a_result_answers() {
    let body = json!({"model": "m", "messages": [
        {"role": "tool", "tool_call_id": "nowhere", "content": "42"}]});
    let error = translate(Dialect::OpenAiChat, Dialect::Gemini, body).unwrap_err();
    assert!(error.to_string().contains("nowhere"), "{error}");
}

#[test]
fn what_cannot_be_translated_is_refused_not_dropped() {
    let refused = [
        (Dialect::OpenAiChat, chat(json!({"n": 2}))),
        (
            Dialect::OpenAiChat,
            chat(json!({"messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]})),
        ),
        (
            Dialect::Anthropic,
            json!({"model": "m", "max_tokens": 1, "messages": [],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        ),
        (
            Dialect::Anthropic,
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}]}),
        ),
        (
            Dialect::OpenAiResponses,
            json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}),
        ),
        (
            Dialect::Gemini,
            json!({"contents": [], "tools": [{"googleSearch": {}}]}),
        ),
    ];
    for (dialect, body) in refused {
        let error = translate(dialect, Dialect::OpenAiChat, body.clone()).unwrap_err();
        assert!(
            matches!(error, TranslateError::Unsupported(_)),
            "{body}: {error}"
        );
    }
}

#[test]
fn malformed_bodies_are_json_errors() {
    let error =
        translate_request(Dialect::OpenAiChat, Dialect::Anthropic, b"{\"model\":").unwrap_err();
    assert!(matches!(error, TranslateError::Json(_)));
    let (status, body) = error.to_api_error().render(Dialect::Anthropic);
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let error = translate(
        Dialect::Anthropic,
        Dialect::OpenAiChat,
        json!({"model": "m", "messages": []}),
    )
    .unwrap_err();
    assert!(error.to_string().contains("max_tokens"), "{error}");
}

#[test]
fn gemini_schemas_are_sanitized_for_tools() {
    let tool = json!({"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "additionalProperties": false, "$schema": "x",
        "properties": {"a": {"type": ["string", "null"]}}}}});
    let out = translate(
        Dialect::OpenAiChat,
        Dialect::Gemini,
        chat(json!({"tools": [tool]})),
    )
    .unwrap();
    assert_eq!(
        out["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({"type": "OBJECT", "properties": {"a": {"type": "STRING", "nullable": true}}})
    );
}

#[test]
fn streams_to_openai_upstreams_always_ask_for_usage() {
    let body = json!({"model": "m", "max_tokens": 10, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let out = translate(Dialect::Anthropic, Dialect::OpenAiChat, body).unwrap();
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    let out = translate(
        Dialect::OpenAiChat,
        Dialect::OpenAiChat,
        chat(json!({"stream": true})),
    )
    .unwrap();
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
}
