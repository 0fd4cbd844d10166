//! The AI gateway end to end: the real host and components, fake providers
//! on 127.0.0.1 that speak OpenAI's, Anthropic's and Gemini's wire formats,
//! and real clients (reqwest, and the official `openai` Python package).
//!
//! The [matrix] sends each client dialect (OpenAI Chat, OpenAI Responses,
//! Anthropic Messages) to each provider family (OpenAI, OpenAI-compatible,
//! Azure, Anthropic, Gemini), whole, streamed, with tool calls and
//! refused; the [details] of single pairs show translations field by
//! field and answers passed on as they are. The tests of this file show
//! the rest: a model is retried with backoff, then falls back to the next
//! when its provider answers 429 or closes the connection before the first
//! byte; usage counters are exact; budgets refuse calls and cut streams;
//! identical requests are answered from the cache; rules route by header
//! and tenant; model canaries that refuse or are slow to their first token
//! roll back; a model canary that costs too much rolls back by itself;
//! prompt templates are endpoints whose versions roll out like upstream
//! versions.

mod details;
mod dialects;
mod families;
mod matrix;

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::collector::Collector;
use support::providers::{Answer, Kind, Provider, ToolCall};
use support::redis::Redis;
use support::traffic::{admin_get, admin_post, admin_text};
use support::{Host, client, repo};

const ALICE_KEY: &str = "alice-key-0001";
const ANTHROPIC_KEY: &str = "test-anthropic-key";
const OPENAI_KEY: &str = "test-openai-key";
const GEMINI_KEY: &str = "test-gemini-key";

/// A host on the repository's spin.toml with `args`.
fn start(state: &Path, args: &[&str]) -> Host {
    Host::start_with(&repo().join("spin.toml"), state, args)
}

/// A host whose provider-key variables are set (`anthropic_api_key`,
/// `openai_api_key`), with `extra` arguments.
fn host_with(state: &Path, extra: &[&str]) -> Host {
    let variables = state.join("variables.toml");
    std::fs::write(
        &variables,
        format!(
            "anthropic_api_key = \"{ANTHROPIC_KEY}\"\nopenai_api_key = \"{OPENAI_KEY}\"\n\
             gemini_api_key = \"{GEMINI_KEY}\"\n"
        ),
    )
    .unwrap();
    let mut args = vec!["--variables-file", variables.to_str().unwrap()];
    args.extend_from_slice(extra);
    start(state, &args)
}

/// Providers `claude` (Anthropic) and `oai` (OpenAI) answering with their
/// scripts.
async fn claude_and_oai(claude: Vec<Answer>, oai: Vec<Answer>) -> (Provider, Provider) {
    (
        Provider::start(Kind::Anthropic, claude).await,
        Provider::start(Kind::OpenAi, oai).await,
    )
}

/// A host whose provider keys are set (see [`host_with`]) serving
/// `document`, and its state directory.
async fn serving(document: &str) -> (tempfile::TempDir, Host) {
    let state = tempfile::tempdir().unwrap();
    let host = host_with(state.path(), &[]);
    host.apply(document).await;
    (state, host)
}

/// An AI route under `/v1` for consumer alice (tenant acme), providers
/// `claude` (Anthropic) and `oai` (OpenAI), and `models` (YAML flow list).
fn config(claude: &Provider, oai: &Provider, models: &str) -> String {
    let providers = format!(
        "    - {{ name: claude, kind: anthropic, base_url: '{}', api_key_variable: anthropic_api_key }}
    - {{ name: oai, kind: openai, base_url: '{}', api_key_variable: openai_api_key }}
",
        claude.base_url(),
        oai.base_url()
    );
    ai_document(&providers, models)
}

/// An AI route under `/v1` for consumer alice (tenant acme), `providers`
/// (lines of the list `ai.providers`) and `models` (YAML flow list).
fn ai_document(providers: &str, models: &str) -> String {
    format!(
        "routes:
  - {{ name: ai, kind: ai, paths: [/v1], timeout_ms: 5000,
      auth: {{ api_key: {{ header: authorization }} }} }}
consumers:
  - {{ name: alice, tenant: acme, api_keys: [{ALICE_KEY}] }}
ai:
  providers:
{providers}  models: {models}
"
    )
}

/// `chat` on Claude falling back to `backup` on OpenAI.
const MODELS: &str = "[
    { alias: chat, provider: claude, model: claude-sonnet-4-5, fallbacks: [backup],
      price: { input_per_mtok: 3, output_per_mtok: 15 } },
    { alias: backup, provider: oai, model: gpt-4o-mini,
      price: { input_per_mtok: 0.15, output_per_mtok: 0.6 } } ]";

fn weather_tool() -> ToolCall {
    ToolCall {
        id: "toolu_01",
        name: "get_weather",
        fragments: vec!["{\"city\": \"Pa", "ris\"}"],
    }
}

fn with_tool(input_tokens: u64, output_tokens: u64) -> Answer {
    Answer::Complete {
        text: vec!["Check", "ing."],
        tools: vec![weather_tool()],
        input_tokens,
        output_tokens,
    }
}

