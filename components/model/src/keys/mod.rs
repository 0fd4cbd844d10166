//! Key layout of the key-value store (bucket `default`), shared by the
//! admin API, the gateway and the splitter.
//!
//! Route, service and version names never contain `/` (see the name rule
//! of the config document), so every segment below is one path segment.
//! Target URLs do, so they are escaped with [`target`]. Counters are only
//! ever incremented (or deleted), never written with `set` or
//! compare-and-swap, and read with [`decode_counter`]: their encoding is the
//! backend's (see [`crate::store`]). No key is both a counter and a value
//! written otherwise.
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
//! rollouts/{service}/diffs/{id}/{step}/fields/{path}   counter: answers differing in a field
//! rollouts/{service}/diffs/{id}/{step}/noise/{path}    counter: a field differing between stable answers
//! rollouts/{service}/diffs/{id}/{step}/samples/{n}     JSON: a sample diff, n in 0..5
//! rollouts/{service}/hooks/lease                JSON {"until_ms"}: the node running the webhooks
//! rollouts/{service}/hooks/calls/{id}/{hook}    JSON: the last call of a webhook
//!
//! health/{service}                              ejected targets: JSON {"<url>": until_ms}
//! outliers/{service}/{target}/{window}          counter: errors of a target in one window
//! outliers/{service}/{target}/last-window       the newest window counted, for cleanup
//! ejections/{service}/{target}                  counter: times the target was ejected
//!
//! balancer/{service}/{version}/next             counter: round-robin position
//! balancer/{service}/outstanding/{target}       counter: requests in flight to a target
//!
//! retry/{route}/{window}/requests               counter: retryable requests in a 10 s window
//! retry/{route}/{window}/retries                counter: retries granted in that window
//! retry/{route}/last-window                     the newest window counted, for cleanup
//!
//! metrics/{route}/{service}/{version}/{field}   counters per route and version (metric fields)
//!
//! ratelimit/routes/{route}/{subject}/{window}   counter: a route's rate limit, per subject
//! ratelimit/consumers/{consumer}/{window}       counter: a consumer's own rate limit
//!
//! audit/seq                                     counter: allocates admin audit entry numbers
//! audit/{n:010}                                 JSON: one admin write (see `crate::audit`)
//!
//! components/in-force                           JSON: per component, the pushed version in
//!                                               force, the ones before it and every pushed one
//!                                               (written by compare-and-swap; host only)
//! components/blobs/{sha256}                     a pushed component's bytes (immutable)
//! components/{name}/versions/{sha256}           JSON: who pushed that version, when and why
//! components/{name}/history-seq                 counter: allocates history entry numbers
//! components/{name}/history/{n:010}             JSON: one transition of the component
//! api-keys/{sha256}                             JSON: an issued API key (see
//!                                               `crate::token::IssuedKey`), by its digest
//! consumers/{consumer}/keys/{id}                the digest of one of the consumer's issued keys
//!
//! components/{name}/canary                      RolloutState JSON of the component's canary
//! components/{name}/canary/{id}/{step}/{side}/{field}
//!                                               counters of one canary step (side: stable or
//!                                               canary; metric fields)
//! ```
//!
//! An outlier or retry window is `now_ms / window_ms`. When a counter opens
//! a new window it deletes the one named by `last-window` (a number written
//! with `set`, not a counter), so only live windows remain. Metric fields
//! are the names in [`crate::metrics`].
//!
//! A rate limit's window is `now_ms / per_ms`. The first request of window
//! `w` deletes the counter of `w - 2`, so a subject with steady traffic
//! keeps two keys: the current window's and the previous one's, which the
//! sliding window still weighs. A pause of two windows or more leaves the
//! last two counters before it behind, out of reach of later deletes.
//! Subjects are made by [`rate_limit_subject`].
//!
//! The AI counters and cache have their own layout, in [`ai`].
//!
//! [`decode_counter`]: crate::store::decode_counter

pub mod ai;

/// Key holding the number of the version in force, as decimal text
/// (written by compare-and-swap, never incremented).
pub const CURRENT: &str = "config/current";

/// Counter allocating the admin audit trail's entry numbers.
pub const AUDIT_SEQ: &str = "audit/seq";

/// Key of entry `n` (from 1) of the admin audit trail.
pub fn audit(n: u64) -> String {
    format!("audit/{n:010}")
}

