//! What a response stream has said so far, read from its IR events: both
//! lanes of a streamed answer (translated, or passed through and tapped)
//! keep it, to count the answer and to end the stream early.

use crate::dialect::MessageState;
use crate::ir::{Delta, StopReason, StreamEvent};
use crate::usage::TokenCounter;

/// The state of a stream as its events went by.
#[derive(Debug, Default)]
pub(crate) struct StreamProgress {
    /// Whether the message started.
    pub started: bool,
    /// The block open, if any.
    pub open: Option<usize>,
    /// The message so far: usage as the provider reported it, and why it
    /// stopped, once it has.
    pub message: MessageState,
    /// The output streamed so far, for an estimate of its tokens.
    pub output: TokenCounter,
    /// Whether the stream is complete: stopped, failed, or cut.
    pub done: bool,
}

impl StreamProgress {
    /// Takes in one event.
    pub fn observe(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::MessageStart { .. } => {
                self.started = true;
                self.message.observe(event);
            }
            StreamEvent::BlockStart { index, .. } => self.open = Some(*index),
            StreamEvent::BlockStop { .. } => self.open = None,
            StreamEvent::BlockDelta { delta, .. } => match delta {
                Delta::Text(text) | Delta::Thinking(text) | Delta::Json(text) => {
                    self.output.add(text)
                }
                Delta::Signature(_) => {}
            },
            StreamEvent::MessageDelta { .. } => self.message.observe(event),
            StreamEvent::MessageStop | StreamEvent::Error(_) => self.done = true,
        }
    }

    /// The events that end the stream early, cleanly: the open block
    /// closes and the message stops with `stop_reason` and the usage so far
    /// (the output tokens at least those counted on the way).
    pub fn closing_events(&self, stop_reason: StopReason) -> impl Iterator<Item = StreamEvent> {
        let mut usage = self.message.usage;
        usage.output_tokens = usage.output_tokens.max(self.output.tokens());
        let delta = StreamEvent::MessageDelta {
            stop_reason: Some(stop_reason),
            stop_sequence: None,
            usage: Some(usage),
        };
        self.open
            .map(|index| StreamEvent::BlockStop { index })
            .into_iter()
            .chain([delta, StreamEvent::MessageStop])
    }
}
