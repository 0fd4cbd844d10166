//! Which headers cross the gateway, and the `X-Forwarded-*` / `Forwarded`
//! headers it adds (RFC 9110 §7.6.1, RFC 7239).

/// Headers that describe one connection and never cross a proxy.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A header as it travels: lower-case name, raw value.
pub type Header = (String, Vec<u8>);

/// What the gateway knows about the client side of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSide<'a> {
    /// The peer's IP address.
    pub client_ip: Option<&'a str>,
    /// `http` or `https`.
    pub proto: &'a str,
    /// The host the client asked for.
    pub host: &'a str,
    /// The gateway's request id.
    pub request_id: &'a str,
}

/// Names listed in `connection` headers: hop-by-hop for this message too.
fn connection_listed(headers: &[Header]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| name == "connection")
        .flat_map(|(_, value)| {
            String::from_utf8_lossy(value)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether `name` crosses the gateway in either direction.
fn end_to_end(name: &str, listed: &[String]) -> bool {
    !HOP_BY_HOP.contains(&name) && !listed.iter().any(|l| l == name)
}

/// The headers to send upstream: end-to-end headers of the client, minus
/// `host` (the target's authority is used), the runtime's `spin-*` headers
/// and any client `x-request-id`, plus the request id and forwarding headers.
pub fn upstream_headers(incoming: &[Header], client: &ClientSide<'_>) -> Vec<Header> {
    let listed = connection_listed(incoming);
    let mut out: Vec<Header> = Vec::with_capacity(incoming.len() + 5);
    let mut forwarded_for = Vec::new();
    let mut forwarded = Vec::new();
    for (name, value) in incoming {
        match name.as_str() {
            "host" | "x-request-id" | "x-forwarded-proto" | "x-forwarded-host" => {}
            "x-forwarded-for" => forwarded_for.push(String::from_utf8_lossy(value).into_owned()),
            "forwarded" => forwarded.push(String::from_utf8_lossy(value).into_owned()),
            n if n.starts_with("spin-") || !end_to_end(n, &listed) => {}
            _ => out.push((name.clone(), value.clone())),
        }
    }
    if let Some(ip) = client.client_ip {
        forwarded_for.push(ip.to_owned());
    }
    let node = match client.client_ip {
        Some(ip) if ip.contains(':') => format!("for=\"[{ip}]\";"),
        Some(ip) => format!("for={ip};"),
        None => String::new(),
    };
    forwarded.push(format!(
        "{node}host=\"{}\";proto={}",
        client.host.replace(['"', '\\'], ""),
        client.proto
    ));
    out.push(("x-request-id".into(), client.request_id.as_bytes().to_vec()));
    if !forwarded_for.is_empty() {
        out.push((
            "x-forwarded-for".into(),
            forwarded_for.join(", ").into_bytes(),
        ));
    }
    out.push(("x-forwarded-proto".into(), client.proto.as_bytes().to_vec()));
    out.push(("x-forwarded-host".into(), client.host.as_bytes().to_vec()));
    out.push(("forwarded".into(), forwarded.join(", ").into_bytes()));
    out
}

/// The headers to send back to the client: end-to-end headers of the
/// upstream response plus the request id.
pub fn downstream_headers(upstream: &[Header], request_id: &str) -> Vec<Header> {
    let listed = connection_listed(upstream);
    let mut out: Vec<Header> = upstream
        .iter()
        .filter(|(name, _)| name != "x-request-id" && end_to_end(name, &listed))
        .cloned()
        .collect();
    out.push(("x-request-id".into(), request_id.as_bytes().to_vec()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<Header> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    fn get<'a>(headers: &'a [Header], name: &str) -> Vec<&'a str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
            .collect()
    }

    const CLIENT: ClientSide<'static> = ClientSide {
        client_ip: Some("10.1.2.3"),
        proto: "http",
        host: "api.example.com",
        request_id: "rid",
    };

    #[test]
    fn hop_by_hop_and_connection_listed_headers_stay_behind() {
        let out = upstream_headers(
            &h(&[
                ("connection", "keep-alive, x-secret"),
                ("keep-alive", "timeout=5"),
                ("x-secret", "1"),
                ("transfer-encoding", "chunked"),
                ("upgrade", "websocket"),
                ("host", "api.example.com"),
                ("spin-client-addr", "10.1.2.3:5555"),
                ("x-request-id", "client-chosen"),
                ("accept", "application/json"),
            ]),
            &CLIENT,
        );
        for gone in [
            "connection",
            "keep-alive",
            "x-secret",
            "transfer-encoding",
            "upgrade",
            "host",
            "spin-client-addr",
        ] {
            assert!(get(&out, gone).is_empty(), "{gone} was forwarded");
        }
        assert_eq!(get(&out, "accept"), ["application/json"]);
        assert_eq!(get(&out, "x-request-id"), ["rid"]);
    }

    #[test]
    fn forwarding_headers_append_to_earlier_proxies() {
        let out = upstream_headers(
            &h(&[
                ("x-forwarded-for", "203.0.113.9"),
                ("forwarded", "for=203.0.113.9"),
            ]),
            &CLIENT,
        );
        assert_eq!(get(&out, "x-forwarded-for"), ["203.0.113.9, 10.1.2.3"]);
        assert_eq!(get(&out, "x-forwarded-proto"), ["http"]);
        assert_eq!(get(&out, "x-forwarded-host"), ["api.example.com"]);
        assert_eq!(
            get(&out, "forwarded"),
            ["for=203.0.113.9, for=10.1.2.3;host=\"api.example.com\";proto=http"]
        );
    }

    #[test]
    fn ipv6_clients_are_quoted_in_forwarded() {
        let client = ClientSide {
            client_ip: Some("::1"),
            ..CLIENT
        };
        let out = upstream_headers(&[], &client);
        assert_eq!(
            get(&out, "forwarded"),
            ["for=\"[::1]\";host=\"api.example.com\";proto=http"]
        );
    }

    #[test]
    fn responses_lose_hop_by_hop_headers_and_gain_the_request_id() {
        let out = downstream_headers(
            &h(&[
                ("connection", "close"),
                ("content-type", "text/plain"),
                ("x-request-id", "up"),
            ]),
            "rid",
        );
        assert!(get(&out, "connection").is_empty());
        assert_eq!(get(&out, "content-type"), ["text/plain"]);
        assert_eq!(get(&out, "x-request-id"), ["rid"]);
    }
}
