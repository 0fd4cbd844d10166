//! The config version in force, loaded into the policy components once per
//! version and kept for as long as the instance lives, and the key-value
//! bucket it is read from (where the splitter's counts are added too).

use std::cell::RefCell;
use std::rc::Rc;

use upshift_core::GatewayError;
use upshift_core::tables::Tables;
use upshift_model::keys;

use crate::bindings;
use crate::bindings::ai::Catalog;
use crate::bindings::auth::Policy;
use crate::bindings::keyvalue::{atomics, store};
use crate::bindings::router::RouteTable;
use crate::bindings::splitter::{Count, Plan};
use crate::bindings::types::ConfigError;

/// The key-value store every node of the gateway shares.
const BUCKET: &str = "default";

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
    /// What the components name by position.
    pub tables: Tables,
}

thread_local! {
    static STORE: RefCell<Option<Rc<store::Bucket>>> = const { RefCell::new(None) };
    static LOADED: RefCell<Option<Rc<Loaded>>> = const { RefCell::new(None) };
}

/// The config in force: one small key-value read per request, and a reload
/// of the policy components only when the version changed.
pub fn current() -> Result<Rc<Loaded>, GatewayError> {
    let bucket = bucket()?;
    let version = match bucket.get(keys::CURRENT).map_err(store_failed)? {
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
        let bytes = bucket
            .get(&keys::version(version))
            .map_err(store_failed)?
            .ok_or_else(|| unloadable(version, "it is missing from the store".into()))?;
        String::from_utf8(bytes).map_err(|_| unloadable(version, "it is not UTF-8".into()))?
    };
    let loaded = Rc::new(load(version, &document)?);
    LOADED.with_borrow_mut(|l| *l = Some(loaded.clone()));
    Ok(loaded)
}

/// Adds the splitter's `counts` to the store. Best effort: a count that
/// fails is lost, the request is not.
pub fn add(counts: Vec<Count>) {
    add_each(counts.into_iter().map(|c| (c.key, c.delta)));
}

/// Adds `(key, delta)` counts to the store, best effort.
pub fn add_each(counts: impl IntoIterator<Item = (String, i64)>) {
    let Ok(bucket) = bucket() else {
        return;
    };
    for (key, delta) in counts {
        if let Err(error) = atomics::increment(&bucket, &key, delta) {
            eprintln!("gateway: counter {key} not counted: {error:?}");
        }
    }
}

/// The key-value store every node shares, opened once per instance.
pub fn bucket() -> Result<Rc<store::Bucket>, GatewayError> {
    if let Some(bucket) = STORE.with_borrow(|s| s.clone()) {
        return Ok(bucket);
    }
    let bucket = Rc::new(store::open(BUCKET).map_err(store_failed)?);
    STORE.with_borrow_mut(|s| *s = Some(bucket.clone()));
    Ok(bucket)
}

fn load(version: u64, document: &str) -> Result<Loaded, GatewayError> {
    let failed = |errors: Vec<ConfigError>| {
        let detail: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        unloadable(version, detail.join("; "))
    };
    let routes = RouteTable::load(document).map_err(failed)?;
    let auth = Policy::load(document).map_err(failed)?;
    let splitter = Plan::load(document).map_err(failed)?;
    Ok(Loaded {
        version,
        tables: bindings::tables(&routes, &auth, &splitter),
        routes,
        auth,
        splitter,
        ai: Catalog::load(document).map_err(failed)?,
    })
}

fn parse_version(bytes: &[u8]) -> Result<u64, GatewayError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            GatewayError::ConfigStoreUnavailable(format!(
                "{} does not hold a version number",
                keys::CURRENT
            ))
        })
}

fn store_failed(error: store::Error) -> GatewayError {
    GatewayError::ConfigStoreUnavailable(format!("{error:?}"))
}

fn unloadable(version: u64, detail: String) -> GatewayError {
    GatewayError::ConfigUnloadable { version, detail }
}
