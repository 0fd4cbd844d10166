//! The Upshift gateway: the HTTP entry component, on Spin and on the
//! bundled host's component lane.
//!
//! It is the I/O half of the request path; the decisions are the core's
//! (`upshift-core`), the same code the host's native lane runs. Per request
//! it packs the head once, lets the core's phases ask the router, auth and
//! the splitter (each a dependency of its own), then streams the request
//! upstream and the answer back, trying again as the core's attempt driver
//! says and adding the splitter's counts to the key-value store. Bodies
//! stream: only when a route retries or mirrors a request is a body of up
//! to 1 MiB held in memory, so it can be sent again.
//!
//! AI routes go to the AI component instead: it plans each call (provider
//! URL, headers and body, then the fallbacks) and translates the answer,
//! which the gateway streams back chunk by chunk (see `ai`).
//!
//! A build made with `UPSHIFT_GATEWAY_BUILD=<label>` in its environment
//! answers `x-upshift-build: <label>` on the answers it passes on, so that
//! while a canary of the gateway runs, an answer tells which build made it.

#[cfg(target_arch = "wasm32")]
mod ai;
#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod body;
#[cfg(target_arch = "wasm32")]
mod config;
#[cfg(target_arch = "wasm32")]
mod hooks;
#[cfg(target_arch = "wasm32")]
mod key_sets;
#[cfg(target_arch = "wasm32")]
mod proxy;
#[cfg(target_arch = "wasm32")]
mod service;
#[cfg(target_arch = "wasm32")]
mod upstream;

/// Adds the build's label (`UPSHIFT_GATEWAY_BUILD` at build time), if it
/// has one, to an answer's headers.
#[cfg(target_arch = "wasm32")]
fn add_build_label(headers: &mut http::HeaderMap) {
    if let Some(label) = option_env!("UPSHIFT_GATEWAY_BUILD") {
        headers.insert("x-upshift-build", http::HeaderValue::from_static(label));
    }
}
