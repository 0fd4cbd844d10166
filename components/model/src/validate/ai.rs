//! Checks on the `ai` section: providers, model aliases with their
//! fallbacks, rules and splits, prompt templates, budgets and the cache.

use std::collections::HashSet;

use super::{Report, check_name, check_target_url, check_unique_name};
use crate::ai::schema::MAX_CACHE_TTL_S;
use crate::ai::{Ai, MAX_RETRY_WAIT_MS, ModelAlias, ProviderKind, is_variable_name, placeholders};

/// Checks the AI section of `config`.
pub(crate) fn check(config: &crate::Config, ai: &Ai, report: &mut Report<'_>) {
    check_budgets(config, ai, report);
    let mut names = HashSet::new();
    for (i, provider) in ai.providers.iter().enumerate() {
        let at = format!("ai.providers[{i}]");
        check_unique_name(&provider.name, &at, "provider", &mut names, report);
        match (&provider.base_url, provider.kind.default_base_url()) {
            (Some(url), _) => {
                if let Err(message) = check_target_url(url) {
                    report(format!("{at}.base_url"), message);
                }
            }
            (None, None) => report(
                format!("{at}.base_url"),
                format!(
                    "a provider of kind {} needs a base_url",
                    provider.kind.name()
                ),
            ),
            (None, Some(_)) => {}
        }
        if let Some(variable) = &provider.api_key_variable
            && !is_variable_name(variable)
        {
            report(
                format!("{at}.api_key_variable"),
                format!(
                    "{variable:?} is not a variable name (lower-case letters, digits and _, \
                     starting with a letter); name the variable, not the key"
                ),
            );
        }
        match (provider.kind, &provider.api_version) {
            (ProviderKind::Azure, None) => report(
                format!("{at}.api_version"),
                "an azure provider needs an api_version".into(),
            ),
            (ProviderKind::Azure, Some(version))
                if version.is_empty()
                    || !version
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')) =>
            {
                report(
                    format!("{at}.api_version"),
                    format!("{version:?} is not an API version such as 2024-10-21"),
                )
            }
            (ProviderKind::Azure, Some(_)) | (_, None) => {}
            (_, Some(_)) => report(
                format!("{at}.api_version"),
                "api_version applies to azure providers only".into(),
            ),
        }
    }

    let aliases: HashSet<&str> = ai.models.iter().map(|m| m.alias.as_str()).collect();
    let mut seen = HashSet::new();
    for (i, model) in ai.models.iter().enumerate() {
        let at = format!("ai.models[{i}]");
        check_name(&model.alias, &format!("{at}.alias"), report);
        if !seen.insert(model.alias.as_str()) {
            report(
                format!("{at}.alias"),
                format!("duplicate model alias {:?}", model.alias),
            );
        }
        if ai.provider(&model.provider).is_none() {
            report(
                format!("{at}.provider"),
                format!(
                    "unknown provider {:?}: define it under ai.providers \
                     (built in: openai, anthropic, gemini)",
                    model.provider
                ),
            );
        }
        if model.model.is_empty() || model.model.chars().any(char::is_control) {
            report(
                format!("{at}.model"),
                "the provider's model id must not be empty".into(),
            );
        }
        let mut fallbacks = HashSet::new();
        for (f, fallback) in model.fallbacks.iter().enumerate() {
            let at = format!("{at}.fallbacks[{f}]");
            if fallback == &model.alias {
                report(at, "a model cannot fall back to itself".into());
            } else if !aliases.contains(fallback.as_str()) {
                report(at, format!("unknown model alias {fallback:?}"));
            } else if !fallbacks.insert(fallback.as_str()) {
                report(at, format!("{fallback:?} is listed twice"));
            }
        }
        for (r, rule) in model.rules.iter().enumerate() {
            let at = format!("{at}.rules[{r}]");
            if rule.alias == model.alias {
                report(
                    format!("{at}.use"),
                    "a rule cannot use its own alias".into(),
                );
            } else if !aliases.contains(rule.alias.as_str()) {
                report(
                    format!("{at}.use"),
                    format!("unknown model alias {:?}", rule.alias),
                );
            }
            if rule.when.is_empty() {
                report(
                    format!("{at}.match"),
                    "give at least one of consumers, tenants, headers, min_prompt_tokens".into(),
                );
            }
            for (c, consumer) in rule.when.consumers.iter().enumerate() {
                if !config.consumers.iter().any(|known| &known.name == consumer) {
                    report(
                        format!("{at}.match.consumers[{c}]"),
                        format!("unknown consumer {consumer:?}"),
                    );
                }
            }
            for name in rule.when.headers.keys() {
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !valid {
                    report(
                        format!("{at}.match.headers.{name}"),
                        format!("{name:?} is not a lower-case header name"),
                    );
                }
            }
            if rule.when.min_prompt_tokens == Some(0) {
                report(
                    format!("{at}.match.min_prompt_tokens"),
                    "must be above 0".into(),
                );
            }
        }
        if let Some(price) = &model.price {
            for (field, value) in [
                ("input_per_mtok", price.input_per_mtok),
                ("output_per_mtok", price.output_per_mtok),
            ] {
                if !(value.is_finite() && (0.0..=1_000_000.0).contains(&value)) {
                    report(
                        format!("{at}.price.{field}"),
                        "must be a price in USD between 0 and 1000000".into(),
                    );
                }
            }
        }
        check_split(model, &aliases, &at, report);
        if let Some(retries) = model.retries {
            if !(1..=5).contains(&retries.attempts) {
                report(
                    format!("{at}.retries.attempts"),
                    "must be between 1 and 5".into(),
                );
            }
            if !(1..=MAX_RETRY_WAIT_MS).contains(&retries.backoff_ms) {
                report(
                    format!("{at}.retries.backoff_ms"),
                    format!("must be between 1 and {MAX_RETRY_WAIT_MS}"),
                );
            }
        }
    }
    check_prompts(ai, &aliases, report);
}

