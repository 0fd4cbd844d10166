//! Consistency checks on a well-formed document: names, references, URLs.

mod ai;

use crate::time::parse_rfc3339;
use crate::token;
use crate::{
    BalancePolicy, Config, ConfigError, Deprecation, JwtAuth, JwtCredential, JwtKeyKind, Match,
    PathMatch, Problem, RateLimit, RateLimitBy, RequestKey, Retries, Route, RouteAccess, RouteKind,
    Service, Split, parse_ip_range,
};
use std::collections::{HashMap, HashSet};

/// Largest accepted route timeout: one hour.
const MAX_TIMEOUT_MS: u32 = 3_600_000;

/// Most retries a route may ask for.
const MAX_RETRY_ATTEMPTS: u32 = 10;

/// Largest rate limit: requests per window.
const MAX_RATE_LIMIT: u64 = 1_000_000_000;

/// Largest clock skew allowed on JWT times: one hour.
const MAX_JWT_LEEWAY_S: u32 = 3_600;

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
    let mut jwt_keys = HashSet::new();
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

pub(crate) type Report<'a> = dyn FnMut(String, String) + 'a;

/// What routes may refer to, by name.
struct Known<'c> {
    services: HashMap<&'c str, &'c Service>,
    consumers: HashSet<&'c str>,
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
            if let Err(message) = check_service_target_url(&target.url) {
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

/// A service target's URL: [`check_target_url`]'s, or the same with
/// `h2c://` or `h2://` for HTTP/2.
fn check_service_target_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url.split_once("://").unwrap_or_default();
    let http = match scheme {
        "http" | "https" => return check_target_url(url),
        "h2c" => "http",
        "h2" => "https",
        _ => {
            return Err(format!(
                "{url:?} must start with http://, https://, h2c:// or h2://"
            ));
        }
    };
    check_target_url(&[http, "://", rest].concat())
        .map_err(|e| e.replace(&[http, "://"].concat(), &[scheme, "://"].concat()))
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

fn check_jwt_auth(jwt: &JwtAuth, at: &str, report: &mut Report<'_>) {
    check_header_name(&jwt.header, &format!("{at}.header"), report);
    if let Some(cookie) = &jwt.cookie {
        check_cookie_name(cookie, &format!("{at}.cookie"), report);
    }
    for (field, value) in [("issuer", &jwt.issuer), ("audience", &jwt.audience)] {
        if value.as_ref().is_some_and(String::is_empty) {
            report(format!("{at}.{field}"), "must not be empty".into());
        }
    }
    if jwt.leeway_s > MAX_JWT_LEEWAY_S {
        report(
            format!("{at}.leeway_s"),
            format!("must be at most {MAX_JWT_LEEWAY_S}"),
        );
    }
    for (i, scope) in jwt.scopes.iter().enumerate() {
        if scope.is_empty() || scope.contains(char::is_whitespace) {
            report(
                format!("{at}.scopes[{i}]"),
                format!("{scope:?} is not a scope: one word, no spaces"),
            );
        }
    }
    for (field, mut claims) in [
        ("required_claims", jwt.required_claims.keys()),
        ("forward_claims", jwt.forward_claims.keys()),
    ] {
        if claims.any(String::is_empty) {
            report(
                format!("{at}.{field}"),
                "claim names must not be empty".into(),
            );
        }
    }
    let mut headers = HashSet::new();
    for (claim, header) in &jwt.forward_claims {
        let at = format!("{at}.forward_claims.{claim}");
        check_header_name(header, &at, report);
        if !forwardable(header) {
            report(
                at,
                format!("{header:?} is set by the gateway or names the connection; pick another"),
            );
        } else if !headers.insert(header.as_str()) {
            report(at, format!("{header:?} carries another claim already"));
        }
    }
}

/// Whether a claim may be forwarded in header `name`: not one the
/// gateway sets itself, nor one that describes the connection or the body.
fn forwardable(name: &str) -> bool {
    !matches!(
        name,
        "host"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "content-type"
            | "x-request-id"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "forwarded"
    ) && !name.starts_with("spin-")
}

fn check_jwt_credential(credential: &JwtCredential, at: &str, report: &mut Report<'_>) {
    if credential.key.is_empty() {
        report(format!("{at}.key"), "must not be empty".into());
    }
    let algorithm = credential.algorithm.name();
    let labels: &[&str] = match credential.algorithm.key_kind() {
        JwtKeyKind::Secret { min_bytes } => {
            match &credential.secret {
                None => report(
                    format!("{at}.secret"),
                    format!("{algorithm} needs a secret"),
                ),
                Some(secret) if secret.len() < min_bytes => report(
                    format!("{at}.secret"),
                    format!("{algorithm} secrets need at least {min_bytes} bytes"),
                ),
                Some(_) => {}
            }
            if credential.public_key.is_some() || credential.jwks.is_some() {
                report(
                    format!("{at}.public_key"),
                    format!("{algorithm} uses a secret, not a public key"),
                );
            }
            return;
        }
        JwtKeyKind::Rsa => &["PUBLIC KEY", "RSA PUBLIC KEY"],
        JwtKeyKind::Ec | JwtKeyKind::Ed => &["PUBLIC KEY"],
    };
    if let Some(jwks) = &credential.jwks {
        if let Err(why) = check_target_url(&jwks.url) {
            report(format!("{at}.jwks.url"), why);
        }
        if jwks.min_refresh_s == 0 {
            report(
                format!("{at}.jwks.min_refresh_s"),
                "must be at least 1".into(),
            );
        }
    }
    match &credential.public_key {
        None if credential.jwks.is_some() => {}
        Some(_) if credential.jwks.is_some() => report(
            format!("{at}.public_key"),
            "a credential takes its keys from jwks or public_key, not both".into(),
        ),
        None => report(
            format!("{at}.public_key"),
            format!("{algorithm} needs a public_key in PEM, or a jwks"),
        ),
        Some(pem) if !is_pem(pem, labels) => report(
            format!("{at}.public_key"),
            format!(
                "not a PEM public key: expected -----BEGIN {}-----",
                labels.join("----- or -----BEGIN ")
            ),
        ),
        Some(_) => {}
    }
    if credential.secret.is_some() {
        report(
            format!("{at}.secret"),
            format!("{algorithm} uses a public key, not a secret"),
        );
    }
}

/// Whether `text` is one PEM block with one of `labels` and a base64 body.
fn is_pem(text: &str, labels: &[&str]) -> bool {
    let text = text.trim();
    labels.iter().any(|label| {
        let body = text
            .strip_prefix(&format!("-----BEGIN {label}-----"))
            .and_then(|rest| rest.strip_suffix(&format!("-----END {label}-----")));
        body.is_some_and(|body| {
            let body = body.trim();
            !body.is_empty()
                && body.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n')
                })
        })
    })
}

