//! Bindings for the policy components the gateway imports.

spin_sdk::wit_bindgen::generate!({
    path: "../../wit",
    world: "gateway-imports",
    runtime_path: "spin_sdk::wit_bindgen::rt",
});

pub use upshift::gateway::{ai, auth, router, splitter, types};

impl From<types::GatewayError> for crate::errors::Refusal {
    fn from(e: types::GatewayError) -> Self {
        crate::errors::Refusal {
            status: e.status,
            code: e.code,
            message: e.message,
            headers: e.headers,
        }
    }
}
