//! Token usage when the provider does not report it.
//!
//! Providers report usage in every dialect (see [`crate::ir::Usage`] for how
//! their counts are normalized); some OpenAI-compatible backends omit it,
//! and a stream cut short never gets to it. For those cases this module
//! estimates, without a tokenizer:
//!
//! - text: one token per 4 bytes of ASCII (rounded up), plus one token per
//!   non-ASCII character (CJK characters are about one token each in the
//!   common BPE vocabularies; accented Latin is over-counted, which errs on
//!   the side of budgets);
//! - each message adds 3 tokens of framing and the reply 3 more (OpenAI's
//!   published counting rule for chat models);
//! - each image counts 765 tokens (OpenAI's figure for a 1024×1024
//!   high-detail image);
//! - tool definitions count as the text of their name, description and
//!   schema; tool calls and results as the text of their input and content.
//!
//! Expect ±25% on English prose and code; use the provider's counts
//! whenever they exist.

use crate::ir::{Block, Request, Usage};

/// Framing tokens per message.
const PER_MESSAGE: u64 = 3;
/// Tokens that prime the reply.
const REPLY_PRIMING: u64 = 3;
/// Tokens per image.
const PER_IMAGE: u64 = 765;

/// Counts text incrementally (stream deltas arrive in pieces).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenCounter {
    ascii_bytes: u64,
    other_chars: u64,
}

impl TokenCounter {
    /// Adds a piece of text.
    pub fn add(&mut self, text: &str) {
        let ascii = text.bytes().filter(u8::is_ascii).count() as u64;
        self.ascii_bytes += ascii;
        if ascii < text.len() as u64 {
            self.other_chars += text.chars().filter(|c| !c.is_ascii()).count() as u64;
        }
    }

    /// The estimate for everything added.
    pub fn tokens(&self) -> u64 {
        self.ascii_bytes.div_ceil(4) + self.other_chars
    }
}

/// Estimated tokens of a text.
pub fn estimate_text(text: &str) -> u64 {
    let mut counter = TokenCounter::default();
    counter.add(text);
    counter.tokens()
}

/// Estimated prompt tokens of a request.
pub fn estimate_request(request: &Request) -> u64 {
    let mut counter = TokenCounter::default();
    let mut fixed = REPLY_PRIMING;
    for text in &request.system {
        counter.add(&text.text);
        fixed += PER_MESSAGE;
    }
    for message in &request.messages {
        fixed += PER_MESSAGE + count_blocks(&message.content, &mut counter);
    }
    for tool in &request.tools {
        counter.add(&tool.name);
        counter.add(tool.description.as_deref().unwrap_or(""));
        counter.add(tool.parameters.as_ref().map_or("", |p| p.get()));
    }
    fixed + counter.tokens()
}

/// Estimated tokens of generated blocks.
pub fn estimate_output(blocks: &[Block]) -> u64 {
    let mut counter = TokenCounter::default();
    count_blocks(blocks, &mut counter) + counter.tokens()
}

/// Adds the text of `blocks` to `counter`; returns the fixed tokens
/// (images).
fn count_blocks(blocks: &[Block], counter: &mut TokenCounter) -> u64 {
    let mut fixed = 0;
    for block in blocks {
        match block {
            Block::Text(text) => counter.add(&text.text),
            Block::Image(_) => fixed += PER_IMAGE,
            Block::ToolUse(call) => {
                counter.add(&call.name);
                counter.add(call.input.get());
            }
            Block::ToolResult(result) => fixed += count_blocks(&result.content, counter),
            Block::Thinking(thinking) => counter.add(&thinking.text),
            Block::RedactedThinking { .. } => {}
        }
    }
    fixed
}

/// `usage` with the counts the provider left at zero estimated from the
/// request and the output.
pub fn with_estimates(usage: Usage, request: &Request, output: &[Block]) -> Usage {
    Usage {
        input_tokens: match usage.input_tokens {
            0 => estimate_request(request),
            n => n,
        },
        output_tokens: match usage.output_tokens {
            0 => estimate_output(output),
            n => n,
        },
        ..usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Message, Role, Text};

    #[test]
    fn counts_ascii_by_four_and_other_characters_one_each() {
        assert_eq!(estimate_text(""), 0);
        assert_eq!(estimate_text("abcd"), 1);
        assert_eq!(estimate_text("abcde"), 2);
        assert_eq!(estimate_text("日本語"), 3);
        let mut counter = TokenCounter::default();
        for piece in ["ab", "cd", "ef", "gh"] {
            counter.add(piece);
        }
        assert_eq!(counter.tokens(), 2, "pieces add up like the whole");
    }

    #[test]
    fn requests_count_framing_text_and_images() {
        let request = Request {
            system: vec![Text::plain("Be terse.")],
            messages: vec![Message {
                role: Role::User,
                content: vec![Block::Text(Text::plain(
                    "What is the weather in Paris today?",
                ))],
            }],
            ..Request::default()
        };
        // 3 priming + 3 + 3 framing + ceil((9 + 35) / 4) text.
        assert_eq!(estimate_request(&request), 9 + 11);
    }

    #[test]
    fn reported_counts_win_over_estimates() {
        let request = Request::default();
        let output = [Block::Text(Text::plain("12345678"))];
        let reported = Usage {
            input_tokens: 40,
            ..Usage::default()
        };
        let usage = with_estimates(reported, &request, &output);
        assert_eq!(usage.input_tokens, 40);
        assert_eq!(usage.output_tokens, 2);
    }
}