fn check_rate_limit(limit: &RateLimit, at: &str, report: &mut Report<'_>) {
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

#[cfg(test)]
mod tests {
    use crate::{Config, JwtAlgorithm, JwtKeyClaim, RateLimitBy, RatePeriod};

    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";

    fn problems(doc: &str) -> Vec<String> {
        match Config::parse(doc) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems()
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    fn with(routes: &str, consumers: &str) -> String {
        format!(
            "services: [{{ name: s, versions: [{{ name: v, targets: [{{ url: 'http://a' }}] }}] }}]\n\
             routes:\n{routes}\nconsumers:\n{consumers}\n"
        )
    }

    #[test]
    fn jwt_and_rate_limit_fields_parse_with_defaults() {
        let doc = with(
            "  - name: r\n    service: s\n    auth: { jwt: { audience: api, cookie: session } }\n    rate_limit: { requests: 20, per: 1s }\n  - name: h\n    service: s\n    paths: [/h]\n    rate_limit: { requests: 5, per: 1d, by: 'header:x-tenant' }",
            &format!(
                "  - name: alice\n    jwt:\n      - {{ key: alice-iss, algorithm: HS256, secret: 0123456789abcdef0123456789abcdef }}\n      - {{ key: k2, algorithm: ES256, public_key: {PEM:?} }}\n    rate_limit: {{ requests: 100, per: 1m }}"
            ),
        );
        let config = Config::parse(&doc).expect("valid");
        let jwt = config.routes[0]
            .auth
            .as_ref()
            .unwrap()
            .jwt
            .as_ref()
            .unwrap();
        assert_eq!(jwt.header, "authorization");
        assert_eq!(jwt.key_claim, JwtKeyClaim::Iss);
        assert_eq!(jwt.leeway_s, 30);
        assert_eq!(jwt.audience.as_deref(), Some("api"));
        let limit = config.routes[0].rate_limit.as_ref().unwrap();
        assert_eq!(
            (limit.requests, limit.per, &limit.by),
            (20, RatePeriod::Second, &RateLimitBy::Consumer)
        );
        assert_eq!(
            config.routes[1].rate_limit.as_ref().unwrap().by,
            RateLimitBy::Header("x-tenant".into())
        );
        let alice = &config.consumers[0];
        assert_eq!(alice.jwt[1].algorithm, JwtAlgorithm::Es256);
        assert_eq!(alice.rate_limit.as_ref().unwrap().per.millis(), 60_000);
        // The canonical form round-trips, defaults left out.
        let canonical = config.to_canonical_json();
        assert!(
            !canonical.contains("leeway_s") && !canonical.contains("\"consumer\""),
            "{canonical}"
        );
        assert_eq!(Config::from_canonical_json(&canonical).unwrap(), config);
    }

    #[test]
    fn bad_credentials_and_limits_are_reported_with_their_paths() {
        let doc = with(
            "  - name: r\n    service: s\n    auth: { jwt: { header: X-Token, cookie: 'a b', issuer: '', leeway_s: 7200 } }\n    rate_limit: { requests: 0, per: 1m, by: 'header:Bad Name' }",
            &format!(
                "  - name: alice\n    jwt:\n      - {{ key: dup, algorithm: HS256, secret: short }}\n      - {{ key: k2, algorithm: RS256, secret: 0123456789abcdef0123456789abcdef }}\n      - {{ key: k3, algorithm: ES256, public_key: 'not a pem' }}\n    rate_limit: {{ requests: 1, per: 1s, by: ip }}\n  - name: bob\n    jwt: [{{ key: dup, algorithm: HS256, public_key: {PEM:?}, secret: 0123456789abcdef0123456789abcdef }}]"
            ),
        );
        let found = problems(&doc);
        for expected in [
            "routes[0].auth.jwt.header:",
            "routes[0].auth.jwt.cookie:",
            "routes[0].auth.jwt.issuer: must not be empty",
            "routes[0].auth.jwt.leeway_s:",
            "routes[0].rate_limit.requests:",
            "routes[0].rate_limit.by:",
            "consumers[0].jwt[0].secret: HS256 secrets need at least 32 bytes",
            "consumers[0].jwt[1].public_key: RS256 needs a public_key in PEM",
            "consumers[0].jwt[1].secret: RS256 uses a public key, not a secret",
            "consumers[0].jwt[2].public_key: not a PEM public key",
            "consumers[0].rate_limit.by:",
            "consumers[1].jwt[0].key: JWT key \"dup\" is used by another credential",
            "consumers[1].jwt[0].public_key: HS256 uses a secret, not a public key",
        ] {
            assert!(
                found.iter().any(|p| p.starts_with(expected)),
                "{expected} not in {found:#?}"
            );
        }
        assert_eq!(found.len(), 13, "{found:#?}");
    }

    #[test]
    fn scopes_claims_and_new_algorithms_are_checked() {
        let doc = with(
            "  - name: r\n    service: s\n    auth: { jwt: { scopes: ['a b', ''], required_claims: { '': x }, forward_claims: { sub: host, email: x-user, name: x-user, role: X-Role } } }",
            &format!(
                "  - name: alice\n    jwt:\n      - {{ key: a, algorithm: HS384, secret: 0123456789abcdef0123456789abcdef }}\n      - {{ key: b, algorithm: HS512, secret: {} }}\n      - {{ key: c, algorithm: EdDSA }}\n      - {{ key: d, algorithm: PS256, public_key: {PEM:?} }}\n      - {{ key: e, algorithm: ES384, public_key: {PEM:?} }}\n      - {{ key: f, algorithm: RS256, jwks: {{ url: 'not a url', min_refresh_s: 0 }} }}\n      - {{ key: g, algorithm: ES256, public_key: {PEM:?}, jwks: {{ url: 'https://id.example.com/jwks' }} }}\n      - {{ key: h, algorithm: PS384, jwks: {{ url: 'https://id.example.com/jwks' }} }}",
                "s".repeat(64)
            ),
        );
        let found = problems(&doc);
        for expected in [
            "routes[0].auth.jwt.scopes[0]: \"a b\" is not a scope",
            "routes[0].auth.jwt.scopes[1]:",
            "routes[0].auth.jwt.required_claims: claim names must not be empty",
            "routes[0].auth.jwt.forward_claims.sub: \"host\" is set by the gateway",
            "routes[0].auth.jwt.forward_claims.role:",
            "consumers[0].jwt[0].secret: HS384 secrets need at least 48 bytes",
            "consumers[0].jwt[2].public_key: EdDSA needs a public_key in PEM, or a jwks",
            "consumers[0].jwt[5].jwks.url:",
            "consumers[0].jwt[5].jwks.min_refresh_s: must be at least 1",
            "consumers[0].jwt[6].public_key: a credential takes its keys from jwks or public_key",
        ] {
            assert!(
                found.iter().any(|p| p.starts_with(expected)),
                "{expected} not in {found:#?}"
            );
        }
        // `email` and `name` share a header: one of them is reported.
        assert!(
            found
                .iter()
                .any(|p| p.contains("carries another claim already")),
            "{found:#?}"
        );
        assert_eq!(found.len(), 11, "{found:#?}");
    }

    #[test]
    fn unknown_periods_algorithms_and_keys_are_syntax_errors() {
        for (field, value) in [("per", "per: 2s"), ("by", "per: 1s, by: cookie")] {
            let doc = with(
                &format!("  - {{ name: r, service: s, rate_limit: {{ requests: 1, {value} }} }}"),
                "  - { name: a }",
            );
            assert!(Config::parse(&doc).is_err(), "{field}");
        }
        let doc = with(
            "  - { name: r, service: s }",
            "  - { name: a, jwt: [{ key: k, algorithm: none, secret: x }] }",
        );
        assert!(Config::parse(&doc).is_err());
    }
}
