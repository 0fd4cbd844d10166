//! Every client dialect against every provider family, for each kind of
//! exchange: a whole answer, a stream, tool calls (whole and streamed) and
//! a provider error. One host serves every cell, each cell with its own
//! fake provider and model alias; a cell the fake cannot serve (see
//! [`Capabilities`](crate::support::providers::Capabilities)) is skipped,
//! and the test names every cell that failed.
//!
//! What holds for every cell is checked here; what one pair shows beyond
//! that (a translation field by field, an answer passed on as it is) is in
//! [`details`](super::details).

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use super::details;
use super::dialects::{Call, Dialect, Finish, Reply};
use super::families::Family;
use super::{ai_document, header, host_with, send, weather_tool};
use crate::support::Host;
use crate::support::providers::{Answer, Provider};

/// Prompt and completion tokens every fake answer reports.
pub const USAGE: (u64, u64) = (412, 57);

/// What a cell asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A text answer, whole.
    Whole,
    /// A text answer, streamed; the provider holds the rest after its
    /// first piece.
    Stream,
    /// A text and a tool call, whole and then streamed.
    Tools,
    /// The provider refuses with a 429.
    Error,
}

impl Case {
    const ALL: [Case; 4] = [Case::Whole, Case::Stream, Case::Tools, Case::Error];

    fn name(self) -> &'static str {
        match self {
            Case::Whole => "whole",
            Case::Stream => "stream",
            Case::Tools => "tools",
            Case::Error => "error",
        }
    }

    /// What the provider answers.
    fn answer(self) -> Answer {
        match self {
            Case::Whole | Case::Stream => Answer::text(&["Check", "ing."], USAGE.0, USAGE.1),
            Case::Tools => Answer::Complete {
                text: vec!["Check", "ing."],
                tools: vec![weather_tool()],
                input_tokens: USAGE.0,
                output_tokens: USAGE.1,
            },
            Case::Error => Answer::Error {
                status: 429,
                kind: "rate_limit_error",
                message: "Slow down",
            },
        }
    }

    /// How many calls its provider gets.
    fn calls(self) -> usize {
        match self {
            Case::Tools => 2,
            Case::Whole | Case::Stream | Case::Error => 1,
        }
    }
}

/// One client dialect, provider family and case, with its own provider.
pub struct Cell {
    /// The client's dialect.
    pub dialect: Dialect,
    /// The provider's family.
    pub family: Family,
    /// What is asked.
    pub case: Case,
    /// The fake provider behind the cell's alias.
    pub provider: Provider,
}

impl Cell {
    /// `dialect/family/case`, also the name of its provider and alias.
    pub fn name(&self) -> String {
        format!(
            "{}-{}-{}",
            self.dialect.name(),
            self.family.name(),
            self.case.name()
        )
    }

    /// The `x-upshift-upstream` of its answers.
    fn upstream(&self) -> String {
        format!("{}@{}", self.name(), self.family.model())
    }
}

/// Why a fake cannot serve a cell, if it cannot.
fn unsupported(dialect: Dialect, family: Family) -> Option<&'static str> {
    let responses_api = family.kind().capabilities().responses_api;
    (dialect == Dialect::Responses && family.takes_responses() && !responses_api)
        .then_some("the gateway calls it with the Responses API, which no fake serves")
}

