//! The registry's HTTP API, beside the admin API and under its bearer
//! token:
//!
//! ```text
//! GET  /admin/components                   every component and its versions
//! POST /admin/components/{name}/versions   push a build (the .wasm bytes): admitted, not in force
//! POST /admin/components/{name}/upgrade    {"version": "<sha256>"}: put a pushed version in force
//! POST /admin/components/{name}/rollback   stop the canary, or put the version in force before back
//! POST /admin/components/{name}/canary     {"version", "steps", "analysis"}: start a canary
//! GET  /admin/components/{name}/canary     the canary's state and its step's counters
//! POST /admin/components/{name}/promote    put the canary's version in force now
//! GET  /admin/components/{name}/history    every transition, oldest first
//! ```
//!
//! `x-upshift-by` and `x-upshift-reason` name who asks and why, for the
//! history.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use upshift_core::GatewayError;
use upshift_model::token::Access;
use upshift_model::{audit, keys};
use wasmtime_wasi_http::WasiBody;

use super::{Actor, Registry, RegistryError, off_thread};

/// Where the registry answers.
pub const PREFIX: &str = "/admin/components";

/// The largest component the registry takes.
const MAX_COMPONENT_BYTES: usize = 64 << 20;

impl Registry {
    /// Whether `path` is the registry's.
    pub fn owns(path: &str) -> bool {
        path.strip_prefix(PREFIX)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Serves one registry request.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<WasiBody>, GatewayError> {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let access = Access::granted(header, &self.tokens.0, &self.tokens.1);
        if let Some((status, code, message)) = access.refusal(request.method().as_str()) {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            if access.is_known() {
                let (method, path) = (request.method().clone(), request.uri().path().to_owned());
                self.audit(access, &method, &path, status, code.into())
                    .await;
            }
            return Err(refused(status, code, message));
        }
        let actor = actor(&request);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path[PREFIX.len()..]
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let result = match (&method, segments.as_slice()) {
            (&Method::GET, []) => {
                let registry = self.clone();
                off_thread(move || registry.list())
                    .await
                    .map(|list| (StatusCode::OK, list))
            }
            (&Method::POST, [name, "versions"]) => {
                let bytes = body(request, MAX_COMPONENT_BYTES).await?;
                let (registry, name) = (self.clone(), (*name).to_owned());
                off_thread(move || registry.push(&name, &bytes, &actor))
                    .await
                    .map(|(record, new)| {
                        let status = if new {
                            StatusCode::CREATED
                        } else {
                            StatusCode::OK
                        };
                        (status, serde_json::to_value(record).unwrap_or_default())
                    })
            }
            (&Method::POST, [name, "upgrade"]) => {
                let bytes = body(request, 64 << 10).await?;
                let version = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("version")?.as_str().map(str::to_owned))
                    .ok_or_else(|| {
                        GatewayError::BadRequest(
                            "send the version to upgrade to as {\"version\": \"<sha256>\"}".into(),
                        )
                    })?;
                let (registry, name) = (self.clone(), (*name).to_owned());
                self.settled(off_thread(move || registry.upgrade(&name, &version, &actor)).await)
                    .await
            }
            (&Method::POST, [name, "rollback"]) => {
                let (registry, name) = (self.clone(), (*name).to_owned());
                let rolled_back =
                    off_thread(move || match registry.end_canary(&name, false, &actor)? {
                        Some(stopped) => Ok(stopped),
                        None => registry.rollback(&name, &actor),
                    });
                self.settled(rolled_back.await).await
            }
            (&Method::POST, [name, "promote"]) => {
                let (registry, name) = (self.clone(), (*name).to_owned());
                let promoted = off_thread(move || {
                    registry
                        .end_canary(&name, true, &actor)?
                        .ok_or(RegistryError::NoCanary(name))
                });
                self.settled(promoted.await).await
            }
            (&Method::POST, [name, "canary"]) => {
                let bytes = body(request, 64 << 10).await?;
                let plan: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    GatewayError::BadRequest(format!("the canary plan is not JSON: {e}"))
                })?;
                let (registry, name) = (self.clone(), (*name).to_owned());
                let started = off_thread(move || registry.start_canary(&name, &plan, &actor));
                self.settled(started.await)
                    .await
                    .map(|(_, body)| (StatusCode::CREATED, body))
            }
            (&Method::GET, [name, "canary"]) => {
                let (registry, name) = (self.clone(), (*name).to_owned());
                off_thread(move || registry.canary_status(&name))
                    .await
                    .map(|status| (StatusCode::OK, status))
            }
            (&Method::GET, [name, "history"]) => {
                let (registry, name) = (self.clone(), (*name).to_owned());
                off_thread(move || registry.history(&name))
                    .await
                    .map(|history| (StatusCode::OK, json!({ "history": history })))
            }
            (
                _,
                []
                | [
                    _,
                    "versions" | "upgrade" | "rollback" | "promote" | "canary" | "history",
                ],
            ) => {
                return Err(refused(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    &format!("{method} is not allowed on {path}"),
                ));
            }
            _ => {
                return Err(refused(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("the component registry has nothing at {path}"),
                ));
            }
        };
        let (status, outcome) = match &result {
            Ok((status, body)) => (
                *status,
                body.get("in_force")
                    .or(body.get("sha256"))
                    .and_then(Value::as_str)
                    .map_or_else(String::new, |v| format!("version {v}")),
            ),
            Err(error) => (error.status(), error.code().to_owned()),
        };
        if method != Method::GET {
            self.audit(access, &method, &path, status, outcome).await;
        }
        match result {
            Ok((status, body)) => Ok(json_response(status, &body)),
            Err(error) => Err(refused(error.status(), error.code(), &error.to_string())),
        }
    }

    /// Records a write in the admin audit trail (see `upshift_model::audit`).
    async fn audit(
        &self,
        access: Access,
        method: &Method,
        path: &str,
        status: StatusCode,
        outcome: String,
    ) {
        let entry = audit::Entry {
            n: 0,
            at_ms: super::now_ms(),
            token: access.name().to_owned(),
            method: method.to_string(),
            path: path.to_owned(),
            status: status.as_u16(),
            outcome,
        };
        let kv = self.kv.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            let n = kv
                .increment(super::BUCKET, keys::AUDIT_SEQ, 1)?
                .unsigned_abs();
            let entry = audit::Entry { n, ..entry };
            let json = serde_json::to_vec(&entry).expect("audit entries serialize");
            kv.set(super::BUCKET, &keys::audit(n), &json)
        })
        .await;
        if !matches!(recorded, Ok(Ok(()))) {
            tracing::warn!(%path, "an admin write is not in the audit trail");
        }
    }

    /// Waits until this node serves a recorded change, and answers with it.
    async fn settled(
        &self,
        changed: Result<super::Changed, RegistryError>,
    ) -> Result<(StatusCode, Value), RegistryError> {
        let changed = changed?;
        self.settle(&changed).await?;
        Ok((StatusCode::OK, changed.to_json()))
    }
}

/// Who asks and why, from `x-upshift-by` and `x-upshift-reason`.
fn actor(request: &Request<Incoming>) -> Actor {
    let header = |name: &str, default: &str| {
        request
            .headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    Actor {
        by: header("x-upshift-by", "unknown"),
        reason: header("x-upshift-reason", ""),
    }
}

/// The request body, up to `limit` bytes (413 beyond).
async fn body(request: Request<Incoming>, limit: usize) -> Result<Bytes, GatewayError> {
    Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    &format!("the body is larger than {limit} bytes"),
                )
            } else {
                GatewayError::BadRequest(format!("the body could not be read: {error}"))
            }
        })
}

fn refused(status: StatusCode, code: &str, message: &str) -> GatewayError {
    GatewayError::Refused {
        status: status.as_u16(),
        code: code.to_owned(),
        message: message.to_owned(),
        headers: Vec::new(),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<WasiBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
