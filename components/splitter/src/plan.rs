//! Weighted choice of a service version and target.

use std::collections::HashMap;
use upshift_config::{Config, RequestHead, Service};

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'p> {
    /// Chosen version.
    pub version: &'p str,
    /// Base URL of the chosen target.
    pub target: &'p str,
    /// Why this version was chosen.
    pub reason: &'static str,
}

/// A request for a service the plan does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {0:?} is not defined")]
pub struct SplitError(pub String);

/// Items with cumulative weights, for a weighted pick from a hash.
#[derive(Debug)]
struct Weighted<T> {
    items: Vec<(u64, T)>,
    total: u64,
}

impl<T> Weighted<T> {
    fn new(items: impl IntoIterator<Item = (u32, T)>) -> Self {
        let mut total = 0u64;
        let items = items
            .into_iter()
            .filter(|(w, _)| *w > 0)
            .map(|(w, item)| {
                total += u64::from(w);
                (total, item)
            })
            .collect();
        Weighted { items, total }
    }

    fn pick(&self, hash: u64) -> &T {
        let point = hash % self.total;
        let index = self.items.partition_point(|(upper, _)| *upper <= point);
        &self.items[index].1
    }
}

#[derive(Debug)]
struct VersionPlan {
    name: String,
    targets: Weighted<String>,
}

#[derive(Debug)]
struct ServicePlan {
    versions: Weighted<VersionPlan>,
    single: bool,
}

impl ServicePlan {
    fn new(service: &Service) -> Self {
        let any_weight = service.versions.iter().any(|v| v.weight.is_some());
        let versions = Weighted::new(service.versions.iter().enumerate().map(|(i, v)| {
            let weight = if any_weight {
                v.weight.unwrap_or(0)
            } else {
                u32::from(i == 0)
            };
            let targets = Weighted::new(v.targets.iter().map(|t| (t.weight, t.url.clone())));
            (
                weight,
                VersionPlan {
                    name: v.name.clone(),
                    targets,
                },
            )
        }));
        let single = versions.items.len() == 1;
        ServicePlan { versions, single }
    }
}

/// Services of one config version, ready to split.
#[derive(Debug, Default)]
pub struct Plan {
    services: HashMap<String, ServicePlan>,
}

impl Plan {
    /// Compiles the services of `config`.
    pub fn new(config: &Config) -> Self {
        let services = config
            .services
            .iter()
            .map(|s| (s.name.clone(), ServicePlan::new(s)))
            .collect();
        Plan { services }
    }

    /// Picks the version and target of `service` for the request `head`.
    pub fn choose(&self, service: &str, head: &RequestHead) -> Result<Selection<'_>, SplitError> {
        let plan = self
            .services
            .get(service)
            .ok_or_else(|| SplitError(service.to_owned()))?;
        let hash = fnv1a(head.request_id.as_bytes());
        let version = plan.versions.pick(hash);
        // Use the other half of the hash for the target, so the two picks are independent.
        let target = version.targets.pick(hash.rotate_left(32));
        Ok(Selection {
            version: &version.name,
            target,
            reason: if plan.single {
                "only-version"
            } else {
                "weight"
            },
        })
    }
}

/// 64-bit FNV-1a with a final avalanche, so close inputs spread evenly.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(doc: &str) -> Plan {
        Plan::new(&Config::parse(doc).expect("valid"))
    }

    fn head(id: usize) -> RequestHead {
        RequestHead {
            request_id: format!("req-{id:08}"),
            ..RequestHead::default()
        }
    }

    #[test]
    fn weights_converge() {
        let p = plan(
            "services: [{name: s, versions: [\
               {name: v1, weight: 90, targets: [{url: 'http://a'}]},\
               {name: v2, weight: 10, targets: [{url: 'http://b'}, {url: 'http://c'}]}]}]",
        );
        let n = 20_000;
        let v2 = (0..n)
            .filter(|i| p.choose("s", &head(*i)).unwrap().version == "v2")
            .count();
        let share = v2 as f64 / n as f64;
        assert!((0.09..0.11).contains(&share), "v2 share {share}");
    }

    #[test]
    fn first_version_takes_all_without_weights() {
        let p = plan(
            "services: [{name: s, versions: [\
               {name: v1, targets: [{url: 'http://a'}]}, {name: v2, targets: [{url: 'http://b'}]}]}]",
        );
        assert!((0..100).all(|i| p.choose("s", &head(i)).unwrap().target == "http://a"));
    }

    #[test]
    fn zero_weight_versions_get_nothing_and_unknown_services_fail() {
        let p = plan(
            "services: [{name: s, versions: [\
               {name: v1, weight: 0, targets: [{url: 'http://a'}]},\
               {name: v2, weight: 5, targets: [{url: 'http://b'}]}]}]",
        );
        assert!((0..100).all(|i| p.choose("s", &head(i)).unwrap().version == "v2"));
        assert_eq!(p.choose("t", &head(0)), Err(SplitError("t".into())));
    }
}
