//! Bindings for what the gateway imports beside spin-sdk's HTTP and
//! variables: the four policy interfaces, each from its own dependency, and
//! `wasi:keyvalue`. The policy resources of one config version implement
//! the core's [`Policy`], converting WIT records into the core's types.

use upshift_core::GatewayError;
use upshift_core::policy::{self as core, Policy};
use upshift_core::tables::Tables;

spin_sdk::wit_bindgen::generate!({
    path: "../../wit",
    world: "gateway-imports",
    runtime_path: "spin_sdk::wit_bindgen::rt",
    generate_all,
});

pub use upshift::ai::ai;
pub use upshift::auth::auth;
pub use upshift::router::router;
pub use upshift::splitter::splitter;
pub use upshift::types::types;
pub use wasi::keyvalue;

use crate::config::Loaded;

impl From<types::GatewayError> for GatewayError {
    fn from(e: types::GatewayError) -> Self {
        GatewayError::Refused {
            status: e.status,
            code: e.code,
            message: e.message,
            headers: e.headers,
        }
    }
}

impl Policy for &Loaded {
    fn resolve(&mut self, head: &str) -> Result<Option<core::RouteMatch>, GatewayError> {
        Ok(self.routes.resolve(head).map(|m| core::RouteMatch {
            route: m.route,
            upstream_path: m.upstream_path,
        }))
    }

    fn authenticate(
        &mut self,
        route: u32,
        head: &str,
        now_ms: u64,
    ) -> Result<core::Authenticated, GatewayError> {
        let passed = self.auth.authenticate(route, head, now_ms)?;
        Ok(core::Authenticated {
            consumer: passed.consumer,
            rate_limit: passed.rate_limit.map(|r| core::RateLimit {
                limit: r.limit,
                remaining: r.remaining,
                reset_s: r.reset_s,
            }),
            upstream_headers: passed.upstream_headers,
        })
    }

    fn choose(
        &mut self,
        route: u32,
        service: Option<&str>,
        head: &str,
        consumer: Option<u32>,
        now_ms: u64,
    ) -> Result<core::Selection, GatewayError> {
        let s = self
            .splitter
            .choose(route, service, head, consumer, now_ms)?;
        Ok(core::Selection {
            primary: upstream(s.primary),
            alternates: s.alternates.into_iter().map(upstream).collect(),
            shadow: s.shadow.map(|copy| core::ShadowCopy {
                upstream: upstream(copy.upstream),
                timeout_ms: copy.timeout_ms,
            }),
            retry: core::RetryPolicy {
                attempts: s.retry.attempts,
                retry_on: s.retry.retry_on,
                per_try_timeout_ms: s.retry.per_try_timeout_ms,
            },
            reason: match s.reason {
                splitter::Reason::Pinned => core::Reason::Pinned,
                splitter::Reason::Rule(i) => core::Reason::Rule(i),
                splitter::Reason::Rollout => core::Reason::Rollout,
                splitter::Reason::Sticky => core::Reason::Sticky,
                splitter::Reason::Weight => core::Reason::Weight,
                splitter::Reason::OnlyVersion => core::Reason::OnlyVersion,
                splitter::Reason::CircuitOpen => core::Reason::CircuitOpen,
            },
            report_all: s.report_all,
            hooks_due: s.hooks_due,
        })
    }
}

/// What the policy components of one version name, listed once.
pub fn tables(routes: &router::RouteTable, auth: &auth::Policy, plan: &splitter::Plan) -> Tables {
    Tables::listed(
        (
            routes
                .routes()
                .into_iter()
                .map(|r| (r.name, route_kind(r.kind), r.service, r.timeout_ms)),
            auth.guarded(),
        ),
        auth.consumers().into_iter().map(|c| (c.id, c.tenant)),
        plan.services().into_iter().map(|s| {
            let versions = s.versions.into_iter();
            (
                s.name,
                versions.map(|v| (v.name, v.targets, v.response_headers)),
            )
        }),
    )
}

fn route_kind(kind: router::RouteKind) -> core::RouteKind {
    match kind {
        router::RouteKind::Proxy => core::RouteKind::Proxy,
        router::RouteKind::Ai => core::RouteKind::Ai,
    }
}

fn upstream(u: splitter::Upstream) -> core::Upstream {
    core::Upstream {
        version: u.version,
        target: u.target,
    }
}

/// The WIT form of an attempt, for the splitter's reports.
pub fn attempt(a: &core::Attempt) -> splitter::Attempt {
    splitter::Attempt {
        version: a.upstream.version,
        target: a.upstream.target,
        outcome: match a.outcome {
            core::Outcome::Status(status) => splitter::Outcome::Status(status),
            core::Outcome::Failed => splitter::Outcome::Failed,
            core::Outcome::TimedOut => splitter::Outcome::TimedOut,
        },
        latency_ms: a.latency_ms,
    }
}
