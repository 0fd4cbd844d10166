//! Key layout of the AI counters and cache (bucket `default`).
//!
//! ```text
//! ai/usage/{tenant}/{consumer}/{alias}/{field}   counters per tenant, consumer and model alias
//! ai/budget/consumers/{consumer}/{period}        counter: a consumer's tokens in a period
//! ai/budget/tenants/{tenant}/{period}            counter: a tenant's tokens in a period
//! ai/cache/{sha256}                              a cached answer (expiry, then the body)
//! ```
//!
//! `{alias}` is the alias that served the call (a fallback's, when one
//! did). A request without a consumer counts as consumer `~`, a consumer
//! without a tenant as tenant `~` (neither is a valid name). Tenants are
//! escaped like target URLs (`%` and `/` percent-encoded). Fields are
//! [`USAGE_FIELDS`]. A period is a UTC day (`2025-11-25`) or month
//! (`2025-11`): budget counters are kept, one key per subject and period.
//! Counters are only incremented and read as [`crate::store`] says.

use crate::keys;

/// Prefix of every usage counter.
pub const PREFIX: &str = "ai/usage/";

/// The segment of an absent consumer or tenant.
pub const NONE: &str = "~";

/// Counter of completed calls.
pub const REQUESTS: &str = "requests";
/// Counter of prompt tokens.
pub const INPUT_TOKENS: &str = "input_tokens";
/// Counter of completion tokens.
pub const OUTPUT_TOKENS: &str = "output_tokens";
/// Counter of cost, in nano-USD (10⁻⁹ USD), for models with a price.
pub const COST_NANOUSD: &str = "cost_nanousd";
/// Counter of requests answered from the cache (no tokens counted).
pub const CACHE_HITS: &str = "cache_hits";

/// Every usage field.
pub const USAGE_FIELDS: [&str; 5] = [
    REQUESTS,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    COST_NANOUSD,
    CACHE_HITS,
];

/// Counter `field` of `consumer` of `tenant` on `alias`.
pub fn usage(tenant: Option<&str>, consumer: Option<&str>, alias: &str, field: &str) -> String {
    let tenant = tenant.map_or(NONE.to_owned(), keys::target);
    let consumer = consumer.unwrap_or(NONE);
    format!("{PREFIX}{tenant}/{consumer}/{alias}/{field}")
}

/// Counter of the tokens of `consumer` in `period`.
pub fn consumer_budget(consumer: &str, period: &str) -> String {
    format!("ai/budget/consumers/{consumer}/{period}")
}

/// Counter of the tokens of `tenant` in `period`.
pub fn tenant_budget(tenant: &str, period: &str) -> String {
    format!("ai/budget/tenants/{}/{period}", keys::target(tenant))
}

/// Key of a cached answer, by the hex digest of what it answers.
pub fn cache(digest: &str) -> String {
    format!("ai/cache/{digest}")
}
