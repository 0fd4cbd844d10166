//! Translation between dialects: whole bodies, and streams event by event.

use crate::dialect::{Decoder, Dialect, Encoder, StreamOptions};
use crate::errors::{ApiError, ErrorKind, TranslateError};
use crate::ir::{Block, BlockStart, Delta, Response, StopReason, StreamEvent, Usage};
use crate::sse;
use crate::stream_progress::StreamProgress;

/// Translates a request body from one dialect to another.
pub fn translate_request(
    from: Dialect,
    to: Dialect,
    body: &[u8],
) -> Result<Vec<u8>, TranslateError> {
    to.render_request(&from.parse_request(body)?)
}

/// Translates a (non-streamed) response body from one dialect to another.
/// OpenAI's `created` stays 0 when the upstream has none: use
/// [`Dialect::parse_response`] and set [`crate::ir::Response::created`] to
/// stamp it.
pub fn translate_response(
    from: Dialect,
    to: Dialect,
    body: &[u8],
) -> Result<Vec<u8>, TranslateError> {
    to.render_response(&from.parse_response(body)?)
}

/// Writes a complete response as the stream a client of dialect `to` reads:
/// for a provider that answered a streamed request whole. The events are
/// those a stream of the same answer carries, through the same encoder a
/// translated stream uses. A response with blocks no stream carries (an
/// image, a tool result) cannot be written.
pub fn stream_response(
    to: Dialect,
    response: &Response,
    options: StreamOptions,
) -> Result<Vec<u8>, TranslateError> {
    let mut encoder = Encoder::new(to, options);
    let mut downstream = Vec::new();
    for event in response_events(response)? {
        encoder.encode(&event, &mut downstream);
    }
    encoder.flush(&mut downstream);
    let mut out = Vec::new();
    write_all(&mut downstream, &mut out);
    Ok(out)
}

/// The events of a stream that delivers `response`: each block whole, the
/// input side of the usage at the start (as providers report it there),
/// all of it with the stop reason.
fn response_events(response: &Response) -> Result<Vec<StreamEvent>, TranslateError> {
    let usage = response.usage;
    let mut events = vec![StreamEvent::MessageStart {
        id: response.id.clone(),
        model: response.model.clone(),
        created: response.created,
        usage: Usage {
            output_tokens: 0,
            reasoning_tokens: 0,
            ..usage
        },
    }];
    for (index, block) in response.content.iter().enumerate() {
        let (start, deltas) = match block {
            Block::Text(text) => (BlockStart::Text, vec![Delta::Text(text.text.clone())]),
            Block::Thinking(thinking) => (
                BlockStart::Thinking,
                [
                    Some(Delta::Thinking(thinking.text.clone())),
                    thinking.signature.clone().map(Delta::Signature),
                ]
                .into_iter()
                .flatten()
                .collect(),
            ),
            Block::RedactedThinking { data } => {
                (BlockStart::RedactedThinking { data: data.clone() }, vec![])
            }
            Block::ToolUse(call) => (
                BlockStart::ToolUse {
                    id: call.id.clone(),
                    name: call.name.clone(),
                },
                vec![Delta::Json(call.input.get().to_owned())],
            ),
            Block::Image(_) => return Err(TranslateError::unsupported("an image in a stream")),
            Block::ToolResult(_) => {
                return Err(TranslateError::unsupported("a tool result in a stream"));
            }
        };
        events.push(StreamEvent::BlockStart {
            index,
            block: start,
        });
        events.extend(
            deltas
                .into_iter()
                .filter(|delta| !delta.is_empty())
                .map(|delta| StreamEvent::BlockDelta { index, delta }),
        );
        events.push(StreamEvent::BlockStop { index });
    }
    events.push(StreamEvent::MessageDelta {
        stop_reason: response.stop_reason,
        stop_sequence: response.stop_sequence.clone(),
        usage: Some(usage),
    });
    events.push(StreamEvent::MessageStop);
    Ok(events)
}

/// Translates a provider's error body of dialect `from`, returned with
/// `status`, into the status and body a client of dialect `to` expects.
pub fn translate_error(from: Dialect, to: Dialect, status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    ApiError::parse(from, status, body).render(to)
}

/// Translates one response stream as it arrives: each upstream chunk
/// yields the downstream chunks it completes, nothing is held back longer
/// than the target dialect requires (a Gemini function call is sent whole;
/// an Anthropic `message_delta` waits for the usage that follows the stop
/// reason).
///
/// A malformed upstream event ends the stream with an error event in the
/// downstream dialect; so does an upstream that closes before its end.
#[derive(Debug)]
pub struct StreamTranslator {
    parser: sse::Parser,
    decoder: Decoder,
    encoder: Encoder,
    upstream: Vec<sse::Event>,
    ir: Vec<StreamEvent>,
    downstream: Vec<sse::Event>,
    /// What the upstream said so far.
    progress: StreamProgress,
    error: Option<ApiError>,
}

