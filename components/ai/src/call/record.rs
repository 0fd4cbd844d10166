//! Counting an answered call: usage counters, cost, budgets, and what
//! the answer came to.

use upshift_model::ai::usage_keys;

use super::{Call, CountedAnswer, ProviderRequest};
use crate::best_effort::BestEffort;
use crate::ir::{StopReason, Usage};
use crate::usage;

impl Call {
    /// where the provider gave none, and whether the answer (which stopped
    /// for `stop_reason`) was a refusal.
    pub(super) fn record(
        &self,
        attempt: &ProviderRequest,
        (reported, output): (Usage, u64),
        stop_reason: Option<StopReason>,
        store: &BestEffort<'_>,
    ) {
        let input = match reported.input_tokens {
            0 if self.embeddings => {
                usage::estimate_text(&String::from_utf8_lossy(&self.variant().body))
            }
            0 => self.request().map_or_else(
                || usage::estimate_text(&String::from_utf8_lossy(&self.variant().body)),
                usage::estimate_request,
            ),
            n => n,
        };
        let output = match reported.output_tokens {
            0 => output,
            n => n,
        };
        self.answered.set(CountedAnswer {
            counted: true,
            input_tokens: input,
            output_tokens: output,
            refused: !self.embeddings
                && (stop_reason == Some(StopReason::ContentFilter) || output == 0),
        });
        let caller = &self.caller;
        let key = |field| {
            usage_keys::usage(
                caller.tenant.as_deref(),
                caller.consumer.as_deref(),
                &attempt.alias,
                field,
            )
        };
        store.add(&key(usage_keys::REQUESTS), 1);
        let cost = attempt.price.map_or(0, |p| p.cost_nanousd(input, output));
        self.spent.set(self.spent.get().saturating_add(cost));
        for (field, delta) in [
            (usage_keys::INPUT_TOKENS, input),
            (usage_keys::OUTPUT_TOKENS, output),
            (usage_keys::COST_NANOUSD, cost),
        ] {
            if delta > 0 {
                store.add(&key(field), delta);
            }
        }
        if input + output > 0 {
            for budget in &self.budget_keys {
                store.add(budget, input + output);
            }
            for stale in &self.stale_keys {
                store.delete(stale);
            }
        }
    }
}
