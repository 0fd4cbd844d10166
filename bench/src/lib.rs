//! Generated inputs for the hot-path benchmarks in `benches/`.

use upshift_model::{Config, HeadLine, OwnedHead};

/// A config with `n` services and `n` routes (one path prefix per service,
/// a tenth of them host-bound), as a large API would have.
pub fn config_with_routes(n: usize) -> Config {
    let mut doc = String::from("services:\n");
    for i in 0..n {
        doc.push_str(&format!(
            "  - {{ name: svc{i}, versions: [{{ name: v1, weight: 90, targets: [{{ url: 'http://10.0.{}.{}:8080' }}] }}, \
             {{ name: v2, weight: 10, targets: [{{ url: 'http://10.1.{}.{}:8080' }}] }}] }}\n",
            i / 250,
            i % 250,
            i / 250,
            i % 250
        ));
    }
    doc.push_str("routes:\n");
    for i in 0..n {
        let hosts = if i % 10 == 0 {
            format!("hosts: [api{i}.example.com], ")
        } else {
            String::new()
        };
        doc.push_str(&format!(
            "  - {{ name: r{i}, {hosts}paths: [/api/v1/resource{i}], methods: [GET, POST], service: svc{i} }}\n"
        ));
    }
    doc.push_str("consumers:\n");
    for i in 0..n {
        doc.push_str(&format!(
            "  - {{ name: c{i}, api_keys: [key-{i:08}-secret] }}\n"
        ));
    }
    Config::parse(&doc).expect("generated config is valid")
}

/// A typical request for route `i` of [`config_with_routes`], packed as
/// the gateway hands it to the policy components.
pub fn request_for(i: usize) -> OwnedHead {
    request_with(&format!("/api/v1/resource{i}/items/42"), i, &[])
}

/// A request for `path` with the API key of consumer `i` and `more` headers.
fn request_with(path: &str, i: usize, more: &[(&str, &str)]) -> OwnedHead {
    let line = HeadLine {
        method: "GET",
        scheme: "https",
        authority: "gateway.example.com",
        path,
        query: Some("expand=owner"),
        client_ip: Some("203.0.113.9"),
        request_id: "8d1f0e9c-6a43-4b1e-9f4e-2b8c7c1d5a10",
    };
    let key = format!("key-{i:08}-secret");
    let mut headers = vec![
        ("accept", "application/json"),
        ("user-agent", "bench/1.0"),
        ("x-api-key", key.as_str()),
    ];
    headers.extend_from_slice(more);
    OwnedHead::new(&line, &headers)
}

/// A service in a canary release: weights 90/10, three match rules (header,
/// cookie, consumer tag) and stickiness on a header, with a deprecated
/// stable version and two targets each.
pub fn split_config() -> Config {
    Config::parse(
        r#"
services:
  - name: orders
    versions:
      - name: v1
        weight: 90
        targets: [{ url: "http://10.0.0.1:8080" }, { url: "http://10.0.0.2:8080" }]
        deprecation: { deprecated_at: "2026-03-01T00:00:00Z", sunset: "2026-09-01T00:00:00Z" }
      - name: v2
        weight: 10
        targets: [{ url: "http://10.0.1.1:8080" }, { url: "http://10.0.1.2:8080" }]
routes:
  - name: orders
    paths: [/orders]
    service: orders
    split:
      rules:
        - { match: { headers: { x-version: "2" } }, version: v2 }
        - { match: { cookies: { canary: "always" } }, version: v2 }
        - { match: { tags: [internal] }, version: v2 }
      sticky: { on: "header:x-user" }
"#,
    )
    .expect("split config is valid")
}

/// A request for the route of [`split_config`] that no rule matches, with
/// the sticky header set.
pub fn split_request() -> OwnedHead {
    request_with(
        "/orders/42",
        7,
        &[
            ("cookie", "session=abc; theme=dark"),
            ("x-user", "user-4711"),
        ],
    )
}

/// When the JWT benchmarks run, as far as the tokens can tell
/// (2026-03-01T00:00:00Z); the tokens expire in 2100.
pub const JWT_NOW_MS: u64 = 1_772_323_200_000;