/// An OpenAI Chat request with a system prompt, a tool and `stream`.
fn chat_request(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}}],
        "tool_choice": "auto",
        "max_tokens": 256,
        "temperature": 0.2,
        "stream": stream
    })
}

/// POSTs `body` to `path` as alice; the response, its body unread.
async fn send(host: &Host, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", host.url))
        .bearer_auth(ALICE_KEY)
        .json(body)
        .send()
        .await
        .expect("the host answers")
}

/// POSTs `body` to `path` as alice: status, headers, JSON body.
async fn post(host: &Host, path: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = send(host, path, body).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, headers, json)
}

/// The `data:` payloads of an event stream.
fn data_of(stream: &str) -> Vec<String> {
    stream
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .flat_map(|event| {
            event
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The OpenAI chunks of a stream (without `[DONE]`), and whether it ended
/// with `[DONE]`.
fn chunks_of(stream: &str) -> (Vec<Value>, bool) {
    let data = data_of(stream);
    let done = data.last().is_some_and(|d| d == "[DONE]");
    let chunks = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| panic!("bad chunk {d}")))
        .collect();
    (chunks, done)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_model_falls_back_when_its_provider_answers_429() {
    let (claude, oai) = claude_and_oai(
        vec![Answer::Error {
            status: 429,
            kind: "rate_limit_error",
            message: "Number of request tokens has exceeded your per-minute rate limit",
        }],
        vec![Answer::text(&["From ", "backup."], 20, 3)],
    )
    .await;
    let collector = Collector::start().await;
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("access.log");
    let host = host_with(
        state.path(),
        &[
            "--access-log",
            log.to_str().unwrap(),
            "--otlp-endpoint",
            &collector.url,
        ],
    );
    host.apply(&config(&claude, &oai, MODELS)).await;

    let (status, headers, body) =
        post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 200, "{body}");
    let line = &support::access_log_lines(&log, 1).await[0];
    assert_eq!(
        (line["status"].as_u64(), line["path"].as_str()),
        (Some(200), Some("/v1/chat/completions"))
    );
    assert_eq!(line["service"], "oai@gpt-4o-mini");
    if support::lane() == "native" {
        assert_eq!(
            (line["route"].as_str(), line["consumer"].as_str()),
            (Some("ai"), Some("alice"))
        );
        assert_eq!(line["attempts"], 2);
        let ai = &line["ai"];
        assert_eq!(
            (ai["alias"].as_str(), ai["provider"].as_str()),
            (Some("backup"), Some("oai"))
        );
        assert_eq!(ai["model"], "gpt-4o-mini");
        // 20 prompt and 3 completion tokens at $0.15 and $0.60 a million.
        assert_eq!(
            (&ai["input_tokens"], &ai["output_tokens"]),
            (&json!(20), &json!(3))
        );
        let cost = ai["cost_usd"].as_f64().unwrap();
        assert!((cost - 4.8e-6).abs() < 1e-12, "{cost}");

        // The request's span has a span per provider call: the refusal, then
        // the fallback's answer.
        let spans = collector.spans(3).await;
        let server = spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.name == "POST ai")
            .unwrap_or_else(|| panic!("no request span in {spans:#?}"));
        let calls: Vec<&str> = spans
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.parent_span_id == server.span_id)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(calls, ["chat claude-sonnet-4-5", "chat gpt-4o-mini"]);
    }
    assert_eq!(header(&headers, "x-upshift-model"), "backup");
    assert_eq!(header(&headers, "x-upshift-upstream"), "oai@gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["content"], "From backup.");
    assert_eq!(claude.received().len(), 1);
    assert_eq!(oai.received()[0].body["model"], "gpt-4o-mini");

    let response = send(&host, "/v1/chat/completions", &chat_request("chat", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "x-upshift-model"), "backup");
    let (chunks, done) = chunks_of(&response.text().await.unwrap());
    assert!(done);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "From backup.");
    assert_eq!(claude.received().len(), 2);
    if support::lane() == "native" {
        // A stream's usage is known at its end, and its line waits for it.
        let streamed = &support::access_log_lines(&log, 2).await[1]["ai"];
        assert_eq!(streamed["alias"], "backup");
        let tokens = |field: &str| streamed[field].as_u64().unwrap_or_default();
        assert!(
            tokens("input_tokens") > 0 && tokens("output_tokens") > 0,
            "{streamed}"
        );
        assert!(streamed["cost_usd"].as_f64().unwrap() > 0.0, "{streamed}");
    }

    // Without a fallback left, the provider's error reaches the client as
    // an OpenAI error with the status it stands for.
    let models = "[{ alias: chat, provider: claude, model: claude-sonnet-4-5 }]";
    host.apply(&config(&claude, &oai, models)).await;
    let (status, _, body) = post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(
        body["error"]["message"],
        "Number of request tokens has exceeded your per-minute rate limit"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [ALICE_KEY, ANTHROPIC_KEY, OPENAI_KEY] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the access log"
        );
    }
}

