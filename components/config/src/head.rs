//! The request head the policy components decide on, as plain Rust.
//!
//! It mirrors the WIT record `upshift:gateway/types.request-head`; the
//! components' binding layers convert between the two by moving fields.

/// Method, target and headers of an incoming request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// Upper-case HTTP method.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Host and optional port.
    pub authority: String,
    /// Path without the query, starting with `/`.
    pub path: String,
    /// Raw query without the leading `?`.
    pub query: Option<String>,
    /// Headers with lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Address of the connecting peer.
    pub client_ip: Option<String>,
    /// The gateway's request id.
    pub request_id: String,
}

impl RequestHead {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The host the request is for, lower-cased, without port.
    pub fn host(&self) -> String {
        let authority = self
            .authority
            .rsplit_once('@')
            .map_or(self.authority.as_str(), |(_, h)| h);
        let host = if authority.starts_with('[') {
            authority.split_inclusive(']').next().unwrap_or(authority)
        } else {
            authority.split(':').next().unwrap_or(authority)
        };
        host.to_ascii_lowercase()
    }

    /// The first value of query parameter `name`, undecoded.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }
}
