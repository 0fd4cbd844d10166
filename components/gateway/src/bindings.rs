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

upshift_core::policy_conversions!(
    mod conversions;
    types: crate::bindings::types,
    router: crate::bindings::router,
    auth: crate::bindings::auth,
    splitter: crate::bindings::splitter,
    ai: crate::bindings::ai,
);

impl Policy for &Loaded {
    fn resolve(&mut self, head: &str) -> Result<Option<core::RouteMatch>, GatewayError> {
        Ok(self.routes.resolve(head).map(Into::into))
    }

    fn authenticate(
        &mut self,
        route: u32,
        head: &str,
        now_ms: u64,
    ) -> Result<core::Authenticated, GatewayError> {
        Ok(self.auth.authenticate(route, head, now_ms)?.into())
    }

    fn choose(
        &mut self,
        route: u32,
        service: Option<&str>,
        head: &str,
        consumer: Option<u32>,
        now_ms: u64,
    ) -> Result<core::Selection, GatewayError> {
        Ok(self
            .splitter
            .choose(route, service, head, consumer, now_ms)?
            .into())
    }
}

/// What the policy components of one version name, listed once.
pub fn tables(routes: &router::RouteTable, auth: &auth::Policy, plan: &splitter::Plan) -> Tables {
    conversions::tables(
        routes.routes(),
        auth.guarded(),
        auth.consumers(),
        plan.services(),
    )
}
