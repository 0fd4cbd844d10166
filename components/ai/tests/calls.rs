//! Calls of the AI API as the gateway makes them: plans (provider URL,
//! headers, body, fallbacks), answers and streams translated back, and the
//! usage counted.

mod common;

use common::{Counters, MemoryStore, header};
use serde_json::{Value, json};
use upshift_ai::{Call, Caller, Catalog, Incoming, Reply, Resolution};
use upshift_model::Config;
use upshift_model::store::Store;
use upshift_model::store::for_each_encoding;

const CONFIG: &str = "
ai:
  providers:
    - { name: claude, kind: anthropic, base_url: 'http://127.0.0.1:9001', api_key_variable: claude_key }
    - { name: local, kind: openai_compatible, base_url: 'http://127.0.0.1:9002/v1' }
    - { name: gem, kind: gemini, base_url: 'http://127.0.0.1:9003', api_key_variable: gem_key }
  models:
    - { alias: chat, provider: claude, model: claude-x, fallbacks: [fast, flash],
        price: { input_per_mtok: 3, output_per_mtok: 15 } }
    - { alias: fast, provider: local, model: llama-3 }
    - { alias: flash, provider: gem, model: gemini-2.5-flash }
";

fn catalog() -> Catalog {
    catalog_of(CONFIG)
}

/// The catalog of a config document.
fn catalog_of(document: &str) -> Catalog {
    Catalog::new(&Config::parse(document).unwrap())
}

fn alice() -> Caller {
    Caller {
        consumer: Some("alice".into()),
        tenant: Some("acme".into()),
    }
}

fn plan(catalog: &Catalog, method: &str, path: &str, body: &Value) -> Resolution {
    plan_in(catalog, &MemoryStore::new(), &[], method, path, body)
}

const NOW_MS: u64 = 1_700_000_000_123;

fn plan_in(
    catalog: &Catalog,
    store: &MemoryStore,
    headers: &[(String, String)],
    method: &str,
    path: &str,
    body: &Value,
) -> Resolution {
    let body = serde_json::to_vec(body).unwrap();
    catalog.plan(
        &Incoming {
            method,
            path,
            headers,
            body: &body,
            now_ms: NOW_MS,
        },
        alice(),
        store,
    )
}

/// Plans a chat completion of `request`, sent with `headers`, counted in
/// `store`.
fn chat_in(
    catalog: &Catalog,
    store: &MemoryStore,
    headers: &[(String, String)],
    request: &Value,
) -> Resolution {
    plan_in(
        catalog,
        store,
        headers,
        "POST",
        "/v1/chat/completions",
        request,
    )
}

fn call(catalog: &Catalog, body: &Value) -> Call {
    match plan(catalog, "POST", "/v1/chat/completions", body) {
        Resolution::Call(call) => *call,
        Resolution::Reply(reply) => panic!("no call: {}", String::from_utf8_lossy(&reply.body)),
    }
}

fn reply(plan: Resolution) -> (u16, Value) {
    match plan {
        Resolution::Reply(Reply { status, body, .. }) => {
            (status, serde_json::from_slice(&body).unwrap())
        }
        Resolution::Call(_) => panic!("expected a reply"),
    }
}

fn chat(stream: bool) -> Value {
    json!({
        "model": "chat",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "max_tokens": 100,
        "stream": stream
    })
}

