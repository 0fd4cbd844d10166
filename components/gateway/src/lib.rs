//! The Upshift gateway: the HTTP entry component.
//!
//! For each request it loads the config version in force (cached per
//! version), asks the router which route handles the request, the auth
//! component who is calling, the splitter which version and target of the
//! service to use, then streams the request upstream and the response back,
//! reporting each attempt to the splitter. Bodies stream: the incoming body
//! stream is handed to the upstream request as it is, and the upstream body
//! to the client. Only when the route retries or mirrors the request is a
//! body of up to 1 MiB held in memory, so it can be sent again.
//!
//! AI routes go to the AI component instead: it plans each call (provider
//! URL, headers and body, then the fallbacks) and translates the answer,
//! which the gateway streams back chunk by chunk (see `ai_proxy`).
//!
//! The header and error logic is plain Rust, tested natively; the Spin
//! handler and the WIT imports exist only in the wasm build.

pub mod errors;
pub mod forwarding;
pub mod request_id;

#[cfg(target_arch = "wasm32")]
mod ai_proxy;
#[cfg(target_arch = "wasm32")]
mod attempts;
#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod body;
#[cfg(target_arch = "wasm32")]
mod config;
#[cfg(target_arch = "wasm32")]
mod service;
#[cfg(target_arch = "wasm32")]
mod shadow;
#[cfg(target_arch = "wasm32")]
mod upstream;
