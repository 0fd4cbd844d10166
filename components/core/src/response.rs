//! The headers the gateway adds to the answers it passes on, so that a
//! client (and an operator with curl) sees which route and which version of
//! the service or model served it.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::ai::AnswerFor;
use crate::forwarding::REQUEST_ID;
use crate::policy::RateLimit;
use crate::tables::{Route, Version};

/// The route that served an answer.
pub const ROUTE: HeaderName = HeaderName::from_static("x-upshift-route");
/// The `service@version` that served an answer.
pub const UPSTREAM: HeaderName = HeaderName::from_static("x-upshift-upstream");
const VERSION: HeaderName = HeaderName::from_static("x-upshift-version");
/// The model alias that served an AI answer.
pub const MODEL: HeaderName = HeaderName::from_static("x-upshift-model");
/// Whether an AI answer came from the cache (`hit`) or was stored (`miss`).
pub const CACHE: HeaderName = HeaderName::from_static("x-upshift-cache");
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Adds to a proxied answer's headers: the route, `service@version`, the
/// version's own headers (a deprecation) and the `RateLimit-*` fields.
pub fn add_proxied(
    headers: &mut HeaderMap,
    route: &Route,
    version: &Version,
    rate_limit: Option<RateLimit>,
) {
    if let Some(value) = &route.header {
        headers.append(ROUTE, value.clone());
    }
    if let Some(value) = &version.upstream_header {
        headers.append(UPSTREAM, value.clone());
    }
    for (name, value) in &version.response_headers {
        headers.append(name.clone(), value.clone());
    }
    add_rate_limit(headers, rate_limit);
}

/// Adds the IETF `RateLimit-Limit`, `-Remaining` and `-Reset` fields.
pub fn add_rate_limit(headers: &mut HeaderMap, rate_limit: Option<RateLimit>) {
    if let Some(limit) = rate_limit {
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(limit.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(limit.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(limit.reset_s));
    }
}

/// Which provider attempt produced an AI answer.
#[derive(Debug, Clone, Copy)]
pub struct ServedBy<'a> {
    /// The provider's name in the config.
    pub provider: &'a str,
    /// The provider's model id.
    pub model: &'a str,
    /// The model alias the attempt serves.
    pub alias: &'a str,
}

/// An AI answer's headers: the AI component's reply headers (those that
/// are valid), then the request id, the route, the version of a split
/// call, and the provider, model and alias that answered.
pub fn ai_answer(
    reply_headers: Vec<(String, String)>,
    answer: &AnswerFor<'_>,
    served_by: Option<ServedBy<'_>>,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(reply_headers.len() + 5);
    for (name, value) in reply_headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    append_text(&mut headers, REQUEST_ID, answer.request_id);
    append_text(&mut headers, ROUTE, answer.route);
    if let Some(version) = &answer.version {
        append_text(&mut headers, VERSION, version);
    }
    if let Some(by) = served_by {
        append_text(
            &mut headers,
            UPSTREAM,
            &format!("{}@{}", by.provider, by.model),
        );
        append_text(&mut headers, MODEL, by.alias);
    }
    headers
}

/// Appends `value`, left out when it cannot be a header value (names from
/// a validated config always can).
fn append_text(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.append(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{RouteKind, Upstream};
    use crate::tables::Service;

    #[test]
    fn proxied_answers_name_route_version_and_limits() {
        let route = Route::new("orders", RouteKind::Proxy, "orders-svc", 1000);
        let service = Service::new(
            "orders-svc",
            [(
                "v2",
                vec!["http://10.0.0.2".into()],
                vec![("deprecation".into(), "true".into())],
            )],
        );
        let (version, _) = service
            .at(Upstream {
                version: 0,
                target: 0,
            })
            .unwrap();
        let mut headers = HeaderMap::new();
        let limit = RateLimit {
            limit: 10,
            remaining: 4,
            reset_s: 30,
        };
        add_proxied(&mut headers, &route, version, Some(limit));
        let get = |name: &str| headers.get(name).unwrap().to_str().unwrap();
        assert_eq!(get("x-upshift-route"), "orders");
        assert_eq!(get("x-upshift-upstream"), "orders-svc@v2");
        assert_eq!(get("deprecation"), "true");
        assert_eq!(get("ratelimit-limit"), "10");
        assert_eq!(get("ratelimit-remaining"), "4");
        assert_eq!(get("ratelimit-reset"), "30");
    }

    #[test]
    fn ai_answers_name_provider_model_and_alias() {
        let by = ServedBy {
            provider: "anthropic",
            model: "claude-x",
            alias: "smart",
        };
        let answer = AnswerFor {
            request_id: "rid",
            route: "chat",
            version: Some("smart-v2".into()),
        };
        let reply = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("bad name".to_owned(), "dropped".to_owned()),
        ];
        let headers = ai_answer(reply, &answer, Some(by));
        let get = |name: &str| headers.get(name).unwrap().to_str().unwrap();
        assert_eq!(get("x-request-id"), "rid");
        assert_eq!(get("x-upshift-route"), "chat");
        assert_eq!(get("x-upshift-version"), "smart-v2");
        assert_eq!(get("x-upshift-upstream"), "anthropic@claude-x");
        assert_eq!(get("x-upshift-model"), "smart");
        assert_eq!(get("content-type"), "application/json");
        assert_eq!(headers.len(), 6);
    }
}
