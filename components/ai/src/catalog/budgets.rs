//! Token budgets: the counters a call adds its tokens to, and the refusal
//! when one is used up.

use upshift_model::Period;
use upshift_model::ai::usage_keys;

use super::Catalog;
use crate::Dialect;
use crate::best_effort::BestEffort;
use crate::call::{Caller, Reply};

/// The budget counters a call adds its tokens to.
pub(super) struct BudgetCounters {
    pub(super) keys: Vec<String>,
    /// Counters of the minute before, removed once the call is counted.
    pub(super) stale: Vec<String>,
    /// Tokens left in the tightest budget.
    pub(super) allowance: Option<u64>,
}

/// A token budget, compiled.
#[derive(Debug)]
pub(super) struct TokenBudget {
    /// `consumer` or `tenant`.
    pub(super) scope: Scope,
    pub(super) name: String,
    pub(super) per_minute: Option<u64>,
    pub(super) per_day: Option<u64>,
    pub(super) per_month: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Consumer,
    Tenant,
}

impl Catalog {
    /// The budget counters of `caller`'s budgets, those of the minute
    /// before (to remove once the call is counted), and the tokens left in
    /// the tightest; or the refusal when one is used up.
    pub(super) fn budget_keys(
        &self,
        ingress: Dialect,
        caller: &Caller,
        now_ms: u64,
        store: &BestEffort<'_>,
    ) -> Result<BudgetCounters, Reply> {
        let mut keys = Vec::new();
        let mut stale = Vec::new();
        let mut allowance: Option<u64> = None;
        for budget in &self.budgets {
            let subject = match budget.scope {
                Scope::Consumer => caller.consumer.as_deref(),
                Scope::Tenant => caller.tenant.as_deref(),
            };
            if subject != Some(budget.name.as_str()) {
                continue;
            }
            let key = |period: &str| match budget.scope {
                Scope::Consumer => usage_keys::consumer_budget(&budget.name, period),
                Scope::Tenant => usage_keys::tenant_budget(&budget.name, period),
            };
            for (period, limit) in [
                (Period::Minute, budget.per_minute),
                (Period::Day, budget.per_day),
                (Period::Month, budget.per_month),
            ] {
                let Some(limit) = limit else { continue };
                let (name, left_s) = period.at(now_ms);
                if period == Period::Minute {
                    stale.push(key(&period.at(now_ms.saturating_sub(60_000)).0));
                }
                let key = key(&name);
                let used = store.counter(&key);
                if used >= limit {
                    let who = match budget.scope {
                        Scope::Consumer => "consumer",
                        Scope::Tenant => "tenant",
                    };
                    let mut reply = Reply::refusal(
                        ingress,
                        429,
                        "budget_exceeded",
                        &format!(
                            "{who} {} has used {used} of its {limit} tokens for {name}",
                            budget.name
                        ),
                    );
                    reply
                        .headers
                        .push(("retry-after".to_owned(), left_s.to_string()));
                    return Err(reply);
                }
                keys.push(key);
                allowance = Some(allowance.map_or(limit - used, |a| a.min(limit - used)));
            }
        }
        Ok(BudgetCounters {
            keys,
            stale,
            allowance,
        })
    }
}
