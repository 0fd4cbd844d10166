//! The admin endpoints, independent of how requests arrive.

use crate::store::{ConfigStore, StoreError};
use crate::{ai_usage, credentials, metrics, rollouts, ui};
use serde::Serialize;
use serde_json::{Value, json};
use upshift_model::audit;
use upshift_model::changes::{ChangeKind, changes};
use upshift_model::token::Access;
use upshift_model::{Config, ConfigError, Problem, keys};

/// Largest config document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// An admin request, its body already read.
#[derive(Debug, Clone, Copy)]
pub struct AdminRequest<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// Path without query.
    pub path: &'a str,
    /// Request body.
    pub body: &'a [u8],
    /// What the caller's token allows.
    pub access: Access,
    /// The clock, in Unix milliseconds.
    pub now_ms: u64,
}

/// A response: JSON, or text when `content_type` says so (then `body` is a
/// JSON string holding the text).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Value,
    /// Media type of the body.
    pub content_type: &'static str,
}

impl AdminResponse {
    /// A JSON response.
    pub fn ok(status: u16, body: Value) -> Self {
        AdminResponse {
            status,
            body,
            content_type: "application/json",
        }
    }

    /// A text response of `content_type`.
    pub fn text(content_type: &'static str, text: String) -> Self {
        AdminResponse {
            status: 200,
            body: Value::String(text),
            content_type,
        }
    }

    /// An error response `{"error":{"code":…,"message":…}}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AdminResponse::ok(
            status,
            json!({ "error": { "code": code, "message": message } }),
        )
    }
}

impl From<StoreError> for AdminResponse {
    fn from(e: StoreError) -> Self {
        AdminResponse::error(503, "store_unavailable", e.to_string())
    }
}

/// Serves one admin request against `store`, and records every write of a
/// known caller in the audit trail.
pub fn handle(request: &AdminRequest<'_>, store: &impl ConfigStore) -> AdminResponse {
    let response = serve(request, store);
    if request.access.is_known() && !matches!(request.method, "GET" | "HEAD") {
        let outcome = match (response.body.get("version"), response.body.get("error")) {
            (Some(version), _) => format!("version {version}"),
            (None, Some(error)) => error["code"].as_str().unwrap_or_default().to_owned(),
            (None, None) => String::new(),
        };
        let entry = audit::Entry {
            n: 0,
            at_ms: request.now_ms,
            token: request.access.name().to_owned(),
            method: request.method.to_owned(),
            path: request.path.to_owned(),
            status: response.status,
            outcome,
        };
        // The write happened (or was refused) whether or not it is recorded.
        let _ = audit::record(store, entry);
    }
    response
}

fn serve(request: &AdminRequest<'_>, store: &impl ConfigStore) -> AdminResponse {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    if segments == ["admin", "health"] {
        return AdminResponse::ok(200, json!({ "status": "ok" }));
    }
    if segments.get(1) == Some(&"ui")
        && matches!(request.method, "GET" | "HEAD")
        && let Some(asset) = ui::asset(request.path)
    {
        return asset;
    }
    if let Some((status, code, message)) = request.access.refusal(request.method) {
        return AdminResponse::error(status, code, message);
    }
    let result = match (request.method, segments.as_slice()) {
        ("PUT", ["admin", "config"]) => apply(store, request.body),
        ("POST", ["admin", "config", "validate"]) => parse(request.body)
            .map(|c| AdminResponse::ok(200, json!({ "valid": true, "summary": summary(&c) }))),
        ("GET", ["admin", "config"]) => current(store).and_then(|v| show(store, v)),
        ("GET", ["admin", "config", "versions"]) => versions(store),
        ("GET", ["admin", "config", "versions", n]) => {
            version_number(n).and_then(|v| show(store, v))
        }
        ("GET", ["admin", "config", "versions", a, "diff", b]) => {
            version_number(a).and_then(|a| diff(store, a, version_number(b)?))
        }
        ("POST", ["admin", "config", "versions", n, "activate"]) => {
            version_number(n).and_then(|v| activate(store, v))
        }
        ("GET", ["admin", "routes"]) => section(store, "routes"),
        ("GET", ["admin", "services"]) => section(store, "services"),
        ("GET", ["admin", "metrics"]) => metrics::prometheus(store, request.now_ms),
        ("GET", ["admin", "stats"]) => metrics::stats(store),
        ("GET", ["admin", "rollouts"]) => rollouts::list(store),
        ("GET", ["admin", "ai", "usage"]) => in_force(store)
            .and_then(|config| ai_usage::report(store, config.as_ref(), request.now_ms)),
        ("GET", ["admin", "audit"]) => audit::recent(store)
            .map(|entries| AdminResponse::ok(200, json!({ "audit": entries })))
            .map_err(AdminResponse::from),
        ("POST", ["admin", "rollouts"]) => current(store)
            .and_then(|v| load(store, v))
            .and_then(|config| rollouts::start(store, &config, request.body, request.now_ms)),
        ("GET", ["admin", "rollouts", service]) => rollouts::status(store, service),
        ("DELETE", ["admin", "rollouts", service]) => rollouts::clear(store, service),
        ("POST", ["admin", "rollouts", service, action]) => {
            rollouts::act(store, service, action, request.body, request.now_ms)
        }
        ("POST", ["admin", "consumers"]) => credentials::create(store, request.body),
        ("POST", ["admin", "consumers", name, "keys"]) => {
            credentials::issue(store, name, request.body, request.now_ms)
        }
        ("GET", ["admin", "consumers", name, "keys"]) => credentials::list(store, name),
        ("DELETE", ["admin", "consumers", name, "keys", id]) => {
            credentials::revoke(store, name, id)
        }
        (_, ["admin", "consumers"]) => Err(not_allowed("POST")),
        (_, ["admin", "consumers", _, "keys"]) => Err(not_allowed("GET, POST")),
        (_, ["admin", "consumers", _, "keys", _]) => Err(not_allowed("DELETE")),
        (_, ["admin", "config"]) => Err(not_allowed("GET, PUT")),
        (_, ["admin", "config", "validate"] | ["admin", "config", "versions", _, "activate"]) => {
            Err(not_allowed("POST"))
        }
        (
            _,
            ["admin", "config", "versions"]
            | ["admin", "config", "versions", _]
            | ["admin", "config", "versions", _, "diff", _]
            | ["admin", "ai", "usage"]
            | ["admin", "routes"]
            | ["admin", "services"]
            | ["admin", "metrics"]
            | ["admin", "stats"]
            | ["admin", "audit"],
        ) => Err(not_allowed("GET")),
        (_, ["admin", "rollouts", _]) => Err(not_allowed("GET, DELETE")),
        (_, ["admin", "rollouts"]) => Err(not_allowed("GET, POST")),
        (_, ["admin", "rollouts", _, _]) => Err(not_allowed("POST")),
        _ => Err(AdminResponse::error(
            404,
            "not_found",
            format!("no admin endpoint {} {}", request.method, request.path),
        )),
    };
    result.unwrap_or_else(|e| e)
}

