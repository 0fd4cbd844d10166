use super::*;
use crate::store::MemoryStore;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use upshift_model::store::for_each_encoding;
use upshift_model::{HeadLine, OwnedHead};

/// 2026-03-01T00:00:00Z.
const NOW_S: u64 = 1_772_323_200;
const NOW: u64 = NOW_S * 1000;
const SECRET: &str = "alice-secret-0123456789abcdef0123456789";

fn policy() -> Policy {
    let config = Config::parse(&format!(
            r#"
services: [{{ name: s, versions: [{{ name: v, targets: [{{ url: "http://a" }}] }}] }}]
routes:
  - {{ name: open, service: s, paths: [/open] }}
  - {{ name: keyed, service: s, auth: {{ api_key: {{ header: x-api-key, query: apikey }} }} }}
  - {{ name: bearer, service: s, paths: [/b], auth: {{ api_key: {{ header: authorization }} }} }}
  - {{ name: jwt, service: s, paths: [/j], auth: {{ jwt: {{ cookie: session }} }} }}
  - name: strict
    service: s
    paths: [/strict]
    auth: {{ jwt: {{ issuer: alice-iss, audience: orders-api, leeway_s: 0 }} }}
  - {{ name: by-kid, service: s, paths: [/kid], auth: {{ jwt: {{ key_claim: kid, header: x-token }} }} }}
  - name: either
    service: s
    paths: [/e]
    auth: {{ api_key: {{ header: authorization }}, jwt: {{}} }}
consumers:
  - name: alice
    tenant: acme
    api_keys: [alice-key-1, alice-key-2]
    jwt:
      - {{ key: alice-iss, algorithm: HS256, secret: {SECRET} }}
      - {{ key: rsa-kid, algorithm: RS256, public_key: {rsa:?} }}
  - name: bob
    api_keys: [bob-key-123]
    jwt:
      - {{ key: bob-iss, algorithm: ES256, public_key: {ec:?} }}
      - {{ key: rsa-iss, algorithm: RS256, public_key: {rsa:?} }}
  - {{ name: carol, api_keys: [{carol:?}] }}
"#,
            rsa = include_str!("../../testdata/rsa-public.pem"),
            ec = include_str!("../../testdata/ec-public.pem"),
            carol = token::digest("carol-key-0001"),
        ))
        .expect("valid");
    Policy::new(&config)
}

fn head(headers: &[(&str, &str)], query: Option<&str>) -> RequestHead<'static> {
    let line = HeadLine {
        query,
        client_ip: Some("192.0.2.7"),
        ..HeadLine::default()
    };
    OwnedHead::new(&line, headers).leak()
}

fn who(p: &Policy, route: &str, h: &RequestHead<'_>) -> Result<Option<String>, Denial> {
    p.identify(None::<&MemoryStore>, route, h, NOW)
        .map(|c| c.map(|c| c.name.clone()))
}

/// A token for `claims`, signed with `alg` and `key`, with header `kid`.
fn token(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::RS256 => {
            EncodingKey::from_rsa_pem(include_bytes!("../../testdata/rsa-private.pem")).unwrap()
        }
        Algorithm::ES256 => {
            EncodingKey::from_ec_pem(include_bytes!("../../testdata/ec-private.pem")).unwrap()
        }
        _ => unreachable!(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(Into::into);
    encode(&header, claims, &key).unwrap()
}

fn bearer(token: &str) -> RequestHead<'static> {
    head(&[("authorization", &format!("Bearer {token}"))], None)
}

fn claims(iss: &str) -> Value {
    json!({ "iss": iss, "sub": "someone", "exp": NOW_S + 600, "iat": NOW_S })
}

