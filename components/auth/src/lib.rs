//! Consumer authentication and rate limiting for the Upshift gateway.
//!
//! A [`Policy`] is compiled once per config version: which routes require
//! credentials (API keys, JSON Web Tokens), which consumer each credential
//! belongs to, who may use each route, and the rate limits of routes and
//! consumers. Rate-limit
//! counters live in the key-value store behind [`Store`].

mod access;
mod jwks;
mod jwt;
mod policy;
mod ratelimit;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use jwt::TokenError;
pub use policy::{Authenticated, Denial, Policy};
pub use ratelimit::{Decision, decide};
use upshift_model::store;

pub use store::{MemoryStore, Store, StoreError};
