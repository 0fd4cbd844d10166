//! JSON Web Tokens from clients, in the `authorization` header and in a
//! cookie, against HMAC, RSA, ECDSA, EdDSA and key-set credentials, on
//! routes with scopes, required and forwarded claims.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use upshift_auth::{MemoryStore, Policy};
use upshift_model::{Config, HeadLine, OwnedHead};

const RSA: &str = include_str!("../../../components/auth/testdata/rsa-public.pem");
const EC: &str = include_str!("../../../components/auth/testdata/ec-public.pem");

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let document = format!(
        "services: [{{ name: s, versions: [{{ name: v, targets: [{{ url: 'http://127.0.0.1:9' }}] }}] }}]\n\
         routes:\n\
         - {{ name: jwt, service: s, auth: {{ jwt: {{ cookie: session, audience: api, scopes: [read], required_claims: {{ tenant: acme }}, forward_claims: {{ sub: x-user, roles: x-roles }} }} }} }}\n\
         - {{ name: kid, service: s, paths: [/kid], auth: {{ jwt: {{ key_claim: kid }}, api_key: {{ header: authorization }} }} }}\n\
         consumers:\n\
         - name: a\n\
         \x20 jwt:\n\
         \x20   - {{ key: hs, algorithm: HS256, secret: 0123456789abcdef0123456789abcdef }}\n\
         \x20   - {{ key: rs, algorithm: RS256, public_key: {RSA:?} }}\n\
         \x20   - {{ key: es, algorithm: ES256, public_key: {EC:?} }}\n\
         \x20   - {{ key: set, algorithm: PS256, jwks: {{ url: 'https://id.example.com/jwks' }} }}\n"
    );
    Policy::new(&Config::parse(&document).expect("the fuzz config is valid"))
});

fuzz_target!(|token: &str| {
    let store = MemoryStore::default();
    let cookie = format!("theme=dark; session={token}");
    let bearer = format!("Bearer {token}");
    for (route, headers) in [
        (
            "jwt",
            [("authorization", bearer.as_str()), ("cookie", "x=1")],
        ),
        ("jwt", [("x-other", "1"), ("cookie", cookie.as_str())]),
        ("kid", [("authorization", bearer.as_str()), ("cookie", "")]),
    ] {
        let line = HeadLine {
            method: "GET",
            scheme: "https",
            authority: "api.example.com",
            path: "/",
            query: None,
            client_ip: Some("10.0.0.1"),
            request_id: "r",
        };
        let head = OwnedHead::new(&line, &headers);
        let _ = POLICY.authenticate(&store, route, &head.view(), 1_772_323_200_000);
    }
});