#[test]
fn plans_the_alias_then_its_fallbacks_each_in_its_providers_dialect() {
    let catalog = catalog();
    let call = call(&catalog, &chat(false));
    let attempts = call.attempts();
    assert_eq!(attempts.len(), 3);

    let first = &attempts[0];
    assert_eq!(
        (first.alias.as_str(), first.provider.as_str()),
        ("chat", "claude")
    );
    assert_eq!(first.url, "http://127.0.0.1:9001/v1/messages");
    assert_eq!(
        header(&first.headers, "anthropic-version"),
        Some("2023-06-01")
    );
    let credential = first.credential.as_ref().unwrap();
    assert_eq!(
        (
            credential.variable.as_str(),
            credential.header,
            credential.prefix
        ),
        ("claude_key", "x-api-key", "")
    );
    let body: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["model"], "claude-x");
    assert_eq!(body["system"], "Be terse.");
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Weather in Paris?"}])
    );
    assert_eq!(body["tools"][0]["name"], "get_weather");
    assert_eq!(
        body["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );

    let second = &attempts[1];
    assert_eq!(second.url, "http://127.0.0.1:9002/v1/chat/completions");
    assert!(second.credential.is_none());
    let body: Value = serde_json::from_slice(&second.body).unwrap();
    let mut expected = chat(false);
    expected["model"] = "llama-3".into();
    assert_eq!(body, expected, "same dialect: only the model changes");

    let third = &attempts[2];
    assert_eq!(
        third.url,
        "http://127.0.0.1:9003/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(third.credential.as_ref().unwrap().header, "x-goog-api-key");
    let body: Value = serde_json::from_slice(&third.body).unwrap();
    assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be terse.");
}

#[test]
fn streamed_passthrough_asks_openai_upstreams_for_usage() {
    let catalog = catalog_of(
        "ai: {providers: [{name: local, kind: openai_compatible, base_url: 'http://h/v1'}],\
              models: [{alias: chat, provider: local, model: llama-3}]}",
    );
    let call = call(&catalog, &chat(true));
    assert!(call.streaming());
    let body: Value = serde_json::from_slice(&call.attempts()[0].body).unwrap();
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        header(&call.attempts()[0].headers, "accept"),
        Some("text/event-stream")
    );
}

#[test]
fn refuses_in_the_clients_dialect() {
    let catalog = catalog();
    let (status, body) = reply(plan(
        &catalog,
        "POST",
        "/v1/chat/completions",
        &json!({"model": "nope", "messages": []}),
    ));
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");

    let (status, body) = reply(plan(
        &catalog,
        "POST",
        "/v1/messages",
        &json!({"messages": [], "max_tokens": 5}),
    ));
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error", "Anthropic's error shape: {body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (status, body) = reply(plan(&catalog, "POST", "/v1/chat/completions", &json!("x")));
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("JSON"));

    let (status, body) = reply(plan(&catalog, "GET", "/v1/models", &json!({})));
    assert_eq!(status, 200);
    assert_eq!(body["data"][2]["id"], "flash");
}

#[test]
fn anthropic_answers_reach_openai_clients_with_usage_and_cost_counted() {
    for_each_encoding(|store| {
        let catalog = catalog();
        let call = call(&catalog, &chat(false));
        let upstream = json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 412, "output_tokens": 57}
        });
        let reply = call.respond(0, 200, &serde_json::to_vec(&upstream).unwrap(), &store);
        assert_eq!(reply.status, 200);
        assert_eq!(
            header(&reply.headers, "content-type"),
            Some("application/json")
        );
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["created"], 1_700_000_000);
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(body["choices"][0]["message"]["content"], "Checking.");
        let call0 = &body["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call0["id"], "toolu_01");
        assert_eq!(call0["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(body["usage"]["prompt_tokens"], 412);
        assert_eq!(body["usage"]["completion_tokens"], 57);

        assert_eq!(store.counter("ai/usage/acme/alice/chat/requests"), 1);
        assert_eq!(store.counter("ai/usage/acme/alice/chat/input_tokens"), 412);
        assert_eq!(store.counter("ai/usage/acme/alice/chat/output_tokens"), 57);
        // 412 × 3000 + 57 × 15000 nano-USD.
        assert_eq!(
            store.counter("ai/usage/acme/alice/chat/cost_nanousd"),
            2_091_000
        );
    });
}

#[test]
fn answers_tell_their_output_and_refusals() {
    for_each_encoding(|store| {
        let catalog = catalog();
        let answer = |stop_reason: &str, text: &str, output_tokens: u64| {
            let call = call(&catalog, &chat(false));
            assert!(!call.answered().counted, "nothing counted before an answer");
            let upstream = json!({
                "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "text", "text": text}],
                "stop_reason": stop_reason,
                "usage": {"input_tokens": 10, "output_tokens": output_tokens}
            });
            call.respond(0, 200, &serde_json::to_vec(&upstream).unwrap(), &store);
            call.answered()
        };
        let plain = answer("end_turn", "Sunny.", 3);
        assert_eq!(
            (plain.counted, plain.output_tokens, plain.refused),
            (true, 3, false)
        );
        // Anthropic's `refusal` is a content filter's stop.
        assert!(answer("refusal", "I can't help with that.", 7).refused);
        // An empty answer is a refusal too.
        let empty = answer("end_turn", "", 0);
        assert_eq!((empty.output_tokens, empty.refused), (0, true));
        // A provider error is no answer.
        let call = call(&catalog, &chat(false));
        call.respond(
            0,
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"x"}}"#,
            &store,
        );
        assert!(!call.answered().counted);
    });
}

