//! Whole provider answers the gateway hands to `Call::respond` that are not
//! what the client asked for: a streamed request answered whole (a provider
//! or proxy that ignores `stream`) reaches the client as the stream of its
//! dialect, and an answer that is not JSON (a load balancer's page, plain
//! text, nothing) as its dialect's error object.

mod common;

use common::{Counters, MemoryStore, header};
use serde_json::{Value, json};
use upshift_ai::{Call, Caller, Catalog, Dialect, Incoming, Resolution, sse};
use upshift_model::Config;

const CONFIG: &str = "
ai:
  providers:
    - { name: openai, kind: openai, base_url: 'http://127.0.0.1:9000/v1' }
    - { name: local, kind: openai_compatible, base_url: 'http://127.0.0.1:9001/v1' }
    - { name: azure, kind: azure, base_url: 'http://127.0.0.1:9002', api_version: '2024-10-21' }
    - { name: claude, kind: anthropic, base_url: 'http://127.0.0.1:9003' }
    - { name: gem, kind: gemini, base_url: 'http://127.0.0.1:9004' }
  models:
    - { alias: gpt, provider: openai, model: gpt-x }
    - { alias: llama, provider: local, model: llama-3 }
    - { alias: az, provider: azure, model: deployment-x }
    - { alias: claude, provider: claude, model: claude-x }
    - { alias: flash, provider: gem, model: gemini-2.5-flash }
";

/// Every alias: one per provider family.
const ALIASES: [&str; 5] = ["gpt", "llama", "az", "claude", "flash"];

/// The client dialects, each with the path it is served on.
const CLIENTS: [(Dialect, &str); 3] = [
    (Dialect::OpenAiChat, "/v1/chat/completions"),
    (Dialect::Anthropic, "/v1/messages"),
    (Dialect::OpenAiResponses, "/v1/responses"),
];

const NOW_MS: u64 = 1_700_000_000_123;

/// A request of `dialect` for `alias` asking about the weather with a tool.
fn request(dialect: Dialect, alias: &str, stream: bool) -> Value {
    let question = "Weather in Paris?";
    let parameters = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    match dialect {
        Dialect::OpenAiChat => json!({
            "model": alias,
            "messages": [{"role": "user", "content": question}],
            "tools": [{"type": "function",
                       "function": {"name": "get_weather", "parameters": parameters}}],
            "stream": stream,
            "stream_options": {"include_usage": true}
        }),
        Dialect::Anthropic => json!({
            "model": alias,
            "max_tokens": 100,
            "messages": [{"role": "user", "content": question}],
            "tools": [{"name": "get_weather", "input_schema": parameters}],
            "stream": stream
        }),
        Dialect::OpenAiResponses => json!({
            "model": alias,
            "input": question,
            "tools": [{"type": "function", "name": "get_weather", "parameters": parameters}],
            "stream": stream
        }),
        Dialect::Gemini => unreachable!("Gemini is no client dialect"),
    }
}

fn call(catalog: &Catalog, dialect: Dialect, body: &Value) -> Call {
    let path = CLIENTS.iter().find(|(d, _)| *d == dialect).unwrap().1;
    let body = serde_json::to_vec(body).unwrap();
    let caller = Caller {
        consumer: Some("alice".into()),
        tenant: Some("acme".into()),
    };
    let incoming = Incoming {
        method: "POST",
        path,
        headers: &[],
        body: &body,
        now_ms: NOW_MS,
    };
    match catalog.plan(&incoming, caller, &MemoryStore::new()) {
        Resolution::Call(call) => *call,
        Resolution::Reply(reply) => panic!("no call: {}", String::from_utf8_lossy(&reply.body)),
    }
}

