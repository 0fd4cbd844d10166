use super::*;
use crate::Config;
use crate::test_support::{assert_problems, problems};

#[test]
fn built_in_providers_need_no_definition() {
    let config = Config::parse(
        "ai: {models: [{alias: chat-default, provider: anthropic, model: claude-x}]}",
    )
    .unwrap();
    let ai = config.ai.unwrap();
    let provider = ai.provider("anthropic").unwrap();
    assert_eq!(provider.kind, ProviderKind::Anthropic);
    assert_eq!(provider.base_url(), "https://api.anthropic.com");
    assert_eq!(
        provider.api_key_variable.as_deref(),
        Some("anthropic_api_key")
    );
}

#[test]
fn documents_replace_built_in_providers() {
    let config = Config::parse(
        "ai: {providers: [{name: openai, kind: openai_compatible, \
                               base_url: 'http://127.0.0.1:9/v1/'}],\
                  models: [{alias: m, provider: openai, model: x}]}",
    )
    .unwrap();
    let ai = config.ai.unwrap();
    let provider = ai.provider("openai").unwrap();
    assert_eq!(provider.kind, ProviderKind::OpenaiCompatible);
    assert_eq!(provider.base_url(), "http://127.0.0.1:9/v1");
    assert_eq!(provider.api_key_variable, None);
}

#[test]
fn reports_every_problem_with_its_path() {
    let found = problems(
        "ai:
  providers:
    - { name: local, kind: openai_compatible }
    - { name: az, kind: azure, base_url: 'https://x.openai.azure.com' }
    - { name: claude, kind: anthropic, api_key_variable: 'sk-ant-123', api_version: '1' }
    - { name: local, kind: gemini }
  models:
    - { alias: a, provider: nowhere, model: x, fallbacks: [a, b, zz, b] }
    - { alias: b, provider: local, model: '', price: { input_per_mtok: -1, output_per_mtok: 2 } }
    - { alias: b, provider: openai, model: gpt }",
    );
    let expected = [
        "ai.providers[0].base_url: a provider of kind openai_compatible needs a base_url",
        "ai.providers[1].api_version: an azure provider needs an api_version",
        "ai.providers[2].api_key_variable: \"sk-ant-123\" is not a variable name",
        "ai.providers[2].api_version: api_version applies to azure providers only",
        "ai.providers[3].name: duplicate provider name \"local\"",
        "ai.models[0].provider: unknown provider \"nowhere\"",
        "ai.models[0].fallbacks[0]: a model cannot fall back to itself",
        "ai.models[0].fallbacks[2]: unknown model alias \"zz\"",
        "ai.models[0].fallbacks[3]: \"b\" is listed twice",
        "ai.models[1].model: the provider's model id must not be empty",
        "ai.models[1].price.input_per_mtok: must be a price",
        "ai.models[2].alias: duplicate model alias \"b\"",
    ];
    assert_problems(&found, &expected);
}

#[test]
fn model_rules_are_checked() {
    let found = problems(
        "consumers: [{name: alice, api_keys: [alice-key-0001]}]
ai:
  models:
    - alias: chat
      provider: openai
      model: gpt
      rules:
        - { match: { tenants: [acme] }, use: long }
        - { match: { consumers: [bob], headers: { X-Tier: free } }, use: chat }
        - { match: {}, use: nowhere }
        - { match: { min_prompt_tokens: 0 }, use: long }
    - { alias: long, provider: anthropic, model: claude }",
    );
    let expected = [
        "ai.models[0].rules[1].use: a rule cannot use its own alias",
        "ai.models[0].rules[1].match.consumers[0]: unknown consumer \"bob\"",
        "ai.models[0].rules[1].match.headers.X-Tier: \"X-Tier\" is not a lower-case header name",
        "ai.models[0].rules[2].use: unknown model alias \"nowhere\"",
        "ai.models[0].rules[2].match: give at least one of",
        "ai.models[0].rules[3].match.min_prompt_tokens: must be above 0",
    ];
    assert_problems(&found, &expected);
}

#[test]
fn splits_and_prompts_are_checked() {
    let found = problems(
            "ai:
  models:
    - alias: chat
      provider: openai
      model: gpt
      split: [{ use: chat, weight: 10 }, { use: next, weight: 60 }, { use: next, weight: 50 }, { use: nope, weight: 1 }]
      retries: { attempts: 6, backoff_ms: 0 }
    - { alias: next, provider: anthropic, model: claude }
  prompts:
    - name: summarize
      versions:
        - { name: v1, model: chat, messages: [{ role: user, content: 'Sum up {{text}}' }] }
        - { name: v1, model: gone, max_tokens: 0, temperature: 3, messages: [{ role: user, content: 'Hi {{ bad name }} and {{open' }] }
    - { name: empty, versions: [] }",
        );
    let expected = [
        "ai.models[0].split[0].use: an alias keeps what its split leaves",
        "ai.models[0].split[2].use: \"next\" is listed twice",
        "ai.models[0].split[3].use: unknown model alias \"nope\"",
        "ai.models[0].split: the shares add up to 121%, over 100%",
        "ai.models[0].retries.attempts: must be between 1 and 5",
        "ai.models[0].retries.backoff_ms: must be between 1 and 10000",
        "ai.prompts[0].versions[1].name: duplicate version name \"v1\"",
        "ai.prompts[0].versions[1].model: unknown model alias \"gone\"",
        "ai.prompts[0].versions[1].messages[0].content: \" bad name \" is not a variable name",
        "ai.prompts[0].versions[1].max_tokens: must be at least 1",
        "ai.prompts[0].versions[1].temperature: must be between 0 and 2",
        "ai.prompts[1].versions: a prompt needs a version",
    ];
    assert_problems(&found, &expected);
}

