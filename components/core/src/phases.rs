//! The decision phases every request goes through before any byte moves
//! upstream:
//!
//! ```text
//! route ──▶ authenticate ──▶ select ──▶ (the lane forwards: attempts, shadow)
//!   │            │              │
//!   404          401/403/429    500/503
//! ```
//!
//! 1. **route**: the router matches the packed head; no match is a 404
//!    `route_not_found`.
//! 2. **authenticate**: the auth component identifies the consumer and
//!    counts the request against its rate limits; a refusal keeps the
//!    component's status, code and headers. Routes auth does not guard
//!    skip the call: their requests pass with no consumer and no limit.
//! 3. **select**: on proxy routes, the splitter picks the version and
//!    target, the alternates for retries and a shadow copy. AI routes skip
//!    it: the AI lane plans its provider calls from the body, and asks the
//!    splitter itself when a model or prompt has versions.

use upshift_config::RequestHead;

use crate::error::GatewayError;
use crate::policy::{Authenticated, Policy, RouteKind, RouteMatch, Selection};
use crate::tables::{Route, Tables};

/// What the phases decided for a request.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The route.
    pub route: Route,
    /// How it matched.
    pub matched: RouteMatch,
    /// The caller, and where it stands against its limits.
    pub authenticated: Authenticated,
    /// Where a proxied request goes; `None` on AI routes.
    pub selection: Option<Selection>,
}

/// Runs the phases for the packed `head` at `now_ms`, with the `tables` of
/// the config version `policy` has loaded. `unconfigured` says that no
/// config version was ever applied, which a 404 mentions.
pub fn decide<P: Policy + ?Sized>(
    policy: &mut P,
    tables: &Tables,
    head: &str,
    unconfigured: bool,
    now_ms: u64,
) -> Result<Decision, GatewayError> {
    let Some(matched) = policy.resolve(head)? else {
        let parsed = RequestHead::parse(head).ok();
        return Err(GatewayError::RouteNotFound {
            method: parsed.map(|h| h.method().to_owned()).unwrap_or_default(),
            path: parsed.map(|h| h.path().to_owned()).unwrap_or_default(),
            unconfigured,
        });
    };
    let route =
        tables
            .route(matched.route)
            .cloned()
            .ok_or_else(|| GatewayError::ComponentFailed {
                component: "router".into(),
                detail: format!("it matched route {}, which it did not list", matched.route),
            })?;
    let authenticated = if route.guarded {
        policy.authenticate(matched.route, head, now_ms)?
    } else {
        Authenticated::default()
    };
    let selection = match route.kind {
        RouteKind::Proxy => {
            Some(policy.choose(matched.route, None, head, authenticated.consumer, now_ms)?)
        }
        RouteKind::Ai => None,
    };
    Ok(Decision {
        route,
        matched,
        authenticated,
        selection,
    })
}