#[test]
fn a_stream_stopped_by_a_content_filter_is_a_refusal() {
    for_each_encoding(|store| {
        let catalog = catalog();
        let filtered_call = call(&catalog, &chat(true));
        let mut stream = filtered_call.stream(0);
        let mut out = Vec::new();
        let filtered = ANTHROPIC_STREAM.replace(
            "\"stop_reason\":\"tool_use\"",
            "\"stop_reason\":\"refusal\"",
        );
        assert_ne!(
            filtered, ANTHROPIC_STREAM,
            "the stream names its stop reason"
        );
        stream.push(filtered.as_bytes(), &mut out);
        stream.finish(&filtered_call, true, &mut out, &store);
        let answered = filtered_call.answered();
        assert_eq!(
            (answered.counted, answered.output_tokens, answered.refused),
            (true, 57, true)
        );

        let plain_call = call(&catalog, &chat(true));
        let mut stream = plain_call.stream(0);
        stream.push(ANTHROPIC_STREAM.as_bytes(), &mut out);
        stream.finish(&plain_call, true, &mut out, &store);
        assert!(!plain_call.answered().refused);
    });
}

#[test]
fn provider_errors_become_openai_errors() {
    for_each_encoding(|store| {
        let catalog = catalog();
        let call = call(&catalog, &chat(false));
        let overloaded =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let reply = call.respond(0, 529, overloaded, &store);
        assert_eq!(reply.status, 503);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["message"], "Overloaded");
        assert_eq!(body["error"]["type"], "server_error");
        assert!(store.keys("").is_empty(), "failures count no usage");

        let limited = br#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#;
        let reply = call.respond(1, 429, limited, &store);
        assert_eq!(reply.status, 429);
        assert_eq!(
            reply.body, limited,
            "same dialect: the error passes as it is"
        );

        let reply = call.unavailable(504, "upstream_timeout", "no answer within 100 ms");
        assert_eq!(reply.status, 504);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "upstream_timeout");
    });
}

const ANTHROPIC_STREAM: &str = "event: message_start
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":412,\"output_tokens\":1}}}

event: content_block_start
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}

event: ping
data: {\"type\":\"ping\"}

event: content_block_delta
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}

event: content_block_stop
data: {\"type\":\"content_block_stop\",\"index\":0}

event: content_block_start
data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}

event: content_block_delta
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}

event: content_block_delta
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\"}\"}}

