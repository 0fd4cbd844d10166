//! Route matching for the Upshift gateway.
//!
//! A [`RouteTable`] is compiled once per config version and answers, per
//! request, which route handles it and what path to send upstream. Lookup
//! walks an index by host, then a trie of path segments, so its cost grows
//! with the depth of the path, not with the number of routes.

mod path;
mod table;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod bindings;

pub use path::normalize;
pub use table::{Listed, Match, RouteTable};
