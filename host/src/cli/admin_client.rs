//! A small client for the gateway's admin API, used by `upshift apply`,
//! `upshift get`, `upshift rollout` and `upshift component`.

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An admin API endpoint with its bearer token.
pub struct AdminClient {
    base: String,
    token: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// An admin API response.
pub struct AdminResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Body bytes.
    pub body: Bytes,
}

impl AdminResponse {
    /// Prints the body (pretty JSON) to stdout on success, to stderr
    /// otherwise, and returns the matching exit code.
    pub fn print(&self) -> std::process::ExitCode {
        if self.status.is_success() {
            println!("{}", self.pretty_body());
            std::process::ExitCode::SUCCESS
        } else {
            eprintln!("{}", self.pretty_body());
            std::process::ExitCode::FAILURE
        }
    }

    /// The body, pretty-printed if it is JSON.
    pub fn pretty_body(&self) -> String {
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
            Err(_) => String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

impl AdminClient {
    /// A client for the gateway at `base` (e.g. `http://127.0.0.1:3000`).
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            headers: Vec::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends `name: value` with every request (a value that is no valid
    /// header value is dropped).
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            self.headers.push((HeaderName::from_static(name), value));
        }
        self
    }

    /// Sends a request to `{base}{path}`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> anyhow::Result<AdminResponse> {
        let url = format!("{}{path}", self.base);
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .with_context(|| format!("invalid admin URL {url}"))?;
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("cannot reach the admin API at {url}"))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(AdminResponse { status, body })
    }
}

/// The content type to send a configuration file with, from its extension.
pub fn config_content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("json") => "application/json",
        _ => "application/yaml",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn content_types() {
        assert_eq!(config_content_type(Path::new("a.json")), "application/json");
        assert_eq!(config_content_type(Path::new("a.yaml")), "application/yaml");
        assert_eq!(config_content_type(Path::new("a.yml")), "application/yaml");
    }
}