#[tokio::test]
async fn a_model_falls_back_when_its_provider_closes_before_the_first_byte() {
    let (claude, oai) = claude_and_oai(
        vec![Answer::Close],
        vec![Answer::text(&["Still ", "here."], 20, 3)],
    )
    .await;
    let (_state, host) = serving(&config(&claude, &oai, MODELS)).await;

    for stream in [false, true] {
        let response = send(&host, "/v1/chat/completions", &chat_request("chat", stream)).await;
        assert_eq!(response.status(), 200, "stream: {stream}");
        assert_eq!(header(response.headers(), "x-upshift-model"), "backup");
        let text = response.text().await.unwrap();
        let content: String = if stream {
            chunks_of(&text)
                .0
                .iter()
                .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
                .collect()
        } else {
            let body: Value = serde_json::from_str(&text).unwrap();
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(content, "Still here.", "stream: {stream}");
    }
    assert_eq!(claude.received().len(), 2);

    // Nobody left to ask: a 502 in OpenAI's shape.
    let models = "[{ alias: chat, provider: claude, model: claude-sonnet-4-5 }]";
    host.apply(&config(&claude, &oai, models)).await;
    let (status, _, body) = post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn usage_counters_are_exact_per_consumer_tenant_and_model() {
    let redis = Redis::start();
    let (claude, oai) = claude_and_oai(
        vec![
            with_tool(412, 57),
            Answer::text(&["Hi"], 100, 7),
            Answer::Error {
                status: 529,
                kind: "overloaded_error",
                message: "Overloaded",
            },
        ],
        vec![Answer::text(&["Backup."], 90, 5)],
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let runtime_config = redis.runtime_config_file(state.path());
    let host = host_with(
        state.path(),
        &["--runtime-config-file", runtime_config.to_str().unwrap()],
    );
    host.apply(&config(&claude, &oai, MODELS)).await;

    let (status, _, _) = post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 200);
    let mut streamed = chat_request("chat", true);
    streamed["stream_options"] = json!({"include_usage": true});
    let response = send(&host, "/v1/chat/completions", &streamed).await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();
    // Overloaded: served by the fallback, counted under its alias.
    let (status, headers, _) =
        post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(
        (status, header(&headers, "x-upshift-model")),
        (200, "backup")
    );

    let counter = |alias: &str, field: &str| {
        redis
            .get(&format!("ai/usage/acme/alice/{alias}/{field}"))
            .map(|v| v.parse::<u64>().unwrap())
    };
    // The stream's usage is counted when it ends, after the client has it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while counter("chat", "requests") != Some(2) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counter("chat", "requests"), Some(2));
    assert_eq!(counter("chat", "input_tokens"), Some(412 + 100));
    assert_eq!(counter("chat", "output_tokens"), Some(57 + 7));
    // $3 and $15 per million: 512 × 3000 + 64 × 15000 nano-USD.
    assert_eq!(
        counter("chat", "cost_nanousd"),
        Some(512 * 3_000 + 64 * 15_000)
    );
    assert_eq!(counter("backup", "requests"), Some(1));
    assert_eq!(counter("backup", "input_tokens"), Some(90));
    assert_eq!(counter("backup", "output_tokens"), Some(5));
    // $0.15 and $0.60 per million: 90 × 150 + 5 × 600 nano-USD.
    assert_eq!(counter("backup", "cost_nanousd"), Some(90 * 150 + 5 * 600));
}

#[tokio::test]
async fn requests_the_gateway_refuses_get_openai_errors() {
    let (claude, oai) =
        claude_and_oai(vec![with_tool(1, 1)], vec![Answer::text(&["x"], 1, 1)]).await;
    let state = tempfile::tempdir().unwrap();
    // No provider keys set.
    let host = start(state.path(), &[]);
    host.apply(&config(&claude, &oai, MODELS)).await;

    let (status, _, body) =
        post(&host, "/v1/chat/completions", &chat_request("gpt-5", false)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");

    let (status, _, body) = post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "provider_key_missing");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("openai_api_key"), "{message}");
    assert!(claude.received().is_empty() && oai.received().is_empty());

    let huge = vec![b' '; 11 << 20];
    let response = client()
        .post(format!("{}/v1/chat/completions", host.url))
        .bearer_auth(ALICE_KEY)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_too_large");

    let response = client()
        .get(format!("{}/v1/models", host.url))
        .bearer_auth(ALICE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chat", "backup"]);
}

/// The official `openai` Python package, installed with pip when missing.
fn python_with_openai() -> &'static str {
    let has = |python: &str| {
        Command::new(python)
            .args(["-c", "import openai"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has("python3") {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "openai"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed && has("python3"),
            "the openai Python package is needed: pip install openai"
        );
    }
    "python3"
}

const PYTHON_CLIENT: &str = r#"
import json, sys
import openai
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
out = {}
messages = [{"role": "user", "content": "Weather in Paris?"}]
tools = [{"type": "function", "function": {"name": "get_weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]

r = client.chat.completions.create(model="chat", messages=messages)
out["text"] = [r.choices[0].message.content, r.choices[0].finish_reason,
               r.usage.prompt_tokens, r.usage.completion_tokens, r.model]

r = client.chat.completions.create(model="chat", messages=messages, tools=tools)
call = r.choices[0].message.tool_calls[0]
out["tool"] = [call.id, call.function.name, json.loads(call.function.arguments),
               r.choices[0].finish_reason]

pieces, finish, usage = [], None, None
stream = client.chat.completions.create(model="chat", messages=messages, stream=True,
                                        stream_options={"include_usage": True})
for chunk in stream:
    if chunk.choices:
        if chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    if chunk.usage:
        usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
out["stream"] = [pieces, finish, usage]

try:
    client.chat.completions.create(model="limited", messages=messages)
    out["error"] = None
except openai.RateLimitError as e:
    out["error"] = [e.status_code, e.message]

print(json.dumps(out))
"#;

#[tokio::test]
async fn the_official_openai_python_client_works_against_an_anthropic_upstream() {
    let python = python_with_openai();
    let claude = Provider::start(
        Kind::Anthropic,
        vec![
            Answer::text(&["Sunny in ", "Paris."], 11, 5),
            Answer::Complete {
                text: vec![],
                tools: vec![weather_tool()],
                input_tokens: 40,
                output_tokens: 9,
            },
            Answer::text(&["Sun", "ny", "."], 11, 3),
        ],
    )
    .await;
    let limited = Provider::start(
        Kind::Anthropic,
        vec![Answer::Error {
            status: 429,
            kind: "rate_limit_error",
            message: "Slow down",
        }],
    )
    .await;
    let oai = Provider::start(Kind::OpenAi, vec![Answer::text(&["x"], 1, 1)]).await;
    let state = tempfile::tempdir().unwrap();
    let host = host_with(state.path(), &[]);
    let document = config(
        &claude,
        &oai,
        "[{ alias: chat, provider: claude, model: claude-sonnet-4-5 },
          { alias: limited, provider: limited, model: claude-haiku }]",
    )
    .replace(
        "  models:",
        &format!(
            "    - {{ name: limited, kind: anthropic, base_url: '{}', api_key_variable: anthropic_api_key }}\n  models:",
            limited.base_url()
        ),
    );
    host.apply(&document).await;

    let output = tokio::task::spawn_blocking({
        let url = format!("{}/v1", host.url);
        move || {
            Command::new(python)
                .args(["-c", PYTHON_CLIENT, &url, ALICE_KEY])
                .output()
                .expect("python runs")
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        out["text"],
        json!(["Sunny in Paris.", "stop", 11, 5, "claude-sonnet-4-5"])
    );
    assert_eq!(
        out["tool"],
        json!(["toolu_01", "get_weather", {"city": "Paris"}, "tool_calls"])
    );
    assert_eq!(out["stream"], json!([["Sun", "ny", "."], "stop", [11, 3]]));
    assert_eq!(out["error"][0], 429);
    assert!(
        out["error"][1].as_str().unwrap().contains("Slow down"),
        "{out}"
    );
    assert_eq!(claude.received().len(), 3);
}

/// `chat` on Claude, with `extra` under `ai:` (budgets, cache).
fn config_with(claude: &Provider, oai: &Provider, extra: &str) -> String {
    format!(
        "{}{extra}",
        config(
            claude,
            oai,
            "[{ alias: chat, provider: claude, model: claude-sonnet-4-5 }]"
        )
    )
}

#[tokio::test]
async fn token_budgets_refuse_calls_once_the_days_tokens_are_used() {
    let (claude, oai) = claude_and_oai(
        vec![with_tool(412, 57), Answer::text(&["Hi"], 100, 7)],
        vec![Answer::text(&["x"], 1, 1)],
    )
    .await;
    let (_state, host) = serving(&config_with(
        &claude,
        &oai,
        "  budgets: [{ consumer: alice, tokens_per_day: 500 }]\n",
    ))
    .await;

    // 469 tokens, then 107 more: a whole answer that crosses the budget
    // completes (a stream would be cut, see below).
    for _ in 0..2 {
        let (status, _, body) =
            post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
        assert_eq!(status, 200, "{body}");
    }
    let refused = send(&host, "/v1/chat/completions", &chat_request("chat", true)).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = header(refused.headers(), "retry-after").parse().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("consumer alice has used 576 of its 500 tokens for "),
        "{message}"
    );
    assert_eq!(
        claude.received().len(),
        2,
        "a refused call reaches no provider"
    );
}

#[tokio::test]
async fn tokens_per_minute_refuse_calls_until_the_minute_ends() {
    let (claude, oai) = claude_and_oai(
        vec![Answer::text(&["Hi"], 100, 20)],
        vec![Answer::text(&["x"], 1, 1)],
    )
    .await;
    let (_state, host) = serving(&config_with(
        &claude,
        &oai,
        "  budgets: [{ tenant: acme, tokens_per_minute: 100 }]\n",
    ))
    .await;

    // Both calls fall in one clock minute.
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second >= 50 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
    let (status, _, body) = post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) =
        post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("tenant acme has used 120 of its 100 tokens for 20"),
        "{message}"
    );
    let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        claude.received().len(),
        1,
        "a refused call reaches no provider"
    );
}

#[tokio::test]
async fn identical_requests_are_answered_from_the_cache_until_it_expires() {
    let (claude, oai) = claude_and_oai(
        vec![
            Answer::text(&["First."], 10, 2),
            Answer::text(&["Second."], 10, 2),
            Answer::text(&["Third."], 10, 2),
        ],
        vec![Answer::text(&["x"], 1, 1)],
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("access.log");
    let host = host_with(state.path(), &["--access-log", log.to_str().unwrap()]);
    host.apply(&config_with(&claude, &oai, "  cache: { ttl_s: 2 }\n"))
        .await;

    let ask = |cache_control: Option<&'static str>| {
        let mut request = client()
            .post(format!("{}/v1/chat/completions", host.url))
            .bearer_auth(ALICE_KEY)
            .json(&chat_request("chat", false));
        if let Some(value) = cache_control {
            request = request.header("cache-control", value);
        }
        async move {
            let response = request.send().await.unwrap();
            let cache = header(response.headers(), "x-upshift-cache").to_owned();
            let body: Value = response.json().await.unwrap();
            let text = body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned();
            (cache, text)
        }
    };
    assert_eq!(ask(None).await, ("miss".to_owned(), "First.".to_owned()));
    assert_eq!(ask(None).await, ("hit".to_owned(), "First.".to_owned()));
    assert_eq!(claude.received().len(), 1);
    let lines = support::access_log_lines(&log, 2).await;
    let cached: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["ai"]["alias"].as_str().unwrap(),
                l["ai"]["cache"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(cached, [("chat", "miss"), ("chat", "hit")], "{lines:#?}");
    assert_eq!(
        ask(Some("no-store")).await,
        ("bypass".to_owned(), "Second.".to_owned())
    );
    assert_eq!(
        ask(None).await,
        ("hit".to_owned(), "First.".to_owned()),
        "no-store keeps nothing"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(ask(None).await, ("miss".to_owned(), "Third.".to_owned()));
    assert_eq!(claude.received().len(), 3);
}

#[tokio::test]
async fn embeddings_reach_openai_format_providers() {
    let (claude, oai) =
        claude_and_oai(vec![with_tool(1, 1)], vec![Answer::text(&["x"], 1, 1)]).await;
    let (_state, host) = serving(&config(
        &claude,
        &oai,
        "[{ alias: embed, provider: oai, model: text-embedding-3-small },
          { alias: chat, provider: claude, model: claude-sonnet-4-5 }]",
    ))
    .await;

    let request = json!({"model": "embed", "input": ["hello world", "bye"]});
    let (status, headers, body) = post(&host, "/v1/embeddings", &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&headers, "x-upshift-upstream"),
        "oai@text-embedding-3-small"
    );
    let sent = &oai.received()[0];
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(
        sent.body,
        json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]})
    );
    assert_eq!(
        sent.header("authorization"),
        Some(&*format!("Bearer {OPENAI_KEY}"))
    );
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["data"][0]["embedding"], json!([11.0, 5.5, 0.5]));
    assert_eq!(body["usage"]["prompt_tokens"], 3);

    let (status, _, body) = post(
        &host,
        "/v1/embeddings",
        &json!({"model": "chat", "input": "hello"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn a_stream_ends_cleanly_when_the_budget_runs_out_mid_way() {
    let (claude, oai) = claude_and_oai(
        vec![Answer::text(&["word"; 200], 10, 200)],
        vec![Answer::text(&["x"], 1, 1)],
    )
    .await;
    let (_state, host) = serving(&config_with(
        &claude,
        &oai,
        "  budgets: [{ consumer: alice, tokens_per_day: 60 }]\n",
    ))
    .await;

    let mut request = chat_request("chat", true);
    request["stream_options"] = json!({"include_usage": true});
    let response = send(&host, "/v1/chat/completions", &request).await;
    assert_eq!(response.status(), 200);
    let (chunks, done) = chunks_of(&response.text().await.unwrap());
    assert!(done, "the stream ends with [DONE]");
    // 10 prompt tokens, then one token per word until 60.
    let words = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"] == "word")
        .count();
    assert_eq!(words, 50);
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["length"]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 10);
    assert_eq!(usage["completion_tokens"], 50);

    let (status, _, body) = post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded");
}

#[tokio::test]
async fn responses_conversations_with_tool_results_reach_anthropic_upstreams() {
    let (claude, oai) =
        claude_and_oai(vec![with_tool(30, 12)], vec![Answer::text(&["x"], 1, 1)]).await;
    let (_state, host) = serving(&config(&claude, &oai, MODELS)).await;

    // A conversation with a call and its result: Anthropic gets them as
    // tool_use and tool_result blocks.
    let request = json!({
        "model": "chat",
        "instructions": "You are terse.",
        "input": [
            {"role": "user", "content": "What's the weather in Paris?"},
            {"type": "function_call", "call_id": "call_abc", "name": "get_weather",
             "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_abc", "output": "{\"temp_c\":21}"},
            {"role": "user", "content": "And in Rome?"}
        ],
        "tools": [{"type": "function", "name": "get_weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "max_output_tokens": 300
    });
    let (status, headers, body) = post(&host, "/v1/responses", &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&headers, "x-upshift-upstream"),
        "claude@claude-sonnet-4-5"
    );
    let sent = &claude.received()[0];
    assert_eq!(sent.body["system"], "You are terse.");
    assert_eq!(sent.body["max_tokens"], 300);
    assert_eq!(
        sent.body["messages"],
        json!([
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_abc",
              "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_abc", "content": "{\"temp_c\":21}"}]},
            // A user turn after tool results (Anthropic joins consecutive turns).
            {"role": "user", "content": "And in Rome?"}
        ])
    );
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    let output = body["output"].as_array().unwrap();
    let message = output.iter().find(|o| o["type"] == "message").unwrap();
    assert_eq!(message["content"][0]["text"], "Checking.");
    let call = output
        .iter()
        .find(|o| o["type"] == "function_call")
        .unwrap();
    assert_eq!(call["call_id"], "toolu_01");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(body["usage"]["input_tokens"], 30);
    assert_eq!(body["usage"]["output_tokens"], 12);
}

