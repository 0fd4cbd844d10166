//! AI usage and spend read back: per tenant, consumer and model alias at
//! `GET /admin/ai/usage` and in `/admin/metrics`, with the budgets in force
//! and what is left of them.
//!
//! The AI component counts every call under
//! [`usage_keys::PREFIX`] and adds its tokens to each budget's counter of
//! the current period; every node reads the same keys.

use crate::api::AdminResponse;
use crate::metrics::escape;
use crate::store::{ConfigStore, StoreError};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use upshift_model::ai::{Period, usage_keys};
use upshift_model::store::counter;
use upshift_model::{Config, keys};

/// The usage of one consumer of one tenant on one alias.
#[derive(Debug, Default, Serialize)]
pub struct Usage {
    /// The tenant, when the consumer has one.
    pub tenant: Option<String>,
    /// The consumer, when the request had one.
    pub consumer: Option<String>,
    /// The model alias that answered.
    pub alias: String,
    /// Calls answered by a provider.
    pub requests: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Spend in USD, for models with a price.
    pub cost_usd: f64,
    /// Requests answered from the cache.
    pub cache_hits: u64,
}

/// One limit of one budget, in its current period.
#[derive(Debug, Serialize)]
pub struct BudgetLeft {
    /// `consumer` or `tenant`.
    pub scope: &'static str,
    /// The consumer's or tenant's name.
    pub name: String,
    /// `minute`, `day` or `month`.
    pub period: &'static str,
    /// The current period, as its key names it (`2026-12-07`).
    pub window: String,
    /// Tokens allowed in the period.
    pub limit: u64,
    /// Tokens used so far.
    pub used: u64,
    /// Tokens left.
    pub left: u64,
}

/// A metric family: its name, its help and how to read a sample.
type Family<T> = (&'static str, &'static str, fn(&T) -> String);

/// `GET /admin/ai/usage`.
pub fn report(
    store: &impl ConfigStore,
    config: Option<&Config>,
    now_ms: u64,
) -> Result<AdminResponse, AdminResponse> {
    Ok(AdminResponse::ok(
        200,
        json!({ "usage": usage(store)?, "budgets": budgets(store, config, now_ms)? }),
    ))
}

/// Appends the usage and budget families to `out`.
pub fn prometheus(
    out: &mut String,
    store: &impl ConfigStore,
    config: Option<&Config>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let usage = usage(store)?;
    let families: [Family<Usage>; 5] = [
        (
            "upshift_ai_usage_requests_total",
            "AI calls answered by a provider.",
            |u| u.requests.to_string(),
        ),
        (
            "upshift_ai_usage_input_tokens_total",
            "Prompt tokens of AI calls.",
            |u| u.input_tokens.to_string(),
        ),
        (
            "upshift_ai_usage_output_tokens_total",
            "Completion tokens of AI calls.",
            |u| u.output_tokens.to_string(),
        ),
        (
            "upshift_ai_usage_cost_usd_total",
            "Spend on AI calls, in US dollars, for models with a price.",
            |u| u.cost_usd.to_string(),
        ),
        (
            "upshift_ai_cache_hits_total",
            "AI requests answered from the cache.",
            |u| u.cache_hits.to_string(),
        ),
    ];
    write_families(out, "counter", &families, &usage, |u| {
        format!(
            "tenant=\"{}\",consumer=\"{}\",model=\"{}\"",
            escape(u.tenant.as_deref().unwrap_or_default()),
            escape(u.consumer.as_deref().unwrap_or_default()),
            escape(&u.alias)
        )
    });
    let budgets = budgets(store, config, now_ms)?;
    let gauges: [Family<BudgetLeft>; 2] = [
        (
            "upshift_ai_budget_limit_tokens",
            "Tokens a budget allows in its period.",
            |b| b.limit.to_string(),
        ),
        (
            "upshift_ai_budget_used_tokens",
            "Tokens used of a budget in its current period.",
            |b| b.used.to_string(),
        ),
    ];
    write_families(out, "gauge", &gauges, &budgets, |b| {
        format!(
            "scope=\"{}\",name=\"{}\",period=\"{}\"",
            b.scope,
            escape(&b.name),
            b.period
        )
    });
    Ok(())
}

/// Appends `families` of type `kind`, a sample of each per item, labelled
/// as `labels` says.
fn write_families<T>(
    out: &mut String,
    kind: &str,
    families: &[Family<T>],
    items: &[T],
    labels: impl Fn(&T) -> String,
) {
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for item in items {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(item), value(item));
        }
    }
}

