//! A config document compiled for splitting: services with their versions
//! and targets, each route's split settings with version names resolved to
//! indices, and the store keys a request touches, built once.

use crate::choose::NamedUpstream;
use crate::hash::{NameMap, hash};
use crate::live::LiveCache;
use crate::request::{Conditions, ConsumerIdentity, key_value};
use std::sync::Mutex;
use upshift_model::rollout::RolloutState;
use upshift_model::{
    BalancePolicy, Config, OutlierDetection, RequestHead, RequestKey, Retries, Route, Service, keys,
};

/// Services and routes of one config version, ready to split requests,
/// plus what this instance caches of the live state (parsed rollout state,
/// when it last ran a rollout analysis). All live state is in the store.
#[derive(Debug)]
pub struct Plan {
    pub(crate) services: NameMap<ServicePlan>,
    pub(crate) routes: NameMap<RoutePlan>,
    /// Retry settings of routes that set none.
    pub(crate) default_retries: Retries,
    pub(crate) live: LiveCache,
    /// When this instance last analysed each service's rollout (its clock).
    pub(crate) analysed_ms: Mutex<NameMap<u64>>,
    /// Each route's name and service, by position in the config.
    route_positions: Vec<(String, Option<String>)>,
    /// The consumers, by position in the config.
    consumers: Vec<ConsumerIdentity>,
    /// The services' names: the config's, then those its AI section derives.
    service_order: Vec<String>,
}

impl Plan {
    /// Compiles the services (those the AI section derives among them) and
    /// routes of `config`. Settings that name versions a service does not
    /// have are left out (validation reports them before a document is
    /// stored).
    pub fn new(config: &Config) -> Self {
        let derived = config.derived_services();
        let all = || config.services.iter().chain(&derived);
        let services: NameMap<ServicePlan> = all()
            .map(|s| (s.name.clone(), ServicePlan::new(s)))
            .collect();
        let routes = config
            .routes
            .iter()
            .filter_map(|r| {
                let service = services.get(r.service.as_deref()?)?;
                Some((r.name.clone(), RoutePlan::new(r, service)))
            })
            .collect();
        Plan {
            services,
            routes,
            default_retries: Retries::default(),
            live: LiveCache::default(),
            analysed_ms: Mutex::default(),
            route_positions: config
                .routes
                .iter()
                .map(|r| (r.name.clone(), r.service.clone()))
                .collect(),
            consumers: config
                .consumers
                .iter()
                .map(|c| ConsumerIdentity {
                    id: c.name.clone(),
                    tenant: c.tenant.clone(),
                    tags: c.tags.clone(),
                })
                .collect(),
            service_order: all().map(|s| s.name.clone()).collect(),
        }
    }

    /// Every service with its versions' names, targets' URLs and response
    /// headers (a deprecation): the config's, then those its AI section
    /// derives.
    pub fn services(&self) -> impl Iterator<Item = ServiceView<'_>> {
        self.service_order
            .iter()
            .filter_map(|name| self.services.get(name))
            .map(|plan| ServiceView {
                name: &plan.name,
                versions: plan
                    .versions
                    .iter()
                    .map(|v| VersionView {
                        name: &v.name,
                        targets: v.urls().collect(),
                        response_headers: &v.headers,
                    })
                    .collect(),
            })
    }

    /// The name and service of the route at `index` in the config's `routes`.
    pub fn route_at(&self, index: usize) -> Option<(&str, Option<&str>)> {
        self.route_positions
            .get(index)
            .map(|(name, service)| (name.as_str(), service.as_deref()))
    }

    /// The consumer at `index` in the config's `consumers`.
    pub fn consumer_at(&self, index: usize) -> Option<&ConsumerIdentity> {
        self.consumers.get(index)
    }

    /// The name of version `version` of `service`, by position.
    pub fn version_name(&self, service: &str, version: usize) -> Option<&str> {
        Some(&self.service(service)?.versions.get(version)?.name)
    }

    /// Target `target` of version `version` of `service`, by positions.
    pub fn upstream_at(
        &self,
        service: &str,
        version: usize,
        target: usize,
    ) -> Option<NamedUpstream<'_>> {
        let version = self.service(service)?.versions.get(version)?;
        Some(NamedUpstream {
            version: &version.name,
            target: &version.targets.get(target)?.url,
        })
    }

    /// The positions of `upstream` in `service`: its version's, its target's.
    pub fn positions(&self, service: &str, upstream: &NamedUpstream<'_>) -> Option<(usize, usize)> {
        let plan = self.service(service)?;
        let version = plan.version_index(upstream.version)?;
        let target = plan.versions[version].target_index(upstream.target)?;
        Some((version, target))
    }

    pub(crate) fn service(&self, name: &str) -> Option<&ServicePlan> {
        self.services.get(name)
    }

    /// The split settings of `route` when it serves `service`.
    pub(crate) fn route(&self, route: &str, service: &ServicePlan) -> Option<&RoutePlan> {
        self.routes.get(route).filter(|r| r.service == service.name)
    }
}

