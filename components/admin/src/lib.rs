//! The Upshift admin API: config documents in, state out.
//!
//! `PUT /admin/config` validates a YAML or JSON document and stores it as a
//! new numbered version, then makes it the version in force; a rejected
//! document changes nothing. Rollouts are started and steered here
//! (`/admin/rollouts`), and the splitter's counters are read back as
//! Prometheus text (`/admin/metrics`) or JSON (`/admin/stats`). API keys
//! are issued to consumers and revoked (`/admin/consumers/{name}/keys`). The API
//! logic is plain Rust over the
//! [`ConfigStore`] trait; the wasm build backs it with `wasi:keyvalue`.

pub mod ai_usage;
pub mod api;
pub mod credentials;
pub mod metrics;
pub mod rollouts;
pub mod store;
pub mod ui;
pub mod upstreams;

#[cfg(target_arch = "wasm32")]
mod http_handler;

pub use api::{AdminRequest, AdminResponse, handle};
pub use store::{ConfigStore, StoreError};
