//! Consistency checks on a well-formed document: names, references, URLs.

mod ai;
mod jwt;
mod route;
mod service;

use std::collections::HashSet;

use crate::token;
use crate::{Config, ConfigError, Problem, RateLimit, RateLimitBy, RequestKey};
use jwt::check_jwt_credential;
use route::{Known, check_route};
use service::check_service;

/// Largest rate limit: requests per window.
const MAX_RATE_LIMIT: u64 = 1_000_000_000;

/// Checks everything a well-formed document can still get wrong, collecting
/// every problem rather than stopping at the first.
pub(crate) fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let mut report = |path: String, message: String| problems.push(Problem::new(path, message));

    let mut names = HashSet::new();
    for (i, service) in config.services.iter().enumerate() {
        let at = format!("services[{i}]");
        check_unique_name(&service.name, &at, "service", &mut names, &mut report);
        check_service(service, &at, &mut report);
    }

    let known = Known::new(config);
    let mut names = HashSet::new();
    for (i, route) in config.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        check_unique_name(&route.name, &at, "route", &mut names, &mut report);
        check_route(route, &known, &at, &mut report);
    }

    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    let mut jwt_keys = HashSet::new();
    for (i, consumer) in config.consumers.iter().enumerate() {
        let at = format!("consumers[{i}]");
        check_unique_name(&consumer.name, &at, "consumer", &mut names, &mut report);
        for (k, key) in consumer.api_keys.iter().enumerate() {
            let digest = if token::is_digest(key) {
                key.clone()
            } else {
                token::digest(key)
            };
            if key.len() < 8 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                report(
                    format!("{at}.api_keys[{k}]"),
                    "API keys need at least 8 characters and no whitespace".into(),
                );
            } else if !keys.insert(digest) {
                report(
                    format!("{at}.api_keys[{k}]"),
                    "API key is used by another consumer".into(),
                );
            }
        }
        for (k, credential) in consumer.jwt.iter().enumerate() {
            let at = format!("{at}.jwt[{k}]");
            check_jwt_credential(credential, &at, &mut report);
            if !jwt_keys.insert(credential.key.as_str()) {
                report(
                    format!("{at}.key"),
                    format!("JWT key {:?} is used by another credential", credential.key),
                );
            }
        }
        if let Some(limit) = &consumer.rate_limit {
            let at = format!("{at}.rate_limit");
            check_rate_limit(limit, &at, &mut report);
            if limit.by != RateLimitBy::Consumer {
                report(
                    format!("{at}.by"),
                    "a consumer's own limit counts by consumer; set `by` on a route's limit".into(),
                );
            }
        }
    }

    if let Some(ai) = &config.ai {
        ai::check(config, ai, &mut report);
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Checks `name` at `{at}.name`, and that no earlier entry of its list
/// (whose names are in `seen`) has it: `duplicate {kind} name "…"`.
pub(crate) fn check_unique_name<'n>(
    name: &'n str,
    at: &str,
    kind: &str,
    seen: &mut HashSet<&'n str>,
    report: &mut Report<'_>,
) {
    let at = format!("{at}.name");
    check_name(name, &at, report);
    if !seen.insert(name) {
        report(at, format!("duplicate {kind} name {name:?}"));
    }
}

pub(crate) type Report<'a> = dyn FnMut(String, String) + 'a;

pub(crate) fn check_name(name: &str, at: &str, report: &mut Report<'_>) {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        report(
            at.to_owned(),
            format!("{name:?} is not a valid name (1-128 characters of A-Z a-z 0-9 - _ .)"),
        );
    }
}

pub(super) fn check_request_key(key: &RequestKey, at: &str, report: &mut Report<'_>) {
    match key {
        RequestKey::Header(name) => check_header_name(name, at, report),
        RequestKey::Cookie(name) => check_cookie_name(name, at, report),
        RequestKey::Consumer | RequestKey::ClientIp => {}
    }
}

pub(super) fn check_header_name(name: &str, at: &str, report: &mut Report<'_>) {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.to_ascii_lowercase() != name {
        report(
            at.to_owned(),
            format!("{name:?} is not a lower-case header name"),
        );
    }
}

pub(super) fn check_cookie_name(name: &str, at: &str, report: &mut Report<'_>) {
    // RFC 6265: a cookie name is an RFC 9110 token.
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        report(at.to_owned(), format!("{name:?} is not a cookie name"));
    }
}

pub(crate) fn check_target_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("{url:?} must not carry credentials"));
    }
    if authority.host().is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{url:?} must not have a query"));
    }
    Ok(())
}

pub(super) fn check_rate_limit(limit: &RateLimit, at: &str, report: &mut Report<'_>) {
    if limit.requests == 0 || limit.requests > MAX_RATE_LIMIT {
        report(
            format!("{at}.requests"),
            format!("must be between 1 and {MAX_RATE_LIMIT}"),
        );
    }
    if let RateLimitBy::Header(name) = &limit.by {
        check_header_name(name, &format!("{at}.by"), report);
    }
}

#[cfg(test)]
mod tests;