/// Every usage series, ordered by tenant, consumer and alias.
fn usage(store: &impl ConfigStore) -> Result<Vec<Usage>, StoreError> {
    let keys = store.keys(usage_keys::PREFIX)?;
    let values = store.get_many(&keys)?;
    let mut series: BTreeMap<(String, String, String), Usage> = BTreeMap::new();
    for (key, value) in keys.iter().zip(values) {
        let Some(rest) = key.strip_prefix(usage_keys::PREFIX) else {
            continue;
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let [tenant, consumer, alias, field] = segments[..] else {
            continue;
        };
        let entry = series
            .entry((tenant.to_owned(), consumer.to_owned(), alias.to_owned()))
            .or_insert_with(|| Usage {
                tenant: named(tenant).map(keys::untarget),
                consumer: named(consumer).map(str::to_owned),
                alias: alias.to_owned(),
                ..Usage::default()
            });
        let n = counter(value.as_deref());
        match field {
            usage_keys::REQUESTS => entry.requests = n,
            usage_keys::INPUT_TOKENS => entry.input_tokens = n,
            usage_keys::OUTPUT_TOKENS => entry.output_tokens = n,
            usage_keys::COST_NANOUSD => entry.cost_usd = n as f64 / 1e9,
            usage_keys::CACHE_HITS => entry.cache_hits = n,
            _ => {}
        }
    }
    Ok(series.into_values().collect())
}

fn named(segment: &str) -> Option<&str> {
    (segment != usage_keys::NONE).then_some(segment)
}

/// The limits of `config`'s budgets in their current periods.
fn budgets(
    store: &impl ConfigStore,
    config: Option<&Config>,
    now_ms: u64,
) -> Result<Vec<BudgetLeft>, StoreError> {
    let mut found = Vec::new();
    let budgets = config
        .and_then(|c| c.ai.as_ref())
        .map_or(&[][..], |ai| &ai.budgets);
    for budget in budgets {
        let (scope, name) = match (&budget.consumer, &budget.tenant) {
            (Some(consumer), _) => ("consumer", consumer),
            (None, Some(tenant)) => ("tenant", tenant),
            (None, None) => continue,
        };
        for (period, label, limit) in [
            (Period::Minute, "minute", budget.tokens_per_minute),
            (Period::Day, "day", budget.tokens_per_day),
            (Period::Month, "month", budget.tokens_per_month),
        ] {
            let Some(limit) = limit else { continue };
            let (window, _) = period.at(now_ms);
            let key = match scope {
                "consumer" => usage_keys::consumer_budget(name, &window),
                _ => usage_keys::tenant_budget(name, &window),
            };
            let used = counter(store.get(&key)?.as_deref());
            found.push(BudgetLeft {
                scope,
                name: name.clone(),
                period: label,
                window,
                limit,
                used,
                left: limit.saturating_sub(used),
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use crate::api::{AdminRequest, handle};
    use upshift_model::ai::{Period, usage_keys};
    use upshift_model::store::{MemoryStore, for_each_encoding};
    use upshift_model::token::Access;

    const CONFIG: &str = "
routes: [{name: ai, kind: ai, paths: [/v1]}]
consumers: [{name: alice, tenant: acme/eu}]
ai:
  providers: [{name: oai, kind: openai, base_url: 'http://127.0.0.1:9'}]
  models: [{alias: chat, provider: oai, model: gpt-4o}]
  budgets: [{consumer: alice, tokens_per_day: 1000}]
";
    /// 2026-12-07T12:00:00Z.
    const NOW_MS: u64 = 1_796_644_800_000;

    fn get(store: &MemoryStore, path: &str) -> crate::AdminResponse {
        let request = AdminRequest {
            method: "GET",
            path,
            body: b"",
            access: Access::Full,
            now_ms: NOW_MS,
        };
        handle(&request, store)
    }

    fn seed(store: &MemoryStore) {
        let put = |method, path: &str, body: &str| {
            let request = AdminRequest {
                method,
                path,
                body: body.as_bytes(),
                access: Access::Full,
                now_ms: NOW_MS,
            };
            let response = handle(&request, store);
            assert_eq!(response.status, 201, "{}", response.body);
        };
        put("PUT", "/admin/config", CONFIG);
        let usage = |tenant, consumer, field, n| {
            let key = usage_keys::usage(tenant, consumer, "chat", field);
            store.fill_counter(&key, n);
        };
        usage(Some("acme/eu"), Some("alice"), usage_keys::REQUESTS, 2);
        usage(
            Some("acme/eu"),
            Some("alice"),
            usage_keys::INPUT_TOKENS,
            100,
        );
        usage(
            Some("acme/eu"),
            Some("alice"),
            usage_keys::COST_NANOUSD,
            1_500_000,
        );
        usage(None, None, usage_keys::CACHE_HITS, 4);
        let (day, _) = Period::Day.at(NOW_MS);
        store.fill_counter(&usage_keys::consumer_budget("alice", &day), 160);
    }

    #[test]
    fn usage_and_budgets_are_reported_per_consumer_and_model() {
        for_each_encoding(|store| {
            seed(&store);
            let report = get(&store, "/admin/ai/usage");
            assert_eq!(report.status, 200, "{}", report.body);
            let usage = report.body["usage"].as_array().unwrap();
            assert_eq!(usage.len(), 2, "{usage:?}");
            let alice = usage.iter().find(|u| u["consumer"] == "alice").unwrap();
            assert_eq!(alice["tenant"], "acme/eu");
            assert_eq!(alice["requests"], 2);
            assert_eq!(alice["input_tokens"], 100);
            assert_eq!(alice["cost_usd"], 0.0015);
            let anonymous = usage.iter().find(|u| u["consumer"].is_null()).unwrap();
            assert_eq!(anonymous["cache_hits"], 4);
            let budget = &report.body["budgets"][0];
            assert_eq!(budget["window"], "2026-12-07");
            assert_eq!(
                (&budget["limit"], &budget["used"], &budget["left"]),
                (&1000.into(), &160.into(), &840.into())
            );

            let text = get(&store, "/admin/metrics").body;
            let text = text.as_str().unwrap();
            for line in [
                r#"upshift_ai_usage_cost_usd_total{tenant="acme/eu",consumer="alice",model="chat"} 0.0015"#,
                r#"upshift_ai_cache_hits_total{tenant="",consumer="",model="chat"} 4"#,
                r#"upshift_ai_budget_used_tokens{scope="consumer",name="alice",period="day"} 160"#,
            ] {
                assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
            }
        });
    }
}
