//! The WIT face of the AI API: `upshift:gateway/ai` over [`Catalog`].

use crate::Catalog;
use exports::upshift::gateway::ai::{self as wit, Guest, GuestCatalog};
use upshift::gateway::types::ConfigError;

wit_bindgen::generate!({ path: "../../wit", world: "ai-component" });
upshift_config::wit_glue!();

struct Component;

impl Guest for Component {
    type Catalog = Compiled;
}

/// A compiled model catalog behind a WIT resource.
struct Compiled(Catalog);

impl GuestCatalog for Compiled {
    fn load(document: String) -> Result<wit::Catalog, Vec<ConfigError>> {
        let config = load_config(&document)?;
        Ok(wit::Catalog::new(Compiled(Catalog::new(&config))))
    }

    fn list_models(&self) -> String {
        self.0.list_models()
    }
}

export!(Component);