#[tokio::test]
async fn rules_route_requests_by_header_and_tenant() {
    let (claude, oai) = claude_and_oai(
        vec![Answer::text(&["From claude."], 5, 2)],
        vec![Answer::text(&["From openai."], 5, 2)],
    )
    .await;
    let (_state, host) = serving(&config(
        &claude,
        &oai,
        "[{ alias: chat, provider: claude, model: claude-sonnet-4-5,
            rules: [{ match: { tenants: [acme], headers: { x-tier: free } }, use: backup }] },
          { alias: backup, provider: oai, model: gpt-4o-mini }]",
    ))
    .await;

    let ask = |tier: &'static str| {
        let request = client()
            .post(format!("{}/v1/chat/completions", host.url))
            .bearer_auth(ALICE_KEY)
            .header("x-tier", tier)
            .json(&chat_request("chat", false));
        async move {
            let response = request.send().await.unwrap();
            let model = header(response.headers(), "x-upshift-model").to_owned();
            let body: Value = response.json().await.unwrap();
            let text = body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned();
            (model, text)
        }
    };
    assert_eq!(
        ask("paid").await,
        ("chat".to_owned(), "From claude.".to_owned())
    );
    assert_eq!(
        ask("free").await,
        ("backup".to_owned(), "From openai.".to_owned())
    );
    assert_eq!(oai.received()[0].body["model"], "gpt-4o-mini");
    assert_eq!(
        oai.received()[0].header("x-tier"),
        None,
        "client headers are not forwarded to providers"
    );
}

