//! The client dialects the gateway serves, as the matrix sends and reads
//! them: OpenAI Chat Completions (`/v1/chat/completions`), OpenAI Responses
//! (`/v1/responses`) and Anthropic Messages (`/v1/messages`). Each asks the
//! same question (a system prompt, a user turn, one tool) and reads an
//! answer, whole or streamed, into the same [`Reply`].

use serde_json::{Value, json};

use super::{chunks_of, data_of};

/// An API shape clients speak to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI Chat Completions.
    Chat,
    /// OpenAI Responses.
    Responses,
    /// Anthropic Messages.
    Messages,
}

/// A tool call of an answer, its arguments parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The call's id.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments.
    pub arguments: Value,
}

/// How an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model stopped by itself.
    Stop,
    /// The model called tools.
    Tools,
}

/// An answer read in a dialect's terms.
#[derive(Debug, Default)]
pub struct Reply {
    /// The text, streamed pieces joined.
    pub text: String,
    /// The tool calls, streamed fragments joined.
    pub calls: Vec<Call>,
    /// Every finish the answer gave (a stream gives one), where the
    /// dialect has one.
    pub finish: Vec<Finish>,
    /// Prompt and completion tokens, where the answer reports them.
    pub usage: Option<(u64, u64)>,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 3] = [Dialect::Chat, Dialect::Responses, Dialect::Messages];

    /// A short name, for cell names.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Chat => "chat",
            Dialect::Responses => "responses",
            Dialect::Messages => "messages",
        }
    }

    /// Where its requests go.
    pub fn path(self) -> &'static str {
        match self {
            Dialect::Chat => "/v1/chat/completions",
            Dialect::Responses => "/v1/responses",
            Dialect::Messages => "/v1/messages",
        }
    }

    /// The question to `model`: a system prompt, "Weather in Paris?", the
    /// `get_weather` tool at the model's choice, 256 tokens at most and a
    /// temperature of 0.2.
    pub fn request(self, model: &str, stream: bool) -> Value {
        let parameters = json!({"type": "object", "properties": {"city": {"type": "string"}},
                                "required": ["city"]});
        match self {
            Dialect::Chat => super::chat_request(model, stream),
            Dialect::Responses => json!({
                "model": model,
                "instructions": "You are terse.",
                "input": [{"role": "user", "content": "Weather in Paris?"}],
                "tools": [{"type": "function", "name": "get_weather",
                           "description": "Current weather", "parameters": parameters}],
                "tool_choice": "auto",
                "max_output_tokens": 256,
                "temperature": 0.2,
                "stream": stream
            }),
            Dialect::Messages => json!({
                "model": model,
                "system": "You are terse.",
                "messages": [{"role": "user", "content": "Weather in Paris?"}],
                "tools": [{"name": "get_weather", "description": "Current weather",
                           "input_schema": parameters}],
                "tool_choice": {"type": "auto"},
                "max_tokens": 256,
                "temperature": 0.2,
                "stream": stream
            }),
        }
    }

    /// Text that shows the stream has ended: no more events follow it.
    pub fn end_marker(self) -> &'static str {
        match self {
            Dialect::Chat => "[DONE]",
            Dialect::Responses => "response.completed",
            Dialect::Messages => "message_stop",
        }
    }

    /// Reads a whole answer.
    pub fn whole(self, body: &Value) -> Reply {
        match self {
            Dialect::Chat => {
                let choice = &body["choices"][0];
                let message = &choice["message"];
                let calls = message["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        call(
                            &c["id"],
                            &c["function"]["name"],
                            &c["function"]["arguments"],
                        )
                    })
                    .collect();
                Reply {
                    text: message["content"].as_str().unwrap_or_default().to_owned(),
                    calls,
                    finish: chat_finish(&choice["finish_reason"]).into_iter().collect(),
                    usage: usage(&body["usage"], "prompt_tokens", "completion_tokens"),
                }
            }
            Dialect::Responses => {
                let output = body["output"].as_array().cloned().unwrap_or_default();
                Reply {
                    text: output
                        .iter()
                        .filter(|o| o["type"] == "message")
                        .flat_map(|o| o["content"].as_array().cloned().unwrap_or_default())
                        .filter_map(|c| c["text"].as_str().map(str::to_owned))
                        .collect(),
                    calls: responses_calls(&output),
                    finish: Vec::new(),
                    usage: usage(&body["usage"], "input_tokens", "output_tokens"),
                }
            }
            Dialect::Messages => {
                let content = body["content"].as_array().cloned().unwrap_or_default();
                Reply {
                    text: content
                        .iter()
                        .filter(|c| c["type"] == "text")
                        .filter_map(|c| c["text"].as_str())
                        .collect(),
                    calls: content
                        .iter()
                        .filter(|c| c["type"] == "tool_use")
                        .map(|c| Call {
                            id: c["id"].as_str().unwrap_or_default().to_owned(),
                            name: c["name"].as_str().unwrap_or_default().to_owned(),
                            arguments: c["input"].clone(),
                        })
                        .collect(),
                    finish: messages_finish(&body["stop_reason"]).into_iter().collect(),
                    usage: usage(&body["usage"], "input_tokens", "output_tokens"),
                }
            }
        }
    }

    /// Reads a streamed answer (the whole event stream), checking that it
    /// is framed as the dialect frames streams.
    pub fn streamed(self, stream: &str) -> Reply {
        match self {
            Dialect::Chat => {
                let (chunks, done) = chunks_of(stream);
                assert!(done, "the stream ends with [DONE]: {stream}");
                let deltas: Vec<&Value> =
                    chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
                let mut calls: Vec<(String, String, String)> = Vec::new();
                for delta in &deltas {
                    for call in delta["tool_calls"].as_array().into_iter().flatten() {
                        let index = call["index"].as_u64().expect("a call index") as usize;
                        if calls.len() <= index {
                            calls.resize(index + 1, Default::default());
                        }
                        let (id, name, arguments) = &mut calls[index];
                        id.push_str(call["id"].as_str().unwrap_or_default());
                        name.push_str(call["function"]["name"].as_str().unwrap_or_default());
                        arguments
                            .push_str(call["function"]["arguments"].as_str().unwrap_or_default());
                    }
                }
                Reply {
                    text: deltas
                        .iter()
                        .filter_map(|d| d["content"].as_str())
                        .collect(),
                    calls: calls
                        .into_iter()
                        .map(|(id, name, arguments)| {
                            call(
                                &Value::from(id),
                                &Value::from(name),
                                &Value::from(arguments),
                            )
                        })
                        .collect(),
                    finish: chunks
                        .iter()
                        .filter_map(|c| chat_finish(&c["choices"][0]["finish_reason"]))
                        .collect(),
                    usage: chunks
                        .iter()
                        .filter(|c| c["choices"] == json!([]))
                        .find_map(|c| usage(&c["usage"], "prompt_tokens", "completion_tokens")),
                }
            }
            Dialect::Responses => {
                let names = event_names(stream);
                assert_eq!(names.first(), Some(&"response.created"), "{stream}");
                assert_eq!(names.last(), Some(&"response.completed"), "{stream}");
                let events = events_of(stream);
                let completed = &events.last().expect("events")["response"];
                let output = completed["output"].as_array().cloned().unwrap_or_default();
                Reply {
                    text: events
                        .iter()
                        .filter(|e| e["type"] == "response.output_text.delta")
                        .filter_map(|e| e["delta"].as_str())
                        .collect(),
                    calls: responses_calls(&output),
                    finish: Vec::new(),
                    usage: usage(&completed["usage"], "input_tokens", "output_tokens"),
                }
            }
            Dialect::Messages => {
                let names = event_names(stream);
                assert_eq!(names.first(), Some(&"message_start"), "{stream}");
                assert_eq!(names.last(), Some(&"message_stop"), "{stream}");
                let events = events_of(stream);
                let mut calls: Vec<(u64, Call, String)> = Vec::new();
                for event in &events {
                    let index = event["index"].as_u64().unwrap_or_default();
                    let block = &event["content_block"];
                    if event["type"] == "content_block_start" && block["type"] == "tool_use" {
                        let id = block["id"].as_str().unwrap_or_default().to_owned();
                        let name = block["name"].as_str().unwrap_or_default().to_owned();
                        let arguments = Value::Null;
                        calls.push((
                            index,
                            Call {
                                id,
                                name,
                                arguments,
                            },
                            String::new(),
                        ));
                    }
                    if let Some(fragment) = event["delta"]["partial_json"].as_str()
                        && let Some((_, _, json)) = calls.iter_mut().find(|c| c.0 == index)
                    {
                        json.push_str(fragment);
                    }
                }
                Reply {
                    text: events
                        .iter()
                        .filter_map(|e| e["delta"]["text"].as_str())
                        .collect(),
                    calls: calls
                        .into_iter()
                        .map(|(_, call, json)| Call {
                            arguments: serde_json::from_str(&json)
                                .unwrap_or_else(|_| panic!("tool input {json}")),
                            ..call
                        })
                        .collect(),
                    finish: events
                        .iter()
                        .filter_map(|e| messages_finish(&e["delta"]["stop_reason"]))
                        .collect(),
                    usage: None,
                }
            }
        }
    }

    /// The type and message of an error answer, checking that it has the
    /// dialect's error shape.
    pub fn error(self, body: &Value) -> (String, String) {
        if self == Dialect::Messages {
            assert_eq!(body["type"], "error", "{body}");
        }
        let error = &body["error"];
        let text = |field: &str| error[field].as_str().unwrap_or_default().to_owned();
        (text("type"), text("message"))
    }
}