fn refused(p: &Policy, route: &str, h: &RequestHead<'_>) -> TokenError {
    match who(p, route, h) {
        Err(Denial::InvalidToken(e)) => e,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

#[test]
fn public_routes_need_nothing() {
    assert_eq!(who(&policy(), "open", &head(&[], None)), Ok(None));
}

#[test]
fn guarded_routes_are_those_with_auth_or_a_limit() {
    let config = Config::parse(
        r#"
services: [{ name: s, versions: [{ name: v, targets: [{ url: "http://a" }] }] }]
routes:
  - { name: open, service: s, paths: [/open] }
  - { name: keyed, service: s, paths: [/k], auth: { api_key: {} } }
  - { name: public, service: s, paths: [/p] }
  - { name: limited, service: s, paths: [/l], rate_limit: { requests: 5, per: 1m, by: ip } }
"#,
    )
    .unwrap();
    let guarded: Vec<usize> = Policy::new(&config).guarded().collect();
    assert_eq!(guarded, [1, 3]);
}

#[test]
fn keys_identify_consumers() {
    let p = policy();
    assert_eq!(
        who(&p, "keyed", &head(&[("x-api-key", "alice-key-2")], None)),
        Ok(Some("alice".into()))
    );
    assert_eq!(
        who(&p, "keyed", &head(&[], Some("a=1&apikey=bob-key-123"))),
        Ok(Some("bob".into()))
    );
    assert_eq!(
        who(
            &p,
            "bearer",
            &head(&[("authorization", "Bearer bob-key-123")], None)
        ),
        Ok(Some("bob".into()))
    );
}

#[test]
fn keys_kept_as_digests_identify_consumers() {
    let p = policy();
    let with = |key: &str| who(&p, "keyed", &head(&[("x-api-key", key)], None));
    assert_eq!(with("carol-key-0001"), Ok(Some("carol".into())));
    // The digest itself is no key.
    let digest = token::digest("carol-key-0001");
    assert_eq!(with(&digest), Err(Denial::InvalidApiKey));
}

#[test]
fn issued_keys_identify_their_consumer_until_revoked_or_expired() {
    let p = policy();
    let store = MemoryStore::default();
    let issue = |key: &str, consumer: &str, expires_at_ms| {
        let digest = token::digest(key);
        let record = IssuedKey {
            id: IssuedKey::id_of(&digest),
            consumer: consumer.into(),
            created_at_ms: 0,
            expires_at_ms,
        };
        store
            .set(
                &keys::issued_key(&digest),
                &serde_json::to_vec(&record).unwrap(),
            )
            .unwrap();
    };
    issue("upk_live", "bob", None);
    issue("upk_until_now", "bob", Some(NOW));
    issue("upk_of_nobody", "eve", None);
    let with = |key: &str| {
        p.identify(
            Some(&store),
            "keyed",
            &head(&[("x-api-key", key)], None),
            NOW,
        )
        .map(|c| c.map(|c| c.name.clone()))
    };
    assert_eq!(with("upk_live"), Ok(Some("bob".into())));
    for refused in ["upk_until_now", "upk_of_nobody", "upk_never_issued"] {
        assert_eq!(with(refused), Err(Denial::InvalidApiKey), "{refused}");
    }
    store
        .delete(&keys::issued_key(&token::digest("upk_live")))
        .unwrap();
    assert_eq!(with("upk_live"), Err(Denial::InvalidApiKey));
}

#[test]
fn access_lists_keep_out_denied_and_unlisted_callers() {
    let config = Config::parse(
            r#"
services: [{ name: s, versions: [{ name: v, targets: [{ url: "http://a" }] }] }]
routes:
  - name: staff
    service: s
    paths: [/staff]
    auth: { api_key: {} }
    access:
      allow: { tenants: [acme], consumers: [dora] }
      deny: { tags: [suspended], ips: [192.0.2.0/28] }
  - { name: office, service: s, paths: [/o], access: { allow: { ips: [198.51.100.0/24, "2001:db8::1"] } } }
consumers:
  - { name: ann, tenant: acme, api_keys: [ann-key-0001] }
  - { name: sam, tenant: acme, tags: [suspended], api_keys: [sam-key-0001] }
  - { name: dora, api_keys: [dora-key-0001] }
  - { name: eve, tenant: other, api_keys: [eve-key-0001] }
"#,
        )
        .unwrap();
    let p = Policy::new(&config);
    let store = MemoryStore::default();
    let at = |route: &str, ip: &'static str, key: &str| {
        let line = HeadLine {
            client_ip: Some(ip),
            ..HeadLine::default()
        };
        let head = OwnedHead::new(&line, &[("x-api-key", key)]).leak();
        p.authenticate(&store, route, &head, NOW)
            .map(|a| a.consumer.map(|(_, c)| c.name.clone()))
    };
    let forbidden = |result: Result<Option<String>, Denial>| match result {
        Err(denial @ Denial::Forbidden(_)) => (denial.status(), denial.to_string()),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        at("staff", "203.0.113.9", "ann-key-0001"),
        Ok(Some("ann".into()))
    );
    assert_eq!(
        at("staff", "203.0.113.9", "dora-key-0001"),
        Ok(Some("dora".into()))
    );
    let (status, why) = forbidden(at("staff", "203.0.113.9", "sam-key-0001"));
    assert_eq!(
        (status, why.as_str()),
        (403, "consumer \"sam\" is denied on this route")
    );
    let (_, why) = forbidden(at("staff", "203.0.113.9", "eve-key-0001"));
    assert_eq!(why, "consumer \"eve\" is not allowed on this route");
    // A denied address is refused before its credentials are looked at.
    let (_, why) = forbidden(at("staff", "192.0.2.3", "no-such-key"));
    assert_eq!(why, "the client address 192.0.2.3 is denied on this route");
    // Unknown credentials stay a 401.
    assert_eq!(
        at("staff", "203.0.113.9", "no-such-key"),
        Err(Denial::InvalidApiKey)
    );
    assert_eq!(at("office", "198.51.100.7", ""), Ok(None));
    assert_eq!(at("office", "2001:db8::1", ""), Ok(None));
    let (_, why) = forbidden(at("office", "203.0.113.9", ""));
    assert_eq!(
        why,
        "the client address 203.0.113.9 is not allowed on this route"
    );
    assert_eq!(p.guarded().collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn missing_and_unknown_keys_are_refused() {
    let p = policy();
    let missing_key = Err(Denial::MissingCredentials {
        api_key: true,
        jwt: false,
    });
    assert_eq!(who(&p, "keyed", &head(&[], None)), missing_key);
    assert_eq!(
        who(&p, "keyed", &head(&[("x-api-key", "nope-nope")], None)),
        Err(Denial::InvalidApiKey)
    );
    assert_eq!(
        who(&p, "bearer", &head(&[("x-api-key", "alice-key-1")], None)),
        missing_key
    );
}

#[test]
fn good_tokens_of_each_algorithm_identify_their_consumer() {
    let p = policy();
    let hs = token(Algorithm::HS256, None, &claims("alice-iss"));
    assert_eq!(who(&p, "jwt", &bearer(&hs)), Ok(Some("alice".into())));
    let rs = token(Algorithm::RS256, None, &claims("rsa-iss"));
    assert_eq!(who(&p, "jwt", &bearer(&rs)), Ok(Some("bob".into())));
    let es = token(Algorithm::ES256, None, &claims("bob-iss"));
    assert_eq!(who(&p, "jwt", &bearer(&es)), Ok(Some("bob".into())));
    // The scheme is case-insensitive; the cookie works when the header is absent.
    let lower = head(&[("authorization", &format!("bearer {hs}"))], None);
    assert_eq!(who(&p, "jwt", &lower), Ok(Some("alice".into())));
    let cookie = head(&[("cookie", &format!("theme=dark; session={es}"))], None);
    assert_eq!(who(&p, "jwt", &cookie), Ok(Some("bob".into())));
    // By `kid`, from a header of the route's choosing, without the scheme.
    let rs_kid = token(
        Algorithm::RS256,
        Some("rsa-kid"),
        &json!({ "exp": NOW_S + 5 }),
    );
    let by_kid = head(&[("x-token", rs_kid.as_str())], None);
    assert_eq!(who(&p, "by-kid", &by_kid), Ok(Some("alice".into())));
}

#[test]
fn expired_and_early_tokens_are_refused_beyond_the_leeway() {
    let p = policy();
    let at = |exp: i64, nbf: Option<i64>| {
        let mut c = json!({ "iss": "alice-iss", "exp": NOW_S as i64 + exp });
        if let Some(nbf) = nbf {
            c["nbf"] = json!(NOW_S as i64 + nbf);
        }
        bearer(&token(Algorithm::HS256, None, &c))
    };
    // Default leeway 30 s.
    assert!(who(&p, "jwt", &at(-29, None)).is_ok());
    assert_eq!(refused(&p, "jwt", &at(-30, None)), TokenError::Expired);
    assert_eq!(refused(&p, "jwt", &at(-3600, None)), TokenError::Expired);
    assert!(who(&p, "jwt", &at(600, Some(30))).is_ok());
    assert_eq!(
        refused(&p, "jwt", &at(600, Some(31))),
        TokenError::NotYetValid
    );
    // No leeway on `strict`.
    let strict = |exp: i64| {
        let c =
            json!({ "iss": "alice-iss", "aud": ["x", "orders-api"], "exp": NOW_S as i64 + exp });
        bearer(&token(Algorithm::HS256, None, &c))
    };
    assert!(who(&p, "strict", &strict(1)).is_ok());
    assert_eq!(refused(&p, "strict", &strict(0)), TokenError::Expired);
    // Each algorithm checks times alike.
    for (alg, iss) in [(Algorithm::RS256, "rsa-iss"), (Algorithm::ES256, "bob-iss")] {
        let old = json!({ "iss": iss, "exp": NOW_S - 3600 });
        assert_eq!(
            refused(&p, "jwt", &bearer(&token(alg, None, &old))),
            TokenError::Expired
        );
        let early = json!({ "iss": iss, "nbf": NOW_S + 3600 });
        assert_eq!(
            refused(&p, "jwt", &bearer(&token(alg, None, &early))),
            TokenError::NotYetValid
        );
    }
}

#[test]
fn tampered_and_foreign_signatures_are_refused() {
    let p = policy();
    for (alg, iss) in [
        (Algorithm::HS256, "alice-iss"),
        (Algorithm::RS256, "rsa-iss"),
        (Algorithm::ES256, "bob-iss"),
    ] {
        let good = token(alg, None, &claims(iss));
        // Another payload under the same signature.
        let (_, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged_claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims(iss).to_string().replace("someone", "admin"),
        );
        let header = good.split('.').next().unwrap();
        let forged = format!("{header}.{forged_claims}.{signature}");
        assert_eq!(
            refused(&p, "jwt", &bearer(&forged)),
            TokenError::BadSignature,
            "{alg:?}"
        );
    }
    // Signed with other keys of the right kind.
    let other_hs = encode(
        &Header::new(Algorithm::HS256),
        &claims("alice-iss"),
        &EncodingKey::from_secret(b"another-secret-0123456789abcdef0123456789"),
    )
    .unwrap();
    assert_eq!(
        refused(&p, "jwt", &bearer(&other_hs)),
        TokenError::BadSignature
    );
    let other_rs = encode(
        &Header::new(Algorithm::RS256),
        &claims("rsa-iss"),
        &EncodingKey::from_rsa_pem(include_bytes!("../../testdata/rsa-other-private.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        refused(&p, "jwt", &bearer(&other_rs)),
        TokenError::BadSignature
    );
    let other_es = encode(
        &Header::new(Algorithm::ES256),
        &claims("bob-iss"),
        &EncodingKey::from_ec_pem(include_bytes!("../../testdata/ec-other-private.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        refused(&p, "jwt", &bearer(&other_es)),
        TokenError::BadSignature
    );
}

#[test]
fn algorithms_other_than_the_credentials_are_refused() {
    let p = policy();
    // An RS256 credential's tokens signed as HS256 with the public key
    // as the secret: the classic confusion.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims("rsa-iss"),
        &EncodingKey::from_secret(include_bytes!("../../testdata/rsa-public.pem")),
    )
    .unwrap();
    assert_eq!(
        refused(&p, "jwt", &bearer(&confused)),
        TokenError::AlgorithmNotAllowed
    );
    // ES256 token for an HS256 credential.
    let es = token(Algorithm::ES256, None, &claims("alice-iss"));
    assert_eq!(
        refused(&p, "jwt", &bearer(&es)),
        TokenError::AlgorithmNotAllowed
    );
    // `alg: none` with an empty signature, and with the HS256 one kept.
    let b64 = |v: &Value| {
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v.to_string(),
        )
    };
    let payload = b64(&claims("alice-iss"));
    for alg in ["none", "None", "hs256", "HS512"] {
        let header = b64(&json!({ "alg": alg, "typ": "JWT" }));
        let unsigned = format!("{header}.{payload}.");
        assert_eq!(
            refused(&p, "jwt", &bearer(&unsigned)),
            TokenError::AlgorithmNotAllowed,
            "{alg}"
        );
    }
    let good = token(Algorithm::HS256, None, &claims("alice-iss"));
    let signature = good.rsplit('.').next().unwrap();
    let none = format!("{}.{payload}.{signature}", b64(&json!({ "alg": "none" })));
    assert_eq!(
        refused(&p, "jwt", &bearer(&none)),
        TokenError::AlgorithmNotAllowed
    );
}

#[test]
fn unknown_keys_claims_and_shapes_are_refused() {
    let p = policy();
    let unknown = token(Algorithm::HS256, None, &claims("mallory-iss"));
    assert_eq!(
        refused(&p, "jwt", &bearer(&unknown)),
        TokenError::UnknownKey
    );
    let no_iss = token(Algorithm::HS256, None, &json!({ "sub": "x" }));
    assert_eq!(refused(&p, "jwt", &bearer(&no_iss)), TokenError::UnknownKey);
    // `kid` routes ignore `iss`.
    let by_iss = token(Algorithm::RS256, None, &claims("rsa-iss"));
    assert_eq!(
        refused(&p, "by-kid", &head(&[("x-token", by_iss.as_str())], None)),
        TokenError::UnknownKey
    );
    for bad in [
        "a.b.c",
        "not-a-token",
        "a.b",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.e30",
    ] {
        assert_eq!(
            refused(&p, "jwt", &bearer(bad)),
            TokenError::Malformed,
            "{bad}"
        );
    }
    let strange_exp = token(
        Algorithm::HS256,
        None,
        &json!({ "iss": "alice-iss", "exp": "soon" }),
    );
    assert_eq!(
        refused(&p, "jwt", &bearer(&strange_exp)),
        TokenError::Malformed
    );
    // Issuer and audience required by `strict`.
    let aud = |iss: &str, aud: Value| {
        let c = json!({ "iss": iss, "aud": aud, "exp": NOW_S + 60 });
        bearer(&token(Algorithm::HS256, None, &c))
    };
    assert!(who(&p, "strict", &aud("alice-iss", json!("orders-api"))).is_ok());
    assert_eq!(
        refused(&p, "strict", &aud("alice-iss", json!("billing"))),
        TokenError::WrongAudience
    );
    assert_eq!(
        refused(&p, "strict", &aud("alice-iss", json!(["a", "b"]))),
        TokenError::WrongAudience
    );
    let rsa = json!({ "iss": "rsa-iss", "aud": "orders-api", "exp": NOW_S + 60 });
    assert_eq!(
        refused(&p, "strict", &bearer(&token(Algorithm::RS256, None, &rsa))),
        TokenError::WrongIssuer
    );
}

#[test]
fn keys_that_cannot_be_read_refuse_their_tokens() {
    let config = Config::parse(
            r#"
services: [{ name: s, versions: [{ name: v, targets: [{ url: "http://a" }] }] }]
routes: [{ name: jwt, service: s, auth: { jwt: {} } }]
consumers:
  - name: carol
    jwt: [{ key: carol-rsa, algorithm: RS256, public_key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" }]
"#,
        )
        .expect("the armor is right, the key is not");
    let p = Policy::new(&config);
    let rs = token(Algorithm::RS256, None, &claims("carol-rsa"));
    assert_eq!(refused(&p, "jwt", &bearer(&rs)), TokenError::UnusableKey);
}

#[test]
fn missing_tokens_and_either_credential() {
    let p = policy();
    let missing = |api_key, jwt| Err(Denial::MissingCredentials { api_key, jwt });
    assert_eq!(who(&p, "jwt", &head(&[], None)), missing(false, true));
    assert_eq!(
        who(&p, "jwt", &head(&[("authorization", "Basic YTpi")], None)),
        missing(false, true)
    );
    assert_eq!(who(&p, "either", &head(&[], None)), missing(true, true));
    // On `either`, a JWT is verified as one and anything else is an API key.
    let hs = token(Algorithm::HS256, None, &claims("alice-iss"));
    assert_eq!(who(&p, "either", &bearer(&hs)), Ok(Some("alice".into())));
    assert_eq!(
        who(&p, "either", &bearer("bob-key-123")),
        Ok(Some("bob".into()))
    );
    assert_eq!(
        who(&p, "either", &bearer("nope-nope")),
        Err(Denial::InvalidApiKey)
    );
    let expired = token(
        Algorithm::HS256,
        None,
        &json!({ "iss": "alice-iss", "exp": 1 }),
    );
    assert_eq!(
        refused(&p, "either", &bearer(&expired)),
        TokenError::Expired
    );
    // On a JWT-only route, anything in the header is a token.
    assert_eq!(
        refused(&p, "jwt", &bearer("bob-key-123")),
        TokenError::Malformed
    );
}

#[test]
fn refusals_carry_status_code_and_challenge() {
    let challenge = |d: &Denial| -> Vec<String> {
        d.headers()
            .into_iter()
            .filter(|(n, _)| n == "www-authenticate")
            .map(|(_, v)| v)
            .collect()
    };
    let expired = Denial::InvalidToken(TokenError::Expired);
    assert_eq!((expired.status(), expired.code()), (401, "invalid_token"));
    assert_eq!(expired.to_string(), "invalid token: expired");
    assert_eq!(
        challenge(&expired),
        ["Bearer realm=\"upshift\", error=\"invalid_token\""]
    );
    let both = Denial::MissingCredentials {
        api_key: true,
        jwt: true,
    };
    assert_eq!(both.code(), "missing_credentials");
    assert_eq!(
        challenge(&both),
        ["ApiKey realm=\"upshift\"", "Bearer realm=\"upshift\""]
    );
    assert_eq!(
        both.to_string(),
        "this route requires an API key or a bearer token"
    );
}

fn limited() -> Policy {
    let config = Config::parse(
        r#"
services: [{ name: s, versions: [{ name: v, targets: [{ url: "http://a" }] }] }]
routes:
  - name: limited
    service: s
    auth: { api_key: {} }
    rate_limit: { requests: 3, per: 1s }
  - { name: by-ip, service: s, paths: [/ip], rate_limit: { requests: 1, per: 1m, by: ip } }
  - { name: keyed, service: s, paths: [/k], auth: { api_key: {} } }
consumers:
  - { name: alice, api_keys: [alice-key-1] }
  - { name: bob, api_keys: [bob-key-123], rate_limit: { requests: 2, per: 1h } }
"#,
    )
    .expect("valid");
    Policy::new(&config)
}

#[test]
fn rate_limits_count_per_consumer_and_advertise_what_is_left() {
    for_each_encoding(|store| {
        let p = limited();
        let alice = head(&[("x-api-key", "alice-key-1")], None);
        let at = NOW + 100;
        for left in [2, 1, 0] {
            let ok = p.authenticate(&store, "limited", &alice, at).unwrap();
            assert_eq!(ok.consumer.unwrap().1.name, "alice");
            assert_eq!(
                ok.rate_limit.unwrap().remaining,
                left,
                "{:?}",
                ok.rate_limit
            );
        }
        let Err(Denial::RateLimited(d)) = p.authenticate(&store, "limited", &alice, at) else {
            panic!("the fourth request is limited");
        };
        let denial = Denial::RateLimited(d);
        assert_eq!((denial.status(), denial.code()), (429, "rate_limited"));
        // Full on its own: in the next window at 334 ms, 3 × 0.666 + 1 ≤ 3.
        assert!(
            denial
                .headers()
                .contains(&("retry-after".into(), "2".into()))
        );
        // Bob has his own budget on the route, and his own limit of 2 an hour everywhere.
        let bob = head(&[("x-api-key", "bob-key-123")], None);
        assert!(p.authenticate(&store, "limited", &bob, at).is_ok());
        let ok = p.authenticate(&store, "keyed", &bob, at).unwrap();
        assert_eq!(ok.rate_limit.unwrap().limit, 2);
        assert!(p.authenticate(&store, "keyed", &bob, at).is_err());
        // A second later Alice is served again (3 × 0.9 + 1 > 3, at 1.9 s: 3 × 0.1 + 1 ≤ 3).
        assert!(
            p.authenticate(&store, "limited", &alice, NOW + 1_100)
                .is_err()
        );
        assert!(
            p.authenticate(&store, "limited", &alice, NOW + 1_900)
                .is_ok()
        );
        // Unlimited routes never look at the store.
        let unlimited = p
            .authenticate_with(
                || -> Option<&MemoryStore> { panic!("opened") },
                "keyed",
                &alice,
                at,
            )
            .unwrap();
        assert!(unlimited.rate_limit.is_none());
    });
}

#[test]
fn rate_limits_fail_open_when_the_store_fails() {
    let p = limited();
    let broken = MemoryStore::broken();
    for _ in 0..10 {
        let ok = p
            .authenticate(&broken, "by-ip", &head(&[], None), NOW)
            .unwrap();
        assert!(ok.rate_limit.is_none());
    }
    // Identification still holds.
    assert!(
        p.authenticate(&broken, "limited", &head(&[], None), NOW)
            .is_err()
    );
    for_each_encoding(|store| {
        assert!(
            p.authenticate(&store, "by-ip", &head(&[], None), NOW)
                .is_ok()
        );
        assert!(
            p.authenticate(&store, "by-ip", &head(&[], None), NOW)
                .is_err()
        );
        let line = HeadLine {
            client_ip: Some("198.51.100.1"),
            ..HeadLine::default()
        };
        let elsewhere = OwnedHead::new(&line, &[]).leak();
        assert!(p.authenticate(&store, "by-ip", &elsewhere, NOW).is_ok());
    });
}
