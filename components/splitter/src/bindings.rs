//! The WIT face of the splitter: `upshift:gateway/splitter` over [`Plan`].

use crate::Plan;
use exports::upshift::gateway::splitter::{self as wit, Guest, GuestPlan, Selection};
use upshift::gateway::types::{ConfigError, Consumer, GatewayError, RequestHead};

wit_bindgen::generate!({ path: "../../wit", world: "splitter-component" });
upshift_config::wit_glue!(head);

struct Component;

impl Guest for Component {
    type Plan = Compiled;
}

/// A compiled split plan behind a WIT resource.
struct Compiled(Plan);

impl GuestPlan for Compiled {
    fn load(document: String) -> Result<wit::Plan, Vec<ConfigError>> {
        let config = load_config(&document)?;
        Ok(wit::Plan::new(Compiled(Plan::new(&config))))
    }

    fn choose(
        &self,
        service: String,
        head: RequestHead,
        _consumer: Option<Consumer>,
    ) -> Result<Selection, GatewayError> {
        let head = native_head(head);
        match self.0.choose(&service, &head) {
            Ok(s) => Ok(Selection {
                version: s.version.to_owned(),
                target: s.target.to_owned(),
                reason: s.reason.to_owned(),
                service,
            }),
            Err(e) => Err(GatewayError {
                status: 500,
                code: "unknown_service".to_owned(),
                message: e.to_string(),
                headers: Vec::new(),
            }),
        }
    }
}

export!(Component);