/// An alias's split: other known aliases, each once, at most 100% in all.
fn check_split(model: &ModelAlias, aliases: &HashSet<&str>, at: &str, report: &mut Report<'_>) {
    let mut seen = HashSet::new();
    for (s, share) in model.split.iter().enumerate() {
        let at = format!("{at}.split[{s}]");
        if share.alias == model.alias {
            report(
                format!("{at}.use"),
                "an alias keeps what its split leaves; name other aliases".into(),
            );
        } else if !aliases.contains(share.alias.as_str()) {
            report(
                format!("{at}.use"),
                format!("unknown model alias {:?}", share.alias),
            );
        } else if !seen.insert(share.alias.as_str()) {
            report(
                format!("{at}.use"),
                format!("{:?} is listed twice", share.alias),
            );
        }
    }
    let total: u64 = model.split.iter().map(|s| u64::from(s.weight)).sum();
    if total > 100 {
        report(
            format!("{at}.split"),
            format!("the shares add up to {total}%, over 100%"),
        );
    }
}

/// Prompt templates: unique names, versions with known models, messages
/// whose placeholders read, sensible sampling settings.
fn check_prompts(ai: &Ai, aliases: &HashSet<&str>, report: &mut Report<'_>) {
    let mut names = HashSet::new();
    for (p, prompt) in ai.prompts.iter().enumerate() {
        let at = format!("ai.prompts[{p}]");
        check_unique_name(&prompt.name, &at, "prompt", &mut names, report);
        if prompt.versions.is_empty() {
            report(format!("{at}.versions"), "a prompt needs a version".into());
        }
        let mut versions = HashSet::new();
        for (v, version) in prompt.versions.iter().enumerate() {
            let at = format!("{at}.versions[{v}]");
            check_unique_name(&version.name, &at, "version", &mut versions, report);
            if !aliases.contains(version.model.as_str()) {
                report(
                    format!("{at}.model"),
                    format!("unknown model alias {:?}", version.model),
                );
            }
            if version.weight.is_some_and(|w| w > 100) {
                report(format!("{at}.weight"), "must be between 0 and 100".into());
            }
            if version.messages.is_empty() {
                report(
                    format!("{at}.messages"),
                    "a prompt needs at least one message".into(),
                );
            }
            for (m, message) in version.messages.iter().enumerate() {
                if let Err(problem) = placeholders(&message.content) {
                    report(format!("{at}.messages[{m}].content"), problem);
                }
            }
            if version.max_tokens == Some(0) {
                report(format!("{at}.max_tokens"), "must be at least 1".into());
            }
            if let Some(t) = version.temperature
                && !(t.is_finite() && (0.0..=2.0).contains(&t))
            {
                report(
                    format!("{at}.temperature"),
                    "must be between 0 and 2".into(),
                );
            }
        }
        let weights: Vec<u32> = prompt.versions.iter().filter_map(|v| v.weight).collect();
        if !weights.is_empty() && weights.iter().all(|w| *w == 0) {
            report(
                format!("{at}.versions"),
                "the weights leave no version to serve".into(),
            );
        }
    }
}

fn check_budgets(config: &crate::Config, ai: &Ai, report: &mut Report<'_>) {
    let consumers: HashSet<&str> = config.consumers.iter().map(|c| c.name.as_str()).collect();
    let tenants: HashSet<&str> = config
        .consumers
        .iter()
        .filter_map(|c| c.tenant.as_deref())
        .collect();
    let mut seen = HashSet::new();
    for (i, budget) in ai.budgets.iter().enumerate() {
        let at = format!("ai.budgets[{i}]");
        match (&budget.consumer, &budget.tenant) {
            (Some(consumer), None) => {
                if !consumers.contains(consumer.as_str()) {
                    report(
                        format!("{at}.consumer"),
                        format!("unknown consumer {consumer:?}"),
                    );
                } else if !seen.insert(("consumer", consumer.as_str())) {
                    report(
                        format!("{at}.consumer"),
                        format!("consumer {consumer:?} has another budget"),
                    );
                }
            }
            (None, Some(tenant)) => {
                if !tenants.contains(tenant.as_str()) {
                    report(
                        format!("{at}.tenant"),
                        format!("no consumer belongs to tenant {tenant:?}"),
                    );
                } else if !seen.insert(("tenant", tenant.as_str())) {
                    report(
                        format!("{at}.tenant"),
                        format!("tenant {tenant:?} has another budget"),
                    );
                }
            }
            _ => report(at.clone(), "name exactly one of consumer or tenant".into()),
        }
        let limits = [
            ("tokens_per_minute", budget.tokens_per_minute),
            ("tokens_per_day", budget.tokens_per_day),
            ("tokens_per_month", budget.tokens_per_month),
        ];
        if limits.iter().all(|(_, value)| value.is_none()) {
            report(
                at.clone(),
                "set tokens_per_minute, tokens_per_day, tokens_per_month or several".into(),
            );
        }
        for (field, value) in limits {
            if value == Some(0) {
                report(format!("{at}.{field}"), "must be above 0".into());
            }
        }
    }
    if let Some(cache) = &ai.cache
        && (cache.ttl_s == 0 || cache.ttl_s > MAX_CACHE_TTL_S)
    {
        report(
            "ai.cache.ttl_s".into(),
            format!("must be between 1 and {MAX_CACHE_TTL_S}"),
        );
    }
}