/// Key holding the issued API key whose digest is `digest` (`sha256:…`).
pub fn issued_key(digest: &str) -> String {
    format!(
        "api-keys/{}",
        digest.strip_prefix("sha256:").unwrap_or(digest)
    )
}

/// Key holding the JSON Web Key Set fetched from `url` (a
/// [`crate::jwks::JwksRecord`]), named by the URL's SHA-256.
pub fn jwks(url: &str) -> String {
    format!(
        "jwks/{}",
        crate::token::digest(url)
            .strip_prefix("sha256:")
            .unwrap_or_default()
    )
}

/// Key holding the digest of issued key `id` of `consumer`.
pub fn consumer_key(consumer: &str, id: &str) -> String {
    format!("consumers/{consumer}/keys/{id}")
}

/// Prefix of the keys of `consumer`'s issued keys.
pub fn consumer_keys_prefix(consumer: &str) -> String {
    format!("consumers/{consumer}/keys/")
}

/// Key holding which pushed component versions are in force (see the
/// host's component registry).
pub const COMPONENTS_IN_FORCE: &str = "components/in-force";

/// Key holding the bytes of the pushed component whose SHA-256 is `sha256`
/// (lower-case hex).
pub fn component_blob(sha256: &str) -> String {
    format!("components/blobs/{sha256}")
}

/// Key holding the record of version `sha256` of component `name`.
pub fn component_version(name: &str, sha256: &str) -> String {
    format!("components/{name}/versions/{sha256}")
}

/// Counter allocating the history entry numbers of component `name`.
pub fn component_history_seq(name: &str) -> String {
    format!("components/{name}/history-seq")
}

/// Key of history entry `n` (from 1) of component `name`.
pub fn component_history(name: &str, n: u64) -> String {
    format!("components/{name}/history/{n:010}")
}

/// Key holding the state of component `name`'s canary (a rollout state).
pub fn component_canary(name: &str) -> String {
    format!("components/{name}/canary")
}

/// Counter `field` of `side` (`stable` or `canary`) during step `step` of
/// canary `canary_id` of component `name`.
pub fn component_canary_metric(
    name: &str,
    canary_id: &str,
    step: usize,
    side: &str,
    field: &str,
) -> String {
    format!("components/{name}/canary/{canary_id}/{step}/{side}/{field}")
}

/// Counter from which new version numbers are allocated.
pub const SEQUENCE: &str = "config/seq";

/// Prefix of every metrics counter.
pub const METRICS_PREFIX: &str = "metrics/";

/// Prefix of the stored config versions.
pub const VERSIONS_PREFIX: &str = "config/versions/";

