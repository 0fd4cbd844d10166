//! What one config version names: its routes, consumers and services with
//! their versions and targets, as the policy components list them once per
//! version (`route-table.routes`, `policy.consumers`, `plan.services`).
//! Requests then name them by position, so nothing but positions crosses
//! per request, and the headers a response gets from them are made once.

use std::collections::HashMap;
use std::sync::Arc;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Uri};

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
    /// Whether auth has work on it (auth settings or a rate limit); the
    /// others skip the authenticate phase.
    pub guarded: bool,
    /// `x-upshift-route`.
    pub(crate) header: Option<HeaderValue>,
}

impl Route {
    /// The route `name`, guarded until said otherwise.
    pub fn new(name: &str, kind: RouteKind, service: &str, timeout_ms: u32) -> Self {
        Route {
            name: name.into(),
            kind,
            service: service.into(),
            timeout_ms,
            guarded: true,
            header: HeaderValue::from_str(name).ok(),
        }
    }
}

/// One consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerEntry {
    /// Its name.
    pub id: Arc<str>,
    /// Its tenant, if any.
    pub tenant: Option<Arc<str>>,
}

/// One target of a version: a base URL (`scheme://host:port` and an
/// optional path prefix), parsed once per config version. The schemes
/// `h2c` and `h2` select HTTP/2 (in clear text with prior knowledge, and
/// over TLS); the request URI then says `http` and `https`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The base URL, as configured.
    pub url: Arc<str>,
    /// Whether the target speaks HTTP/2 only (`h2c://`, `h2://`).
    pub http2: bool,
    /// Its scheme and authority; `None` when the URL is not a valid base.
    base: Option<(Scheme, Authority)>,
    /// Its path prefix, without a trailing `/`.
    prefix: Box<str>,
}

impl Target {
    /// The target at base URL `url`.
    pub fn new(url: &str) -> Self {
        let parsed = url.parse::<Uri>().ok();
        let http2 = matches!(
            parsed.as_ref().and_then(Uri::scheme_str),
            Some("h2c" | "h2")
        );
        let base = parsed.as_ref().and_then(|uri| {
            let scheme = match uri.scheme_str() {
                Some("h2c") | None => Scheme::HTTP,
                Some("h2") => Scheme::HTTPS,
                Some(_) => uri.scheme()?.clone(),
            };
            Some((scheme, uri.authority()?.clone()))
        });
        Target {
            url: url.into(),
            http2,
            base,
            prefix: parsed
                .as_ref()
                .map_or("", |uri| uri.path().trim_end_matches('/'))
                .into(),
        }
    }

    /// The URI of `path_and_query` (from `/`) at this target, after its
    /// path prefix.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, GatewayError> {
        let bad_target = || GatewayError::BadTarget {
            target: self.url.to_string(),
        };
        let (scheme, authority) = self.base.clone().ok_or_else(bad_target)?;
        let path_and_query: PathAndQuery = if self.prefix.is_empty() {
            path_and_query.parse()
        } else {
            [&*self.prefix, path_and_query].concat().parse()
        }
        .map_err(|_| bad_target())?;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(scheme);
        parts.authority = Some(authority);
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).map_err(|_| bad_target())
    }
}

/// One version of a service.
#[derive(Debug, Clone)]
pub struct Version {
    /// Its name.
    pub name: Arc<str>,
    /// Its targets.
    pub targets: Vec<Target>,
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
                targets: targets.iter().map(|url| Target::new(url)).collect(),
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

    /// The version and target at `upstream`.
    pub fn at(&self, upstream: Upstream) -> Option<(&Version, &Target)> {
        let version = self.versions.get(upstream.version as usize)?;
        Some((version, version.targets.get(upstream.target as usize)?))
    }
}

/// Everything one config version names.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    routes: Vec<Route>,
    consumers: Vec<ConsumerEntry>,
    services: Vec<Service>,
    service_by_name: HashMap<Arc<str>, usize>,
}

impl Tables {
    /// The tables of one version, each in the document's order.
    pub fn new(routes: Vec<Route>, consumers: Vec<ConsumerEntry>, services: Vec<Service>) -> Self {
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
    /// `(name, kind, service, timeout_ms)` with the positions of those auth
    /// guards, consumers as `(id, tenant)`, services as `(name, versions)`
    /// (see [`Service::new`]).
    pub fn listed<V>(
        (routes, guarded): (
            impl IntoIterator<Item = (String, RouteKind, String, u32)>,
            Vec<u32>,
        ),
        consumers: impl IntoIterator<Item = (String, Option<String>)>,
        services: impl IntoIterator<Item = (String, V)>,
    ) -> Self
    where
        V: IntoIterator<Item = (String, Vec<String>, Vec<(String, String)>)>,
    {
        Tables::new(
            routes
                .into_iter()
                .enumerate()
                .map(|(i, (name, kind, service, timeout_ms))| Route {
                    guarded: u32::try_from(i).is_ok_and(|i| guarded.contains(&i)),
                    ..Route::new(&name, kind, &service, timeout_ms)
                })
                .collect(),
            consumers
                .into_iter()
                .map(|(id, tenant)| ConsumerEntry {
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
    pub fn consumer(&self, consumer: u32) -> Option<&ConsumerEntry> {
        self.consumers.get(consumer as usize)
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.service_by_name.get(name).map(|i| &self.services[*i])
    }

    /// The version and target the splitter chose in `service`; a position
    /// it did not list is the splitter's failure.
    pub fn target(
        &self,
        service: &str,
        upstream: Upstream,
    ) -> Result<(&Version, &Target), GatewayError> {
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
            (
                [
                    ("orders".into(), RouteKind::Proxy, "orders-svc".into(), 1000),
                    ("public".into(), RouteKind::Proxy, "orders-svc".into(), 1000),
                ],
                vec![0],
            ),
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
        assert!(route.guarded);
        assert!(!tables.route(1).unwrap().guarded);
        assert!(tables.route(2).is_none());
        let alice = tables.consumer(0).unwrap();
        assert_eq!(
            (&*alice.id, alice.tenant.as_deref()),
            ("alice", Some("acme"))
        );
        let service = tables.service(&route.service).unwrap();
        let (version, target) = service
            .at(Upstream {
                version: 1,
                target: 1,
            })
            .unwrap();
        assert_eq!((&*version.name, &*target.url), ("v2", "http://10.0.0.3"));
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

    #[test]
    fn targets_join_their_prefix_and_the_request_path() {
        let plain = Target::new("http://10.0.0.1:8080");
        assert_eq!(
            plain.uri("/items/1?x=1").unwrap(),
            "http://10.0.0.1:8080/items/1?x=1"
        );
        let prefixed = Target::new("https://api.example.com/v2/");
        assert_eq!(
            prefixed.uri("/items").unwrap(),
            "https://api.example.com/v2/items"
        );
        assert_eq!(
            Target::new("10.0.0.1:8080").uri("/").unwrap(),
            "http://10.0.0.1:8080/"
        );
        assert!(!plain.http2 && !prefixed.http2);
        let clear = Target::new("h2c://10.0.0.1:50051");
        assert!(clear.http2);
        assert_eq!(
            clear.uri("/pkg.Svc/Call").unwrap(),
            "http://10.0.0.1:50051/pkg.Svc/Call"
        );
        let tls = Target::new("h2://grpc.example.com");
        assert!(tls.http2);
        assert_eq!(tls.uri("/").unwrap(), "https://grpc.example.com/");
        for bad in ["not a url", "/relative"] {
            let error = Target::new(bad).uri("/").unwrap_err();
            assert_eq!(error.code(), "bad_target", "{bad}");
        }
    }
}