#[tokio::test]
async fn every_client_dialect_reaches_every_provider_family() {
    let mut cells = Vec::new();
    for dialect in Dialect::ALL {
        for family in Family::ALL {
            if let Some(reason) = unsupported(dialect, family) {
                eprintln!("skipped {}-{}: {reason}", dialect.name(), family.name());
                continue;
            }
            for case in Case::ALL {
                let provider = Provider::start(family.kind(), vec![case.answer()]).await;
                cells.push(Cell {
                    dialect,
                    family,
                    case,
                    provider,
                });
            }
        }
    }
    let state = tempfile::tempdir().unwrap();
    let host = host_with(state.path(), &[]);
    host.apply(&config(&cells)).await;

    let mut failed = Vec::new();
    for cell in &cells {
        if let Err(panic) = AssertUnwindSafe(run(&host, cell)).catch_unwind().await {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{}: {message}", cell.name()));
        }
    }
    // No cell's request reached another cell's provider.
    for cell in &cells {
        let calls = cell.provider.received().len();
        if calls != cell.case.calls() {
            failed.push(format!("{}: {calls} provider calls", cell.name()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cells failed:\n{}",
        failed.len(),
        cells.len(),
        failed.join("\n")
    );
}

/// The AI route, with each cell's provider and alias.
fn config(cells: &[Cell]) -> String {
    let mut providers = String::new();
    let mut models = Vec::new();
    for cell in cells {
        let name = cell.name();
        providers.push_str(&cell.family.provider_entry(&name, &cell.provider));
        models.push(format!(
            "{{ alias: {name}, provider: {name}, model: {} }}",
            cell.family.model()
        ));
    }
    ai_document(&providers, &format!("[{}]", models.join(", ")))
}

/// Runs a cell, panicking at the first thing that is not as it should be.
async fn run(host: &Host, cell: &Cell) {
    match cell.case {
        Case::Whole => {
            let (request, body) = ask(host, cell).await;
            let reply = cell.dialect.whole(&body);
            assert_eq!(reply.text, "Checking.");
            assert!(reply.calls.is_empty(), "{body}");
            assert_finish(cell, &reply, Finish::Stop);
            assert_eq!(reply.usage, Some(USAGE), "{body}");
            details::whole(cell, &request, &body);
        }
        Case::Stream => {
            let stream = hold_and_stream(host, cell).await;
            let reply = cell.dialect.streamed(&stream);
            assert_eq!(reply.text, "Checking.", "{stream}");
            assert!(reply.calls.is_empty(), "{stream}");
            assert_finish(cell, &reply, Finish::Stop);
            if cell.dialect != Dialect::Messages {
                assert_eq!(reply.usage, Some(USAGE), "{stream}");
            }
            details::stream(cell, &stream);
        }
        Case::Tools => {
            let (request, body) = ask(host, cell).await;
            let reply = cell.dialect.whole(&body);
            assert_tool_call(cell, &reply);
            assert_eq!(reply.usage, Some(USAGE), "{body}");
            details::tools(cell, &request, &body);

            let stream = ask_streamed(host, cell).await;
            let reply = cell.dialect.streamed(&stream);
            assert_tool_call(cell, &reply);
            cell.family.check_call(&cell.provider.received()[1], true);
            details::tools_streamed(cell, &stream);
        }
        Case::Error => {
            let request = cell.dialect.request(&cell.name(), false);
            let response = send(host, cell.dialect.path(), &request).await;
            assert_eq!(response.status(), 429);
            let body: Value = response.json().await.unwrap();
            let (kind, message) = cell.dialect.error(&body);
            assert_eq!(kind, "rate_limit_error", "{body}");
            assert_eq!(message, "Slow down", "{body}");
            cell.family.check_call(&cell.provider.received()[0], false);
        }
    }
}

/// Sends `request`, expecting the cell's provider to answer it with
/// `content_type`: the response, its body unread.
async fn served(
    host: &Host,
    cell: &Cell,
    request: &Value,
    content_type: &str,
) -> reqwest::Response {
    let response = send(host, cell.dialect.path(), request).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(header(headers, "content-type"), content_type);
    assert_eq!(header(headers, "x-upshift-upstream"), cell.upstream());
    assert_eq!(header(headers, "x-upshift-model"), cell.name());
    response
}

/// Asks the cell's question whole: the request and the JSON answer, after
/// the checks every whole answer passes.
async fn ask(host: &Host, cell: &Cell) -> (Value, Value) {
    let mut request = cell.dialect.request(&cell.name(), false);
    details::adjust(cell, &mut request);
    let response = served(host, cell, &request, "application/json").await;
    let body: Value = response.json().await.unwrap();
    cell.family.check_call(&cell.provider.received()[0], false);
    (request, body)
}

/// Asks the cell's question streamed: the whole event stream.
async fn ask_streamed(host: &Host, cell: &Cell) -> String {
    let request = cell.dialect.request(&cell.name(), true);
    let response = served(host, cell, &request, "text/event-stream").await;
    response.text().await.unwrap()
}

/// Asks the cell's question streamed while the provider holds its stream
/// after the first piece: the client gets what was sent before the rest
/// exists. The whole event stream.
async fn hold_and_stream(host: &Host, cell: &Cell) -> String {
    let gate = cell.provider.hold_streams();
    let mut request = cell.dialect.request(&cell.name(), true);
    if cell.dialect == Dialect::Chat {
        request["stream_options"] = json!({"include_usage": true});
    }
    let response = served(host, cell, &request, "text/event-stream").await;
    let mut body = response.bytes_stream();
    let mut received = String::new();
    while !received.contains("\"Check\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the first piece arrives while the provider holds the rest")
            .expect("the stream goes on")
            .unwrap();
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(!received.contains(cell.dialect.end_marker()), "{received}");
    gate.open();
    while let Some(chunk) = body.next().await {
        received.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    cell.family.check_call(&cell.provider.received()[0], true);
    received
}

/// The answer ended as `finish`, where the dialect says how it ended.
fn assert_finish(cell: &Cell, reply: &Reply, finish: Finish) {
    if cell.dialect != Dialect::Responses {
        assert_eq!(reply.finish, [finish]);
    }
}

/// The answer is "Checking." and a call of `get_weather` for Paris, with
/// the provider's call id when it gives one.
fn assert_tool_call(cell: &Cell, reply: &Reply) {
    assert_eq!(reply.text, "Checking.");
    assert_finish(cell, reply, Finish::Tools);
    let [call] = reply.calls.as_slice() else {
        panic!("one tool call: {:?}", reply.calls);
    };
    let expected = Call {
        id: call.id.clone(),
        name: "get_weather".to_owned(),
        arguments: json!({"city": "Paris"}),
    };
    assert_eq!(call, &expected);
    if cell.family.kind().capabilities().tool_call_ids {
        assert_eq!(call.id, "toolu_01");
    } else {
        assert!(!call.id.is_empty(), "calls without an id get one");
    }
}