event: content_block_stop
data: {\"type\":\"content_block_stop\",\"index\":1}

event: message_delta
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":57}}

event: message_stop
data: {\"type\":\"message_stop\"}

";

/// The chunks of an OpenAI stream, which ends with `[DONE]`.
fn openai_chunks(out: &[u8]) -> Vec<Value> {
    let events = data_events(out);
    assert_eq!(events.last().unwrap(), "[DONE]");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

/// The prompt and completion tokens the last chunk reports.
fn last_usage(chunks: &[Value]) -> (Option<u64>, Option<u64>) {
    let usage = &chunks.last().unwrap()["usage"];
    (
        usage["prompt_tokens"].as_u64(),
        usage["completion_tokens"].as_u64(),
    )
}

/// The `data` of each event of a stream.
fn data_events(bytes: &[u8]) -> Vec<String> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

#[test]
fn anthropic_streams_reach_openai_clients_chunk_by_chunk() {
    for_each_encoding(|store| {
        let catalog = catalog();
        let mut request = chat(true);
        request["stream_options"] = json!({"include_usage": true});
        let call = call(&catalog, &request);
        let mut stream = call.stream(0);
        let mut out = Vec::new();
        let mut chunks_out = 0;
        for piece in ANTHROPIC_STREAM.as_bytes().chunks(37) {
            let before = out.len();
            stream.push(piece, &mut out);
            chunks_out += usize::from(out.len() > before);
        }
        assert!(chunks_out > 5, "output follows the input");
        stream.finish(&call, true, &mut out, &store);
        let chunks = openai_chunks(&out);
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Checking.");
        let arguments: String = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(arguments, "{\"city\": \"Paris\"}");
        assert_eq!(last_usage(&chunks), (Some(412), Some(57)));
        assert_eq!(store.counter("ai/usage/acme/alice/chat/input_tokens"), 412);
        assert_eq!(store.counter("ai/usage/acme/alice/chat/output_tokens"), 57);
        assert_eq!(store.counter("ai/usage/acme/alice/chat/requests"), 1);
    });
}

#[test]
fn passthrough_streams_keep_events_and_drop_only_the_usage_chunk_nobody_asked_for() {
    for_each_encoding(|store| {
        let catalog = catalog();
        let call = call(&catalog, &chat(true));
        let upstream = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"llama-3\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n\
                    data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"llama-3\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
                    data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"llama-3\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":2,\"total_tokens\":22}}\n\n\
                    data: [DONE]\n\n";
        let mut stream = call.stream(1);
        let mut out = Vec::new();
        stream.push(upstream.as_bytes(), &mut out);
        stream.finish(&call, true, &mut out, &store);
        let events = data_events(&out);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(events[0].contains("\"content\":\"Hi\""));
        assert_eq!(events[2], "[DONE]");
        assert_eq!(store.counter("ai/usage/acme/alice/fast/input_tokens"), 20);
        assert_eq!(store.counter("ai/usage/acme/alice/fast/output_tokens"), 2);
        assert_eq!(
            store.counter("ai/usage/acme/alice/fast/cost_nanousd"),
            0,
            "no price"
        );
    });
}

#[test]
fn a_broken_stream_ends_with_an_error_and_counts_estimates() {
    for_each_encoding(|store| {
        let catalog = catalog();
        let call = call(&catalog, &chat(true));
        let mut stream = call.stream(1);
        let mut out = Vec::new();
        stream.push(
        b"data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello there\"}}]}\n\n",
        &mut out,
    );
        stream.finish(&call, false, &mut out, &store);
        let events = data_events(&out);
        assert_eq!(events.len(), 2, "{events:?}");
        let error: Value = serde_json::from_str(&events[1]).unwrap();
        assert!(error["error"]["message"].is_string(), "{error}");
        assert_eq!(store.counter("ai/usage/acme/alice/fast/output_tokens"), 3);
        assert!(store.counter("ai/usage/acme/alice/fast/input_tokens") > 0);
    });
}

const WITH_BUDGETS_AND_CACHE: &str = "
consumers: [{ name: alice, tenant: acme, api_keys: [alice-key-0001] }]
ai:
  providers:
    - { name: claude, kind: anthropic, base_url: 'http://127.0.0.1:9001', api_key_variable: claude_key }
  models:
    - { alias: chat, provider: claude, model: claude-x }
  budgets:
    - { consumer: alice, tokens_per_day: 500 }
    - { tenant: acme, tokens_per_month: 10000 }
  cache: { ttl_s: 60 }
";

fn anthropic_answer(input_tokens: u64, output_tokens: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
    }))
    .unwrap()
}

#[test]
fn budgets_refuse_calls_once_the_days_tokens_are_used() {
    for_each_encoding(|store| {
        let catalog = catalog_of(WITH_BUDGETS_AND_CACHE);
        let mut request = chat(false);
        let no_store = [("cache-control".to_owned(), "no-store".to_owned())];
        for (n, (input, output)) in [(300, 100), (80, 20)].into_iter().enumerate() {
            request["messages"][1]["content"] = format!("question {n}").into();
            let Resolution::Call(call) = chat_in(&catalog, &store, &no_store, &request) else {
                panic!("call {n} is refused");
            };
            assert_eq!(
                call.respond(0, 200, &anthropic_answer(input, output), &store)
                    .status,
                200
            );
        }
        // 2023-11-14 (UTC) is the day of NOW_MS.
        assert_eq!(store.counter("ai/budget/consumers/alice/2023-11-14"), 500);
        assert_eq!(store.counter("ai/budget/tenants/acme/2023-11"), 500);
        let Resolution::Reply(reply) = chat_in(&catalog, &store, &no_store, &request) else {
            panic!("the budget is used up");
        };
        assert_eq!(reply.status, 429);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "budget_exceeded");
        assert_eq!(
            body["error"]["message"],
            "consumer alice has used 500 of its 500 tokens for 2023-11-14"
        );
        // NOW_MS is 22:13:20.123 UTC: 6400 s are left of the day.
        assert_eq!(header(&reply.headers, "retry-after"), Some("6400"));
    });
}

