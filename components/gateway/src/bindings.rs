//! Bindings for the policy components the gateway imports.

spin_sdk::wit_bindgen::generate!({
    path: "../../wit",
    world: "gateway-imports",
    runtime_path: "spin_sdk::wit_bindgen::rt",
});

pub use upshift::gateway::{ai, auth, router, splitter, types};
