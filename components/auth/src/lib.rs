//! Consumer authentication for the Upshift gateway.
//!
//! A [`Policy`] is compiled once per config version: which routes require
//! credentials and which consumer each API key belongs to.

mod policy;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use policy::{Denial, Policy};
