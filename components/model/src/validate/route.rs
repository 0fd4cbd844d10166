//! Checks on routes: hosts, paths, timeouts, access lists, splits with
//! their match rules, shadows and retries.

use std::collections::{HashMap, HashSet};

use super::jwt::check_jwt_auth;
use super::{Report, check_cookie_name, check_header_name, check_rate_limit, check_request_key};
use crate::{
    Config, Match, PathMatch, Retries, Route, RouteAccess, RouteKind, Service, Split,
    parse_ip_range,
};

/// Largest accepted route timeout: one hour.
const MAX_TIMEOUT_MS: u32 = 3_600_000;

/// Most retries a route may ask for.
const MAX_RETRY_ATTEMPTS: u32 = 10;

/// What routes may refer to, by name.
pub(super) struct Known<'c> {
    services: HashMap<&'c str, &'c Service>,
    consumers: HashSet<&'c str>,
}

impl<'c> Known<'c> {
    /// The services and consumers `config` defines.
    pub(super) fn new(config: &'c Config) -> Self {
        Known {
            services: config
                .services
                .iter()
                .map(|s| (s.name.as_str(), s))
                .collect(),
            consumers: config.consumers.iter().map(|c| c.name.as_str()).collect(),
        }
    }
}

fn check_access(
    route: &Route,
    access: &RouteAccess,
    known: &Known<'_>,
    at: &str,
    report: &mut Report<'_>,
) {
    for (side, list) in [("allow", &access.allow), ("deny", &access.deny)] {
        if list.names_callers() && route.auth.is_none() {
            report(
                format!("{at}.{side}"),
                "consumers, tenants and tags are known only on a route with auth".into(),
            );
        }
        for (k, consumer) in list.consumers.iter().enumerate() {
            if !known.consumers.contains(consumer.as_str()) {
                report(
                    format!("{at}.{side}.consumers[{k}]"),
                    format!("unknown consumer {consumer:?}: define it under consumers"),
                );
            }
        }
        for (k, range) in list.ips.iter().enumerate() {
            if parse_ip_range(range).is_none() {
                report(
                    format!("{at}.{side}.ips[{k}]"),
                    format!("{range:?} is not an IP address or CIDR range"),
                );
            }
        }
    }
}

pub(super) fn check_route(route: &Route, known: &Known<'_>, at: &str, report: &mut Report<'_>) {
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
    if let Some(jwt) = route.auth.as_ref().and_then(|a| a.jwt.as_ref()) {
        check_jwt_auth(jwt, &format!("{at}.auth.jwt"), report);
    }
    if let Some(limit) = &route.rate_limit {
        check_rate_limit(limit, &format!("{at}.rate_limit"), report);
    }
    if let Some(access) = &route.access {
        check_access(route, access, known, &format!("{at}.access"), report);
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