fn not_allowed(allow: &str) -> AdminResponse {
    AdminResponse::error(
        405,
        "method_not_allowed",
        format!("allowed methods: {allow}"),
    )
}

/// Validates `body` and stores it as the new version in force.
fn apply(store: &impl ConfigStore, body: &[u8]) -> Result<AdminResponse, AdminResponse> {
    let config = parse(body)?;
    let version = store_version(store, &config)?;
    advance_current(store, version, false)?;
    Ok(AdminResponse::ok(
        201,
        json!({ "version": version, "summary": summary(&config) }),
    ))
}

/// Stores `config` as a new version, not yet in force: its number.
pub(crate) fn store_version(
    store: &impl ConfigStore,
    config: &Config,
) -> Result<u64, AdminResponse> {
    let version = store.increment(keys::SEQUENCE, 1)?;
    let version =
        u64::try_from(version).map_err(|_| StoreError("version counter is negative".into()))?;
    store.set(
        &keys::version(version),
        config.to_canonical_json().as_bytes(),
    )?;
    Ok(version)
}

/// Puts `version`, made from version `base`, in force, unless another
/// version took `base`'s place meanwhile (409: the change is to be made
/// again over the newer version).
pub(crate) fn replace_current(
    store: &impl ConfigStore,
    base: u64,
    version: u64,
) -> Result<(), AdminResponse> {
    let base = base.to_string();
    if store.compare_and_swap(
        keys::CURRENT,
        Some(base.as_bytes()),
        version.to_string().as_bytes(),
    )? {
        Ok(())
    } else {
        Err(AdminResponse::error(
            409,
            "config_changed",
            "the config in force changed meanwhile; try again",
        ))
    }
}

/// Makes an earlier (or later) stored version the one in force.
fn activate(store: &impl ConfigStore, version: u64) -> Result<AdminResponse, AdminResponse> {
    if store.get(&keys::version(version))?.is_none() {
        return Err(AdminResponse::error(
            404,
            "version_not_found",
            format!("config version {version} does not exist"),
        ));
    }
    advance_current(store, version, true)?;
    Ok(AdminResponse::ok(
        200,
        json!({ "version": version, "active": true }),
    ))
}

/// Sets the version in force to `version` with compare-and-swap, so that
/// concurrent applies settle on the newest version. With `force`, an older
/// version may replace a newer one (an explicit rollback).
fn advance_current(store: &impl ConfigStore, version: u64, force: bool) -> Result<(), StoreError> {
    let new = version.to_string();
    loop {
        let current = store.get(keys::CURRENT)?;
        let in_force = current.as_deref().and_then(parse_version);
        if !force && in_force.is_some_and(|v| v >= version) {
            return Ok(());
        }
        if store.compare_and_swap(keys::CURRENT, current.as_deref(), new.as_bytes())? {
            return Ok(());
        }
    }
}

