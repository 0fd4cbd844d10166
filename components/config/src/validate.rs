//! Consistency checks on a well-formed document: names, references, URLs.

use crate::time::parse_rfc3339;
use crate::{
    BalancePolicy, Config, ConfigError, Deprecation, Match, PathMatch, Problem, RequestKey,
    Retries, Route, RouteKind, Service, Split,
};
use std::collections::{HashMap, HashSet};

/// Largest accepted route timeout: one hour.
const MAX_TIMEOUT_MS: u32 = 3_600_000;

/// Most retries a route may ask for.
const MAX_RETRY_ATTEMPTS: u32 = 10;

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

    let known = Known {
        services: config
            .services
            .iter()
            .map(|s| (s.name.as_str(), s))
            .collect(),
        consumers: config.consumers.iter().map(|c| c.name.as_str()).collect(),
    };
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
        check_route(route, &known, &at, &mut report);
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
        crate::ai::check(ai, &mut report);
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

pub(crate) type Report<'a> = dyn FnMut(String, String) + 'a;

/// What routes may refer to, by name.
struct Known<'c> {
    services: HashMap<&'c str, &'c Service>,
    consumers: HashSet<&'c str>,
}

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
        if let Some(deprecation) = &version.deprecation {
            check_deprecation(deprecation, &format!("{at}.deprecation"), report);
        }
    }
    let weights: Vec<u32> = service.versions.iter().filter_map(|v| v.weight).collect();
    if !weights.is_empty() && weights.iter().all(|w| *w == 0) {
        report(
            format!("{at}.versions"),
            "at least one version needs a weight above 0".into(),
        );
    }
    let balancer = &service.balancer;
    match (balancer.policy, &balancer.hash_on) {
        (BalancePolicy::ConsistentHash, None) => report(
            format!("{at}.balancer.hash_on"),
            "consistent_hash needs hash_on".into(),
        ),
        (BalancePolicy::ConsistentHash, Some(key)) => {
            check_request_key(key, &format!("{at}.balancer.hash_on"), report);
        }
        (_, Some(_)) => report(
            format!("{at}.balancer.hash_on"),
            "hash_on applies to consistent_hash only".into(),
        ),
        (_, None) => {}
    }
    let outliers = &service.outlier_detection;
    if outliers.failures > 0 {
        for (field, value) in [
            ("window_ms", outliers.window_ms),
            ("ejection_ms", outliers.ejection_ms),
        ] {
            if value == 0 {
                report(
                    format!("{at}.outlier_detection.{field}"),
                    "must be at least 1 (failures: 0 turns detection off)".into(),
                );
            }
        }
    }
}

fn check_deprecation(deprecation: &Deprecation, at: &str, report: &mut Report<'_>) {
    let timestamp = |field: &str, text: &str, report: &mut Report<'_>| {
        let parsed = parse_rfc3339(text);
        if parsed.is_none() {
            report(
                format!("{at}.{field}"),
                format!("{text:?} is not an RFC 3339 timestamp, e.g. 2026-03-01T00:00:00Z"),
            );
        }
        parsed
    };
    let deprecated_at = timestamp("deprecated_at", &deprecation.deprecated_at, report);
    if let Some(sunset) = &deprecation.sunset
        && let (Some(sunset), Some(deprecated_at)) =
            (timestamp("sunset", sunset, report), deprecated_at)
        && sunset < deprecated_at
    {
        report(
            format!("{at}.sunset"),
            "the sunset must not come before deprecated_at".into(),
        );
    }
    if let Some(link) = &deprecation.link {
        let valid = link
            .parse::<http::Uri>()
            .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")))
            && !link.contains(['<', '>', '"']);
        if !valid {
            report(
                format!("{at}.link"),
                format!("{link:?} is not an http(s) URL"),
            );
        }
    }
}

fn check_request_key(key: &RequestKey, at: &str, report: &mut Report<'_>) {
    match key {
        RequestKey::Header(name) => check_header_name(name, at, report),
        RequestKey::Cookie(name) => check_cookie_name(name, at, report),
        RequestKey::Consumer | RequestKey::ClientIp => {}
    }
}

fn check_header_name(name: &str, at: &str, report: &mut Report<'_>) {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.to_ascii_lowercase() != name {
        report(
            at.to_owned(),
            format!("{name:?} is not a lower-case header name"),
        );
    }
}

