//! What operators see when a document is wrong.

use upshift_model::{Config, ConfigError};

fn problems(doc: &str) -> Vec<String> {
    match Config::parse(doc) {
        Ok(_) => panic!("document was accepted"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_full_document_round_trips_through_canonical_json() {
    let doc = r#"
services:
  - name: orders
    versions:
      - { name: v1, weight: 90, targets: [{ url: "http://127.0.0.1:9001" }] }
      - { name: v2, weight: 10, targets: [{ url: "http://127.0.0.1:9002/base", weight: 3 }] }
routes:
  - name: orders
    hosts: [api.example.com, "*.example.org"]
    paths: [/orders]
    methods: [GET, POST]
    headers: { x-api-version: "2" }
    service: orders
    replace_prefix: /v2/orders
    timeout_ms: 2500
    auth: { api_key: { header: x-api-key } }
  - { name: models, kind: ai, paths: [/v1/models], path_match: exact }
consumers:
  - { name: alice, tenant: acme, tags: [beta], api_keys: [alice-secret-key] }
ai:
  models: [{ alias: chat-default, provider: anthropic, model: claude-sonnet }]
"#;
    let config = Config::parse(doc).expect("valid");
    let again = Config::from_canonical_json(&config.to_canonical_json()).expect("canonical");
    assert_eq!(config, again);
    assert_eq!(again.routes[0].timeout_ms, 2500);
    assert_eq!(again.services[0].versions[1].targets[0].weight, 3);
}

#[test]
fn unknown_fields_name_their_place() {
    let found = problems("routes:\n  - name: a\n    service: s\n    pathz: [/x]\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("routes[0]"), "{found:?}");
    assert!(found[0].contains("unknown field `pathz`"), "{found:?}");
}

#[test]
fn wrong_types_and_bad_syntax_are_syntax_errors() {
    let err = Config::parse("routes: {name: a}").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax(_)));
    assert!(err.to_string().contains("routes"), "{err}");
    let err = Config::parse("routes: [\n  {name: a,\n").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax(_)));
    assert!(err.to_string().contains("line"), "{err}");
}

#[test]
fn every_inconsistency_is_reported_with_its_path() {
    let found = problems(
        r#"
services:
  - { name: s, versions: [] }
  - { name: s, versions: [{ name: v1, targets: [{ url: "ftp://x" }, { url: "http://u:p@h" }, { url: "h2c://10.0.0.1:50051" }, { url: "h2://u:p@grpc" }] }] }
routes:
  - { name: r, service: missing }
  - { name: r, service: s, hosts: [Bad_Host], paths: [orders], methods: [get], timeout_ms: 0 }
  - { name: e, service: s, paths: [/x], path_match: exact, replace_prefix: /y }
  - { name: ai, kind: ai, service: s }
consumers:
  - { name: a, api_keys: [short] }
  - { name: b, api_keys: [same-key-1, same-key-1] }
  - { name: c, api_keys: ["sha256:fdf2c7d08b5e09c701e56e4cf8ab06fc993540afb8b16577c334d42623196f18"] }
"#,
    );
    let expected = [
        "services[0].versions: a service needs at least one version",
        "services[1].name: duplicate service name \"s\"",
        "services[1].versions[0].targets[0].url: \"ftp://x\" must start with http://, https://, h2c:// or h2://",
        "services[1].versions[0].targets[1].url: \"http://u:p@h\" must not carry credentials",
        "services[1].versions[0].targets[3].url: \"h2://u:p@grpc\" must not carry credentials",
        "routes[0].service: unknown service \"missing\": define it under services",
        "routes[1].name: duplicate route name \"r\"",
        "routes[1].hosts[0]: \"Bad_Host\" is not a lower-case host name or *.domain pattern",
        "routes[1].paths[0]: \"orders\" must start with / and contain no query, fragment or spaces",
        "routes[1].methods[0]: \"get\" is not an upper-case HTTP method",
        "routes[1].timeout_ms: must be between 1 and 3600000",
        "routes[2].replace_prefix: replace_prefix applies to prefix routes only",
        "routes[3].service: an ai route is served by the AI component and takes no service",
        "consumers[0].api_keys[0]: API keys need at least 8 characters and no whitespace",
        "consumers[1].api_keys[1]: API key is used by another consumer",
        "consumers[2].api_keys[0]: API key is used by another consumer",
    ];
    assert_eq!(found, expected);
}

#[test]
fn access_lists_are_checked() {
    let found = problems(
        r#"
services: [{ name: s, versions: [{ name: v1, targets: [{ url: "http://a" }] }] }]
routes:
  - { name: open, service: s, access: { allow: { tenants: [acme] } } }
  - name: keyed
    service: s
    paths: [/k]
    auth: { api_key: {} }
    access: { allow: { consumers: [nobody], ips: [10.0.0.0/8, "2001:db8::/32", 10.1.2.3] }, deny: { ips: [10.0.0.0/33, nonsense] } }
"#,
    );
    assert_eq!(
        found,
        [
            "routes[0].access.allow: consumers, tenants and tags are known only on a route with auth",
            "routes[1].access.allow.consumers[0]: unknown consumer \"nobody\": define it under consumers",
            "routes[1].access.deny.ips[0]: \"10.0.0.0/33\" is not an IP address or CIDR range",
            "routes[1].access.deny.ips[1]: \"nonsense\" is not an IP address or CIDR range",
        ]
    );
}