/// A service as [`Plan::services`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView<'p> {
    /// Its name.
    pub name: &'p str,
    /// Its versions, in the config's order.
    pub versions: Vec<VersionView<'p>>,
}

/// A version as [`Plan::services`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionView<'p> {
    /// Its name.
    pub name: &'p str,
    /// Its targets' base URLs, in the config's order.
    pub targets: Vec<&'p str>,
    /// Headers for the responses it serves (a deprecation).
    pub response_headers: &'p [(String, String)],
}

/// One service, compiled.
#[derive(Debug)]
pub(crate) struct ServicePlan {
    pub(crate) name: String,
    pub(crate) versions: Vec<VersionPlan>,
    /// Effective config weights: as written, or all to the first version
    /// when none is written.
    pub(crate) weights: Vec<u32>,
    pub(crate) total_weight: u64,
    pub(crate) policy: BalancePolicy,
    pub(crate) hash_on: Option<RequestKey>,
    pub(crate) outliers: OutlierDetection,
    /// `[rollout state, health]`, read together on every request.
    pub(crate) state_keys: [String; 2],
}

impl ServicePlan {
    fn new(service: &Service) -> Self {
        let any_weight = service.versions.iter().any(|v| v.weight.is_some());
        let weights: Vec<u32> = service
            .versions
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if any_weight {
                    v.weight.unwrap_or(0)
                } else {
                    u32::from(i == 0)
                }
            })
            .collect();
        ServicePlan {
            name: service.name.clone(),
            versions: service
                .versions
                .iter()
                .map(|v| VersionPlan::new(&service.name, v))
                .collect(),
            total_weight: weights.iter().copied().map(u64::from).sum(),
            weights,
            policy: service.balancer.policy,
            hash_on: service.balancer.hash_on.clone(),
            outliers: service.outlier_detection.clone(),
            state_keys: [
                keys::rollout_state(&service.name),
                keys::health(&service.name),
            ],
        }
    }

    pub(crate) fn version_index(&self, name: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.name == name)
    }

    /// Whether the weights leave a single version to choose.
    pub(crate) fn single(&self) -> bool {
        self.weights.iter().filter(|w| **w > 0).count() <= 1
    }

    /// The version with the most config weight among those `ok` accepts
    /// (the first of equals).
    pub(crate) fn heaviest(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        (0..self.versions.len())
            .filter(|i| ok(*i))
            .max_by_key(|i| (self.weights[*i], std::cmp::Reverse(*i)))
    }

    /// The hash the balancer's `hash_on` names, when the request has it.
    pub(crate) fn hash_on(
        &self,
        head: &RequestHead<'_>,
        consumer: Option<&ConsumerIdentity>,
    ) -> Option<u64> {
        let value = key_value(self.hash_on.as_ref()?, head, consumer)?;
        Some(hash(&[self.name.as_bytes(), value.as_bytes()]))
    }
}

/// One version, compiled.
#[derive(Debug)]
pub(crate) struct VersionPlan {
    pub(crate) name: String,
    pub(crate) targets: Vec<TargetPlan>,
    /// Headers for the client's response (deprecation).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) round_robin_key: String,
}

