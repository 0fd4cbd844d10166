//! Traffic splitting between the versions of a service.
//!
//! A [`Plan`] is compiled once per config version. Each request's version
//! and target are drawn from a hash of its request id against cumulative
//! weights, so the choice costs a hash and a short scan, and needs no
//! randomness source inside the component.

mod plan;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use plan::{Plan, Selection, SplitError};