/// Sends `chat_request(model)` `limit` times, or until the rollout of
/// `service` (if given) leaves `progressing`; the versions that answered.
async fn drive_rollout(
    host: &Host,
    service: Option<&str>,
    model: &str,
    limit: usize,
) -> Vec<String> {
    let mut versions = Vec::new();
    for n in 0..limit {
        let (status, headers, body) =
            post(host, "/v1/chat/completions", &chat_request(model, false)).await;
        assert_eq!(status, 200, "{body}");
        versions.push(header(&headers, "x-upshift-version").to_owned());
        if let Some(service) = service
            && n % 10 == 9
        {
            let (_, state) = admin_get(host, &format!("/admin/rollouts/{service}")).await;
            if state["rollout"]["phase"] != "progressing" {
                break;
            }
        }
    }
    versions
}

#[tokio::test]
async fn a_model_canary_that_costs_too_much_rolls_back_by_itself() {
    let (claude, oai) = claude_and_oai(
        vec![Answer::text(&["From claude."], 100, 20)],
        vec![Answer::text(&["From openai."], 100, 20)],
    )
    .await;
    let (_state, host) = serving(&config(
        &claude,
        &oai,
        "[{ alias: chat, provider: claude, model: claude-sonnet-4-5,
            split: [{ use: chat-next, weight: 0 }],
            price: { input_per_mtok: 1, output_per_mtok: 5 } },
          { alias: chat-next, provider: oai, model: gpt-next,
            price: { input_per_mtok: 10, output_per_mtok: 50 } }]",
    ))
    .await;
    let versions = drive_rollout(&host, None, "chat", 5).await;
    assert_eq!(
        versions, ["chat"; 5],
        "the split gives the canary nothing yet"
    );

    let (status, body) = admin_post(
        &host,
        "/admin/rollouts",
        "service: 'model:chat'\ncanary: chat-next\n\
         steps: [{ weight: 50, pause: 10m }, { weight: 100, pause: 10m }]\n\
         analysis: { min_requests: 10, max_error_rate: 0.05, max_cost_per_request_ratio: 2, interval: 50ms }\n",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let versions = drive_rollout(&host, Some("model:chat"), "chat", 300).await;
    let on_canary = versions.iter().filter(|v| *v == "chat-next").count();
    assert!(
        on_canary >= 10 && on_canary < versions.len(),
        "both versions served during the step: {on_canary} of {}",
        versions.len()
    );

    // Ten times the price per token is ten times the cost per request.
    let (_, status) = admin_get(&host, "/admin/rollouts/model:chat").await;
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    assert_eq!(status["rollout"]["step"], 0, "{status}");
    let reason = status["rollout"]["reason"].as_str().unwrap();
    assert!(reason.contains("cost per request"), "{reason}");
    assert_eq!(status["history"][1]["actor"], "auto", "{status}");

    // Every request is back on the stable model, and the canary's calls
    // were real calls to its provider, in its model's name.
    let after = drive_rollout(&host, None, "chat", 20).await;
    assert_eq!(after, ["chat"; 20]);
    let sent = oai.received();
    assert_eq!(sent.len(), on_canary);
    assert!(sent.iter().all(|r| r.body["model"] == "gpt-next"));
    let metrics = admin_text(&host, "/admin/metrics").await;
    assert!(
        metrics.contains("service=\"model:chat\",version=\"chat-next\""),
        "{metrics}"
    );
}

