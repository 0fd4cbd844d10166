//! Authentication with JSON Web Tokens and rate limits, end to end: tokens
//! signed here (every algorithm, with keys made at test time) accepted or
//! refused by the real host, scopes and claims checked and forwarded,
//! and rate limits counted exactly in the key-value store, per consumer,
//! across the window's end and across a restart.

use crate::support;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::traffic::admin_text;
use support::upstream::Upstream;
use support::{Answer, Host};

const HS_SECRET: &str = "alice-secret-0123456789abcdef0123456789";
const RSA_PUBLIC: &str = include_str!("../../components/auth/testdata/rsa-public.pem");
const RSA_PRIVATE: &[u8] = include_bytes!("../../components/auth/testdata/rsa-private.pem");
const EC_PUBLIC: &str = include_str!("../../components/auth/testdata/ec-public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../../components/auth/testdata/ec-private.pem");
const EC_OTHER_PRIVATE: &[u8] =
    include_bytes!("../../components/auth/testdata/ec-other-private.pem");

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token with `claims`, signed with `alg` and the matching test key.
fn sign(alg: Algorithm, claims: &Value) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(HS_SECRET.as_bytes()),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        _ => unreachable!(),
    };
    encode(&Header::new(alg), claims, &key).unwrap()
}

/// Service `s`: v1 on `one`, v2 on `two`; consumers named `bob…` go to v2,
/// so the answering version tells who the gateway took the caller for.
fn document(one: &Upstream, two: &Upstream, routes: &str, consumers: &str) -> String {
    format!(
        "services:\n\
         - name: s\n\
         \x20 versions:\n\
         \x20   - {{ name: v1, targets: [{{ url: '{}' }}] }}\n\
         \x20   - {{ name: v2, targets: [{{ url: '{}' }}] }}\n\
         routes:\n{routes}\
         consumers:\n{consumers}",
        one.url(),
        two.url()
    )
}

/// Upstreams `one` and `two` for [`document`], and a host with its state
/// directory.
async fn two_versions() -> (Upstream, Upstream, tempfile::TempDir, Host) {
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    (one, two, state, host)
}

async fn with_token(host: &Host, path: &str, token: &str) -> Answer {
    host.get(path, &[("authorization", &format!("Bearer {token}"))])
        .await
}