#[test]
fn budgets_and_usage_go_on_from_counters_left_in_either_encoding() {
    for_each_encoding(|store| {
        let catalog = catalog_of(WITH_BUDGETS_AND_CACHE);
        let day = "ai/budget/consumers/alice/2023-11-14";
        let month = "ai/budget/tenants/acme/2023-11";
        let requests = "ai/usage/acme/alice/chat/requests";
        let input_tokens = "ai/usage/acme/alice/chat/input_tokens";
        store.fill_counter(day, 480);
        store.fill_counter(month, 9_000);
        store.fill_counter(requests, 7);
        store.fill_counter(input_tokens, 1_000);
        let no_store = [("cache-control".to_owned(), "no-store".to_owned())];
        let plan = || chat_in(&catalog, &store, &no_store, &chat(false));
        let Resolution::Call(call) = plan() else {
            panic!("20 tokens are left of the day");
        };
        call.respond(0, 200, &anthropic_answer(10, 2), &store);
        assert_eq!(
            (store.counter(requests), store.counter(input_tokens)),
            (8, 1_010)
        );
        assert_eq!((store.counter(day), store.counter(month)), (492, 9_012));
        assert_eq!(store.get(day).unwrap(), Some(store.encoding().encode(492)));
        let Resolution::Call(call) = plan() else {
            panic!("8 tokens are left of the day");
        };
        call.respond(0, 200, &anthropic_answer(10, 2), &store);
        let (status, body) = reply(plan());
        assert_eq!(status, 429);
        assert_eq!(
            body["error"]["message"],
            "consumer alice has used 504 of its 500 tokens for 2023-11-14"
        );
    });
}

#[test]
fn identical_requests_are_answered_from_the_cache() {
    for_each_encoding(|store| {
        let catalog = catalog_of(WITH_BUDGETS_AND_CACHE);
        let request = chat(false);
        let Resolution::Call(call) = chat_in(&catalog, &store, &[], &request) else {
            panic!("a miss calls the provider");
        };
        let answer = call.respond(0, 200, &anthropic_answer(10, 2), &store);
        assert_eq!(header(&answer.headers, "x-upshift-cache"), Some("miss"));

        // The same body with its keys in another order and other spacing.
        let reordered: Value = serde_json::from_str(&format!(
        "{{ \"stream\": false, \"max_tokens\": 100, \"tools\": {}, \"messages\": {}, \"model\": \"chat\" }}",
        request["tools"], request["messages"]
    ))
    .unwrap();
        let Resolution::Reply(hit) = chat_in(&catalog, &store, &[], &reordered) else {
            panic!("a hit answers at once");
        };
        assert_eq!(hit.status, 200);
        assert_eq!(hit.body, answer.body);
        assert_eq!(header(&hit.headers, "x-upshift-cache"), Some("hit"));
        assert_eq!(header(&hit.headers, "x-upshift-model"), Some("chat"));
        assert_eq!(
            header(&hit.headers, "x-upshift-upstream"),
            Some("claude@claude-x")
        );
        assert_eq!(store.counter("ai/usage/acme/alice/chat/cache_hits"), 1);
        assert_eq!(
            store.counter("ai/usage/acme/alice/chat/requests"),
            1,
            "hits use no tokens"
        );

        for directive in ["no-store", "no-cache"] {
            let headers = [("cache-control".to_owned(), directive.to_owned())];
            assert!(
                matches!(
                    chat_in(&catalog, &store, &headers, &request),
                    Resolution::Call(_)
                ),
                "{directive} skips the lookup"
            );
        }
        let mut streamed = request.clone();
        streamed["stream"] = true.into();
        assert!(matches!(
            chat_in(&catalog, &store, &[], &streamed),
            Resolution::Call(_)
        ));
    });
}

#[test]
fn embeddings_pass_to_openai_format_providers_with_their_tokens_counted() {
    for_each_encoding(|store| {
        let catalog = catalog();
        let request = json!({"model": "fast", "input": ["one", "two"], "encoding_format": "float"});
        let Resolution::Call(call) = plan(&catalog, "POST", "/v1/embeddings", &request) else {
            panic!("embeddings call the provider");
        };
        assert!(!call.streaming());
        let attempt = &call.attempts()[0];
        assert_eq!(attempt.url, "http://127.0.0.1:9002/v1/embeddings");
        let body: Value = serde_json::from_slice(&attempt.body).unwrap();
        assert_eq!(
            body,
            json!({"model": "llama-3", "input": ["one", "two"], "encoding_format": "float"})
        );
        let answer = json!({"object": "list", "model": "llama-3",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
                 {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4}});
        let answered = call.respond(0, 200, &serde_json::to_vec(&answer).unwrap(), &store);
        assert_eq!(
            serde_json::from_slice::<Value>(&answered.body).unwrap(),
            answer
        );
        assert_eq!(store.counter("ai/usage/acme/alice/fast/input_tokens"), 4);
        assert_eq!(store.counter("ai/usage/acme/alice/fast/requests"), 1);

        // Anthropic has no embeddings: the alias is refused, a fallback skipped.
        let (status, body) = reply(plan(
            &catalog,
            "POST",
            "/v1/embeddings",
            &json!({"model": "chat", "input": "x"}),
        ));
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("serves no embeddings")
        );
    });
}