impl VersionPlan {
    fn new(service: &str, version: &upshift_model::Version) -> Self {
        VersionPlan {
            name: version.name.clone(),
            targets: version
                .targets
                .iter()
                .map(|t| TargetPlan {
                    url: t.url.clone(),
                    weight: t.weight,
                    outstanding_key: keys::outstanding(service, &t.url),
                })
                .collect(),
            headers: version
                .deprecation
                .as_ref()
                .map(upshift_model::Deprecation::headers)
                .unwrap_or_default(),
            round_robin_key: keys::round_robin(service, &version.name),
        }
    }

    pub(crate) fn urls(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| t.url.as_str())
    }

    pub(crate) fn target_index(&self, url: &str) -> Option<usize> {
        self.targets.iter().position(|t| t.url == url)
    }
}

/// One target, compiled.
#[derive(Debug)]
pub(crate) struct TargetPlan {
    pub(crate) url: String,
    pub(crate) weight: u32,
    pub(crate) outstanding_key: String,
}

/// One route's split settings over its service.
#[derive(Debug)]
pub(crate) struct RoutePlan {
    pub(crate) service: String,
    pub(crate) pinned: Option<usize>,
    pub(crate) rules: Vec<RulePlan>,
    pub(crate) sticky: Option<RequestKey>,
    pub(crate) shadow: Option<ShadowPlan>,
    pub(crate) fallback: Option<usize>,
    pub(crate) retries: Retries,
}

impl RoutePlan {
    fn new(route: &Route, service: &ServicePlan) -> Self {
        let split = route.split.clone().unwrap_or_default();
        let index = |name: &str| service.version_index(name);
        RoutePlan {
            service: service.name.clone(),
            pinned: route.version.as_deref().and_then(index),
            rules: split
                .rules
                .into_iter()
                .enumerate()
                .filter_map(|(i, rule)| {
                    Some(RulePlan {
                        version: index(&rule.version)?,
                        conditions: Conditions::from(&rule.matches),
                        index: u32::try_from(i).unwrap_or(u32::MAX),
                    })
                })
                .collect(),
            sticky: split.sticky.map(|s| s.on),
            shadow: split.shadow.and_then(|s| {
                Some(ShadowPlan {
                    version: index(&s.version)?,
                    percent: s.percent,
                    timeout_ms: s.timeout_ms,
                })
            }),
            fallback: split.fallback.as_deref().and_then(index),
            retries: route.retries.clone().unwrap_or_default(),
        }
    }
}

/// A match rule and the version it picks.
#[derive(Debug)]
pub(crate) struct RulePlan {
    pub(crate) conditions: Conditions,
    pub(crate) version: usize,
    /// Its position in the route's `split.rules`.
    pub(crate) index: u32,
}

/// Where shadow copies go.
#[derive(Debug)]
pub(crate) struct ShadowPlan {
    pub(crate) version: usize,
    pub(crate) percent: f64,
    pub(crate) timeout_ms: u32,
}

/// A rollout whose versions the service has, by index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RolloutView<'s> {
    pub(crate) state: &'s RolloutState,
    pub(crate) stable: usize,
    pub(crate) canary: usize,
}

impl<'s> RolloutView<'s> {
    /// `state` over `service`, if it is for this service and both its
    /// versions still exist.
    pub(crate) fn of(state: &'s RolloutState, service: &ServicePlan) -> Option<Self> {
        if state.spec.service != service.name {
            return None;
        }
        let stable = service.version_index(&state.spec.stable)?;
        let canary = service.version_index(&state.spec.canary)?;
        (stable != canary).then_some(RolloutView {
            state,
            stable,
            canary,
        })
    }

    /// Whether the current step routes `head` to the canary by its headers.
    pub(crate) fn header_routed(&self, head: &RequestHead<'_>) -> bool {
        self.state.is_active()
            && self.state.current_step().is_some_and(|step| {
                !step.header_route.is_empty()
                    && step
                        .header_route
                        .iter()
                        .all(|(name, want)| head.header_values(name).any(|v| v == want))
            })
    }

    /// The share of requests the current step copies to the canary, in
    /// percent.
    pub(crate) fn mirror(&self) -> Option<f64> {
        if !self.state.is_active() {
            return None;
        }
        self.state.current_step()?.mirror.filter(|p| *p > 0.0)
    }
}