/// A host whose AI route serves alias `chat` from `claude` with a split
/// to `chat-next` on `oai` (weight 0), and the rollout `analysis` of
/// `chat-next` started.
async fn model_canary(claude: &Provider, oai: &Provider, state: &Path, analysis: &str) -> Host {
    let host = host_with(state, &[]);
    host.apply(&config(
        claude,
        oai,
        "[{ alias: chat, provider: claude, model: claude-sonnet-4-5,
            split: [{ use: chat-next, weight: 0 }] },
          { alias: chat-next, provider: oai, model: gpt-next }]",
    ))
    .await;
    let (status, body) = admin_post(
        &host,
        "/admin/rollouts",
        &format!(
            "service: 'model:chat'\ncanary: chat-next\n\
             steps: [{{ weight: 50, pause: 10m }}, {{ weight: 100, pause: 10m }}]\n\
             analysis: {analysis}\n"
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    host
}

#[tokio::test]
async fn a_model_canary_that_refuses_rolls_back_by_itself() {
    let claude = Provider::start(
        Kind::Anthropic,
        vec![Answer::text(&["From claude."], 100, 20)],
    )
    .await;
    // The canary answers, but with nothing: a refusal.
    let oai = Provider::start(Kind::OpenAi, vec![Answer::text(&[], 100, 0)]).await;
    let state = tempfile::tempdir().unwrap();
    let host = model_canary(
        &claude,
        &oai,
        state.path(),
        "{ min_requests: 10, max_refusal_rate: 0.1, interval: 50ms }",
    )
    .await;
    let versions = drive_rollout(&host, Some("model:chat"), "chat", 300).await;
    assert!(versions.iter().any(|v| v == "chat-next"), "{versions:?}");
    let (_, status) = admin_get(&host, "/admin/rollouts/model:chat").await;
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    let reason = status["rollout"]["reason"].as_str().unwrap();
    assert!(reason.contains("refusal rate 100.00% > 10.00%"), "{reason}");
    assert_eq!(
        status["step"]["canary"]["ai"]["refusal_rate"], 1.0,
        "{status}"
    );
    assert_eq!(
        status["step"]["stable"]["ai"]["refusal_rate"], 0.0,
        "{status}"
    );
    let metrics = admin_text(&host, "/admin/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("upshift_ai_refusals_total{")
                && l.contains("version=\"chat-next\"")
                && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_model_canary_slow_to_its_first_token_rolls_back_by_itself() {
    let (claude, oai) = claude_and_oai(
        vec![Answer::text(&["From claude."], 100, 20)],
        vec![Answer::Delayed(
            Duration::from_millis(300),
            Box::new(Answer::text(&["From ", "openai."], 100, 20)),
        )],
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let host = model_canary(
        &claude,
        &oai,
        state.path(),
        "{ min_requests: 5, max_ttft_ratio: 3, min_tokens_per_second: 1, interval: 50ms }",
    )
    .await;
    // Streamed answers: the first token is what the client waits for.
    let mut rounds = 0;
    loop {
        let response = send(&host, "/v1/chat/completions", &chat_request("chat", true)).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("data: [DONE]"), "{text}");
        rounds += 1;
        if rounds % 5 == 0 {
            let (_, state) = admin_get(&host, "/admin/rollouts/model:chat").await;
            if state["rollout"]["phase"] != "progressing" {
                break;
            }
        }
        assert!(rounds < 300, "still progressing after {rounds} calls");
    }
    let (_, status) = admin_get(&host, "/admin/rollouts/model:chat").await;
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    let reason = status["rollout"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("mean time to first token") && reason.contains("the stable's"),
        "{reason}"
    );
    let canary = &status["step"]["canary"]["ai"];
    assert!(
        canary["mean_ttft_ms"].as_f64().unwrap() >= 300.0,
        "{status}"
    );
    assert!(
        canary["tokens_per_second"].as_f64().unwrap() > 1.0,
        "{status}"
    );
    assert!(
        status["step"]["stable"]["ai"]["mean_ttft_ms"]
            .as_f64()
            .unwrap()
            < 100.0,
        "{status}"
    );
}

#[tokio::test]
async fn prompt_templates_are_endpoints_whose_versions_roll_out_like_upstreams() {
    let (claude, oai) = claude_and_oai(
        vec![Answer::text(&["From claude."], 30, 4)],
        vec![Answer::text(&["From openai."], 30, 4)],
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let host = host_with(state.path(), &[]);
    let document = config(
        &claude,
        &oai,
        &format!(
            "{MODELS}
  prompts:
    - name: summarize
      versions:
        - {{ name: v1, model: chat, weight: 100, max_tokens: 200, messages: [
            {{ role: system, content: 'Summarize in {{{{words}}}} words.' }},
            {{ role: user, content: '{{{{ text }}}}' }} ] }}
        - {{ name: v2, model: backup, weight: 0, temperature: 0.5, messages: [
            {{ role: user, content: 'TL;DR ({{{{words}}}} words): {{{{text}}}}' }} ] }}"
        ),
    )
    .replace("paths: [/v1]", "paths: [/v1, /prompts]");
    host.apply(&document).await;
    let variables = json!({"variables": {"text": "A long text.", "words": 12}});

    let (status, headers, body) = post(&host, "/prompts/summarize", &variables).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-upshift-version"), "v1");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "From claude.");
    let sent = &claude.received()[0].body;
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["system"], "Summarize in 12 words.", "{sent}");
    assert_eq!(sent["max_tokens"], 200);
    assert!(
        sent["messages"][0]["content"]
            .to_string()
            .contains("A long text."),
        "{sent}"
    );

    // Bad calls are clear.
    let mut streamed = variables.clone();
    streamed["stream"] = json!(true);
    let response = send(&host, "/prompts/summarize", &streamed).await;
    assert_eq!(header(response.headers(), "x-upshift-version"), "v1");
    let (chunks, done) = chunks_of(&response.text().await.unwrap());
    assert!(done);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "From claude.");
    assert_eq!(claude.received()[1].body["stream"], true);

    let (status, _, body) = post(
        &host,
        "/prompts/summarize",
        &json!({"variables": {"text": "x"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "missing_variable");
    assert_eq!(body["error"]["param"], "variables.words");
    let (status, _, body) = post(&host, "/prompts/translate", &variables).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "prompt_not_found");

    // v2 is rolled out like any upstream version: half, then all of it.
    let (status, body) = admin_post(
        &host,
        "/admin/rollouts",
        "service: 'prompt:summarize'\ncanary: v2\nsteps: [{ weight: 50, pause: manual }]\n",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut seen = Vec::new();
    for _ in 0..40 {
        let (status, headers, body) = post(&host, "/prompts/summarize", &variables).await;
        assert_eq!(status, 200, "{body}");
        seen.push(header(&headers, "x-upshift-version").to_owned());
    }
    let on_v2 = seen.iter().filter(|v| *v == "v2").count();
    assert!((8..=32).contains(&on_v2), "{on_v2} of 40 on v2");
    let (status, body) = admin_post(&host, "/admin/rollouts/prompt:summarize/promote", "").await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..10 {
        let (status, headers, body) = post(&host, "/prompts/summarize", &variables).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "x-upshift-version"), "v2");
        assert_eq!(body["choices"][0]["message"]["content"], "From openai.");
    }
    let last = oai.received().pop().unwrap().body;
    assert_eq!(last["model"], "gpt-4o-mini");
    assert_eq!(last["temperature"], 0.5);
    assert_eq!(
        last["messages"],
        json!([{"role": "user", "content": "TL;DR (12 words): A long text."}])
    );
    let (_, stats) = admin_get(&host, "/admin/stats").await;
    let v2 = stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "prompt:summarize" && s["version"] == "v2")
        .cloned()
        .unwrap_or_default();
    assert_eq!(v2["requests"], on_v2 + 10, "{stats}");
}

#[tokio::test]
async fn a_model_retries_its_provider_with_backoff_before_falling_back() {
    let error = |status, kind| Answer::Error {
        status,
        kind,
        message: "try again later",
    };
    let (claude, oai) = claude_and_oai(
        vec![
            error(429, "rate_limit_error"),
            error(529, "overloaded_error"),
            Answer::text(&["Third time lucky."], 20, 4),
            error(503, "api_error"),
        ],
        vec![Answer::text(&["From backup."], 20, 3)],
    )
    .await;
    let (_state, host) = serving(&config(
        &claude,
        &oai,
        "[{ alias: chat, provider: claude, model: claude-sonnet-4-5, fallbacks: [backup],
            retries: { attempts: 2, backoff_ms: 200 } },
          { alias: backup, provider: oai, model: gpt-4o-mini }]",
    ))
    .await;

    // 429, then 529: two pauses, 200 and 400 ms, then the answer.
    let started = std::time::Instant::now();
    let (status, headers, body) =
        post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-upshift-model"), "chat");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Third time lucky."
    );
    assert_eq!(claude.received().len(), 3);
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(oai.received().is_empty());

    // Three 503s use the retries up; the fallback answers, streamed too.
    let (status, headers, body) =
        post(&host, "/v1/chat/completions", &chat_request("chat", false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-upshift-model"), "backup");
    assert_eq!(claude.received().len(), 6);
    let response = send(&host, "/v1/chat/completions", &chat_request("chat", true)).await;
    assert_eq!(header(response.headers(), "x-upshift-model"), "backup");
    let (_, done) = chunks_of(&response.text().await.unwrap());
    assert!(done);
    assert_eq!(claude.received().len(), 9);
    assert_eq!(oai.received().len(), 2);
}
