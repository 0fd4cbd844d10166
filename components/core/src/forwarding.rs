//! Which headers cross the gateway, and the `X-Forwarded-*` / `Forwarded`
//! headers it adds (RFC 9110 §7.6.1, RFC 7239). Both work on the header
//! map in place, so a lane that already holds one copies nothing.

use http::header::{CONNECTION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection and never cross a proxy.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

/// The gateway's request id header, sent upstream and back.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

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
    /// Headers auth sets from the caller's token (see
    /// [`crate::policy::Authenticated::upstream_headers`]).
    pub identity: &'a [(String, Option<String>)],
}

/// Removes the hop-by-hop headers and the ones a `connection` header
/// names: they describe one connection, not the message.
fn drop_hop_by_hop(headers: &mut HeaderMap) {
    // `te: trailers` alone crosses: gRPC servers require it (RFC 9113 §8.2.2).
    let trailers = headers
        .get_all(http::header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
    if trailers {
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Turns the client's headers into the upstream request's: without
/// hop-by-hop headers, `host` (the target's authority is used), the
/// runtime's `spin-*` headers and any client `x-request-id` or
/// `x-forwarded-proto`/`-host`; with the request id, the client appended
/// to `x-forwarded-for` and `forwarded`, and `x-forwarded-proto`/`-host`.
pub fn to_upstream(headers: &mut HeaderMap, client: &ClientSide<'_>) {
    drop_hop_by_hop(headers);
    for name in [HOST, REQUEST_ID, X_FORWARDED_PROTO, X_FORWARDED_HOST] {
        headers.remove(name);
    }
    if headers.keys().any(|n| n.as_str().starts_with("spin-")) {
        let spin: Vec<HeaderName> = headers
            .keys()
            .filter(|n| n.as_str().starts_with("spin-"))
            .cloned()
            .collect();
        for name in spin {
            headers.remove(name);
        }
    }
    let forwarded_for = joined(
        headers,
        &X_FORWARDED_FOR,
        client.client_ip.map(str::to_owned),
    );
    let node = match client.client_ip {
        Some(ip) if ip.contains(':') => format!("for=\"[{ip}]\";"),
        Some(ip) => format!("for={ip};"),
        None => String::new(),
    };
    let host = if client.host.contains(['"', '\\']) {
        client.host.replace(['"', '\\'], "").into()
    } else {
        std::borrow::Cow::Borrowed(client.host)
    };
    let this_hop = format!("{node}host=\"{host}\";proto={}", client.proto);
    let forwarded = joined(headers, &FORWARDED, Some(this_hop));
    set(headers, REQUEST_ID, client.request_id);
    if let Some(value) = forwarded_for {
        set(headers, X_FORWARDED_FOR, &value);
    }
    set(headers, X_FORWARDED_PROTO, client.proto);
    set(headers, X_FORWARDED_HOST, client.host);
    if let Some(value) = forwarded {
        set(headers, FORWARDED, &value);
    }
    for (name, value) in client.identity {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        match value {
            Some(value) => set(headers, name, value),
            None => {
                headers.remove(name);
            }
        }
    }
}

/// Whether `headers` ask to switch the connection to WebSocket (RFC 6455
/// §4.1): `Upgrade` names `websocket` and `Connection` names `upgrade`.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    let lists = |name: &HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    lists(&http::header::UPGRADE, "websocket") && lists(&CONNECTION, "upgrade")
}

/// Puts back the two hop-by-hop headers of a WebSocket handshake, which
/// [`to_upstream`] and [`to_client`] remove: the gateway passes the upgrade
/// on to the upstream, and the upstream's answer back.
pub fn keep_websocket_upgrade(headers: &mut HeaderMap) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
}

/// Turns the upstream's response headers into the client's: without
/// hop-by-hop headers, with the gateway's request id.
pub fn to_client(headers: &mut HeaderMap, request_id: &str) {
    drop_hop_by_hop(headers);
    set(headers, REQUEST_ID, request_id);
}

/// Every value of `name` and then `last`, joined with `, `; `None` when
/// there is nothing to join.
fn joined(headers: &HeaderMap, name: &HeaderName, last: Option<String>) -> Option<String> {
    if !headers.contains_key(name) {
        return last;
    }
    let mut parts: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    parts.extend(last);
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Sets `name` to `value`, unless the value cannot be a header value (it
/// came from a client who could not have sent such bytes, so this does not
/// happen; the header is then left out rather than failing the request).
fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests;