/// Key holding the stored document of version `n`.
pub fn version(n: u64) -> String {
    format!("{VERSIONS_PREFIX}{n}")
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

/// Prefix of the answer-diff keys of step `step` of rollout `rollout_id`.
pub fn diff_prefix(service: &str, rollout_id: &str, step: usize) -> String {
    format!("rollouts/{service}/diffs/{rollout_id}/{step}/")
}

/// Counter of the compared shadow answers that differed from the
/// primary's in field `path`, blamed on the canary.
pub fn diff_field(service: &str, rollout_id: &str, step: usize, path: &str) -> String {
    format!("{}fields/{path}", diff_prefix(service, rollout_id, step))
}

/// Counter of the times field `path` differed between two answers of the
/// stable version: noise.
pub fn diff_noise(service: &str, rollout_id: &str, step: usize, path: &str) -> String {
    format!("{}noise/{path}", diff_prefix(service, rollout_id, step))
}

/// Key holding sample diff number `slot` (JSON) of a rollout step.
pub fn diff_sample(service: &str, rollout_id: &str, step: usize, slot: u64) -> String {
    format!("{}samples/{slot}", diff_prefix(service, rollout_id, step))
}

/// Key of the lease on running the webhooks of `service`'s rollout.
pub fn hooks_lease(service: &str) -> String {
    format!("rollouts/{service}/hooks/lease")
}

/// Prefix of the keys recording the webhook calls of rollout `rollout_id`.
pub fn hook_calls_prefix(service: &str, rollout_id: &str) -> String {
    format!("rollouts/{service}/hooks/calls/{rollout_id}/")
}

/// Key recording the last call of webhook `hook` of rollout `rollout_id`.
pub fn hook_call(service: &str, rollout_id: &str, hook: &str) -> String {
    format!("{}{hook}", hook_calls_prefix(service, rollout_id))
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

/// Prefix of every ejection counter.
pub const EJECTIONS_PREFIX: &str = "ejections/";

/// Counter of the ejections of `target` (a URL) of `service`.
pub fn ejections(service: &str, target_url: &str) -> String {
    format!("{EJECTIONS_PREFIX}{service}/{}", target(target_url))
}

/// The service and target URL of an ejection counter's key.
pub fn parse_ejections(key: &str) -> Option<(&str, String)> {
    let (service, target) = key.strip_prefix(EJECTIONS_PREFIX)?.split_once('/')?;
    Some((service, untarget(target)))
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
    // Every request makes several: one allocation each, no formatting.
    [
        METRICS_PREFIX,
        route,
        "/",
        service,
        "/",
        version,
        "/",
        field,
    ]
    .concat()
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

/// Counter of window `window` of the rate limit of `route`, for `subject`
/// (see [`rate_limit_subject`]).
pub fn route_rate_limit(route: &str, subject: &str, window: u64) -> String {
    format!("ratelimit/routes/{route}/{subject}/{window}")
}

/// Counter of window `window` of the own rate limit of `consumer`.
pub fn consumer_rate_limit(consumer: &str, window: u64) -> String {
    format!("ratelimit/consumers/{consumer}/{window}")
}

/// Longest subject value kept as it is; longer ones are hashed.
const MAX_SUBJECT_VALUE: usize = 64;

/// What a route's rate limit counts by, as one key segment: `route`,
/// `consumer:{name}`, `ip:{address}` or `header:{value}`. `kind` is
/// `consumer`, `ip` or `header`; values are escaped like [`target`] (and
/// `#` as `%23`), and values over 64 bytes are replaced by `#` and a 64-bit
/// hash.
pub fn rate_limit_subject(kind: &str, value: Option<&str>) -> String {
    let Some(value) = value else {
        return kind.to_owned();
    };
    if value.len() > MAX_SUBJECT_VALUE {
        // FNV-1a: stable across builds and platforms.
        let hash = value.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        return format!("{kind}:#{hash:016x}");
    }
    let escaped = target(value).replace('#', "%23");
    format!("{kind}:{escaped}")
}

/// A target URL as one key segment: `%` and `/` percent-encoded.
pub fn target(url: &str) -> String {
    url.replace('%', "%25").replace('/', "%2F")
}

/// The target URL (or tenant) that [`target`] made a key segment of.
pub fn untarget(segment: &str) -> String {
    segment.replace("%2F", "/").replace("%25", "%")
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
    fn ejection_keys_round_trip() {
        let key = ejections("orders", "http://10.0.0.5:80/a%2Fb");
        assert_eq!(key, "ejections/orders/http:%2F%2F10.0.0.5:80%2Fa%252Fb");
        assert_eq!(
            parse_ejections(&key),
            Some(("orders", "http://10.0.0.5:80/a%2Fb".to_owned()))
        );
        assert_eq!(parse_ejections("health/orders"), None);
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
    fn rate_limit_keys_name_their_window() {
        let alice = rate_limit_subject("consumer", Some("alice"));
        assert_eq!(alice, "consumer:alice");
        assert_eq!(
            route_rate_limit("orders", &alice, 1_700_000_001),
            "ratelimit/routes/orders/consumer:alice/1700000001"
        );
        assert_eq!(
            consumer_rate_limit("alice", 10),
            "ratelimit/consumers/alice/10"
        );
        assert_eq!(rate_limit_subject("route", None), "route");
        assert_eq!(
            rate_limit_subject("ip", Some("2001:db8::1")),
            "ip:2001:db8::1"
        );
        assert_eq!(
            rate_limit_subject("header", Some("a/b%c")),
            "header:a%2Fb%25c"
        );
        let long = "x".repeat(65);
        let hashed = rate_limit_subject("header", Some(&long));
        assert_eq!(hashed.len(), "header:#".len() + 16);
        assert_ne!(hashed, rate_limit_subject("header", Some(&"y".repeat(65))));
        assert_eq!(hashed, rate_limit_subject("header", Some(&long)));
        assert_eq!(rate_limit_subject("header", Some("#1")), "header:%231");
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
