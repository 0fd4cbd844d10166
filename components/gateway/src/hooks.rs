//! The component lane's webhook runner: when a request's selection says
//! the service's rollout hooks have work, the core's [`hooks::run`] goes
//! on in the background, through `wasi:http`, after the client's answer.

use std::time::Duration;

use spin_sdk::wasip3::http::types::Method;
use spin_sdk::wasip3::wit_bindgen;
use upshift_core::hooks::{self, Outbound};

use crate::upstream;
use upshift_core::clock::now_ms;

use crate::bindings::wasi;

upshift_model::keyvalue_store!("default");

/// Runs the rollout webhooks of `service` in the background.
pub fn wake(service: &str) {
    let service = service.to_owned();
    wit_bindgen::spawn(async move {
        let store = match bucket() {
            Ok(store) => store,
            Err(error) => {
                eprintln!("gateway: rollout webhooks of {service}: {error}");
                return;
            }
        };
        if let Err(error) = hooks::run(&*store, &WasiOutbound, &service).await {
            eprintln!("gateway: rollout webhooks of {service}: {error}");
        }
    });
}

/// `wasi:http`, the monotonic clock and Spin's variables, for the runner.
struct WasiOutbound;

impl Outbound for WasiOutbound {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<u16, String> {
        let headers = headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
            .collect();
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let response = upstream::send_bytes(url, Method::Post, headers, body, timeout_ms)
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.get_status_code())
    }

    async fn sleep(&self, duration: Duration) {
        spin_sdk::time::sleep(duration).await;
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    async fn variable(&self, name: &str) -> Option<String> {
        spin_sdk::variables::get(name).await.ok()
    }
}
