//! The WIT face of the router: `upshift:gateway/router` over [`RouteTable`].

use crate::RouteTable;
use exports::upshift::gateway::router::{
    self as wit, Guest, GuestRouteTable, RouteKind, RouteMatch,
};
use upshift::gateway::types::{ConfigError, RequestHead};

wit_bindgen::generate!({ path: "../../wit", world: "router-component" });
upshift_config::wit_glue!(head);

struct Component;

impl Guest for Component {
    type RouteTable = Table;
}

/// A compiled route table behind a WIT resource.
struct Table(RouteTable);

impl GuestRouteTable for Table {
    fn load(document: String) -> Result<wit::RouteTable, Vec<ConfigError>> {
        let config = load_config(&document)?;
        Ok(wit::RouteTable::new(Table(RouteTable::new(&config))))
    }

    fn resolve(&self, head: RequestHead) -> Option<RouteMatch> {
        let head = native_head(head);
        self.0.resolve(&head).map(|m| RouteMatch {
            route: m.route.to_owned(),
            kind: match m.kind {
                upshift_config::RouteKind::Proxy => RouteKind::Proxy,
                upshift_config::RouteKind::Ai => RouteKind::Ai,
            },
            service: m.service.to_owned(),
            upstream_path: m.upstream_path,
            timeout_ms: m.timeout_ms,
        })
    }

    fn size(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX)
    }
}

export!(Component);