impl StreamTranslator {
    /// A translator from an upstream of dialect `from` to a client of
    /// dialect `to`.
    pub fn new(from: Dialect, to: Dialect, options: StreamOptions) -> Self {
        StreamTranslator {
            parser: sse::Parser::new(),
            decoder: Decoder::new(from),
            encoder: Encoder::new(to, options),
            upstream: Vec::new(),
            ir: Vec::new(),
            downstream: Vec::new(),
            progress: StreamProgress::default(),
            error: None,
        }
    }

    /// Feeds upstream bytes; appends the downstream bytes they complete.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut upstream = std::mem::take(&mut self.upstream);
        self.parser.push(bytes, &mut upstream);
        let mut downstream = std::mem::take(&mut self.downstream);
        for event in upstream.drain(..) {
            self.push_event(&event, &mut downstream);
        }
        write_all(&mut downstream, out);
        self.upstream = upstream;
        self.downstream = downstream;
    }

    /// The upstream closed; appends what completes the downstream stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let mut upstream = std::mem::take(&mut self.upstream);
        self.parser.finish(&mut upstream);
        let mut downstream = std::mem::take(&mut self.downstream);
        for event in upstream.drain(..) {
            self.push_event(&event, &mut downstream);
        }
        self.finish_events(&mut downstream);
        write_all(&mut downstream, out);
        self.upstream = upstream;
        self.downstream = downstream;
    }

    /// Translates one parsed upstream event.
    pub fn push_event(&mut self, event: &sse::Event, out: &mut Vec<sse::Event>) {
        if self.progress.done {
            return;
        }
        let mut ir = std::mem::take(&mut self.ir);
        if let Err(error) = self.decoder.decode(event, &mut ir) {
            ir.push(StreamEvent::Error(ApiError::new(
                ErrorKind::Server,
                format!("upstream stream: {error}"),
            )));
        }
        self.emit(&mut ir, out);
        self.ir = ir;
    }

    /// The upstream closed (event-level counterpart of [`Self::finish`]).
    pub fn finish_events(&mut self, out: &mut Vec<sse::Event>) {
        if self.progress.done {
            return;
        }
        let mut ir = std::mem::take(&mut self.ir);
        self.decoder.finish(&mut ir);
        self.emit(&mut ir, out);
        self.ir = ir;
    }

    fn emit(&mut self, ir: &mut Vec<StreamEvent>, out: &mut Vec<sse::Event>) {
        for event in ir.drain(..) {
            self.progress.observe(&event);
            if let StreamEvent::Error(error) = &event {
                self.error = Some(error.clone());
            }
            self.encoder.encode(&event, out);
            if self.progress.done {
                break;
            }
        }
        ir.clear();
        self.encoder.flush(out);
    }

    /// Ends the downstream stream cleanly before the upstream has: the open
    /// block closes and the message stops with `stop_reason` (the client
    /// sees a normal end, e.g. OpenAI's `finish_reason: "length"` and
    /// `[DONE]`). Nothing more is translated afterwards.
    pub fn cut(&mut self, stop_reason: StopReason, out: &mut Vec<u8>) {
        if self.progress.done {
            return;
        }
        let mut ir = Vec::with_capacity(3);
        if !self.progress.started {
            ir.push(StreamEvent::MessageStart {
                id: String::new(),
                model: String::new(),
                created: 0,
                usage: Usage::default(),
            });
        }
        ir.extend(self.progress.closing_events(stop_reason));
        let mut downstream = std::mem::take(&mut self.downstream);
        self.emit(&mut ir, &mut downstream);
        write_all(&mut downstream, out);
        self.downstream = downstream;
        self.progress.done = true;
    }

    /// Usage as the upstream reported it so far.
    pub fn usage(&self) -> Usage {
        self.progress.message.usage
    }

    /// Estimated output tokens of what streamed so far (for upstreams that
    /// report no usage; see [`crate::usage`]).
    pub fn estimated_output_tokens(&self) -> u64 {
        self.progress.output.tokens()
    }

    /// Why generation stopped, once known.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.progress.message.stop_reason
    }

    /// The error that ended the stream, if one did.
    pub fn error(&self) -> Option<&ApiError> {
        self.error.as_ref()
    }

    /// Whether the stream is complete (stopped or failed).
    pub fn is_done(&self) -> bool {
        self.progress.done
    }
}

fn write_all(events: &mut Vec<sse::Event>, out: &mut Vec<u8>) {
    for event in events.drain(..) {
        event.write_to(out);
    }
}
