//! The admin HTTP handler, over `wasi:keyvalue` and the `admin_token` and
//! `admin_read_token` variables.

use crate::api::{self, AdminRequest, AdminResponse, MAX_DOCUMENT_BYTES};
use crate::store::{ConfigStore, StoreError};
use bindings::wasi;
use http_body_util::{BodyExt, Limited};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::wasip3::http::types::{ErrorCode, Response};
use upshift_model::token::Access;

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
    let mut builder = http::Response::builder()
        .status(response.status)
        .header("content-type", response.content_type)
        .header("x-content-type-options", "nosniff");
    if response.content_type.starts_with("text/html") {
        // The dashboard runs only its own script, and is never framed.
        builder = builder.header(
            "content-security-policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             frame-ancestors 'none'",
        );
    }
    builder
        .body(body)
        .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))?
        .into_response()
}

async fn serve(
    parts: &http::request::Parts,
    body: spin_sdk::wasip3::http_compat::IncomingRequestBody,
) -> Result<AdminResponse, AdminResponse> {
    let full = spin_sdk::variables::get("admin_token").await.map_err(|e| {
        AdminResponse::error(
            500,
            "admin_token_unset",
            format!("the admin_token variable cannot be read: {e}"),
        )
    })?;
    // Optional: an app without the variable has no read-only token.
    let read = spin_sdk::variables::get("admin_read_token")
        .await
        .unwrap_or_default();
    let header = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let access = Access::granted(header, &full, &read);
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
    let store = bucket()?;
    let request = AdminRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        body: &body,
        access,
        now_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    };
    Ok(api::handle(&request, &*store))
}

upshift_model::keyvalue_store!(STORE_LABEL);

impl ConfigStore for KeyValue {
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
}