fn call(id: &Value, name: &Value, arguments: &Value) -> Call {
    let arguments = arguments.as_str().unwrap_or_default();
    Call {
        id: id.as_str().unwrap_or_default().to_owned(),
        name: name.as_str().unwrap_or_default().to_owned(),
        arguments: serde_json::from_str(arguments)
            .unwrap_or_else(|_| panic!("tool arguments {arguments}")),
    }
}

fn responses_calls(output: &[Value]) -> Vec<Call> {
    output
        .iter()
        .filter(|o| o["type"] == "function_call")
        .map(|o| call(&o["call_id"], &o["name"], &o["arguments"]))
        .collect()
}

fn chat_finish(reason: &Value) -> Option<Finish> {
    match reason.as_str()? {
        "tool_calls" => Some(Finish::Tools),
        _ => Some(Finish::Stop),
    }
}

fn messages_finish(reason: &Value) -> Option<Finish> {
    match reason.as_str()? {
        "tool_use" => Some(Finish::Tools),
        _ => Some(Finish::Stop),
    }
}

fn usage(usage: &Value, input: &str, output: &str) -> Option<(u64, u64)> {
    Some((usage[input].as_u64()?, usage[output].as_u64()?))
}

/// The names of a stream's events, in order.
fn event_names(stream: &str) -> Vec<&str> {
    stream
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect()
}

/// The JSON payloads of a stream's events, in order.
fn events_of(stream: &str) -> Vec<Value> {
    data_of(stream)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| panic!("bad event {d}")))
        .collect()
}
