//! The passthrough lane of a stream: the provider's events read on the way
//! for their usage.

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::dialect::{Decoder, Encoder};
use crate::errors::{ApiError, ErrorKind};
use crate::ir::{StopReason, StreamEvent};
use crate::stream_progress::StreamProgress;
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
    /// What the provider's stream said so far.
    pub(super) progress: StreamProgress,
    events: Vec<sse::Event>,
    ir: Vec<StreamEvent>,
    /// An encoder fed what passed, its output dropped, so that a cut can
    /// end the stream in the state the client's stream is in.
    shadow: Option<Encoder>,
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
            progress: StreamProgress::default(),
            events: Vec::new(),
            ir: Vec::new(),
            shadow: cuttable.then(|| Encoder::new(dialect, options)),
        }
    }

    /// Ends the client's stream now, as [`StreamTranslator::cut`] does.
    pub(super) fn cut(&mut self, stop_reason: StopReason, out: &mut Vec<u8>) {
        let Some(encoder) = &mut self.shadow else {
            return;
        };
        if self.progress.done {
            return;
        }
        let ir: Vec<StreamEvent> = self.progress.closing_events(stop_reason).collect();
        let mut closing = Vec::new();
        if self.progress.started {
            for event in &ir {
                encoder.encode(event, &mut closing);
            }
            encoder.flush(&mut closing);
        }
        for event in closing {
            event.write_to(out);
        }
        self.progress.done = true;
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
        if !self.progress.done && !complete {
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
        if self.progress.done && self.shadow.is_some() {
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
            self.progress.observe(&event);
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
