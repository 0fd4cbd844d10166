//! What one config version names: its routes, consumers and services with
//! their versions and targets, as the policy components list them once per
//! version (`route-table.routes`, `policy.consumers`, `plan.services`).
//! Requests then name them by position, so nothing but positions crosses
//! per request, and the headers a response gets from them are made once.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::error::GatewayError;
use crate::policy::{RouteKind, Upstream};

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Its name.
    pub name: Arc<str>,
    /// What it does.
    pub kind: RouteKind,
    /// Its service (empty for AI routes).
    pub service: Arc<str>,
    /// Its upstream timeout, in milliseconds.
    pub timeout_ms: u32,
    /// `x-upshift-route`.
    pub(crate) header: Option<HeaderValue>,
}

impl Route {
    /// The route `name`.
    pub fn new(name: &str, kind: RouteKind, service: &str, timeout_ms: u32) -> Self {
        Route {
            name: name.into(),
            kind,
            service: service.into(),
            timeout_ms,
            header: HeaderValue::from_str(name).ok(),
        }
    }
}

/// One consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Its name.
    pub id: Arc<str>,
    /// Its tenant, if any.
    pub tenant: Option<Arc<str>>,
}

/// One version of a service.
#[derive(Debug, Clone)]
pub struct Version {
    /// Its name.
    pub name: Arc<str>,
    /// Its targets' base URLs.
    pub targets: Vec<Arc<str>>,
    /// Headers for the responses it serves (a deprecation).
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// `x-upshift-upstream`: `service@version`.
    pub(crate) upstream_header: Option<HeaderValue>,
}

/// One service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name.
    pub name: Arc<str>,
    /// Its versions.
    pub versions: Vec<Version>,
}

impl Service {
    /// Service `name` with `versions`: `(name, targets, response headers)`.
    /// Response headers that are not valid HTTP are left out (a validated
    /// config makes none).
    pub fn new<N: AsRef<str>>(
        name: &str,
        versions: impl IntoIterator<Item = (N, Vec<String>, Vec<(String, String)>)>,
    ) -> Self {
        let versions = versions
            .into_iter()
            .map(|(version, targets, headers)| Version {
                name: version.as_ref().into(),
                targets: targets.into_iter().map(Arc::from).collect(),
                response_headers: headers
                    .into_iter()
                    .filter_map(|(n, v)| {
                        Some((
                            HeaderName::from_bytes(n.as_bytes()).ok()?,
                            HeaderValue::from_str(&v).ok()?,
                        ))
                    })
                    .collect(),
                upstream_header: HeaderValue::from_str(&format!("{name}@{}", version.as_ref()))
                    .ok(),
            })
            .collect();
        Service {
            name: name.into(),
            versions,
        }
    }

    /// The version and target URL at `upstream`.
    pub fn at(&self, upstream: Upstream) -> Option<(&Version, &Arc<str>)> {
        let version = self.versions.get(upstream.version as usize)?;
        Some((version, version.targets.get(upstream.target as usize)?))
    }
}

/// Everything one config version names.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    routes: Vec<Route>,
    consumers: Vec<Consumer>,
    services: Vec<Service>,
    service_by_name: HashMap<Arc<str>, usize>,
}

impl Tables {
    /// The tables of one version, each in the document's order.
    pub fn new(routes: Vec<Route>, consumers: Vec<Consumer>, services: Vec<Service>) -> Self {
        let service_by_name = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Tables {
            routes,
            consumers,
            services,
            service_by_name,
        }
    }

    /// The tables as the policy components list them, each lane having
    /// mapped its own bindings' records to plain parts: routes as
    /// `(name, kind, service, timeout_ms)`, consumers as `(id, tenant)`,
    /// services as `(name, versions)` (see [`Service::new`]).
    pub fn listed<V>(
        routes: impl IntoIterator<Item = (String, RouteKind, String, u32)>,
        consumers: impl IntoIterator<Item = (String, Option<String>)>,
        services: impl IntoIterator<Item = (String, V)>,
    ) -> Self
    where
        V: IntoIterator<Item = (String, Vec<String>, Vec<(String, String)>)>,
    {
        Tables::new(
            routes
                .into_iter()
                .map(|(name, kind, service, timeout_ms)| {
                    Route::new(&name, kind, &service, timeout_ms)
                })
                .collect(),
            consumers
                .into_iter()
                .map(|(id, tenant)| Consumer {
                    id: id.into(),
                    tenant: tenant.map(Into::into),
                })
                .collect(),
            services
                .into_iter()
                .map(|(name, versions)| Service::new(&name, versions))
                .collect(),
        )
    }

    /// Route number `route`.
    pub fn route(&self, route: u32) -> Option<&Route> {
        self.routes.get(route as usize)
    }

    /// Consumer number `consumer`.
    pub fn consumer(&self, consumer: u32) -> Option<&Consumer> {
        self.consumers.get(consumer as usize)
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.service_by_name.get(name).map(|i| &self.services[*i])
    }

    /// The version and target URL the splitter chose in `service`; a
    /// position it did not list is the splitter's failure.
    pub fn target(
        &self,
        service: &str,
        upstream: Upstream,
    ) -> Result<(&Version, &Arc<str>), GatewayError> {
        self.service(service)
            .and_then(|s| s.at(upstream))
            .ok_or_else(|| GatewayError::ComponentFailed {
                component: "splitter".into(),
                detail: format!(
                    "it chose version {} target {} of service {service:?}, which it did not list",
                    upstream.version, upstream.target
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_position_and_headers_made_once() {
        let tables = Tables::listed(
            [("orders".into(), RouteKind::Proxy, "orders-svc".into(), 1000)],
            [("alice".into(), Some("acme".into()))],
            [(
                "orders-svc".to_owned(),
                vec![
                    ("v1".to_owned(), vec!["http://10.0.0.1".into()], vec![]),
                    (
                        "v2".to_owned(),
                        vec!["http://10.0.0.2".into(), "http://10.0.0.3".into()],
                        vec![("deprecation".into(), "true".into())],
                    ),
                ],
            )],
        );
        let route = tables.route(0).unwrap();
        assert_eq!((&*route.name, route.timeout_ms), ("orders", 1000));
        assert!(tables.route(1).is_none());
        let alice = tables.consumer(0).unwrap();
        assert_eq!(
            (&*alice.id, alice.tenant.as_deref()),
            ("alice", Some("acme"))
        );
        let service = tables.service(&route.service).unwrap();
        let (version, url) = service
            .at(Upstream {
                version: 1,
                target: 1,
            })
            .unwrap();
        assert_eq!((&*version.name, &**url), ("v2", "http://10.0.0.3"));
        assert_eq!(version.upstream_header.as_ref().unwrap(), "orders-svc@v2");
        assert_eq!(version.response_headers[0].0, "deprecation");
        assert!(
            service
                .at(Upstream {
                    version: 2,
                    target: 0
                })
                .is_none()
        );
    }
}
