//! The WIT face of the router: `upshift:router/router` over [`RouteTable`].

use crate::RouteTable;
use exports::upshift::router::router::{
    self as wit, Guest, GuestRouteTable, Route, RouteKind, RouteMatch,
};
use upshift::types::types::ConfigError;
use upshift_model::RequestHead;

wit_bindgen::generate!({
    path: "../../wit",
    world: "router-component",
    generate_all,
});
upshift_model::wit_glue!();

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

    fn routes(&self) -> Vec<Route> {
        self.0
            .routes()
            .map(|route| Route {
                name: route.name.to_owned(),
                kind: match route.kind {
                    upshift_model::RouteKind::Proxy => RouteKind::Proxy,
                    upshift_model::RouteKind::Ai => RouteKind::Ai,
                },
                service: route.service.to_owned(),
                timeout_ms: route.timeout_ms,
            })
            .collect()
    }

    fn resolve(&self, head: String) -> Option<RouteMatch> {
        // A head the gateway did not pack matches no route.
        let head = RequestHead::parse(&head).ok()?;
        self.0.resolve(&head).map(|m| RouteMatch {
            route: u32::try_from(m.index).unwrap_or(u32::MAX),
            upstream_path: m.upstream_path,
        })
    }
}

export!(Component);
