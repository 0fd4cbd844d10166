//! The admin HTTP handler, over `wasi:keyvalue` and the `admin_token` variable.

use crate::api::{self, AdminRequest, AdminResponse, MAX_DOCUMENT_BYTES};
use crate::store::{ConfigStore, StoreError};
use bindings::wasi::keyvalue::{atomics, store};
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
    http::Response::builder()
        .status(response.status)
        .header("content-type", "application/json")
        .body(response.body.to_string())
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

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.set(key, value).map_err(failed)
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
