//! The WIT face of auth: `upshift:gateway/auth` over [`Policy`].

use crate::Policy;
use exports::upshift::gateway::auth::{self as wit, Guest, GuestPolicy};
use upshift::gateway::types::{ConfigError, Consumer, GatewayError, RequestHead};

wit_bindgen::generate!({ path: "../../wit", world: "auth-component" });
upshift_config::wit_glue!(head);

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
    ) -> Result<Option<Consumer>, GatewayError> {
        let head = native_head(head);
        match self.0.authenticate(&route, &head) {
            Ok(consumer) => Ok(consumer.map(|c| Consumer {
                id: c.name.clone(),
                tenant: c.tenant.clone(),
                tags: c.tags.clone(),
            })),
            Err(denial) => Err(GatewayError {
                status: denial.status(),
                code: denial.code().to_owned(),
                message: denial.to_string(),
                headers: vec![("www-authenticate".to_owned(), denial.challenge().to_owned())],
            }),
        }
    }
}

export!(Component);
