//! Consistency checks on a well-formed document: names, references, URLs.

use crate::{Config, ConfigError, PathMatch, Problem, Route, RouteKind, Service};
use std::collections::HashSet;

/// Largest accepted route timeout: one hour.
const MAX_TIMEOUT_MS: u32 = 3_600_000;

/// Checks everything a well-formed document can still get wrong, collecting
/// every problem rather than stopping at the first.
pub(crate) fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let mut report = |path: String, message: String| problems.push(Problem::new(path, message));

    let mut names = HashSet::new();
    for (i, service) in config.services.iter().enumerate() {
        let at = format!("services[{i}]");
        check_name(&service.name, &format!("{at}.name"), &mut report);
        if !names.insert(service.name.as_str()) {
            report(
                format!("{at}.name"),
                format!("duplicate service name {:?}", service.name),
            );
        }
        check_service(service, &at, &mut report);
    }

    let mut names = HashSet::new();
    for (i, route) in config.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        check_name(&route.name, &format!("{at}.name"), &mut report);
        if !names.insert(route.name.as_str()) {
            report(
                format!("{at}.name"),
                format!("duplicate route name {:?}", route.name),
            );
        }
        check_route(route, config, &at, &mut report);
    }

    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    for (i, consumer) in config.consumers.iter().enumerate() {
        let at = format!("consumers[{i}]");
        check_name(&consumer.name, &format!("{at}.name"), &mut report);
        if !names.insert(consumer.name.as_str()) {
            report(
                format!("{at}.name"),
                format!("duplicate consumer name {:?}", consumer.name),
            );
        }
        for (k, key) in consumer.api_keys.iter().enumerate() {
            if key.len() < 8 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                report(
                    format!("{at}.api_keys[{k}]"),
                    "API keys need at least 8 characters and no whitespace".into(),
                );
            } else if !keys.insert(key.as_str()) {
                report(
                    format!("{at}.api_keys[{k}]"),
                    "API key is used by another consumer".into(),
                );
            }
        }
    }

    if let Some(ai) = &config.ai {
        let mut aliases = HashSet::new();
        for (i, model) in ai.models.iter().enumerate() {
            let at = format!("ai.models[{i}]");
            check_name(&model.alias, &format!("{at}.alias"), &mut report);
            if !aliases.insert(model.alias.as_str()) {
                report(
                    format!("{at}.alias"),
                    format!("duplicate model alias {:?}", model.alias),
                );
            }
            if model.provider.is_empty() || model.model.is_empty() {
                report(at, "provider and model must not be empty".into());
            }
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

type Report<'a> = dyn FnMut(String, String) + 'a;

fn check_name(name: &str, at: &str, report: &mut Report<'_>) {
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

fn check_service(service: &Service, at: &str, report: &mut Report<'_>) {
    if service.versions.is_empty() {
        report(
            format!("{at}.versions"),
            "a service needs at least one version".into(),
        );
    }
    let mut names = HashSet::new();
    for (v, version) in service.versions.iter().enumerate() {
        let at = format!("{at}.versions[{v}]");
        check_name(&version.name, &format!("{at}.name"), report);
        if !names.insert(version.name.as_str()) {
            report(
                format!("{at}.name"),
                format!("duplicate version name {:?}", version.name),
            );
        }
        if version.targets.is_empty() {
            report(
                format!("{at}.targets"),
                "a version needs at least one target".into(),
            );
        }
        for (t, target) in version.targets.iter().enumerate() {
            if let Err(message) = check_target_url(&target.url) {
                report(format!("{at}.targets[{t}].url"), message);
            }
        }
        if !version.targets.is_empty() && version.targets.iter().all(|t| t.weight == 0) {
            report(
                format!("{at}.targets"),
                "at least one target needs a weight above 0".into(),
            );
        }
    }
    let weights: Vec<u32> = service.versions.iter().filter_map(|v| v.weight).collect();
    if !weights.is_empty() && weights.iter().all(|w| *w == 0) {
        report(
            format!("{at}.versions"),
            "at least one version needs a weight above 0".into(),
        );
    }
}

fn check_target_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{url:?} must start with http:// or https://")),
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

fn check_route(route: &Route, config: &Config, at: &str, report: &mut Report<'_>) {
    match (route.kind, &route.service) {
        (RouteKind::Proxy, None) => report(
            format!("{at}.service"),
            "a proxy route needs a service".into(),
        ),
        (RouteKind::Proxy, Some(service)) if config.service(service).is_none() => report(
            format!("{at}.service"),
            format!("unknown service {service:?}: define it under services"),
        ),
        (RouteKind::Ai, Some(_)) => report(
            format!("{at}.service"),
            "an ai route is served by the AI component and takes no service".into(),
        ),
        _ => {}
    }
    for (h, host) in route.hosts.iter().enumerate() {
        if !valid_host_pattern(host) {
            report(
                format!("{at}.hosts[{h}]"),
                format!("{host:?} is not a lower-case host name or *.domain pattern"),
            );
        }
    }
    for (p, path) in route.paths.iter().enumerate() {
        if !path.starts_with('/') || path.contains(['?', '#']) || path.contains(char::is_whitespace)
        {
            report(
                format!("{at}.paths[{p}]"),
                format!("{path:?} must start with / and contain no query, fragment or spaces"),
            );
        }
    }
    for (m, method) in route.methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            report(
                format!("{at}.methods[{m}]"),
                format!("{method:?} is not an upper-case HTTP method"),
            );
        }
    }
    for name in route.headers.keys() {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || name.to_ascii_lowercase() != *name
        {
            report(
                format!("{at}.headers.{name}"),
                format!("{name:?} is not a lower-case header name"),
            );
        }
    }
    if let Some(prefix) = &route.replace_prefix {
        if route.path_match == PathMatch::Exact {
            report(
                format!("{at}.replace_prefix"),
                "replace_prefix applies to prefix routes only".into(),
            );
        } else if !(prefix.is_empty() || prefix.starts_with('/')) {
            report(
                format!("{at}.replace_prefix"),
                format!("{prefix:?} must be empty or start with /"),
            );
        }
    }
    if route.timeout_ms == 0 || route.timeout_ms > MAX_TIMEOUT_MS {
        report(
            format!("{at}.timeout_ms"),
            format!("must be between 1 and {MAX_TIMEOUT_MS}"),
        );
    }
    if let Some(key) = route.auth.as_ref().and_then(|a| a.api_key.as_ref())
        && (http::HeaderName::from_bytes(key.header.as_bytes()).is_err()
            || key.header.to_ascii_lowercase() != key.header)
    {
        report(
            format!("{at}.auth.api_key.header"),
            format!("{:?} is not a lower-case header name", key.header),
        );
    }
}

fn valid_host_pattern(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}
