//! Stream translation beyond the conformance fixtures: broken, lenient and
//! unusual upstreams.

use serde_json::{Value, json};
use upshift_ai::ir::{StopReason, Usage};
use upshift_ai::{Dialect, ErrorKind, StreamOptions, StreamTranslator, sse};

const OPTIONS: StreamOptions = StreamOptions {
    include_usage: true,
    created: 1_700_000_000,
};

/// Translates `upstream` (SSE text) and returns the downstream events.
fn translate(
    from: Dialect,
    to: Dialect,
    options: StreamOptions,
    upstream: &str,
) -> Vec<sse::Event> {
    let (events, _) = translate_with(from, to, options, upstream);
    events
}

fn translate_with(
    from: Dialect,
    to: Dialect,
    options: StreamOptions,
    upstream: &str,
) -> (Vec<sse::Event>, StreamTranslator) {
    let mut translator = StreamTranslator::new(from, to, options);
    let mut bytes = Vec::new();
    translator.push(upstream.as_bytes(), &mut bytes);
    translator.finish(&mut bytes);
    let mut parser = sse::Parser::new();
    let mut events = Vec::new();
    parser.push(&bytes, &mut events);
    parser.finish(&mut events);
    (events, translator)
}

fn openai_chunks(chunks: &[Value]) -> String {
    chunks.iter().map(|c| format!("data: {c}\n\n")).collect()
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn names(events: &[sse::Event]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.event.as_deref().unwrap_or("data"))
        .collect()
}

fn data(event: &sse::Event) -> Value {
    serde_json::from_str(&event.data).unwrap()
}

#[test]
fn a_cut_off_upstream_ends_with_an_error_event() {
    let upstream = openai_chunks(&[chunk(json!({"role": "assistant", "content": "Hel"}), None)]);
    let (events, translator) =
        translate_with(Dialect::OpenAiChat, Dialect::Anthropic, OPTIONS, &upstream);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(data(&events[3])["error"]["type"], "api_error");
    assert_eq!(translator.error().unwrap().kind, ErrorKind::Server);
    assert!(translator.is_done());
}

#[test]
fn a_finish_reason_without_done_still_completes() {
    let upstream = openai_chunks(&[
        chunk(json!({"role": "assistant", "content": "Hi"}), None),
        chunk(json!({}), Some("stop")),
    ]);
    let events = translate(Dialect::OpenAiChat, Dialect::Anthropic, OPTIONS, &upstream);
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    let delta = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .unwrap();
    assert_eq!(data(delta)["delta"]["stop_reason"], "end_turn");
}

#[test]
fn malformed_upstream_json_becomes_an_error_event() {
    let upstream = "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\n";
    let events = translate(Dialect::OpenAiChat, Dialect::OpenAiChat, OPTIONS, upstream);
    let last = data(events.last().unwrap());
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream stream")
    );
    assert!(events.iter().all(|e| e.data != "[DONE]"));
}

#[test]
fn a_tool_fragment_after_a_later_block_began_is_an_error_not_a_panic() {
    let call = |index: u32, id: Option<&str>, arguments: &str| {
        let mut call = json!({"index": index, "function": {"arguments": arguments}});
        if let Some(id) = id {
            call["id"] = json!(id);
            call["function"]["name"] = json!("f");
        }
        chunk(json!({"tool_calls": [call]}), None)
    };
    let upstream = openai_chunks(&[
        call(0, Some("a"), "{\"x\":"),
        call(1, Some("b"), "{}"),
        call(0, None, "1}"),
    ]);
    let events = translate(Dialect::OpenAiChat, Dialect::Anthropic, OPTIONS, &upstream);
    assert_eq!(names(&events).last(), Some(&"error"));
}

