use super::*;

fn h(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (n, v) in pairs {
        map.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

fn get<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

const CLIENT: ClientSide<'static> = ClientSide {
    client_ip: Some("10.1.2.3"),
    proto: "http",
    host: "api.example.com",
    request_id: "rid",
    identity: &[],
};

#[test]
fn hop_by_hop_and_connection_listed_headers_stay_behind() {
    let mut headers = h(&[
        ("connection", "keep-alive, x-secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("host", "api.example.com"),
        ("spin-client-addr", "10.1.2.3:5555"),
        ("x-request-id", "client-chosen"),
        ("accept", "application/json"),
        ("te", "gzip, trailers"),
    ]);
    to_upstream(&mut headers, &CLIENT);
    for gone in [
        "connection",
        "keep-alive",
        "x-secret",
        "transfer-encoding",
        "upgrade",
        "host",
        "spin-client-addr",
    ] {
        assert!(get(&headers, gone).is_empty(), "{gone} was forwarded");
    }
    assert_eq!(get(&headers, "accept"), ["application/json"]);
    assert_eq!(get(&headers, "x-request-id"), ["rid"]);
    assert_eq!(get(&headers, "te"), ["trailers"], "gRPC needs it");
}

#[test]
fn forwarding_headers_append_to_earlier_proxies() {
    let mut headers = h(&[
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
    ]);
    to_upstream(&mut headers, &CLIENT);
    assert_eq!(get(&headers, "x-forwarded-for"), ["203.0.113.9, 10.1.2.3"]);
    assert_eq!(get(&headers, "x-forwarded-proto"), ["http"]);
    assert_eq!(get(&headers, "x-forwarded-host"), ["api.example.com"]);
    assert_eq!(
        get(&headers, "forwarded"),
        ["for=203.0.113.9, for=10.1.2.3;host=\"api.example.com\";proto=http"]
    );
}

#[test]
fn ipv6_clients_are_quoted_in_forwarded() {
    let client = ClientSide {
        client_ip: Some("::1"),
        ..CLIENT
    };
    let mut headers = HeaderMap::new();
    to_upstream(&mut headers, &client);
    assert_eq!(
        get(&headers, "forwarded"),
        ["for=\"[::1]\";host=\"api.example.com\";proto=http"]
    );
}

#[test]
fn responses_lose_hop_by_hop_headers_and_gain_the_request_id() {
    let mut headers = h(&[
        ("connection", "close"),
        ("content-type", "text/plain"),
        ("x-request-id", "up"),
    ]);
    to_client(&mut headers, "rid");
    assert!(get(&headers, "connection").is_empty());
    assert_eq!(get(&headers, "content-type"), ["text/plain"]);
    assert_eq!(get(&headers, "x-request-id"), ["rid"]);
}

#[test]
fn claim_headers_replace_the_clients_copies() {
    let identity = [
        ("x-user".to_owned(), Some("alice".to_owned())),
        ("x-role".to_owned(), None),
    ];
    let client = ClientSide {
        identity: &identity,
        ..CLIENT
    };
    let mut headers = HeaderMap::new();
    headers.append("x-user", HeaderValue::from_static("mallory"));
    headers.append("x-user", HeaderValue::from_static("eve"));
    headers.append("x-role", HeaderValue::from_static("admin"));
    headers.append("x-other", HeaderValue::from_static("kept"));
    to_upstream(&mut headers, &client);
    assert_eq!(get(&headers, "x-user"), ["alice"]);
    assert!(get(&headers, "x-role").is_empty());
    assert_eq!(get(&headers, "x-other"), ["kept"]);
}

#[test]
fn websocket_handshakes_are_told_apart() {
    let mut headers = HeaderMap::new();
    headers.append("upgrade", HeaderValue::from_static("WebSocket"));
    assert!(!is_websocket(&headers), "Connection must name the upgrade");
    headers.append(
        "connection",
        HeaderValue::from_static("keep-alive, Upgrade"),
    );
    assert!(is_websocket(&headers));
    headers.insert("upgrade", HeaderValue::from_static("h2c"));
    assert!(!is_websocket(&headers));
    to_upstream(&mut headers, &CLIENT);
    keep_websocket_upgrade(&mut headers);
    assert!(is_websocket(&headers));
}