fn check_cookie_name(name: &str, at: &str, report: &mut Report<'_>) {
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

fn check_route(route: &Route, known: &Known<'_>, at: &str, report: &mut Report<'_>) {
    match (route.kind, &route.service) {
        (RouteKind::Proxy, None) => report(
            format!("{at}.service"),
            "a proxy route needs a service".into(),
        ),
        (RouteKind::Proxy, Some(service)) if !known.services.contains_key(service.as_str()) => {
            report(
                format!("{at}.service"),
                format!("unknown service {service:?}: define it under services"),
            )
        }
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
        check_header_name(name, &format!("{at}.headers.{name}"), report);
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
    if let Some(key) = route.auth.as_ref().and_then(|a| a.api_key.as_ref()) {
        check_header_name(&key.header, &format!("{at}.auth.api_key.header"), report);
    }
    if route.kind == RouteKind::Ai {
        for (field, set) in [
            ("version", route.version.is_some()),
            ("split", route.split.is_some()),
            ("retries", route.retries.is_some()),
        ] {
            if set {
                report(
                    format!("{at}.{field}"),
                    "applies to proxy routes only".into(),
                );
            }
        }
        return;
    }
    let service = route.service.as_deref().and_then(|s| known.services.get(s));
    let has_version = |field: String, version: &str, report: &mut Report<'_>| {
        if let Some(service) = service
            && !service.versions.iter().any(|v| v.name == version)
        {
            report(
                field,
                format!("service {:?} has no version {version:?}", service.name),
            );
        }
    };
    if let Some(version) = &route.version {
        has_version(format!("{at}.version"), version, report);
    }
    if let Some(split) = &route.split {
        check_split(
            split,
            route,
            known,
            &format!("{at}.split"),
            &has_version,
            report,
        );
    }
    if let Some(retries) = &route.retries {
        check_retries(retries, route.timeout_ms, &format!("{at}.retries"), report);
    }
}

fn check_split(
    split: &Split,
    route: &Route,
    known: &Known<'_>,
    at: &str,
    has_version: &dyn Fn(String, &str, &mut Report<'_>),
    report: &mut Report<'_>,
) {
    if let Some(pinned) = &route.version {
        if !split.rules.is_empty() {
            report(
                format!("{at}.rules"),
                format!("the route is pinned to version {pinned:?}; rules do not apply"),
            );
        }
        if split.sticky.is_some() {
            report(
                format!("{at}.sticky"),
                format!("the route is pinned to version {pinned:?}; stickiness does not apply"),
            );
        }
    }
    for (r, rule) in split.rules.iter().enumerate() {
        let at = format!("{at}.rules[{r}]");
        has_version(format!("{at}.version"), &rule.version, report);
        check_match(&rule.matches, known, &format!("{at}.match"), report);
    }
    if let Some(sticky) = &split.sticky {
        check_request_key(&sticky.on, &format!("{at}.sticky.on"), report);
    }
    if let Some(shadow) = &split.shadow {
        has_version(format!("{at}.shadow.version"), &shadow.version, report);
        if route.version.as_ref() == Some(&shadow.version) {
            report(
                format!("{at}.shadow.version"),
                "copies never go to the version that serves the request".into(),
            );
        }
        if !(shadow.percent.is_finite() && (0.0..=100.0).contains(&shadow.percent)) {
            report(
                format!("{at}.shadow.percent"),
                "must be between 0 and 100".into(),
            );
        }
        if shadow.timeout_ms == 0 || shadow.timeout_ms > MAX_TIMEOUT_MS {
            report(
                format!("{at}.shadow.timeout_ms"),
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            );
        }
    }
    if let Some(fallback) = &split.fallback {
        has_version(format!("{at}.fallback"), fallback, report);
        if route.version.as_ref() == Some(fallback) {
            report(
                format!("{at}.fallback"),
                "the fallback must differ from the pinned version".into(),
            );
        }
    }
}

fn check_match(rule: &Match, known: &Known<'_>, at: &str, report: &mut Report<'_>) {
    if rule.is_empty() {
        report(at.to_owned(), "a rule needs at least one condition".into());
    }
    for name in rule.headers.keys() {
        check_header_name(name, &format!("{at}.headers.{name}"), report);
    }
    for name in rule.cookies.keys() {
        check_cookie_name(name, &format!("{at}.cookies.{name}"), report);
    }
    for name in rule.query.keys() {
        if name.is_empty() || name.contains(['&', '=', '#']) {
            report(
                format!("{at}.query.{name}"),
                format!("{name:?} is not a query parameter name"),
            );
        }
    }
    for (c, consumer) in rule.consumers.iter().enumerate() {
        if !known.consumers.contains(consumer.as_str()) {
            report(
                format!("{at}.consumers[{c}]"),
                format!("unknown consumer {consumer:?}: define it under consumers"),
            );
        }
    }
    for (field, values) in [("tenants", &rule.tenants), ("tags", &rule.tags)] {
        for (i, value) in values.iter().enumerate() {
            if value.is_empty() {
                report(format!("{at}.{field}[{i}]"), "must not be empty".into());
            }
        }
    }
}

fn check_retries(retries: &Retries, route_timeout_ms: u32, at: &str, report: &mut Report<'_>) {
    if retries.attempts > MAX_RETRY_ATTEMPTS {
        report(
            format!("{at}.attempts"),
            format!("must be at most {MAX_RETRY_ATTEMPTS}"),
        );
    }
    for (s, status) in retries.retry_on.iter().enumerate() {
        if !(400..=599).contains(status) {
            report(
                format!("{at}.retry_on[{s}]"),
                format!("{status} is not a 4xx or 5xx status"),
            );
        }
    }
    for (m, method) in retries.methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            report(
                format!("{at}.methods[{m}]"),
                format!("{method:?} is not an upper-case HTTP method"),
            );
        }
    }
    if let Some(per_try) = retries.per_try_timeout_ms
        && (per_try == 0 || per_try > route_timeout_ms)
    {
        report(
            format!("{at}.per_try_timeout_ms"),
            format!("must be between 1 and the route's timeout_ms ({route_timeout_ms})"),
        );
    }
    if retries.budget_percent > 100 {
        report(
            format!("{at}.budget_percent"),
            "must be between 0 and 100".into(),
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
