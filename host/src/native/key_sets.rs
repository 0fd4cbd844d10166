//! The native lane's half of JSON Web Key Sets (see
//! [`upshift_model::jwks`]): when auth asks for a set, it is fetched
//! through the upstream client (the gateway's `allowed_outbound_hosts` and
//! `[[client_tls]]` apply) and stored for every node. One fetch per URL at
//! a time: requests that asked meanwhile take its result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Limited};
use upshift_model::jwks::{JwksRecord, MAX_JWKS_BYTES};
use upshift_model::keys;

use super::body::ForwardBody;
use super::{BUCKET, NativeGateway, lock};
use crate::capabilities::kv::blocking;
use upshift_core::clock::now_ms;

/// How long a fetch of a key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The fetches under way, by URL.
#[derive(Default)]
pub struct KeySetFetches(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl NativeGateway {
    /// Fetches the key set at `url` for worker `worker`, and stores it
    /// (or, when the fetch fails, the failure beside the keys held).
    pub async fn fetch_key_set(&self, worker: usize, url: String) {
        let asked_ms = now_ms();
        let one_at_a_time = lock(&self.key_set_fetches.0)
            .entry(url.clone())
            .or_default()
            .clone();
        let _fetching = one_at_a_time.lock().await;
        let kv = self.kv.clone();
        let key = keys::jwks(&url);
        let previous = {
            let (kv, key) = (kv.clone(), key.clone());
            blocking(move || kv.get(BUCKET, &key)).await
        };
        let previous: Option<JwksRecord> = previous
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if previous.as_ref().is_some_and(|p| p.checked_ms >= asked_ms) {
            // Fetched by another request while this one waited.
            return;
        }
        let fetched = self.fetch(worker, &url).await;
        if let Err(error) = &fetched {
            tracing::warn!(%url, "key set not fetched: {error}");
        }
        let record = JwksRecord::refreshed(previous, &url, now_ms(), fetched);
        let bytes = serde_json::to_vec(&record).expect("records serialize");
        if let Err(error) = blocking(move || kv.set(BUCKET, &key, &bytes)).await {
            tracing::warn!(%url, "key set not stored: {error}");
        }
    }

    /// The body of `url`, or why there is none.
    async fn fetch(&self, worker: usize, url: &str) -> Result<Vec<u8>, String> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(ForwardBody::bytes(bytes::Bytes::new()))
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !self.allowed.allows(request.uri()) {
            return Err(format!(
                "outbound requests to {url} are not allowed for the gateway"
            ));
        }
        let response = self
            .client
            .send((worker, false), &self.name, request, FETCH_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("the key set answered {}", response.status()));
        }
        let body = tokio::time::timeout(
            FETCH_TIMEOUT,
            Limited::new(response.into_body(), MAX_JWKS_BYTES).collect(),
        )
        .await
        .map_err(|_| format!("the key set did not arrive within {FETCH_TIMEOUT:?}"))?
        .map_err(|e| format!("the key set broke off or is over {MAX_JWKS_BYTES} bytes: {e}"))?;
        Ok(body.to_bytes().to_vec())
    }
}