/// An Anthropic stream of `pieces` four-letter words after a 10-token prompt.
fn long_anthropic_stream(pieces: usize) -> Vec<String> {
    let mut events = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n".to_owned(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_owned(),
    ];
    for _ in 0..pieces {
        events.push("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word\"}}\n\n".to_owned());
    }
    events.push(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            .to_owned(),
    );
    events.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":40}}\n\n".to_owned());
    events.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_owned());
    events
}

#[test]
fn a_stream_ends_cleanly_when_the_budget_runs_out() {
    for_each_encoding(|store| {
        let catalog = catalog_of(WITH_BUDGETS_AND_CACHE);
        // 470 of alice's 500 tokens of the day are used: 30 are left.
        store
            .increment("ai/budget/consumers/alice/2023-11-14", 470)
            .unwrap();
        let mut request = chat(true);
        request["stream_options"] = json!({"include_usage": true});
        let Resolution::Call(call) = chat_in(&catalog, &store, &[], &request) else {
            panic!("30 tokens are left");
        };
        let mut stream = call.stream(0);
        let mut out = Vec::new();
        let mut pushed = 0;
        for event in long_anthropic_stream(40) {
            if stream.is_done() {
                break;
            }
            stream.push(event.as_bytes(), &mut out);
            pushed += 1;
        }
        assert!(stream.was_cut());
        // message_start, block start, then 20 words: 10 + 20 tokens.
        assert_eq!(pushed, 22);
        stream.finish(&call, true, &mut out, &store);
        let chunks = openai_chunks(&out);
        let words = chunks
            .iter()
            .filter(|c| c["choices"][0]["delta"]["content"] == "word")
            .count();
        assert_eq!(words, 20);
        let finish: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
            .collect();
        assert_eq!(finish, ["length"]);
        assert_eq!(last_usage(&chunks), (Some(10), Some(20)));
        assert_eq!(store.counter("ai/usage/acme/alice/chat/output_tokens"), 20);
        assert_eq!(store.counter("ai/budget/consumers/alice/2023-11-14"), 500);
    });
}

#[test]
fn a_passthrough_stream_ends_cleanly_when_the_budget_runs_out() {
    for_each_encoding(|store| {
        let catalog = catalog_of(
            "consumers: [{ name: alice, tenant: acme, api_keys: [alice-key-0001] }]
ai:
  providers: [{ name: local, kind: openai_compatible, base_url: 'http://h/v1' }]
  models: [{ alias: chat, provider: local, model: llama-3 }]
  budgets: [{ tenant: acme, tokens_per_month: 1000 }]",
        );
        store
            .increment("ai/budget/tenants/acme/2023-11", 990)
            .unwrap();
        let Resolution::Call(call) = chat_in(&catalog, &store, &[], &chat(true)) else {
            panic!("10 tokens are left");
        };
        let mut stream = call.stream(0);
        let mut out = Vec::new();
        let chunk = |delta: &str| {
            format!(
                "data: {{\"id\":\"c9\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"llama-3\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":null}}]}}\n\n"
            )
        };
        stream.push(
            chunk("{\"role\":\"assistant\",\"content\":\"\"}").as_bytes(),
            &mut out,
        );
        // The prompt is estimated (the provider reports usage only at the end).
        let mut words = 0;
        while !stream.is_done() && words < 100 {
            stream.push(chunk("{\"content\":\"word\"}").as_bytes(), &mut out);
            words += 1;
        }
        assert!(stream.was_cut() && words < 10, "{words}");
        stream.finish(&call, true, &mut out, &store);
        let events = data_events(&out);
        assert_eq!(events.last().unwrap(), "[DONE]");
        let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
        assert_eq!(last["id"], "c9");
        assert_eq!(last["choices"][0]["finish_reason"], "length");
        assert!(store.counter("ai/budget/tenants/acme/2023-11") >= 1000);
    });
}

