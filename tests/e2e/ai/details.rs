//! What single cells of the [matrix](super::matrix) show beyond what every
//! cell does: an OpenAI Chat request translated for Anthropic field by
//! field and its answer and stream translated back chunk by chunk, and an
//! OpenAI Chat request and answer passed to and from OpenAI as they are.

use serde_json::{Value, json};

use super::chunks_of;
use super::dialects::Dialect;
use super::families::Family;
use super::matrix::{Case, Cell, USAGE};

/// Adds what a cell's request carries besides the common question.
pub fn adjust(cell: &Cell, request: &mut Value) {
    if passed_through(cell) && cell.case == Case::Tools {
        // Fields the gateway does not read.
        request["logprobs"] = json!(false);
        request["n"] = json!(1);
    }
}

/// Whether the cell is an OpenAI Chat client of OpenAI itself.
fn passed_through(cell: &Cell) -> bool {
    cell.dialect == Dialect::Chat && cell.family == Family::OpenAi
}

/// Whether the cell is an OpenAI Chat client of Anthropic.
fn chat_to_anthropic(cell: &Cell) -> bool {
    cell.dialect == Dialect::Chat && cell.family == Family::Anthropic
}

/// A whole text answer.
pub fn whole(cell: &Cell, request: &Value, body: &Value) {
    if chat_to_anthropic(cell) {
        // The answer, as OpenAI documents it.
        assert_eq!(body["id"], "msg_fake1");
        assert_eq!(body["object"], "chat.completion");
        assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
        assert_eq!(body["model"], "claude-sonnet-4-5");
        assert_eq!(body["choices"][0]["index"], 0);
        assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    }
    if passed_through(cell) {
        assert_passed_through(cell, request, body);
    }
}

/// A whole answer with a tool call.
pub fn tools(cell: &Cell, request: &Value, body: &Value) {
    let sent = &cell.provider.received()[0];
    if chat_to_anthropic(cell) {
        // The request, as Anthropic documents it.
        assert_eq!(
            sent.body,
            json!({
                "model": "claude-sonnet-4-5",
                "system": "You are terse.",
                "messages": [{"role": "user", "content": "Weather in Paris?"}],
                "tools": [{"name": "get_weather", "description": "Current weather",
                           "input_schema": {"type": "object",
                                            "properties": {"city": {"type": "string"}},
                                            "required": ["city"]}}],
                "tool_choice": {"type": "auto"},
                "max_tokens": 256,
                "temperature": 0.2
            })
        );
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(
            choice["message"]["tool_calls"],
            json!([{"id": "toolu_01", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
        );
        assert_eq!(body["usage"]["total_tokens"], USAGE.0 + USAGE.1);
    }
    if passed_through(cell) {
        assert_passed_through(cell, request, body);
        assert_eq!(
            body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\": \"Paris\"}"
        );
    }
    if cell.dialect == Dialect::Messages && cell.family == Family::OpenAi {
        assert_eq!(body["type"], "message");
        assert_eq!(body["role"], "assistant");
        assert_eq!(
            body["content"],
            json!([{"type": "text", "text": "Checking."},
                   {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                    "input": {"city": "Paris"}}])
        );
    }
}

/// Only the model changes on the way to OpenAI, unknown fields pass, and
/// the answer comes back as it is.
fn assert_passed_through(cell: &Cell, request: &Value, body: &Value) {
    let sent = &cell.provider.received()[0];
    let mut expected = request.clone();
    expected["model"] = json!(cell.family.model());
    assert_eq!(
        sent.body, expected,
        "only the model changes, unknown fields pass"
    );
    assert_eq!(body["id"], "chatcmpl-fake1");
    assert_eq!(
        body["system_fingerprint"], "fp_fake",
        "the answer passes as it is"
    );
}

/// A streamed text answer (the client asked for usage).
pub fn stream(cell: &Cell, stream: &str) {
    if chat_to_anthropic(cell) {
        let (chunks, _) = chunks_of(stream);
        for chunk in &chunks {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["id"], "msg_fake1");
        }
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .filter(|t| !t.is_empty())
            .collect();
        assert_eq!(text, ["Check", "ing."], "one chunk per provider delta");
        assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    }
}

/// A streamed answer with a tool call (the client did not ask for usage).
pub fn tools_streamed(cell: &Cell, stream: &str) {
    if cell.dialect != Dialect::Chat {
        return;
    }
    let (chunks, _) = chunks_of(stream);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    if chat_to_anthropic(cell) {
        assert_eq!(calls[0][0]["index"], 0);
        assert_eq!(calls[0][0]["id"], "toolu_01");
        assert_eq!(calls[0][0]["type"], "function");
        assert_eq!(calls[0][0]["function"]["name"], "get_weather");
        // The fragments as the provider sent them.
        let arguments: String = calls
            .iter()
            .filter_map(|c| c[0]["function"]["arguments"].as_str())
            .collect();
        assert_eq!(arguments, "{\"city\": \"Paris\"}");
    }
    if passed_through(cell) {
        // The gateway asks for usage upstream (for its counters) and keeps
        // the usage chunk from the client.
        let sent = &cell.provider.received()[1];
        assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
        assert!(
            chunks.iter().all(|c| c["choices"] != json!([])),
            "no usage chunk the client did not ask for: {stream}"
        );
    }
}
