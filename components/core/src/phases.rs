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

use upshift_model::RequestHead;

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
/// [`upshift_model::jwks`]), the lane `fetch`es and stores it, and the
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
mod tests;
