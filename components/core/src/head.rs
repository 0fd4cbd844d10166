//! The request head as the policy components see it, packed once per
//! request from what the lane received (see
//! [`RequestHead`](upshift_model::RequestHead) for the form).

use http::{HeaderMap, Method, Uri};
use upshift_model::{HeadLine, RequestHead};

/// Request headers that carry credentials: the AI component never sees them.
pub const CREDENTIALS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// An incoming request's head, as a lane received it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Method.
    pub method: &'a Method,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Host and optional port the client asked for.
    pub authority: &'a str,
    /// The request target.
    pub uri: &'a Uri,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// The peer's IP address.
    pub client_ip: Option<&'a str>,
    /// The gateway's request id.
    pub request_id: &'a str,
}

impl Incoming<'_> {
    /// The packed head with every header but the runtime's own (`spin-*`).
    pub fn pack(&self) -> String {
        self.pack_where(|name| !name.starts_with("spin-"))
    }

    /// The packed head without credentials, for the AI component.
    pub fn pack_without_credentials(&self) -> String {
        self.pack_where(|name| !name.starts_with("spin-") && !CREDENTIALS.contains(&name))
    }

    fn pack_where(&self, keep: impl Fn(&str) -> bool) -> String {
        let line = HeadLine {
            method: self.method.as_str(),
            scheme: self.scheme,
            authority: self.authority,
            path: self.uri.path(),
            query: self.uri.query(),
            client_ip: self.client_ip,
            request_id: self.request_id,
        };
        RequestHead::pack(
            &line,
            self.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()))
                .filter(|(name, _)| keep(name)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn credentials_stay_out_of_the_ai_head() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer k"));
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        headers.insert("spin-full-url", HeaderValue::from_static("http://h/"));
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        let uri: Uri = "/v1/messages?beta=1".parse().unwrap();
        let incoming = Incoming {
            method: &Method::POST,
            scheme: "http",
            authority: "h",
            uri: &uri,
            headers: &headers,
            client_ip: Some("127.0.0.1"),
            request_id: "rid",
        };
        let full = incoming.pack();
        let full = RequestHead::parse(&full).unwrap();
        assert_eq!(full.header("authorization"), Some("Bearer k"));
        assert_eq!(full.header("spin-full-url"), None);
        assert_eq!(full.query(), Some("beta=1"));
        let ai = incoming.pack_without_credentials();
        let ai = RequestHead::parse(&ai).unwrap();
        assert_eq!(ai.header("authorization"), None);
        assert_eq!(ai.header("x-api-key"), None);
        assert_eq!(ai.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(ai.method(), "POST");
    }
}
