//! The gateway's half of JSON Web Key Sets on Spin (see
//! [`upshift_model::jwks`]): when auth asks for a set, it is fetched over
//! `wasi:http` (Spin applies `allowed_outbound_hosts`) and stored for
//! every node.

use spin_sdk::wasip3::http::types::{Method, Response};
use spin_sdk::wasip3::wit_future;
use upshift_core::tables::Target;
use upshift_model::jwks::{JwksRecord, MAX_JWKS_BYTES};
use upshift_model::keys;

use crate::body::{Contents, read_whole};
use crate::config;
use crate::upstream::{self, Outgoing};
use upshift_core::clock::now_ms;

/// How long a fetch of a key set may take, in milliseconds.
const FETCH_TIMEOUT_MS: u32 = 5_000;

/// Fetches the key set at `url` and stores it (or, when the fetch fails,
/// the failure beside the keys held).
pub async fn fetch(url: String) {
    let Ok(bucket) = config::bucket() else {
        return;
    };
    let key = keys::jwks(&url);
    let previous: Option<JwksRecord> = bucket
        .get(&key)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let fetched = get(&url).await;
    if let Err(error) = &fetched {
        eprintln!("gateway: key set {url} not fetched: {error}");
    }
    let record = JwksRecord::refreshed(previous, &url, now_ms(), fetched);
    let bytes = serde_json::to_vec(&record).expect("records serialize");
    if let Err(error) = bucket.set(&key, &bytes) {
        eprintln!("gateway: key set {url} not stored: {error:?}");
    }
}

/// The body of `url`, or why there is none.
async fn get(url: &str) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let target = Target::new(&format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    ));
    let outgoing = Outgoing {
        method: Method::Get,
        target: &target,
        path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()),
        headers: vec![("accept".to_owned(), b"application/json".to_vec())],
        timeout_ms: FETCH_TIMEOUT_MS,
    };
    let (status, response) = upstream::send(Contents::bytes(Vec::new()), outgoing)
        .await
        .map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        return Err(format!("the key set answered {status}"));
    }
    let (body, trailers) = Response::consume_body(response, wit_future::new(|| Ok(())).1);
    read_whole(body, trailers, MAX_JWKS_BYTES).await
}