#[tokio::test]
async fn tokens_of_each_algorithm_are_verified_over_http() {
    let (one, two, _state, host) = two_versions().await;
    let routes = "- name: api\n\
                  \x20 paths: [/api]\n\
                  \x20 service: s\n\
                  \x20 auth: { jwt: { cookie: session } }\n\
                  \x20 split: { rules: [{ match: { consumers: [bob] }, version: v2 }] }\n\
                  - name: strict\n\
                  \x20 paths: [/strict]\n\
                  \x20 service: s\n\
                  \x20 auth: { jwt: { issuer: alice-iss, audience: orders-api, leeway_s: 0 } }\n\
                  - name: either\n\
                  \x20 paths: [/either]\n\
                  \x20 service: s\n\
                  \x20 auth: { api_key: { header: authorization }, jwt: {} }\n\
                  \x20 split: { rules: [{ match: { consumers: [bob] }, version: v2 }] }\n";
    let consumers = format!(
        "- name: alice\n\
         \x20 jwt: [{{ key: alice-iss, algorithm: HS256, secret: {HS_SECRET} }}]\n\
         - name: bob\n\
         \x20 api_keys: [bob-key-123]\n\
         \x20 jwt:\n\
         \x20   - {{ key: bob-rsa, algorithm: RS256, public_key: {RSA_PUBLIC:?} }}\n\
         \x20   - {{ key: bob-ec, algorithm: ES256, public_key: {EC_PUBLIC:?} }}\n"
    );
    host.apply(&document(&one, &two, routes, &consumers)).await;
    let claims = |iss: &str| json!({ "iss": iss, "sub": "u1", "exp": now_s() + 600 });

    // Good tokens: each algorithm, and the consumer its credential names.
    for (alg, iss, version) in [
        (Algorithm::HS256, "alice-iss", "v1"),
        (Algorithm::RS256, "bob-rsa", "v2"),
        (Algorithm::ES256, "bob-ec", "v2"),
    ] {
        let answer = with_token(&host, "/api/x", &sign(alg, &claims(iss))).await;
        assert_eq!(answer.status, 200, "{alg:?}: {:?}", answer.body);
        assert_eq!(answer.version(), version, "{alg:?}");
    }
    let cookie = format!(
        "theme=dark; session={}",
        sign(Algorithm::ES256, &claims("bob-ec"))
    );
    let answer = host.get("/api/x", &[("cookie", &cookie)]).await;
    assert_eq!((answer.status, answer.version()), (200, "v2"));

    // Refusals: 401 invalid_token with the reason and the RFC 6750 challenge.
    let b64 = |v: Value| base64_url(v.to_string().as_bytes());
    let expired = sign(
        Algorithm::HS256,
        &json!({ "iss": "alice-iss", "exp": now_s() - 3600 }),
    );
    let early = sign(
        Algorithm::RS256,
        &json!({ "iss": "bob-rsa", "nbf": now_s() + 3600 }),
    );
    let foreign = encode(
        &Header::new(Algorithm::ES256),
        &claims("bob-ec"),
        &EncodingKey::from_ec_pem(EC_OTHER_PRIVATE).unwrap(),
    )
    .unwrap();
    let good = sign(Algorithm::HS256, &claims("alice-iss"));
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let admin = b64(json!({ "iss": "alice-iss", "sub": "admin", "exp": now_s() + 600 }));
        format!("{}.{admin}.{}", parts[0], parts[2])
    };
    let unknown = sign(Algorithm::HS256, &claims("mallory"));
    let none = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(claims("alice-iss"))
    );
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims("bob-rsa"),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .unwrap();
    for (token, reason) in [
        (expired, "expired"),
        (early, "not yet valid"),
        (foreign, "bad signature"),
        (tampered, "bad signature"),
        (unknown, "unknown key"),
        (none, "algorithm not allowed"),
        (confused, "algorithm not allowed"),
        ("not.a.jwt".to_owned(), "malformed"),
    ] {
        let answer = with_token(&host, "/api/x", &token).await;
        assert_eq!(
            (answer.status, answer.code()),
            (401, "invalid_token"),
            "{reason}: {:?}",
            answer.body
        );
        assert_eq!(
            answer.body["error"]["message"],
            format!("invalid token: {reason}")
        );
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Bearer realm=\"upshift\", error=\"invalid_token\""),
            "{reason}"
        );
    }
    assert_eq!(
        one.hits() + two.hits(),
        4,
        "refused requests never reach upstream"
    );

    // No token at all.
    let answer = host.get("/api/x", &[]).await;
    assert_eq!((answer.status, answer.code()), (401, "missing_credentials"));
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"upshift\"")
    );

    // Issuer and audience, without leeway.
    let strict = |alg, iss: &str, aud: &str, exp: i64| {
        let token = sign(
            alg,
            &json!({ "iss": iss, "aud": aud, "exp": now_s() + exp }),
        );
        let host = &host;
        async move { with_token(host, "/strict", &token).await }
    };
    let answer = strict(Algorithm::HS256, "alice-iss", "orders-api", 60).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let answer = strict(Algorithm::HS256, "alice-iss", "billing", 60).await;
    assert_eq!(
        answer.body["error"]["message"],
        "invalid token: wrong audience"
    );
    let answer = strict(Algorithm::RS256, "bob-rsa", "orders-api", 60).await;
    assert_eq!(
        answer.body["error"]["message"],
        "invalid token: wrong issuer"
    );
    let answer = strict(Algorithm::HS256, "alice-iss", "orders-api", -2).await;
    assert_eq!(answer.body["error"]["message"], "invalid token: expired");

    // A route taking either: a JWT or an API key in the same header.
    let answer = with_token(&host, "/either", &good).await;
    assert_eq!((answer.status, answer.version()), (200, "v1"));
    let answer = with_token(&host, "/either", "bob-key-123").await;
    assert_eq!((answer.status, answer.version()), (200, "v2"));
    let answer = with_token(&host, "/either", "wrong-key-0").await;
    assert_eq!((answer.status, answer.code()), (401, "invalid_api_key"));
    let answer = host.get("/either", &[]).await;
    let challenges: Vec<&str> = answer
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        ["ApiKey realm=\"upshift\"", "Bearer realm=\"upshift\""]
    );
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Waits until the start of the next second, so a burst fits in one window.
async fn start_of_a_second() {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1_000 - ms) + 5)).await;
}

