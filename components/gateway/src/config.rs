//! The config version in force, loaded into the policy components once per
//! version and kept for as long as the instance lives.

use crate::bindings::{
    ai::Catalog, auth::Policy, router::RouteTable, splitter::Plan, types::ConfigError,
};
use crate::errors::Refusal;
use spin_sdk::key_value::Store;
use std::cell::RefCell;
use std::rc::Rc;
use upshift_config::keys;

/// The policy components' view of one config version.
pub struct Loaded {
    /// Version number; 0 when no config was ever applied.
    pub version: u64,
    /// Compiled routes.
    pub routes: RouteTable,
    /// Compiled consumers and route auth settings.
    pub auth: Policy,
    /// Compiled services and split weights.
    pub splitter: Plan,
    /// Compiled AI model aliases.
    pub ai: Catalog,
}

thread_local! {
    static STORE: RefCell<Option<Rc<Store>>> = const { RefCell::new(None) };
    static LOADED: RefCell<Option<Rc<Loaded>>> = const { RefCell::new(None) };
}

/// The config in force: one small key-value read per request, and a reload
/// of the policy components only when the version changed.
pub async fn current() -> Result<Rc<Loaded>, Refusal> {
    let store = store().await?;
    let version = match store.get(keys::CURRENT).await.map_err(store_failed)? {
        Some(bytes) => parse_version(&bytes)?,
        None => 0,
    };
    if let Some(loaded) = LOADED
        .with_borrow(|l| l.clone())
        .filter(|l| l.version == version)
    {
        return Ok(loaded);
    }
    let document = if version == 0 {
        "{}".to_owned()
    } else {
        let bytes = store
            .get(&keys::version(version))
            .await
            .map_err(store_failed)?
            .ok_or_else(|| {
                broken(format!(
                    "config version {version} is missing from the store"
                ))
            })?;
        String::from_utf8(bytes)
            .map_err(|_| broken(format!("config version {version} is not UTF-8")))?
    };
    let loaded = Rc::new(load(version, &document)?);
    LOADED.with_borrow_mut(|l| *l = Some(loaded.clone()));
    Ok(loaded)
}

async fn store() -> Result<Rc<Store>, Refusal> {
    if let Some(store) = STORE.with_borrow(|s| s.clone()) {
        return Ok(store);
    }
    let store = Rc::new(Store::open_default().await.map_err(store_failed)?);
    STORE.with_borrow_mut(|s| *s = Some(store.clone()));
    Ok(store)
}

fn load(version: u64, document: &str) -> Result<Loaded, Refusal> {
    let failed = |errors: Vec<ConfigError>| {
        let detail: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        broken(format!(
            "config version {version} does not load: {}",
            detail.join("; ")
        ))
    };
    Ok(Loaded {
        version,
        routes: RouteTable::load(document).map_err(failed)?,
        auth: Policy::load(document).map_err(failed)?,
        splitter: Plan::load(document).map_err(failed)?,
        ai: Catalog::load(document).map_err(failed)?,
    })
}

fn parse_version(bytes: &[u8]) -> Result<u64, Refusal> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| broken("the current config version is not a number".to_owned()))
}

fn store_failed(error: spin_sdk::key_value::Error) -> Refusal {
    Refusal::new(
        503,
        "config_store_unavailable",
        format!("config store: {error:?}"),
    )
}

fn broken(message: String) -> Refusal {
    Refusal::new(500, "config_unloadable", message)
}