fn parse(body: &[u8]) -> Result<Config, AdminResponse> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(AdminResponse::error(
            413,
            "document_too_large",
            format!("config documents are limited to {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| AdminResponse::error(400, "malformed_config", "the document is not UTF-8"))?;
    Config::parse(text).map_err(|e| rejected(&e))
}

pub(crate) fn rejected(error: &ConfigError) -> AdminResponse {
    let (status, code) = match error {
        ConfigError::Syntax(_) => (400, "malformed_config"),
        ConfigError::Invalid(_) => (422, "invalid_config"),
    };
    let problems: &[Problem] = error.problems();
    AdminResponse::ok(
        status,
        json!({ "error": { "code": code, "message": error.to_string(), "problems": problems } }),
    )
}

pub(crate) fn current(store: &impl ConfigStore) -> Result<u64, AdminResponse> {
    store
        .get(keys::CURRENT)?
        .as_deref()
        .and_then(parse_version)
        .ok_or_else(|| AdminResponse::error(404, "no_config", "no config has been applied yet"))
}

fn show(store: &impl ConfigStore, version: u64) -> Result<AdminResponse, AdminResponse> {
    let config = load(store, version)?;
    let active = store.get(keys::CURRENT)?.as_deref().and_then(parse_version) == Some(version);
    Ok(AdminResponse::ok(
        200,
        json!({ "version": version, "active": active, "config": config }),
    ))
}

/// How many versions `GET /admin/config/versions` lists, newest first.
const VERSIONS_LISTED: usize = 100;

fn versions(store: &impl ConfigStore) -> Result<AdminResponse, AdminResponse> {
    let current = store.get(keys::CURRENT)?.as_deref().and_then(parse_version);
    let mut numbers: Vec<u64> = store
        .keys(keys::VERSIONS_PREFIX)?
        .iter()
        .filter_map(|k| k.strip_prefix(keys::VERSIONS_PREFIX)?.parse().ok())
        .collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    let mut listed = Vec::new();
    for version in numbers.into_iter().take(VERSIONS_LISTED) {
        let config = load(store, version)?;
        listed.push(json!({
            "version": version,
            "active": current == Some(version),
            "summary": summary(&config),
        }));
    }
    Ok(AdminResponse::ok(
        200,
        json!({ "current": current, "versions": listed }),
    ))
}

/// What going from version `from` to version `to` changes, secrets hidden.
fn diff(store: &impl ConfigStore, from: u64, to: u64) -> Result<AdminResponse, AdminResponse> {
    let document = |v| load(store, v).map(|c| serde_json::to_value(c).unwrap_or_default());
    let changes: Vec<Value> = changes(&document(from)?, &document(to)?)
        .into_iter()
        .map(|change| match change.kind {
            ChangeKind::Added(after) => {
                json!({ "path": change.path, "kind": "added", "after": after })
            }
            ChangeKind::Removed(before) => {
                json!({ "path": change.path, "kind": "removed", "before": before })
            }
            ChangeKind::Changed(before, after) => {
                json!({ "path": change.path, "kind": "changed", "before": before, "after": after })
            }
        })
        .collect();
    Ok(AdminResponse::ok(
        200,
        json!({ "from": from, "to": to, "changes": changes }),
    ))
}

/// The config in force, if one was applied.
pub(crate) fn in_force(store: &impl ConfigStore) -> Result<Option<Config>, AdminResponse> {
    match store.get(keys::CURRENT)?.as_deref().and_then(parse_version) {
        Some(version) => load(store, version).map(Some),
        None => Ok(None),
    }
}

fn section(store: &impl ConfigStore, name: &str) -> Result<AdminResponse, AdminResponse> {
    let version = current(store)?;
    let config = serde_json::to_value(load(store, version)?).unwrap_or_default();
    let items = config.get(name).cloned().unwrap_or_else(|| json!([]));
    Ok(AdminResponse::ok(
        200,
        json!({ "version": version, name: items }),
    ))
}

pub(crate) fn load(store: &impl ConfigStore, version: u64) -> Result<Config, AdminResponse> {
    let bytes = store.get(&keys::version(version))?.ok_or_else(|| {
        AdminResponse::error(
            404,
            "version_not_found",
            format!("config version {version} does not exist"),
        )
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| StoreError(format!("version {version} is not UTF-8")))?;
    Config::from_canonical_json(&text)
        .map_err(|e| AdminResponse::error(500, "stored_config_unreadable", e.to_string()))
}

fn version_number(segment: &str) -> Result<u64, AdminResponse> {
    segment.parse().map_err(|_| {
        AdminResponse::error(
            400,
            "bad_version",
            format!("{segment:?} is not a version number"),
        )
    })
}

pub(crate) fn parse_version(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

#[derive(Serialize)]
struct Summary {
    services: usize,
    routes: usize,
    consumers: usize,
    models: usize,
}

fn summary(config: &Config) -> Summary {
    Summary {
        services: config.services.len(),
        routes: config.routes.len(),
        consumers: config.consumers.len(),
        models: config.ai.as_ref().map_or(0, |ai| ai.models.len()),
    }
}

#[cfg(test)]
mod tests;
