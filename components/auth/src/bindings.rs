//! The WIT face of auth: `upshift:gateway/auth` over [`Policy`], with the
//! rate-limit counters in `wasi:keyvalue` (bucket `default`).

use crate::Policy;
use exports::upshift::gateway::auth::{self as wit, Guest, GuestPolicy};
use std::cell::OnceCell;
use upshift::gateway::types::{ConfigError, Consumer, GatewayError, RequestHead};

wit_bindgen::generate!({
    path: "../../wit",
    world: "auth-component",
    generate_all,
});
upshift_config::wit_glue!(head);

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

    fn authenticate(
        &self,
        route: String,
        head: RequestHead,
        now_ms: u64,
    ) -> Result<wit::Authenticated, GatewayError> {
        let head = native_head(head);
        // Opened only when a limit applies; rate limits fail open without it.
        let opened = OnceCell::new();
        let store = || opened.get_or_init(|| bucket().ok()).as_deref();
        match self.0.authenticate_with(store, &route, &head, now_ms) {
            Ok(passed) => Ok(wit::Authenticated {
                consumer: passed.consumer.map(|c| Consumer {
                    id: c.name.clone(),
                    tenant: c.tenant.clone(),
                    tags: c.tags.clone(),
                }),
                response_headers: passed.response_headers,
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

upshift_config::keyvalue_store!(BUCKET);

export!(Component);