/// Sends `n` requests as `key`, 6 at a time.
async fn burst(host: &Host, path: &str, key: &str, n: usize) -> Vec<Answer> {
    use futures::StreamExt;
    futures::stream::iter(0..n)
        .map(|_| async move { host.get(path, &[("x-api-key", key)]).await })
        .buffer_unordered(6)
        .collect()
        .await
}

#[tokio::test]
async fn rate_limits_pass_exactly_the_limit_per_consumer_and_recover() {
    let (one, two, _state, host) = two_versions().await;
    let routes = "- name: api\n\
                  \x20 paths: [/api]\n\
                  \x20 service: s\n\
                  \x20 auth: { api_key: {} }\n\
                  \x20 rate_limit: { requests: 20, per: 1s, by: consumer }\n\
                  - { name: public, paths: [/public], service: s, rate_limit: { requests: 3, per: 1m, by: route } }\n";
    let consumers = "- { name: alice, api_keys: [alice-key-1] }\n\
                     - { name: bob, api_keys: [bob-key-123] }\n";
    host.apply(&document(&one, &two, routes, consumers)).await;
    // Warm the instances up, outside the measured window.
    let warm = futures::future::join_all((0..6).map(|_| host.get("/nowhere", &[]))).await;
    assert!(warm.iter().all(|a| a.status == 404));

    start_of_a_second().await;
    let started = SystemTime::now();
    let answers = burst(&host, "/api/x", "alice-key-1", 30).await;
    let bob = burst(&host, "/api/x", "bob-key-123", 5).await;
    let took = started.elapsed().unwrap();
    assert!(
        took < Duration::from_millis(900),
        "the burst must fit in one window; took {took:?}"
    );
    let served: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((served.len(), limited.len()), (20, 10), "{answers:#?}");
    let mut remaining: Vec<u64> = served
        .iter()
        .map(|a| {
            assert_eq!(a.header("ratelimit-limit"), Some("20"));
            a.header("ratelimit-remaining").unwrap().parse().unwrap()
        })
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..20).collect::<Vec<u64>>());
    let mut retry_after = 0;
    for answer in &limited {
        assert_eq!(answer.code(), "rate_limited", "{:?}", answer.body);
        assert_eq!(answer.header("ratelimit-remaining"), Some("0"));
        let seconds: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&seconds), "retry-after {seconds}");
        assert_eq!(
            answer.header("ratelimit-reset"),
            answer.header("retry-after")
        );
        retry_after = retry_after.max(seconds);
    }
    // Bob has his own budget.
    assert!(bob.iter().all(|a| a.status == 200), "{bob:#?}");
    assert_eq!(one.hits(), 25, "refused requests never reach upstream");

    // After the wait it names, Alice is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let again = host.get("/api/x", &[("x-api-key", "alice-key-1")]).await;
    assert_eq!(again.status, 200, "{:?}", again.body);

    // A public route limited as a whole.
    let public = burst(&host, "/public", "-", 5).await;
    let statuses: Vec<u16> = public.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn rate_limits_hold_across_a_restart() {
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    let state = tempfile::tempdir().unwrap();
    let routes = "- { name: api, paths: [/api], service: s, auth: { api_key: {} } }\n";
    let consumers = "- { name: alice, api_keys: [alice-key-1], rate_limit: { requests: 5, per: 1m } }\n\
                     - { name: bob, api_keys: [bob-key-123], rate_limit: { requests: 5, per: 1m } }\n";
    {
        let host = Host::start(state.path());
        host.apply(&document(&one, &two, routes, consumers)).await;
        for left in (0..5).rev() {
            let answer = host.get("/api/x", &[("x-api-key", "alice-key-1")]).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            assert_eq!(
                answer.header("ratelimit-remaining"),
                Some(left.to_string().as_str())
            );
        }
        // The embedded store syncs counters within 100 ms; the host is then killed.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A new host process: new instances, the same store.
    let host = Host::start(state.path());
    let answer = host.get("/api/x", &[("x-api-key", "alice-key-1")]).await;
    assert_eq!(
        (answer.status, answer.code()),
        (429, "rate_limited"),
        "{:?}",
        answer.body
    );
    assert!(answer.header("retry-after").is_some());
    let answer = host.get("/api/x", &[("x-api-key", "bob-key-123")]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.header("ratelimit-remaining"), Some("4"));
}

#[tokio::test]
async fn an_api_key_kept_as_its_digest_identifies_its_consumer() {
    let (one, two, state, host) = two_versions().await;
    let (ok, out, err) = support::cli(&["key", "new"]);
    assert!(ok, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    let (key, digest) = (
        made["key"].as_str().unwrap(),
        made["digest"].as_str().unwrap(),
    );
    assert!(key.starts_with("upk_") && key.len() == 68, "{key}");
    assert!(digest.starts_with("sha256:"), "{digest}");
    let routes = "- name: api\n\
                  \x20 paths: [/api]\n\
                  \x20 service: s\n\
                  \x20 auth: { api_key: { header: x-api-key } }\n\
                  \x20 split: { rules: [{ match: { consumers: [bob] }, version: v2 }] }\n";
    let consumers = format!("- {{ name: bob, api_keys: [\"{digest}\"] }}\n");
    host.apply(&document(&one, &two, routes, &consumers)).await;

    let answer = host.get("/api", &[("x-api-key", key)]).await;
    assert_eq!((answer.status, answer.version()), (200, "v2"));
    let answer = host.get("/api", &[("x-api-key", digest)]).await;
    assert_eq!((answer.status, answer.code()), (401, "invalid_api_key"));

    // The key is nowhere the gateway keeps anything: not in the config
    // document, the store or the log.
    let stored = admin_text(&host, "/admin/config").await;
    assert!(stored.contains(digest) && !stored.contains(key), "{stored}");
    let log = host.drain_log();
    assert!(!log.iter().any(|line| line.contains(key)));
    drop(host);
    for file in std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
    {
        if file.is_file() {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                "{} holds the key",
                file.display()
            );
        }
    }
}

#[tokio::test]
async fn access_lists_answer_403_to_callers_they_keep_out() {
    let (one, two, _state, host) = two_versions().await;
    let routes = "- name: staff\n\
                  \x20 paths: [/staff]\n\
                  \x20 service: s\n\
                  \x20 auth: { api_key: { header: x-api-key } }\n\
                  \x20 access: { allow: { tenants: [acme] }, deny: { tags: [suspended] } }\n\
                  - { name: here, paths: [/here], service: s, access: { allow: { ips: [127.0.0.1/32, '::1'] } } }\n\
                  - { name: elsewhere, paths: [/elsewhere], service: s, access: { allow: { ips: [10.0.0.0/8] } } }\n\
                  - { name: blocked, paths: [/blocked], service: s, access: { deny: { ips: [127.0.0.0/8] } } }\n";
    let consumers = "- { name: ann, tenant: acme, api_keys: [ann-key-0001] }\n\
                     - { name: sam, tenant: acme, tags: [suspended], api_keys: [sam-key-0001] }\n\
                     - { name: eve, tenant: other, api_keys: [eve-key-0001] }\n";
    host.apply(&document(&one, &two, routes, consumers)).await;

    let key = |k: &'static str| [("x-api-key", k)];
    assert_eq!(host.get("/staff", &key("ann-key-0001")).await.status, 200);
    for (who, denied) in [("sam", "denied"), ("eve", "not allowed")] {
        let answer = host
            .get(
                "/staff",
                &key(if who == "sam" {
                    "sam-key-0001"
                } else {
                    "eve-key-0001"
                }),
            )
            .await;
        assert_eq!((answer.status, answer.code()), (403, "forbidden"), "{who}");
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            format!("consumer \"{who}\" is {denied} on this route")
        );
    }
    // A wrong key is still a 401, not a 403.
    assert_eq!(host.get("/staff", &key("nobody-key-01")).await.status, 401);
    assert_eq!(host.get("/here", &[]).await.status, 200);
    for path in ["/elsewhere", "/blocked"] {
        let answer = host.get(path, &[]).await;
        assert_eq!((answer.status, answer.code()), (403, "forbidden"), "{path}");
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1")
        );
    }
}

