use crate::test_support::{assert_problems, problems};
use crate::{Config, JwtAlgorithm, JwtKeyClaim, RateLimitBy, RatePeriod};

const PEM: &str =
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";

fn with(routes: &str, consumers: &str) -> String {
    format!(
        "services: [{{ name: s, versions: [{{ name: v, targets: [{{ url: 'http://a' }}] }}] }}]\n\
             routes:\n{routes}\nconsumers:\n{consumers}\n"
    )
}

#[test]
fn jwt_and_rate_limit_fields_parse_with_defaults() {
    let doc = with(
        "  - name: r\n    service: s\n    auth: { jwt: { audience: api, cookie: session } }\n    rate_limit: { requests: 20, per: 1s }\n  - name: h\n    service: s\n    paths: [/h]\n    rate_limit: { requests: 5, per: 1d, by: 'header:x-tenant' }",
        &format!(
            "  - name: alice\n    jwt:\n      - {{ key: alice-iss, algorithm: HS256, secret: 0123456789abcdef0123456789abcdef }}\n      - {{ key: k2, algorithm: ES256, public_key: {PEM:?} }}\n    rate_limit: {{ requests: 100, per: 1m }}"
        ),
    );
    let config = Config::parse(&doc).expect("valid");
    let jwt = config.routes[0]
        .auth
        .as_ref()
        .unwrap()
        .jwt
        .as_ref()
        .unwrap();
    assert_eq!(jwt.header, "authorization");
    assert_eq!(jwt.key_claim, JwtKeyClaim::Iss);
    assert_eq!(jwt.leeway_s, 30);
    assert_eq!(jwt.audience.as_deref(), Some("api"));
    let limit = config.routes[0].rate_limit.as_ref().unwrap();
    assert_eq!(
        (limit.requests, limit.per, &limit.by),
        (20, RatePeriod::Second, &RateLimitBy::Consumer)
    );
    assert_eq!(
        config.routes[1].rate_limit.as_ref().unwrap().by,
        RateLimitBy::Header("x-tenant".into())
    );
    let alice = &config.consumers[0];
    assert_eq!(alice.jwt[1].algorithm, JwtAlgorithm::Es256);
    assert_eq!(alice.rate_limit.as_ref().unwrap().per.millis(), 60_000);
    // The canonical form round-trips, defaults left out.
    let canonical = config.to_canonical_json();
    assert!(
        !canonical.contains("leeway_s") && !canonical.contains("\"consumer\""),
        "{canonical}"
    );
    assert_eq!(Config::from_canonical_json(&canonical).unwrap(), config);
}

#[test]
fn bad_credentials_and_limits_are_reported_with_their_paths() {
    let doc = with(
        "  - name: r\n    service: s\n    auth: { jwt: { header: X-Token, cookie: 'a b', issuer: '', leeway_s: 7200 } }\n    rate_limit: { requests: 0, per: 1m, by: 'header:Bad Name' }",
        &format!(
            "  - name: alice\n    jwt:\n      - {{ key: dup, algorithm: HS256, secret: short }}\n      - {{ key: k2, algorithm: RS256, secret: 0123456789abcdef0123456789abcdef }}\n      - {{ key: k3, algorithm: ES256, public_key: 'not a pem' }}\n    rate_limit: {{ requests: 1, per: 1s, by: ip }}\n  - name: bob\n    jwt: [{{ key: dup, algorithm: HS256, public_key: {PEM:?}, secret: 0123456789abcdef0123456789abcdef }}]"
        ),
    );
    let found = problems(&doc);
    let expected = [
        "routes[0].auth.jwt.header:",
        "routes[0].auth.jwt.cookie:",
        "routes[0].auth.jwt.issuer: must not be empty",
        "routes[0].auth.jwt.leeway_s:",
        "routes[0].rate_limit.requests:",
        "routes[0].rate_limit.by:",
        "consumers[0].jwt[0].secret: HS256 secrets need at least 32 bytes",
        "consumers[0].jwt[1].public_key: RS256 needs a public_key in PEM",
        "consumers[0].jwt[1].secret: RS256 uses a public key, not a secret",
        "consumers[0].jwt[2].public_key: not a PEM public key",
        "consumers[0].rate_limit.by:",
        "consumers[1].jwt[0].key: JWT key \"dup\" is used by another credential",
        "consumers[1].jwt[0].public_key: HS256 uses a secret, not a public key",
    ];
    assert_problems(&found, &expected);
}

#[test]
fn scopes_claims_and_new_algorithms_are_checked() {
    let doc = with(
        "  - name: r\n    service: s\n    auth: { jwt: { scopes: ['a b', ''], required_claims: { '': x }, forward_claims: { sub: host, email: x-user, name: x-user, role: X-Role } } }",
        &format!(
            "  - name: alice\n    jwt:\n      - {{ key: a, algorithm: HS384, secret: 0123456789abcdef0123456789abcdef }}\n      - {{ key: b, algorithm: HS512, secret: {} }}\n      - {{ key: c, algorithm: EdDSA }}\n      - {{ key: d, algorithm: PS256, public_key: {PEM:?} }}\n      - {{ key: e, algorithm: ES384, public_key: {PEM:?} }}\n      - {{ key: f, algorithm: RS256, jwks: {{ url: 'not a url', min_refresh_s: 0 }} }}\n      - {{ key: g, algorithm: ES256, public_key: {PEM:?}, jwks: {{ url: 'https://id.example.com/jwks' }} }}\n      - {{ key: h, algorithm: PS384, jwks: {{ url: 'https://id.example.com/jwks' }} }}",
            "s".repeat(64)
        ),
    );
    let found = problems(&doc);
    for expected in [
        "routes[0].auth.jwt.scopes[0]: \"a b\" is not a scope",
        "routes[0].auth.jwt.scopes[1]:",
        "routes[0].auth.jwt.required_claims: claim names must not be empty",
        "routes[0].auth.jwt.forward_claims.sub: \"host\" is set by the gateway",
        "routes[0].auth.jwt.forward_claims.role:",
        "consumers[0].jwt[0].secret: HS384 secrets need at least 48 bytes",
        "consumers[0].jwt[2].public_key: EdDSA needs a public_key in PEM, or a jwks",
        "consumers[0].jwt[5].jwks.url:",
        "consumers[0].jwt[5].jwks.min_refresh_s: must be at least 1",
        "consumers[0].jwt[6].public_key: a credential takes its keys from jwks or public_key",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected} not in {found:#?}"
        );
    }
    // `email` and `name` share a header: one of them is reported.
    assert!(
        found
            .iter()
            .any(|p| p.contains("carries another claim already")),
        "{found:#?}"
    );
    assert_eq!(found.len(), 11, "{found:#?}");
}

#[test]
fn unknown_periods_algorithms_and_keys_are_syntax_errors() {
    for (field, value) in [("per", "per: 2s"), ("by", "per: 1s, by: cookie")] {
        let doc = with(
            &format!("  - {{ name: r, service: s, rate_limit: {{ requests: 1, {value} }} }}"),
            "  - { name: a }",
        );
        assert!(Config::parse(&doc).is_err(), "{field}");
    }
    let doc = with(
        "  - { name: r, service: s }",
        "  - { name: a, jwt: [{ key: k, algorithm: none, secret: x }] }",
    );
    assert!(Config::parse(&doc).is_err());
}
