//! The passthrough lane of a stream: the provider's events read on the way
//! for their usage.

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::dialect::{Decoder, Encoder};
use crate::errors::{ApiError, ErrorKind};
use crate::ir::{Delta, StopReason, StreamEvent, Usage};
use crate::translate::closing_events;
use crate::usage::TokenCounter;
use crate::{Dialect, StreamOptions, sse};

/// The passthrough lane of a stream: events go to the client as the
/// provider sent them, read on the way for their usage. An OpenAI client
/// that did not ask for the usage chunk does not get the one the gateway
/// asked for.
#[derive(Debug)]
pub(super) struct Tap {
    parser: sse::Parser,
    decoder: Decoder,
    dialect: Dialect,
    drop_usage_chunk: bool,
    options: StreamOptions,
    pub(super) usage: Usage,
    pub(super) output: TokenCounter,
    /// Why the provider says generation stopped, once it has.
    pub(super) stop_reason: Option<StopReason>,
    pub(super) done: bool,
    events: Vec<sse::Event>,
    ir: Vec<StreamEvent>,
    /// An encoder fed what passed, its output dropped, so that a cut can
    /// end the stream in the state the client's stream is in.
    shadow: Option<Encoder>,
    open: Option<usize>,
    started: bool,
}

impl Tap {
    pub(super) fn new(
        dialect: Dialect,
        drop_usage_chunk: bool,
        options: StreamOptions,
        cuttable: bool,
    ) -> Self {
        Tap {
            parser: sse::Parser::new(),
            decoder: Decoder::new(dialect),
            dialect,
            drop_usage_chunk,
            options,
            usage: Usage::default(),
            output: TokenCounter::default(),
            stop_reason: None,
            done: false,
            events: Vec::new(),
            ir: Vec::new(),
            shadow: cuttable.then(|| Encoder::new(dialect, options)),
            open: None,
            started: false,
        }
    }

    /// Ends the client's stream now, as [`StreamTranslator::cut`] does.
    pub(super) fn cut(&mut self, stop_reason: StopReason, out: &mut Vec<u8>) {
        let Some(encoder) = &mut self.shadow else {
            return;
        };
        if self.done {
            return;
        }
        let ir: Vec<StreamEvent> =
            closing_events(self.open, self.usage, &self.output, stop_reason).collect();
        let mut closing = Vec::new();
        if self.started {
            for event in &ir {
                encoder.encode(event, &mut closing);
            }
            encoder.flush(&mut closing);
        }
        for event in closing {
            event.write_to(out);
        }
        self.done = true;
    }

    pub(super) fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        self.parser.push(bytes, &mut events);
        self.pass(&mut events, out);
        self.events = events;
    }

    pub(super) fn finish(&mut self, complete: bool, out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        self.parser.finish(&mut events);
        self.pass(&mut events, out);
        if !self.done && !complete {
            let mut encoder = Encoder::new(self.dialect, self.options);
            let mut closing = Vec::new();
            encoder.encode(
                &StreamEvent::Error(ApiError::new(
                    ErrorKind::Server,
                    "the provider's stream broke off",
                )),
                &mut closing,
            );
            for event in closing {
                event.write_to(out);
            }
        }
    }

    fn pass(&mut self, events: &mut Vec<sse::Event>, out: &mut Vec<u8>) {
        if self.done && self.shadow.is_some() {
            // Cut: nothing more reaches the client.
            events.clear();
            return;
        }
        for event in events.drain(..) {
            self.observe(&event);
            if self.drop_usage_chunk && is_usage_chunk(&event) {
                continue;
            }
            event.write_to(out);
        }
    }

    fn observe(&mut self, event: &sse::Event) {
        let mut ir = std::mem::take(&mut self.ir);
        // The client gets the event either way; one the decoder cannot read
        // only goes uncounted.
        let _ = self.decoder.decode(event, &mut ir);
        if let Some(shadow) = &mut self.shadow {
            let mut dropped = Vec::new();
            for event in &ir {
                shadow.encode(event, &mut dropped);
            }
            shadow.flush(&mut dropped);
        }
        for event in ir.drain(..) {
            match event {
                StreamEvent::MessageStart { usage, .. } => {
                    self.started = true;
                    self.usage.merge(&usage);
                }
                StreamEvent::BlockStart { index, .. } => self.open = Some(index),
                StreamEvent::BlockStop { .. } => self.open = None,
                StreamEvent::MessageDelta {
                    stop_reason, usage, ..
                } => {
                    self.stop_reason = stop_reason.or(self.stop_reason);
                    if let Some(usage) = usage {
                        self.usage.merge(&usage);
                    }
                }
                StreamEvent::BlockDelta {
                    delta: Delta::Text(text) | Delta::Thinking(text) | Delta::Json(text),
                    ..
                } => self.output.add(&text),
                StreamEvent::MessageStop | StreamEvent::Error(_) => self.done = true,
                _ => {}
            }
        }
        self.ir = ir;
    }
}

/// An OpenAI Chat chunk that only carries usage (`choices` empty).
fn is_usage_chunk(event: &sse::Event) -> bool {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Option<Vec<IgnoredAny>>,
        #[serde(default)]
        usage: Option<IgnoredAny>,
    }
    match serde_json::from_str::<Chunk>(&event.data) {
        Ok(chunk) => chunk.usage.is_some() && chunk.choices.is_none_or(|c| c.is_empty()),
        Err(_) => false,
    }
}