/// A private key made now by `openssl genpkey` with `args`, and its public
/// key, both in PEM.
fn key_pair(args: &[&str]) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("key.pem");
    let made = std::process::Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&private)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{made:?}");
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .output()
        .expect("openssl runs");
    assert!(public.status.success(), "{public:?}");
    (
        std::fs::read(&private).unwrap(),
        String::from_utf8(public.stdout).unwrap(),
    )
}

#[tokio::test]
async fn every_algorithm_verifies_with_keys_made_at_test_time() {
    let upstream = Upstream::start("one").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    let (rsa_private, rsa_public) =
        key_pair(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    let (ec_private, ec_public) =
        key_pair(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]);
    let (ec_other, _) = key_pair(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]);
    let (ed_private, ed_public) = key_pair(&["-algorithm", "ed25519"]);
    let hs384 = "h".repeat(48);
    let hs512 = "k".repeat(64);
    let credential = |alg: &str, key: &str| match alg {
        "HS384" | "HS512" => format!("{{ key: {alg}, algorithm: {alg}, secret: {key} }}"),
        _ => format!("{{ key: {alg}, algorithm: {alg}, public_key: {key:?} }}"),
    };
    let credentials = [
        credential("HS384", &hs384),
        credential("HS512", &hs512),
        credential("RS384", &rsa_public),
        credential("RS512", &rsa_public),
        credential("PS256", &rsa_public),
        credential("PS512", &rsa_public),
        credential("ES384", &ec_public),
        credential("EdDSA", &ed_public),
    ];
    host.apply(&format!(
        "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes: [{{ name: api, service: s, auth: {{ jwt: {{}} }} }}]\n\
         consumers: [{{ name: carol, jwt: [{}] }}]",
        upstream.url(),
        credentials.join(", ")
    ))
    .await;
    let key = |alg: Algorithm| match alg {
        Algorithm::HS384 => EncodingKey::from_secret(hs384.as_bytes()),
        Algorithm::HS512 => EncodingKey::from_secret(hs512.as_bytes()),
        Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 | Algorithm::PS512 => {
            EncodingKey::from_rsa_pem(&rsa_private).unwrap()
        }
        Algorithm::ES384 => EncodingKey::from_ec_pem(&ec_private).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&ed_private).unwrap(),
        _ => unreachable!(),
    };
    let token = |alg: Algorithm, iss: &str, key: &EncodingKey| {
        encode(
            &Header::new(alg),
            &json!({ "iss": iss, "exp": now_s() + 600 }),
            key,
        )
        .unwrap()
    };
    for alg in [
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS512,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ] {
        let name = format!("{alg:?}");
        let answer = with_token(&host, "/x", &token(alg, &name, &key(alg))).await;
        assert_eq!(answer.status, 200, "{alg:?}: {:?}", answer.body);
    }
    // The credential fixes the algorithm: the same RSA key under another
    // RSA algorithm, or an EC key of the right curve but not the
    // credential's, is refused.
    for (token, reason) in [
        (
            token(Algorithm::RS256, "PS256", &key(Algorithm::PS256)),
            "algorithm not allowed",
        ),
        (
            token(Algorithm::PS256, "RS384", &key(Algorithm::RS384)),
            "algorithm not allowed",
        ),
        (
            token(
                Algorithm::ES384,
                "ES384",
                &EncodingKey::from_ec_pem(&ec_other).unwrap(),
            ),
            "bad signature",
        ),
        (
            token(Algorithm::HS512, "HS384", &key(Algorithm::HS512)),
            "algorithm not allowed",
        ),
    ] {
        let answer = with_token(&host, "/x", &token).await;
        assert_eq!(
            (answer.status, answer.body["error"]["message"].as_str()),
            (401, Some(format!("invalid token: {reason}").as_str())),
        );
    }
    assert_eq!(upstream.hits(), 8, "refused tokens never reach upstream");
}

