//! The WIT face of auth: `upshift:auth/auth` over [`Policy`], with the
//! rate-limit counters in `wasi:keyvalue` (bucket `default`).

use crate::Policy;
use exports::upshift::auth::auth::{self as wit, Guest, GuestPolicy};
use std::cell::OnceCell;
use upshift::types::types::{ConfigError, Consumer, GatewayError};
use upshift_model::RequestHead;

wit_bindgen::generate!({
    path: "../../wit",
    world: "auth-component",
    generate_all,
});
upshift_model::wit_glue!();

/// The key-value store every node of the gateway shares.
const BUCKET: &str = "default";

struct Component;

impl Guest for Component {
    type Policy = Compiled;
}

/// A compiled auth policy behind a WIT resource.
struct Compiled(Policy);

impl GuestPolicy for Compiled {
    fn load(document: String) -> Result<wit::Policy, Vec<ConfigError>> {
        let config = load_config(&document)?;
        Ok(wit::Policy::new(Compiled(Policy::new(&config))))
    }

    fn consumers(&self) -> Vec<Consumer> {
        self.0
            .consumers()
            .iter()
            .map(|c| Consumer {
                id: c.name.clone(),
                tenant: c.tenant.clone(),
            })
            .collect()
    }

    fn guarded(&self) -> Vec<u32> {
        self.0
            .guarded()
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect()
    }

    fn authenticate(
        &self,
        route: u32,
        head: String,
        now_ms: u64,
    ) -> Result<wit::Authenticated, GatewayError> {
        let (Some(route), Ok(head)) =
            (self.0.route_name(route as usize), RequestHead::parse(&head))
        else {
            return Err(GatewayError {
                status: 400,
                code: "bad_request".into(),
                message: "the gateway asked about a request it did not describe".into(),
                headers: Vec::new(),
            });
        };
        // Opened only when a limit applies; rate limits fail open without it.
        let opened = OnceCell::new();
        let store = || opened.get_or_init(|| bucket().ok()).as_deref();
        match self.0.authenticate_with(store, route, &head, now_ms) {
            Ok(passed) => Ok(wit::Authenticated {
                consumer: passed
                    .consumer
                    .map(|(index, _)| u32::try_from(index).unwrap_or(u32::MAX)),
                rate_limit: passed.rate_limit.map(|d| wit::RateLimit {
                    limit: d.limit,
                    remaining: d.remaining,
                    reset_s: d.reset_s,
                }),
                upstream_headers: passed.upstream_headers,
            }),
            Err(denial) => Err(GatewayError {
                status: denial.status(),
                code: denial.code().to_owned(),
                message: denial.to_string(),
                headers: denial.headers(),
            }),
        }
    }
}

upshift_model::keyvalue_store!(BUCKET);

export!(Component);