/// Runs `decide`, the phases over a lane's policies. When auth asks for a
/// key set (a token names a key the stored set lacks, see
/// [`upshift_config::jwks`]), the lane `fetch`es and stores it, and the
/// phases run once more; a token whose key is still missing is then a 401.
pub async fn decide_with_key_sets<T>(
    mut decide: impl FnMut() -> Result<T, GatewayError>,
    fetch: impl AsyncFnOnce(String),
) -> Result<T, GatewayError> {
    match decide() {
        Err(error) => match error.keys_wanted() {
            Some(url) => {
                fetch(url.to_owned()).await;
                decide().map_err(GatewayError::keys_unavailable)
            }
            None => Err(error),
        },
        decided => decided,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Reason, RetryPolicy, Upstream};
    use upshift_config::{HeadLine, OwnedHead};

    fn tables(kind: RouteKind) -> Tables {
        let routes = (0..4)
            .map(|i| Route::new(&format!("r{i}"), kind, "orders", 1000))
            .collect();
        Tables::new(routes, Vec::new(), Vec::new())
    }

    /// Answers from a script and records the calls in order.
    #[derive(Default)]
    struct Scripted {
        kind: Option<RouteKind>,
        refuse_auth: bool,
        calls: Vec<String>,
    }

    impl Policy for Scripted {
        fn resolve(&mut self, head: &str) -> Result<Option<RouteMatch>, GatewayError> {
            let path = RequestHead::parse(head).unwrap().path().to_owned();
            self.calls.push(format!("resolve {path}"));
            Ok(self.kind.map(|_| RouteMatch {
                route: 3,
                upstream_path: None,
            }))
        }

        fn authenticate(
            &mut self,
            route: u32,
            _head: &str,
            _now_ms: u64,
        ) -> Result<Authenticated, GatewayError> {
            self.calls.push(format!("authenticate {route}"));
            if self.refuse_auth {
                return Err(GatewayError::Refused {
                    status: 401,
                    code: "missing_credentials".into(),
                    message: "who are you".into(),
                    headers: vec![("www-authenticate".into(), "Bearer".into())],
                });
            }
            Ok(Authenticated {
                consumer: Some(7),
                ..Authenticated::default()
            })
        }

        fn choose(
            &mut self,
            route: u32,
            service: Option<&str>,
            _head: &str,
            consumer: Option<u32>,
            now_ms: u64,
        ) -> Result<Selection, GatewayError> {
            self.calls
                .push(format!("choose {route} {service:?} {consumer:?} {now_ms}"));
            Ok(Selection {
                primary: Upstream {
                    version: 1,
                    target: 0,
                },
                alternates: Vec::new(),
                shadow: None,
                retry: RetryPolicy::default(),
                reason: Reason::Weight,
                report_all: false,
                hooks_due: false,
            })
        }
    }

    fn head() -> OwnedHead {
        let line = HeadLine {
            method: "GET",
            path: "/orders/1",
            request_id: "rid",
            ..HeadLine::default()
        };
        OwnedHead::new(&line, &[])
    }

    #[test]
    fn proxy_routes_go_through_every_phase_in_order() {
        let mut policy = Scripted {
            kind: Some(RouteKind::Proxy),
            ..Scripted::default()
        };
        let tables = tables(RouteKind::Proxy);
        let decision = decide(&mut policy, &tables, head().as_str(), false, 42).unwrap();
        assert_eq!(
            policy.calls,
            [
                "resolve /orders/1",
                "authenticate 3",
                "choose 3 None Some(7) 42"
            ]
        );
        assert_eq!(&*decision.route.name, "r3");
        assert_eq!(decision.selection.unwrap().primary.version, 1);
        assert_eq!(decision.authenticated.consumer, Some(7));
    }

    #[test]
    fn ai_routes_skip_the_split() {
        let mut policy = Scripted {
            kind: Some(RouteKind::Ai),
            ..Scripted::default()
        };
        let decision = decide(
            &mut policy,
            &tables(RouteKind::Ai),
            head().as_str(),
            false,
            42,
        )
        .unwrap();
        assert_eq!(policy.calls, ["resolve /orders/1", "authenticate 3"]);
        assert!(decision.selection.is_none());
    }

    #[test]
    fn a_refusal_stops_the_phases() {
        let mut policy = Scripted {
            kind: Some(RouteKind::Proxy),
            refuse_auth: true,
            ..Scripted::default()
        };
        let error = decide(
            &mut policy,
            &tables(RouteKind::Proxy),
            head().as_str(),
            false,
            42,
        )
        .unwrap_err();
        assert_eq!(
            (error.status().as_u16(), error.code()),
            (401, "missing_credentials")
        );
        assert_eq!(policy.calls, ["resolve /orders/1", "authenticate 3"]);
    }

    #[test]
    fn routes_auth_does_not_guard_skip_authenticate() {
        let mut policy = Scripted {
            kind: Some(RouteKind::Proxy),
            refuse_auth: true,
            ..Scripted::default()
        };
        let routes = (0..4)
            .map(|i| Route {
                guarded: false,
                ..Route::new(&format!("r{i}"), RouteKind::Proxy, "orders", 1000)
            })
            .collect();
        let tables = Tables::new(routes, Vec::new(), Vec::new());
        let decision = decide(&mut policy, &tables, head().as_str(), false, 42).unwrap();
        assert_eq!(policy.calls, ["resolve /orders/1", "choose 3 None None 42"]);
        assert_eq!(decision.authenticated, Authenticated::default());
    }

    #[test]
    fn no_route_is_a_404_naming_the_request() {
        let mut policy = Scripted::default();
        let error = decide(
            &mut policy,
            &tables(RouteKind::Proxy),
            head().as_str(),
            true,
            42,
        )
        .unwrap_err();
        assert_eq!(error.code(), "route_not_found");
        assert_eq!(
            error.to_string(),
            "no route matches GET /orders/1 (no config has been applied yet)"
        );
    }
}