#[test]
fn rules_send_some_requests_to_another_alias() {
    for_each_encoding(|store| {
        let catalog = catalog_of(
            "consumers: [{ name: alice, tenant: acme, api_keys: [alice-key-0001] }]
ai:
  providers:
    - { name: claude, kind: anthropic, base_url: 'http://127.0.0.1:9001' }
    - { name: local, kind: openai_compatible, base_url: 'http://127.0.0.1:9002/v1' }
  models:
    - alias: chat
      provider: claude
      model: claude-x
      fallbacks: [fast]
      rules:
        - { match: { tenants: [acme], headers: { x-tier: free } }, use: fast }
        - { match: { min_prompt_tokens: 1000 }, use: long }
    - { alias: fast, provider: local, model: llama-3 }
    - { alias: long, provider: claude, model: claude-long, fallbacks: [fast] }",
        );
        let aliases = |headers: &[(String, String)], request: &Value| match chat_in(
            &catalog, &store, headers, request,
        ) {
            Resolution::Call(call) => call
                .attempts()
                .iter()
                .map(|a| a.alias.clone())
                .collect::<Vec<_>>(),
            Resolution::Reply(reply) => panic!("{}", String::from_utf8_lossy(&reply.body)),
        };
        let free = [("x-tier".to_owned(), "free".to_owned())];
        assert_eq!(aliases(&[], &chat(false)), ["chat", "fast"]);
        assert_eq!(
            aliases(&free, &chat(false)),
            ["fast"],
            "the rule's own fallbacks"
        );
        let mut long = chat(false);
        long["messages"][1]["content"] = "word ".repeat(1000).into();
        assert_eq!(aliases(&[], &long), ["long", "fast"]);
        assert_eq!(
            aliases(&free, &long),
            ["fast"],
            "the first rule that matches"
        );
    });
}

#[test]
fn tokens_per_minute_refuse_until_the_minute_ends_and_old_minutes_are_removed() {
    for_each_encoding(|store| {
        let catalog = catalog_of("consumers: [{ name: alice, tenant: acme, api_keys: [alice-key-0001] }]
ai:
  providers:
    - { name: claude, kind: anthropic, base_url: 'http://127.0.0.1:9001', api_key_variable: claude_key }
  models:
    - { alias: chat, provider: claude, model: claude-x }
  budgets:
    - { consumer: alice, tokens_per_minute: 150, tokens_per_day: 10000 }");
        let body = serde_json::to_vec(&chat(false)).unwrap();
        // 2023-11-14T22:13:20Z, then 40 s later, then in the next minute.
        let at = |now_ms| {
            catalog.plan(
                &Incoming {
                    method: "POST",
                    path: "/v1/chat/completions",
                    headers: &[],
                    body: &body,
                    now_ms,
                },
                alice(),
                &store,
            )
        };
        let Resolution::Call(call) = at(NOW_MS) else {
            panic!("the minute has tokens");
        };
        call.respond(0, 200, &anthropic_answer(120, 40), &store);
        assert_eq!(
            store.counter("ai/budget/consumers/alice/2023-11-14T22:13"),
            160
        );
        let Resolution::Reply(reply) = at(NOW_MS + 20_000) else {
            panic!("160 of 150 tokens are used");
        };
        assert_eq!(reply.status, 429);
        let body_json: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            body_json["error"]["message"],
            "consumer alice has used 160 of its 150 tokens for 2023-11-14T22:13"
        );
        // 20 s into the minute, then 20 s more: 20 s left.
        assert_eq!(header(&reply.headers, "retry-after"), Some("20"));

        let Resolution::Call(call) = at(NOW_MS + 40_000) else {
            panic!("a new minute has its tokens again");
        };
        call.respond(0, 200, &anthropic_answer(10, 5), &store);
        assert_eq!(
            store.counter("ai/budget/consumers/alice/2023-11-14T22:14"),
            15
        );
        assert_eq!(
            store
                .get("ai/budget/consumers/alice/2023-11-14T22:13")
                .unwrap(),
            None,
            "the minute before is removed"
        );
        assert_eq!(store.counter("ai/budget/consumers/alice/2023-11-14"), 175);
    });
}
