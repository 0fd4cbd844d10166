//! A streamed provider answer on its way to the client: translated or
//! tapped, cut when the caller's budget runs out, counted at its end.

use super::tap::Tap;
use upshift_model::store::Store;

use super::Call;
use crate::best_effort::BestEffort;
use crate::ir::{StopReason, Usage};
use crate::usage;
use crate::{Dialect, StreamTranslator};

impl Call {
    /// A translator for the streamed success response of attempt `index`.
    pub fn stream(&self, index: usize) -> Stream {
        let attempts = self.attempts();
        let attempt = attempts.get(index).unwrap_or(&attempts[0]);
        let options = self.stream_options();
        let lane = if attempt.passthrough(self.ingress) {
            StreamLane::Tap(Box::new(Tap::new(
                self.ingress,
                self.ingress == Dialect::OpenAiChat && !self.include_usage,
                options,
                self.allowance.is_some(),
            )))
        } else {
            StreamLane::Translate(Box::new(StreamTranslator::new(
                attempt.dialect,
                self.ingress,
                options,
            )))
        };
        let input_estimate = match self.allowance {
            Some(_) => self.request().map_or(0, usage::estimate_request),
            None => 0,
        };
        Stream {
            lane,
            attempt: index,
            allowance: self.allowance,
            input_estimate,
            cut: false,
        }
    }
}

/// One streamed response on its way to the client.
#[derive(Debug)]
pub struct Stream {
    lane: StreamLane,
    attempt: usize,
    /// Tokens the stream may use before it is cut.
    allowance: Option<u64>,
    /// Prompt tokens estimated, until the provider reports its count.
    input_estimate: u64,
    /// Whether the budget cut the stream.
    cut: bool,
}

#[derive(Debug)]
enum StreamLane {
    Translate(Box<StreamTranslator>),
    Tap(Box<Tap>),
}

impl Stream {
    /// Response headers for the client.
    pub fn headers() -> Vec<(String, String)> {
        vec![
            ("content-type".to_owned(), "text/event-stream".to_owned()),
            ("cache-control".to_owned(), "no-cache".to_owned()),
        ]
    }

    /// Feeds upstream bytes; appends the client bytes they complete. When
    /// the caller's budget runs out, the client's stream ends there,
    /// cleanly (stop reason: length), and [`Stream::is_done`] turns true.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        match &mut self.lane {
            StreamLane::Translate(translator) => translator.push(bytes, out),
            StreamLane::Tap(tap) => tap.push(bytes, out),
        }
        if let Some(allowance) = self.allowance
            && !self.is_done()
            && self.spent() >= allowance
        {
            self.cut = true;
            match &mut self.lane {
                StreamLane::Translate(translator) => translator.cut(StopReason::MaxTokens, out),
                StreamLane::Tap(tap) => tap.cut(StopReason::MaxTokens, out),
            }
        }
    }

    /// Whether the client's stream is complete: the provider ended it, it
    /// failed, or the budget cut it. The upstream need not be read further.
    pub fn is_done(&self) -> bool {
        match &self.lane {
            StreamLane::Translate(translator) => translator.is_done(),
            StreamLane::Tap(tap) => tap.progress.done,
        }
    }

    /// Whether the budget cut the stream.
    pub fn was_cut(&self) -> bool {
        self.cut
    }

    /// Tokens used so far: the prompt (reported, or estimated) and the
    /// output (the larger of reported and estimated).
    fn spent(&self) -> u64 {
        let (usage, output) = self.usage();
        let input = match usage.input_tokens {
            0 => self.input_estimate,
            n => n,
        };
        input + usage.output_tokens.max(output)
    }

    /// Usage reported so far, and the output tokens estimated.
    fn usage(&self) -> (Usage, u64) {
        match &self.lane {
            StreamLane::Translate(translator) => {
                (translator.usage(), translator.estimated_output_tokens())
            }
            StreamLane::Tap(tap) => (tap.progress.message.usage, tap.progress.output.tokens()),
        }
    }

    /// The upstream body ended, cleanly or not (`complete`); appends what
    /// ends the client's stream and counts the usage of `call`.
    pub fn finish(&mut self, call: &Call, complete: bool, out: &mut Vec<u8>, store: &dyn Store) {
        match &mut self.lane {
            StreamLane::Translate(translator) => translator.finish(out),
            StreamLane::Tap(tap) => tap.finish(complete, out),
        }
        let (mut usage, output) = self.usage();
        if self.cut {
            // The provider's count stopped where the client's stream did not.
            usage.output_tokens = usage.output_tokens.max(output);
        }
        let stop_reason = match &self.lane {
            StreamLane::Translate(translator) => translator.stop_reason(),
            StreamLane::Tap(tap) => tap.progress.message.stop_reason,
        };
        if let Some(attempt) = call.attempts().get(self.attempt) {
            call.record(attempt, (usage, output), stop_reason, &BestEffort(store));
        }
    }
}