/// Tokens of [`jwt_config`]'s three credentials, signed once with the test
/// keys in `components/auth/testdata` (claims `iss`, `sub`, `aud`, `iat`, `exp`).
pub const JWT_TOKENS: [(&str, &str); 3] = [
    (
        "HS256",
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJvcmRlcnMtYXBpIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3NzIzMjMyMDAsImlzcyI6ImJlbmNoLWhzIiwic3ViIjoidXNlci0xMjM0In0.2gTP1AX2skTEivH2AnxfEYNljqRW5ePrgDVRP_jdF7I",
    ),
    (
        "RS256",
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJvcmRlcnMtYXBpIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3NzIzMjMyMDAsImlzcyI6ImJlbmNoLXJzIiwic3ViIjoidXNlci0xMjM0In0.YpT9_BrAeQfXznb9QEnIuYSn30-oF0s7jovnWXrN_P3LMag_1pDQBPMXJgsD7IhjnObxsL5TJYppqQ_Xkjgmz5zUXqnm7LKslEBnYF2rZkwsE_BeW8NhRxug_abU-4VJRwzFAL165aDhmkyZM7Exut2GQvLbkrlt16I4E8SbPTfqcac9CIv-q46Tx8KdBluDPVCwmgm_tCcelLiOZtgsiMju6DuBrlDhh0kgfMYpauZuFJKEDtWOMi1oSfDmy0tRzxZOG9Faiy1fEYcFtIiM44vw2zhBkyZXI9royWmgbk4PmcyMRE1CX9osOmf6AER85xJ_BhpaAkUXbbOT8FWEMg",
    ),
    (
        "ES256",
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJvcmRlcnMtYXBpIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3NzIzMjMyMDAsImlzcyI6ImJlbmNoLWVzIiwic3ViIjoidXNlci0xMjM0In0.ec79gNbADJ1clg3LRtcyDO4NSbFFh9-XXFFXpYmbo5u-yKH7Bp39rxT7JP_M2kmLWAekEIbtR03hmyONzYNpOw",
    ),
];

/// A route `api` taking JWTs with audience `orders-api`, with 100
/// consumers of which three hold the credentials of [`JWT_TOKENS`].
pub fn jwt_config() -> Config {
    let mut doc = String::from(
        "services: [{ name: s, versions: [{ name: v, targets: [{ url: 'http://10.0.0.1:8080' }] }] }]\n\
         routes:\n  - { name: api, service: s, auth: { jwt: { audience: orders-api } } }\n\
         consumers:\n",
    );
    for i in 0..97 {
        doc.push_str(&format!(
            "  - {{ name: c{i}, jwt: [{{ key: issuer-{i}, algorithm: HS256, secret: secret-{i:04}-0123456789abcdef0123456789 }}] }}\n"
        ));
    }
    doc.push_str(&format!(
        "  - {{ name: hs, jwt: [{{ key: bench-hs, algorithm: HS256, secret: bench-secret-0123456789abcdef0123456789 }}] }}\n\
         \x20 - {{ name: rs, jwt: [{{ key: bench-rs, algorithm: RS256, public_key: {:?} }}] }}\n\
         \x20 - {{ name: es, jwt: [{{ key: bench-es, algorithm: ES256, public_key: {:?} }}] }}\n",
        include_str!("../../components/auth/testdata/rsa-public.pem"),
        include_str!("../../components/auth/testdata/ec-public.pem"),
    ));
    Config::parse(&doc).expect("JWT config is valid")
}

/// A request for [`jwt_config`]'s route carrying `token`.
pub fn jwt_request(token: &str) -> OwnedHead {
    let bearer = format!("Bearer {token}");
    request_with(
        "/api/v1/resource1/items/42",
        1,
        &[("authorization", &bearer)],
    )
}

/// A route `api` for API-key consumers, limited per consumer per minute
/// (high enough never to refuse while benchmarking).
pub fn rate_limited_config() -> Config {
    Config::parse(
        "services: [{ name: s, versions: [{ name: v, targets: [{ url: 'http://10.0.0.1:8080' }] }] }]\n\
         routes:\n  - { name: api, service: s, auth: { api_key: {} }, rate_limit: { requests: 1000000000, per: 1m } }\n\
         consumers:\n  - { name: c1, api_keys: [key-00000001-secret] }\n",
    )
    .expect("rate-limited config is valid")
}
