//! Request heads: the packed form the policy components read, and the
//! header, cookie and query lookups over client-chosen values, through the
//! API-key and cookie paths of auth.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upshift_auth::{MemoryStore, Policy};
use upshift_model::{Config, HeadLine, OwnedHead, RequestHead};

fuzz_target!(|input: &str| {
    // Any string as a packed head: parsed or refused, every accessor safe.
    if let Ok(head) = RequestHead::parse(input) {
        let _ = (
            head.method(),
            head.path(),
            head.query(),
            head.client_ip(),
            head.host(),
        );
        let _ = head.headers().count();
        let _ = head.header_values("cookie").count();
        let _ = head.query_param("apikey");
    }
    // The same string as client-chosen parts of a well-formed head.
    let mut parts = input.splitn(3, '\n');
    let (query, cookie, key) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let line = HeadLine {
        method: "GET",
        scheme: "http",
        authority: "api.example.com",
        path: "/",
        query: Some(query),
        client_ip: Some("192.0.2.1"),
        request_id: "r",
    };
    let head = OwnedHead::new(&line, &[("cookie", cookie), ("x-api-key", key)]);
    let view = head.view();
    let _ = view.query_param("apikey");
    let _ = view.host();
    let policy = policy();
    let store = MemoryStore::default();
    for route in ["keyed", "session"] {
        let _ = policy.authenticate(&store, route, &view, 1_772_323_200_000);
    }
});

fn policy() -> &'static Policy {
    static POLICY: std::sync::LazyLock<Policy> = std::sync::LazyLock::new(|| {
        let document = "services: [{ name: s, versions: [{ name: v, targets: [{ url: 'http://127.0.0.1:9' }] }] }]\n\
            routes:\n\
            - { name: keyed, service: s, auth: { api_key: { header: x-api-key, query: apikey } }, access: { deny: { ips: [10.0.0.0/8] } } }\n\
            - { name: session, service: s, paths: [/s], auth: { jwt: { cookie: session } }, rate_limit: { requests: 5, per: 1s, by: 'header:x-api-key' } }\n\
            consumers: [{ name: a, api_keys: [key-0123456789] }]";
        Policy::new(&Config::parse(document).expect("the fuzz config is valid"))
    });
    &POLICY
}