/// The same answer in each provider dialect: "Checking.", a call of
/// get_weather for Paris, 412 prompt and 57 output tokens.
fn whole_answer(dialect: Dialect) -> Vec<u8> {
    let answer = match dialect {
        Dialect::OpenAiChat => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1741487325,
            "model": "gpt-x",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Checking.",
                "tool_calls": [{"id": "call_1", "type": "function", "function":
                    {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 412, "completion_tokens": 57, "total_tokens": 469}
        }),
        Dialect::OpenAiResponses => json!({
            "id": "resp_1", "object": "response", "created_at": 1741487325,
            "status": "completed", "model": "gpt-x",
            "output": [
                {"type": "message", "id": "msg_0", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "status": "completed",
                 "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
            ],
            "usage": {"input_tokens": 412, "output_tokens": 57, "total_tokens": 469}
        }),
        Dialect::Anthropic => json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather",
                 "input": {"city": "Paris"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 412, "output_tokens": 57}
        }),
        Dialect::Gemini => json!({
            "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model",
                "parts": [{"text": "Checking."},
                          {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}}],
            "usageMetadata": {"promptTokenCount": 412, "candidatesTokenCount": 57,
                              "totalTokenCount": 469},
            "modelVersion": "gemini-2.5-flash", "responseId": "r1"
        }),
    };
    serde_json::to_vec(&answer).unwrap()
}

/// A stream's events as (name, data), the data parsed unless it is `[DONE]`.
fn events(body: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut parser = sse::Parser::new();
    let mut events = Vec::new();
    parser.push(body, &mut events);
    parser.finish(&mut events);
    events
        .into_iter()
        .map(|e| {
            let data = match e.data.as_str() {
                "[DONE]" => Value::from("[DONE]"),
                data => serde_json::from_str(data).unwrap(),
            };
            (e.event, data)
        })
        .collect()
}

/// What a client read from its stream.
#[derive(Debug, PartialEq)]
struct Read {
    text: String,
    /// Each tool call: id, name, arguments.
    calls: Vec<(String, String, Value)>,
    /// The finish or stop reason (the Responses API's status), in the
    /// client's words.
    stop: String,
    /// Prompt and output tokens.
    usage: (u64, u64),
}

/// Reads an OpenAI Chat stream, checking its shape: the role first, one
/// finish reason, the usage chunk, `[DONE]` last.
fn read_chat(events: &[(Option<String>, Value)]) -> Read {
    assert!(events.iter().all(|(name, _)| name.is_none()), "{events:?}");
    let (last, chunks) = events.split_last().unwrap();
    assert_eq!(last.1, "[DONE]");
    let chunks: Vec<&Value> = chunks.iter().map(|(_, data)| data).collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .map(|choice| &choice["delta"])
        .collect();
    let text = deltas
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for fragment in deltas.iter().filter_map(|d| d["tool_calls"].get(0)) {
        let index = fragment["index"].as_u64().unwrap() as usize;
        if index == calls.len() {
            calls.push((
                fragment["id"].as_str().unwrap().to_owned(),
                fragment["function"]["name"].as_str().unwrap().to_owned(),
                String::new(),
            ));
        }
        calls[index]
            .2
            .push_str(fragment["function"]["arguments"].as_str().unwrap());
    }
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish.len(), 1, "one finish reason: {finish:?}");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    Read {
        text,
        calls: calls
            .into_iter()
            .map(|(id, name, arguments)| (id, name, serde_json::from_str(&arguments).unwrap()))
            .collect(),
        stop: finish[0].to_owned(),
        usage: (
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap(),
        ),
    }
}

