//! What a stream says of its message as a whole (the encoders write it
//! out, and the gateway counts the stream's usage with it), and the
//! numbering of its content blocks.

use crate::ir::{BlockStart, StopReason, StreamEvent, Usage};

/// The message of a stream, as its start and delta events bring it: id,
/// model, creation time, stop reason and usage.
#[derive(Debug, Default)]
pub(crate) struct MessageState {
    pub id: String,
    pub model: String,
    /// Unix seconds: the client's clock until the upstream gives its own.
    pub created: u64,
    pub stop_reason: Option<StopReason>,
    pub usage: Usage,
}

impl MessageState {
    /// A message stamped `created` until the upstream says otherwise.
    pub fn new(created: u64) -> Self {
        MessageState {
            created,
            ..MessageState::default()
        }
    }

    /// Takes in a `MessageStart` or `MessageDelta`; other events do not
    /// change the message.
    pub fn observe(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::MessageStart {
                id,
                model,
                created,
                usage,
            } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                if *created != 0 {
                    self.created = *created;
                }
                self.usage.merge(usage);
            }
            StreamEvent::MessageDelta {
                stop_reason, usage, ..
            } => {
                self.stop_reason = stop_reason.or(self.stop_reason);
                if let Some(usage) = usage {
                    self.usage.merge(usage);
                }
            }
            _ => {}
        }
    }
}

/// The indices of the content blocks a decoder starts, in order from 0.
#[derive(Debug, Default)]
pub(crate) struct BlockIndices {
    next: usize,
}

impl BlockIndices {
    /// Starts the next block, `block`; returns its index.
    pub fn start(&mut self, block: BlockStart, out: &mut Vec<StreamEvent>) -> usize {
        let index = self.next;
        self.next += 1;
        out.push(StreamEvent::BlockStart { index, block });
        index
    }
}