#[test]
fn a_usage_chunk_with_null_choices_is_read() {
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": null, "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}});
    let upstream = openai_chunks(&[
        chunk(json!({"role": "assistant", "content": "Hi"}), None),
        chunk(json!({}), Some("stop")),
        usage,
    ]) + "data: [DONE]\n\n";
    let (_, translator) =
        translate_with(Dialect::OpenAiChat, Dialect::Anthropic, OPTIONS, &upstream);
    assert_eq!(
        translator.usage(),
        Usage {
            input_tokens: 7,
            output_tokens: 3,
            ..Usage::default()
        }
    );
    assert_eq!(translator.stop_reason(), Some(StopReason::EndTurn));
}

#[test]
fn no_usage_chunk_unless_the_client_asked() {
    let upstream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
                    event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n\
                    event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let options = StreamOptions {
        include_usage: false,
        ..OPTIONS
    };
    let events = translate(Dialect::Anthropic, Dialect::OpenAiChat, options, upstream);
    assert_eq!(events.len(), 3, "role chunk, finish chunk, [DONE]");
    assert!(events.iter().all(|e| !e.data.contains("\"usage\"")));
    let (_, translator) =
        translate_with(Dialect::Anthropic, Dialect::OpenAiChat, options, upstream);
    assert_eq!(translator.usage().input_tokens, 5);
    assert_eq!(
        translator.usage().output_tokens,
        9,
        "message_delta counts are cumulative"
    );
}

#[test]
fn text_after_a_tool_call_keeps_streaming_as_content() {
    let upstream = [
        r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"done"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":4}}"#,
        r#"{"type":"message_stop"}"#,
    ]
    .iter()
    .map(|d| format!("data: {d}\n\n"))
    .collect::<String>();
    let events = translate(Dialect::Anthropic, Dialect::OpenAiChat, OPTIONS, &upstream);
    let deltas: Vec<Value> = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| data(e)["choices"][0]["delta"].clone())
        .collect();
    assert_eq!(deltas[1]["tool_calls"][0]["id"], "t1");
    assert_eq!(deltas[3]["content"], "done");
}

#[test]
fn byte_by_byte_equals_all_at_once() {
    let upstream = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/ai-conformance/anthropic/thinking/anthropic.stream.sse"
    ))
    .unwrap()
    .replace('\n', "\r\n");
    let whole = {
        let mut translator = StreamTranslator::new(Dialect::Anthropic, Dialect::Gemini, OPTIONS);
        let mut out = Vec::new();
        translator.push(upstream.as_bytes(), &mut out);
        translator.finish(&mut out);
        out
    };
    let mut translator = StreamTranslator::new(Dialect::Anthropic, Dialect::Gemini, OPTIONS);
    let mut pieces = Vec::new();
    for byte in upstream.as_bytes() {
        translator.push(std::slice::from_ref(byte), &mut pieces);
    }
    translator.finish(&mut pieces);
    assert!(!whole.is_empty());
    assert_eq!(
        String::from_utf8(pieces).unwrap(),
        String::from_utf8(whole).unwrap()
    );
}

#[test]
fn responses_error_events_reach_chat_clients() {
    let upstream = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":1,\"response\":{\"id\":\"r\",\"created_at\":5,\"model\":\"m\"}}\n\n\
                    event: error\ndata: {\"type\":\"error\",\"sequence_number\":2,\"code\":\"rate_limit_exceeded\",\"message\":\"Slow down\",\"param\":null}\n\n";
    let events = translate(
        Dialect::OpenAiResponses,
        Dialect::OpenAiChat,
        OPTIONS,
        upstream,
    );
    let error = data(events.last().unwrap());
    assert_eq!(error["error"]["message"], "Slow down");
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
}

#[test]
fn output_tokens_can_be_estimated_when_usage_is_missing() {
    let upstream = openai_chunks(&[
        chunk(json!({"role": "assistant", "content": "abcdefgh"}), None),
        chunk(json!({}), Some("stop")),
    ]) + "data: [DONE]\n\n";
    let (_, translator) = translate_with(Dialect::OpenAiChat, Dialect::Gemini, OPTIONS, &upstream);
    assert_eq!(translator.usage(), Usage::default());
    assert_eq!(translator.estimated_output_tokens(), 2);
}