#[test]
fn templates_fill_their_placeholders() {
    assert_eq!(
        placeholders("Sum up {{text}} in {{ words }} words"),
        Ok(vec!["text", "words"])
    );
    assert!(placeholders("{{open").is_err());
    let value = |name: &str| (name == "text").then(|| "a {{text}} b".to_owned());
    assert_eq!(
        render("<{{ text }}>", value).as_deref(),
        Ok("<a {{text}} b>"),
        "values are not templates"
    );
    assert_eq!(render("{{text}} {{words}}", value), Err("words".to_owned()));
}

#[test]
fn splits_and_prompts_are_splitter_services() {
    let config = crate::Config::parse(
        "ai:
  models:
    - { alias: chat, provider: openai, model: gpt, split: [{ use: next, weight: 10 }] }
    - { alias: next, provider: anthropic, model: claude }
  prompts:
    - name: summarize
      versions:
        - { name: v1, model: chat, weight: 100, messages: [{ role: user, content: '{{text}}' }] }
        - { name: v2, model: next, weight: 0, messages: [{ role: user, content: '{{text}}' }] }",
    )
    .unwrap();
    let model = config.service("model:chat").unwrap();
    let versions: Vec<(&str, Option<u32>, &str)> = model
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.weight, v.targets[0].url.as_str()))
        .collect();
    assert_eq!(
        versions,
        [
            ("chat", Some(90), "model://chat"),
            ("next", Some(10), "model://next")
        ]
    );
    assert_eq!(model.outlier_detection.failures, 0);
    let prompt = config.service("prompt:summarize").unwrap();
    assert_eq!(prompt.versions[1].name, "v2");
    assert!(
        config.service("model:next").is_none(),
        "no split, no service"
    );
}

#[test]
fn prices_are_exact_in_nano_usd() {
    let price = Price {
        input_per_mtok: 3.0,
        output_per_mtok: 0.15,
    };
    // 1000 × $3/M = $0.003 = 3 000 000 n$; 7 × $0.15/M = 1 050 n$.
    assert_eq!(price.cost_nanousd(1000, 7), 3_001_050);
}

#[test]
fn periods_are_utc_days_and_months() {
    // 2025-11-25T23:59:30Z
    let now_ms = 1_764_115_170_000;
    assert_eq!(Period::Day.at(now_ms), ("2025-11-25".to_owned(), 30));
    assert_eq!(
        Period::Minute.at(now_ms),
        ("2025-11-25T23:59".to_owned(), 30)
    );
    assert_eq!(
        Period::Minute.at(now_ms + 30_000),
        ("2025-11-26T00:00".to_owned(), 60)
    );
    assert_eq!(
        Period::Month.at(now_ms),
        ("2025-11".to_owned(), 5 * 86_400 + 30)
    );
    // 2024-02-29T00:00:00Z, a leap day; the month ends with it.
    let leap = 1_709_164_800_000;
    assert_eq!(Period::Day.at(leap).0, "2024-02-29");
    assert_eq!(Period::Month.at(leap), ("2024-02".to_owned(), 86_400));
    // December rolls into the next year.
    assert_eq!(
        Period::Month.at(1_735_603_200_000),
        ("2024-12".to_owned(), 86_400)
    );
}

#[test]
fn budgets_and_cache_are_checked() {
    let found = problems(
        "consumers: [{name: alice, tenant: acme, api_keys: [alice-key-0001]}]
ai:
  budgets:
    - { consumer: alice, tokens_per_day: 1000 }
    - { consumer: alice, tokens_per_month: 10 }
    - { consumer: bob, tokens_per_day: 5 }
    - { tenant: acme, tokens_per_day: 0 }
    - { tenant: nobody, consumer: alice, tokens_per_day: 5 }
    - { tenant: acme }
  cache: { ttl_s: 0 }",
    );
    let expected = [
        "ai.budgets[1].consumer: consumer \"alice\" has another budget",
        "ai.budgets[2].consumer: unknown consumer \"bob\"",
        "ai.budgets[3].tokens_per_day: must be above 0",
        "ai.budgets[4]: name exactly one of consumer or tenant",
        "ai.budgets[5].tenant: tenant \"acme\" has another budget",
        "ai.budgets[5]: set tokens_per_minute, tokens_per_day, tokens_per_month or several",
        "ai.cache.ttl_s: must be between 1 and",
    ];
    assert_problems(&found, &expected);
}

#[test]
fn usage_keys_name_tenant_consumer_and_alias() {
    assert_eq!(
        usage_keys::usage(Some("acme/eu"), Some("alice"), "chat", "input_tokens"),
        "ai/usage/acme%2Feu/alice/chat/input_tokens"
    );
    assert_eq!(
        usage_keys::usage(None, None, "chat", "requests"),
        "ai/usage/~/~/chat/requests"
    );
    assert_eq!(
        usage_keys::tenant_budget("acme/eu", "2025-11"),
        "ai/budget/tenants/acme%2Feu/2025-11"
    );
    assert_eq!(
        usage_keys::consumer_budget("alice", "2025-11-25"),
        "ai/budget/consumers/alice/2025-11-25"
    );
}
