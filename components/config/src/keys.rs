//! Key layout of the key-value store (bucket `default`), shared by the
//! admin API, the gateway and the splitter.
//!
//! Route, service and version names never contain `/` (see the name rule
//! of the config document), so every segment below is one path segment.
//! Target URLs do, so they are escaped with [`target`]. Counters hold
//! decimal text, as the stores' atomic increment writes them.
//!
//! ```text
//! config/seq                                    counter: allocates version numbers
//! config/current                                number of the version in force
//! config/versions/{n}                           canonical JSON of version n (immutable)
//!
//! rollouts/{service}/state                      RolloutState JSON (small: read per request)
//! rollouts/{service}/audit-seq                  counter: allocates audit entry numbers
//! rollouts/{service}/audit/{n:010}              Transition JSON, n from 1, sorted by key
//! rollouts/{service}/steps/{id}/{step}/{version}/{field}
//!                                               counters of one rollout step (metric fields)
//!
//! health/{service}                              ejected targets: JSON {"<url>": until_ms}
//! outliers/{service}/{target}/{window}          counter: errors of a target in one window
//! outliers/{service}/{target}/last-window       the newest window counted, for cleanup
//!
//! balancer/{service}/{version}/next             counter: round-robin position
//! balancer/{service}/outstanding/{target}       counter: requests in flight to a target
//!
//! retry/{route}/{window}/requests               counter: retryable requests in a 10 s window
//! retry/{route}/{window}/retries                counter: retries granted in that window
//! retry/{route}/last-window                     the newest window counted, for cleanup
//!
//! metrics/{route}/{service}/{version}/{field}   counters per route and version (metric fields)
//! ```
//!
//! A window is `now_ms / window_ms`. When a counter opens a new window it
//! deletes the one named by `last-window`, so only live windows remain.
//! Metric fields are the names in [`crate::metrics`].

/// Key holding the number of the version in force, as decimal text.
pub const CURRENT: &str = "config/current";

/// Counter from which new version numbers are allocated.
pub const SEQUENCE: &str = "config/seq";

/// Prefix of every metrics counter.
pub const METRICS_PREFIX: &str = "metrics/";

/// Key holding the stored document of version `n`.
pub fn version(n: u64) -> String {
    format!("config/versions/{n}")
}

/// Key holding the rollout state of `service`.
pub fn rollout_state(service: &str) -> String {
    format!("rollouts/{service}/state")
}

/// Counter allocating the audit entry numbers of `service`'s rollouts.
pub fn rollout_audit_seq(service: &str) -> String {
    format!("rollouts/{service}/audit-seq")
}

/// Key of audit entry `n` (from 1) of `service`'s rollouts.
pub fn rollout_audit(service: &str, n: u64) -> String {
    format!("rollouts/{service}/audit/{n:010}")
}

/// Prefix of every audit entry of `service`'s rollouts.
pub fn rollout_audit_prefix(service: &str) -> String {
    format!("rollouts/{service}/audit/")
}

/// Counter `field` of `version` during step `step` of rollout `rollout_id`.
pub fn step_metric(
    service: &str,
    rollout_id: &str,
    step: usize,
    version: &str,
    field: &str,
) -> String {
    format!("rollouts/{service}/steps/{rollout_id}/{step}/{version}/{field}")
}

/// Key holding the ejected targets of `service`.
pub fn health(service: &str) -> String {
    format!("health/{service}")
}

/// Counter of errors of `target` (a URL) of `service` in window `window`.
pub fn outlier_window(service: &str, target_url: &str, window: u64) -> String {
    format!("outliers/{service}/{}/{window}", target(target_url))
}

/// Key naming the newest outlier window counted for `target` of `service`.
pub fn outlier_last_window(service: &str, target_url: &str) -> String {
    format!("outliers/{service}/{}/last-window", target(target_url))
}

/// Round-robin position counter of `version` of `service`.
pub fn round_robin(service: &str, version: &str) -> String {
    format!("balancer/{service}/{version}/next")
}

/// Counter of requests in flight to `target` (a URL) of `service`.
pub fn outstanding(service: &str, target_url: &str) -> String {
    format!("balancer/{service}/outstanding/{}", target(target_url))
}

/// Counter of retryable requests of `route` in 10-second window `window`.
pub fn retry_requests(route: &str, window: u64) -> String {
    format!("retry/{route}/{window}/requests")
}

/// Counter of retries granted to `route` in 10-second window `window`.
pub fn retry_retries(route: &str, window: u64) -> String {
    format!("retry/{route}/{window}/retries")
}

/// Key naming the newest retry window counted for `route`.
pub fn retry_last_window(route: &str) -> String {
    format!("retry/{route}/last-window")
}

/// Counter `field` of `version` of `service` serving `route`.
pub fn metric(route: &str, service: &str, version: &str, field: &str) -> String {
    format!("{METRICS_PREFIX}{route}/{service}/{version}/{field}")
}

/// The parts of a metrics key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricKey {
    /// Route name.
    pub route: String,
    /// Service name.
    pub service: String,
    /// Version name.
    pub version: String,
    /// Metric field, one of [`crate::metrics::FIELDS`] when written by the splitter.
    pub field: String,
}

/// The parts of a key made by [`metric`]; `None` for any other key.
pub fn parse_metric(key: &str) -> Option<MetricKey> {
    let mut parts = key.strip_prefix(METRICS_PREFIX)?.split('/');
    let mut next = || parts.next().filter(|p| !p.is_empty()).map(str::to_owned);
    let parsed = MetricKey {
        route: next()?,
        service: next()?,
        version: next()?,
        field: next()?,
    };
    next().is_none().then_some(parsed)
}

/// A target URL as one key segment: `%` and `/` percent-encoded.
pub fn target(url: &str) -> String {
    url.replace('%', "%25").replace('/', "%2F")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_keys_round_trip() {
        let key = metric("orders", "orders-svc", "v2", "status_5xx");
        assert_eq!(key, "metrics/orders/orders-svc/v2/status_5xx");
        assert_eq!(
            parse_metric(&key),
            Some(MetricKey {
                route: "orders".into(),
                service: "orders-svc".into(),
                version: "v2".into(),
                field: "status_5xx".into(),
            })
        );
        for other in [
            "metrics/a/b/c",
            "metrics/a/b/c/d/e",
            "metrics/a//c/d",
            "config/current",
        ] {
            assert_eq!(parse_metric(other), None, "{other}");
        }
    }

    #[test]
    fn rollout_keys_sort_in_order() {
        assert_eq!(
            rollout_audit("orders", 7),
            "rollouts/orders/audit/0000000007"
        );
        assert!(rollout_audit("orders", 9) < rollout_audit("orders", 10));
        assert!(rollout_audit("orders", 1).starts_with(&rollout_audit_prefix("orders")));
        assert_eq!(
            step_metric("orders", "r1", 2, "v2", "requests"),
            "rollouts/orders/steps/r1/2/v2/requests"
        );
    }

    #[test]
    fn target_urls_are_one_segment() {
        assert_eq!(
            target("http://10.0.0.5:8080/a%2Fb"),
            "http:%2F%2F10.0.0.5:8080%2Fa%252Fb"
        );
        assert_eq!(
            outstanding("orders", "http://a/b"),
            "balancer/orders/outstanding/http:%2F%2Fa%2Fb"
        );
    }
}
