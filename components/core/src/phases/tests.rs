use super::*;
use crate::policy::{Reason, RetryPolicy, Upstream};
use upshift_model::{HeadLine, OwnedHead};

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