#[tokio::test]
async fn scopes_and_claims_admit_callers_and_travel_upstream_as_headers() {
    let upstream = Upstream::start("one").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes:\n\
         - name: orders\n\
         \x20 service: s\n\
         \x20 auth:\n\
         \x20   api_key: {{ header: x-api-key }}\n\
         \x20   jwt:\n\
         \x20     scopes: ['orders:write']\n\
         \x20     required_claims: {{ tenant: acme }}\n\
         \x20     forward_claims: {{ sub: x-user-id, email: x-user-email, roles: x-user-roles }}\n\
         consumers:\n\
         - {{ name: alice, api_keys: [alice-key-123], jwt: [{{ key: alice-iss, algorithm: HS256, secret: {HS_SECRET} }}] }}",
        upstream.url(),
    ))
    .await;
    let claims = |extra: Value| {
        let mut claims = json!({ "iss": "alice-iss", "sub": "u-42", "exp": now_s() + 600 });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let spoofs = [
        ("x-user-id", "admin"),
        ("x-user-email", "root@example.com"),
        ("x-user-roles", "superuser"),
    ];
    let host = &host;
    let call = |claims: Value| {
        let authorization = format!("Bearer {}", sign(Algorithm::HS256, &claims));
        async move {
            let mut headers = vec![("authorization", authorization.as_str())];
            headers.extend(spoofs);
            host.get("/orders", &headers).await
        }
    };

    // Granted: the scope among others (`scope` or `scp`) and the tenant.
    for granted in [
        json!({ "scope": "orders:read orders:write", "tenant": "acme", "roles": ["buyer", "admin"] }),
        json!({ "scp": ["orders:write"], "tenant": ["beta", "acme"], "roles": "buyer,admin" }),
    ] {
        let answer = call(claims(granted)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let seen = |name| support::upstream::echoed_header(&answer.body, name);
        assert_eq!(
            seen("x-user-id"),
            ["u-42"],
            "the claim, not the client's copy"
        );
        assert_eq!(seen("x-user-roles"), ["buyer,admin"]);
        assert!(
            seen("x-user-email").is_empty(),
            "a claim the token lacks is not forwarded, nor the spoof"
        );
    }

    // Refused: a valid token that lacks the scope or the claim is 403.
    for (lacking, message) in [
        (
            json!({ "scope": "orders:read", "tenant": "acme" }),
            "the token does not grant the scope \"orders:write\"",
        ),
        (
            json!({ "tenant": "acme" }),
            "the token does not grant the scope \"orders:write\"",
        ),
        (
            json!({ "scope": "orders:write", "tenant": "globex" }),
            "the token's claim \"tenant\" is not \"acme\"",
        ),
    ] {
        let answer = call(claims(lacking)).await;
        assert_eq!(
            (
                answer.status,
                answer.code(),
                answer.body["error"]["message"].as_str()
            ),
            (403, "forbidden", Some(message))
        );
    }
    assert_eq!(upstream.hits(), 2);

    // An API key caller on the same route: no claims, and no spoofs either.
    let mut headers = vec![("x-api-key", "alice-key-123")];
    headers.extend(spoofs);
    let answer = host.get("/orders", &headers).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    for (name, _) in spoofs {
        assert!(
            support::upstream::echoed_header(&answer.body, name).is_empty(),
            "{name}"
        );
    }
}

/// A key set endpoint on 127.0.0.1: serves the set it is given, or 503
/// while it is down, and counts the requests it gets.
struct KeySetServer {
    url: String,
    set: Arc<Mutex<Option<Value>>>,
    hits: Arc<AtomicU64>,
}

impl KeySetServer {
    async fn start() -> KeySetServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let set: Arc<Mutex<Option<Value>>> = Arc::default();
        let hits = Arc::new(AtomicU64::new(0));
        let (served, counted) = (set.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (served, counted) = (served.clone(), counted.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let answer = match &*served.lock().unwrap() {
                            Some(set) => hyper::Response::new(set.to_string()),
                            None => {
                                let mut down = hyper::Response::new("down".to_owned());
                                *down.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                                down
                            }
                        };
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                answer.map(http_body_util::Full::<bytes::Bytes>::from),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        KeySetServer { url, set, hits }
    }

    /// Publishes the public keys of `keys` under their `kid`s; `None`
    /// takes the endpoint down.
    fn publish(&self, keys: Option<&[(&str, &EncodingKey)]>) {
        let set = keys.map(|keys| {
            let keys: Vec<Value> = keys
                .iter()
                .map(|(kid, key)| {
                    let mut jwk =
                        jsonwebtoken::jwk::Jwk::from_encoding_key(key, Algorithm::RS256).unwrap();
                    jwk.common.key_id = Some(kid.to_string());
                    serde_json::to_value(jwk).unwrap()
                })
                .collect();
            json!({ "keys": keys })
        });
        *self.set.lock().unwrap() = set;
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn keys_come_from_a_key_set_that_rotates_and_survives_an_outage() {
    let upstream = Upstream::start("one").await;
    let jwks = KeySetServer::start().await;
    let (first, _) = key_pair(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    let (second, _) = key_pair(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    let first = EncodingKey::from_rsa_pem(&first).unwrap();
    let second = EncodingKey::from_rsa_pem(&second).unwrap();
    jwks.publish(Some(&[("k1", &first)]));
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes: [{{ name: api, service: s, auth: {{ jwt: {{ issuer: 'https://id.example.com' }} }} }}]\n\
         consumers:\n\
         - name: dave\n\
         \x20 jwt: [{{ key: 'https://id.example.com', algorithm: RS256, jwks: {{ url: '{}', min_refresh_s: 1 }} }}]",
        upstream.url(),
        jwks.url
    ))
    .await;
    let token = |kid: &str, key: &EncodingKey| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let claims = json!({ "iss": "https://id.example.com", "exp": now_s() + 600 });
        encode(&header, &claims, key).unwrap()
    };
    let status = async |token: &str| {
        let answer = with_token(&host, "/x", token).await;
        assert!(
            answer
                .header(upshift_model::jwks::JWKS_URL_HEADER)
                .is_none()
        );
        (
            answer.status,
            answer.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };

    // The first token fetches the set; later ones use it as it is.
    assert_eq!(status(&token("k1", &first)).await.0, 200);
    assert_eq!(status(&token("k1", &first)).await.0, 200);
    assert_eq!(jwks.hits(), 1, "the set is fetched once");

    // Rotation: a token naming a new key fetches the set again, once the
    // floor between fetches has passed.
    jwks.publish(Some(&[("k1", &first), ("k2", &second)]));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(status(&token("k2", &second)).await.0, 200);
    assert_eq!(jwks.hits(), 2);

    // A key the set does not have: refused, and asked for again only after
    // the floor.
    let unknown = (401, "invalid token: unknown key".to_owned());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(status(&token("k9", &second)).await, unknown);
    assert_eq!(jwks.hits(), 3);
    for _ in 0..5 {
        assert_eq!(status(&token("k9", &second)).await, unknown);
    }
    assert_eq!(jwks.hits(), 3, "no fetch within the floor");
    // A token signed with another key under a known kid is a forgery.
    assert_eq!(status(&token("k1", &second)).await.0, 401);

    // Outage: the endpoint is down, the keys fetched before still work.
    jwks.publish(None);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(status(&token("k9", &second)).await, unknown);
    assert_eq!(jwks.hits(), 4, "the outage was tried");
    assert_eq!(status(&token("k1", &first)).await.0, 200);
    assert_eq!(status(&token("k2", &second)).await.0, 200);
    assert_eq!(upstream.hits(), 5);
}
