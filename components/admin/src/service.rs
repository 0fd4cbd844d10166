//! The admin HTTP handler, over `wasi:keyvalue` and the `admin_token` variable.

use crate::api::{self, AdminRequest, AdminResponse, MAX_DOCUMENT_BYTES};
use crate::store::{ConfigStore, StoreError};
use bindings::wasi::keyvalue::{atomics, batch, store};
use http_body_util::{BodyExt, Limited};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::wasip3::http::types::{ErrorCode, Response};

mod bindings {
    spin_sdk::wit_bindgen::generate!({
        path: "../../wit",
        world: "admin-imports",
        runtime_path: "spin_sdk::wit_bindgen::rt",
        generate_all,
    });
}

/// The store label the gateway reads config from.
const STORE_LABEL: &str = "default";

#[spin_sdk::http_service]
async fn handle(request: Request) -> Result<Response, ErrorCode> {
    let (parts, body) = request.into_parts();
    let response = match serve(&parts, body).await {
        Ok(response) | Err(response) => response,
    };
    let body = match response.body {
        serde_json::Value::String(text) if response.content_type != "application/json" => text,
        json => json.to_string(),
    };
    http::Response::builder()
        .status(response.status)
        .header("content-type", response.content_type)
        .body(body)
        .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))?
        .into_response()
}

async fn serve(
    parts: &http::request::Parts,
    body: spin_sdk::wasip3::http_compat::IncomingRequestBody,
) -> Result<AdminResponse, AdminResponse> {
    let authorized = match spin_sdk::variables::get("admin_token").await {
        Ok(expected) => parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|presented| api::token_matches(presented.trim(), &expected)),
        Err(e) => {
            return Err(AdminResponse::error(
                500,
                "admin_token_unset",
                format!("the admin_token variable cannot be read: {e}"),
            ));
        }
    };
    let body = Limited::new(body, MAX_DOCUMENT_BYTES + 1)
        .collect()
        .await
        .map_err(
            |e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                Some(_) => AdminResponse::error(
                    413,
                    "document_too_large",
                    format!("config documents are limited to {MAX_DOCUMENT_BYTES} bytes"),
                ),
                None => AdminResponse::error(400, "body_unreadable", e.to_string()),
            },
        )?
        .to_bytes();
    let store = KeyValue::open()?;
    let request = AdminRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        body: &body,
        authorized,
        now_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    };
    Ok(api::handle(&request, &store))
}

/// [`ConfigStore`] over a `wasi:keyvalue` bucket.
struct KeyValue(store::Bucket);

impl KeyValue {
    fn open() -> Result<Self, AdminResponse> {
        store::open(STORE_LABEL)
            .map(KeyValue)
            .map_err(|e| StoreError(format!("{e:?}")).into())
    }
}

fn failed(e: store::Error) -> StoreError {
    StoreError(format!("{e:?}"))
}

impl ConfigStore for KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).map_err(failed)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let found = batch::get_many(&self.0, keys).map_err(failed)?;
        let mut by_key: std::collections::HashMap<String, Option<Vec<u8>>> =
            found.into_iter().collect();
        Ok(keys.iter().map(|k| by_key.remove(k).flatten()).collect())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.set(key, value).map_err(failed)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).map_err(failed)
    }

    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.0.list_keys(cursor.as_deref()).map_err(failed)?;
            keys.extend(page.keys.into_iter().filter(|k| k.starts_with(prefix)));
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&self.0, key, delta).map_err(failed)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let cas = atomics::Cas::new(&self.0, key).map_err(failed)?;
        if cas.current().map_err(failed)?.as_deref() != expected {
            return Ok(false);
        }
        match atomics::swap(cas, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(failed(e)),
        }
    }
}
