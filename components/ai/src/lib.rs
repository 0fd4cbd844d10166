//! The AI API of the Upshift gateway.
//!
//! A [`Catalog`] is compiled once per config version from the `ai` section:
//! the model aliases clients may ask for.

mod catalog;
pub mod dialect;
pub mod errors;
pub mod ir;
pub mod sse;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use catalog::Catalog;
