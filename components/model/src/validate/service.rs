//! Checks on services: versions, targets, balancers, outlier detection and
//! deprecation notices.

use std::collections::HashSet;

use super::{Report, check_request_key, check_target_url, check_unique_name};
use crate::time::parse_rfc3339;
use crate::{BalancePolicy, Deprecation, Service};

pub(super) fn check_service(service: &Service, at: &str, report: &mut Report<'_>) {
    if service.versions.is_empty() {
        report(
            format!("{at}.versions"),
            "a service needs at least one version".into(),
        );
    }
    let mut names = HashSet::new();
    for (v, version) in service.versions.iter().enumerate() {
        let at = format!("{at}.versions[{v}]");
        check_unique_name(&version.name, &at, "version", &mut names, report);
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