/// Reads an Anthropic stream, checking its shape: `message_start`, each
/// block started, filled and stopped in order, one `message_delta`,
/// `message_stop`.
fn read_anthropic(events: &[(Option<String>, Value)]) -> Read {
    for (name, data) in events {
        assert_eq!(name.as_deref(), data["type"].as_str(), "{data}");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let data: Vec<&Value> = events.iter().map(|(_, d)| d).collect();
    assert_eq!(data[0]["message"]["content"], json!([]));
    assert_eq!(data[1]["content_block"]["type"], "text");
    assert_eq!(data[2]["delta"]["type"], "text_delta");
    assert_eq!(data[4]["content_block"]["type"], "tool_use");
    assert_eq!(data[5]["delta"]["type"], "input_json_delta");
    for (at, index) in [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (6, 1)] {
        assert_eq!(data[at]["index"], index);
    }
    let tool = &data[4]["content_block"];
    Read {
        text: data[2]["delta"]["text"].as_str().unwrap().to_owned(),
        calls: vec![(
            tool["id"].as_str().unwrap().to_owned(),
            tool["name"].as_str().unwrap().to_owned(),
            serde_json::from_str(data[5]["delta"]["partial_json"].as_str().unwrap()).unwrap(),
        )],
        stop: data[7]["delta"]["stop_reason"].as_str().unwrap().to_owned(),
        usage: (
            data[0]["message"]["usage"]["input_tokens"]
                .as_u64()
                .unwrap(),
            data[7]["usage"]["output_tokens"].as_u64().unwrap(),
        ),
    }
}

/// Reads an OpenAI Responses stream, checking its shape: the events of a
/// message item and a function call item between `response.created` and
/// `response.completed`, numbered in order.
fn read_responses(events: &[(Option<String>, Value)]) -> Read {
    for (at, (name, data)) in events.iter().enumerate() {
        assert_eq!(name.as_deref(), data["type"].as_str(), "{data}");
        assert_eq!(data["sequence_number"], at + 1);
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let data: Vec<&Value> = events.iter().map(|(_, d)| d).collect();
    assert_eq!(data[0]["response"]["status"], "in_progress");
    let response = &data[11]["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(response["output"][0]["content"][0]["text"], "Checking.");
    let call = &response["output"][1];
    assert_eq!(call["type"], "function_call");
    Read {
        text: data[3]["delta"].as_str().unwrap().to_owned(),
        calls: vec![(
            call["call_id"].as_str().unwrap().to_owned(),
            call["name"].as_str().unwrap().to_owned(),
            serde_json::from_str(data[8]["delta"].as_str().unwrap()).unwrap(),
        )],
        stop: response["status"].as_str().unwrap().to_owned(),
        usage: (
            response["usage"]["input_tokens"].as_u64().unwrap(),
            response["usage"]["output_tokens"].as_u64().unwrap(),
        ),
    }
}

#[test]
fn streamed_requests_answered_whole_reach_every_client_as_its_stream() {
    let catalog = Catalog::new(&Config::parse(CONFIG).unwrap());
    for (client, _) in CLIENTS {
        for alias in ALIASES {
            let call = call(&catalog, client, &request(client, alias, true));
            assert!(call.streaming());
            let provider = call.attempts()[0].dialect;
            let what = format!("{} client, {alias} ({})", client.name(), provider.name());
            let store = MemoryStore::new();
            let reply = call.respond(0, 200, &whole_answer(provider), &store);
            assert_eq!(reply.status, 200, "{what}");
            assert_eq!(
                header(&reply.headers, "content-type"),
                Some("text/event-stream"),
                "{what}"
            );
            let events = events(&reply.body);
            let (read, stop) = match client {
                Dialect::OpenAiChat => (read_chat(&events), "tool_calls"),
                Dialect::Anthropic => (read_anthropic(&events), "tool_use"),
                _ => (read_responses(&events), "completed"),
            };
            // Gemini has no call ids: the gateway makes them up.
            let id = match provider {
                Dialect::Gemini => "call_r1_0",
                _ => "call_1",
            };
            let expected = Read {
                text: "Checking.".to_owned(),
                calls: vec![(
                    id.to_owned(),
                    "get_weather".to_owned(),
                    json!({"city": "Paris"}),
                )],
                stop: stop.to_owned(),
                usage: (412, 57),
            };
            assert_eq!(read, expected, "{what}");
            let counter = |field| store.counter(&format!("ai/usage/acme/alice/{alias}/{field}"));
            assert_eq!(
                (
                    counter("requests"),
                    counter("input_tokens"),
                    counter("output_tokens")
                ),
                (1, 412, 57),
                "{what}: counted once"
            );
        }
    }
}

#[test]
fn a_chat_client_that_did_not_ask_for_usage_gets_no_usage_chunk() {
    let catalog = Catalog::new(&Config::parse(CONFIG).unwrap());
    let mut body = request(Dialect::OpenAiChat, "claude", true);
    body.as_object_mut().unwrap().remove("stream_options");
    let call = call(&catalog, Dialect::OpenAiChat, &body);
    let store = MemoryStore::new();
    let reply = call.respond(0, 200, &whole_answer(Dialect::Anthropic), &store);
    let events = events(&reply.body);
    assert!(
        events.iter().all(|(_, data)| data.get("usage").is_none()),
        "{events:?}"
    );
    let finish = &events[events.len() - 2].1;
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert_eq!(
        store.counter("ai/usage/acme/alice/claude/output_tokens"),
        57
    );
}

#[test]
fn an_answer_that_cannot_be_streamed_is_a_502_not_an_empty_stream() {
    let catalog = Catalog::new(&Config::parse(CONFIG).unwrap());
    let image = serde_json::to_vec(&json!({
        "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model",
            "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1290}
    }))
    .unwrap();
    for (client, _) in CLIENTS {
        let call = call(&catalog, client, &request(client, "flash", true));
        let store = MemoryStore::new();
        let reply = call.respond(0, 200, &image, &store);
        assert_eq!(reply.status, 502);
        assert_eq!(
            header(&reply.headers, "content-type"),
            Some("application/json")
        );
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("provider gem answered a streamed request whole"),
            "{message}"
        );
        match client {
            Dialect::Anthropic => assert_eq!(body["type"], "error"),
            _ => assert_eq!(body["error"]["code"], "provider_not_streaming"),
        }
        assert_eq!(store.counter("ai/usage/acme/alice/flash/requests"), 0);
    }
}

/// Provider answers that are not JSON: status, body, and the message the
/// client gets (the status it gets is the provider's, 502 for a success).
const NOT_JSON: [(u16, &str, u16, &str); 4] = [
    (
        502,
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
         <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        502,
        "answered 502 with a text/html body: 502 Bad Gateway 502 Bad Gateway nginx",
    ),
    (
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        503,
        "answered 503 with a text/plain body: upstream connect error or disconnect/reset before headers. reset reason: overflow",
    ),
    (500, "", 500, "answered 500 with an empty body"),
    (
        200,
        "<!DOCTYPE html><html><body><h1>Sign in</h1><p>to continue</p></body></html>",
        502,
        "answered 200 with a text/html body: Sign in to continue",
    ),
];

#[test]
fn answers_that_are_not_json_become_the_clients_error_object() {
    let catalog = Catalog::new(&Config::parse(CONFIG).unwrap());
    for (client, _) in CLIENTS {
        for alias in ALIASES {
            for stream in [false, true] {
                let call = call(&catalog, client, &request(client, alias, stream));
                let provider = &call.attempts()[0].provider;
                for (status, body, expected_status, message) in NOT_JSON {
                    let what = format!("{} client, {alias}, {status} {body:?}", client.name());
                    let store = MemoryStore::new();
                    let reply = call.respond(0, status, body.as_bytes(), &store);
                    assert_eq!(reply.status, expected_status, "{what}");
                    assert_eq!(
                        header(&reply.headers, "content-type"),
                        Some("application/json"),
                        "{what}"
                    );
                    let error: Value = serde_json::from_slice(&reply.body).unwrap();
                    let expected = format!("provider {provider} {message}");
                    assert_eq!(error["error"]["message"], expected, "{what}");
                    match client {
                        Dialect::Anthropic => {
                            assert_eq!(error["type"], "error", "{what}");
                            let kind = if status == 503 {
                                "overloaded_error"
                            } else {
                                "api_error"
                            };
                            assert_eq!(error["error"]["type"], kind, "{what}");
                        }
                        _ => {
                            assert_eq!(error["error"]["type"], "server_error", "{what}");
                            let code = (status == 200).then_some("bad_provider_response");
                            assert_eq!(error["error"]["code"].as_str(), code, "{what}");
                        }
                    }
                    assert!(store.keys("").is_empty(), "{what}: nothing counted");
                }
            }
        }
    }
}

#[test]
fn an_embeddings_answer_that_is_not_json_is_an_error_too() {
    let catalog = Catalog::new(&Config::parse(CONFIG).unwrap());
    let body = serde_json::to_vec(&json!({"model": "llama", "input": "one"})).unwrap();
    let incoming = Incoming {
        method: "POST",
        path: "/v1/embeddings",
        headers: &[],
        body: &body,
        now_ms: NOW_MS,
    };
    let Resolution::Call(call) = catalog.plan(&incoming, Caller::default(), &MemoryStore::new())
    else {
        panic!("embeddings call the provider");
    };
    let store = MemoryStore::new();
    let reply = call.respond(0, 200, b"<html>Sign in</html>", &store);
    assert_eq!(reply.status, 502);
    let error: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["error"]["code"], "bad_provider_response");
    assert_eq!(
        error["error"]["message"],
        "provider local answered 200 with a text/html body: Sign in"
    );
    assert!(store.keys("").is_empty(), "nothing counted");
}
