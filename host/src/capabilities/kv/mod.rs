//! Key-value stores shared by `spin:key-value` and `wasi:keyvalue`.
//!
//! A store is identified by its label (Spin's `key_value_stores` entry, the
//! bucket identifier in `wasi:keyvalue`). Backends implement [`KvBackend`]:
//! the default is [`RedbStore`], embedded and persistent; [`RedisStore`]
//! shares stores between nodes. A runtime config file
//! ([`RuntimeConfig`](crate::runtime_config::RuntimeConfig))
//! says which label uses which, and [`open_stores`] opens them.
//!
//! As a [`Capability`], the stores are [`KvStores`]: `spin:key-value` and
//! `wasi:keyvalue` linked, the backend opened for the app, and each
//! instance given the labels its component may open ([`KvCtx`]).

/// The conversions of backend errors and refused opens into the `error`
/// of a key-value binding: every binding's has the cases `other`,
/// `no-such-store` and `access-denied`.
macro_rules! binding_errors {
    ($error:ty) => {
        impl From<KvError> for $error {
            fn from(error: KvError) -> Self {
                Self::Other(error.to_string())
            }
        }

        impl From<OpenDenied> for $error {
            fn from(denied: OpenDenied) -> Self {
                match denied {
                    OpenDenied::NoSuchStore => Self::NoSuchStore,
                    OpenDenied::AccessDenied => Self::AccessDenied,
                }
            }
        }
    };
}

mod read_cache;
mod redb_store;
mod redis_store;
mod spin_kv;
mod stores;
mod sync_kv;
#[cfg(test)]
mod testing;
mod wasi_kv;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::{AppContext, Capability};
use crate::bindings::spin::key_value::key_value;
use crate::bindings::wasi::keyvalue::{atomics, batch, store as wasi_store};
use crate::engine::HostState;
use crate::native::NativeGateway;

pub use redb_store::RedbStore;
pub use redis_store::RedisStore;
pub use stores::open_stores;

/// Errors raised by a key-value backend.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The stored value is not a counter in the backend's encoding, so it
    /// cannot be incremented.
    #[error("value of key `{0}` is not an integer")]
    NotAnInteger(String),
    /// Incrementing would overflow a signed 64-bit integer.
    #[error("increment of key `{0}` overflows")]
    Overflow(String),
    /// The backend failed (I/O, corruption, ...).
    #[error("key-value backend error: {0}")]
    Backend(String),
}

/// A key-value backend: a set of named stores of byte values.
///
/// A counter is stored as its backend stores it, as in Spin: the embedded
/// store keeps an 8-byte little-endian `i64` (like Spin's SQLite store),
/// Redis keeps decimal text (`INCRBY`, like Spin's Redis store). A plain
/// `get` of a counter returns those bytes, so components read counters with
/// a decoder that accepts both, and never `set` a key they increment.
///
/// Methods block: writes may sync to disk, a network backend waits for its
/// server. The bindings therefore run every call on the blocking thread pool,
/// except reads and increments of a store whose backend says they are
/// answered locally within microseconds ([`KvBackend::reads_inline`],
/// [`KvBackend::increments_inline`]), which run in place.
pub trait KvBackend: Send + Sync + 'static {
    /// Whether reads (`get`, `exists`, `keys`, `get_many`) of `store` are
    /// fast enough to run on the async executor threads. Backends that wait
    /// on anything (a network, a lock held across I/O) keep the default, `false`.
    fn reads_inline(&self, store: &str) -> bool {
        let _ = store;
        false
    }
    /// Whether `increment` of `store` is fast enough to run on the async
    /// executor threads (it never waits for I/O). Default: `false`.
    fn increments_inline(&self, store: &str) -> bool {
        let _ = store;
        false
    }
    /// Returns the value of `key`, if any.
    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets `key` to `value`.
    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Deletes `key`; deleting a missing key is not an error.
    fn delete(&self, store: &str, key: &str) -> Result<(), KvError>;
    /// Whether `key` exists.
    fn exists(&self, store: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(store, key)?.is_some())
    }
    /// All keys of the store, in order.
    fn keys(&self, store: &str) -> Result<Vec<String>, KvError>;
    /// Atomically adds `delta` to the integer at `key` (missing counts as 0)
    /// and returns the new value.
    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError>;
    /// Atomically sets `key` to `value` if its current value is `expected`
    /// (`None`: the key must not exist). Returns whether the swap happened.
    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError>;
    /// Values of several keys, read consistently.
    fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError>;
    /// Sets several keys in one transaction.
    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> Result<(), KvError>;
    /// Deletes several keys in one transaction.
    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), KvError>;
    /// Writes whatever the backend keeps in memory only (pending counters)
    /// durably: at exit.
    fn flush(&self) -> Result<(), KvError> {
        Ok(())
    }
}

/// Which stores a component may open.
#[derive(Debug, Clone)]
pub struct KvAccess {
    /// Labels listed in the component's `key_value_stores`.
    allowed: Arc<HashSet<String>>,
    /// Labels used anywhere in the app.
    known: Arc<HashSet<String>>,
}

/// Why a store could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenDenied {
    /// No component of the app declares the store.
    NoSuchStore,
    /// The store exists but this component does not declare it.
    AccessDenied,
}

impl KvAccess {
    /// Access for a component declaring `allowed`, in an app declaring `known`.
    pub fn new(allowed: Arc<HashSet<String>>, known: Arc<HashSet<String>>) -> Self {
        Self { allowed, known }
    }

    /// Checks whether the component may open `label`.
    pub fn check(&self, label: &str) -> Result<(), OpenDenied> {
        if self.allowed.contains(label) {
            Ok(())
        } else if self.known.contains(label) {
            Err(OpenDenied::AccessDenied)
        } else {
            Err(OpenDenied::NoSuchStore)
        }
    }
}

/// Per-store (per-instance) key-value state.
#[derive(Clone)]
pub struct KvCtx {
    /// The backend.
    pub backend: Arc<dyn KvBackend>,
    /// What the component may open.
    pub access: KvAccess,
    /// The native lane to tell when the version in force changes here.
    pub config_listener: Option<Arc<NativeGateway>>,
}

/// The app's key-value stores: their backend, and which labels each
/// component may open.
pub struct KvStores {
    /// The backend of every store.
    pub backend: Arc<dyn KvBackend>,
    /// Labels used anywhere in the app.
    pub known: Arc<HashSet<String>>,
    /// What each component may open.
    access: HashMap<String, KvAccess>,
    /// The native lane to tell when the version in force changes, once
    /// it has started.
    pub config_listener: Option<Arc<NativeGateway>>,
}

impl Capability for KvStores {
    /// The stores the instance may open, and their backend.
    type Instance = KvCtx;

    /// `spin:key-value` and `wasi:keyvalue` (store, atomics, batch).
    fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
        key_value::add_to_linker::<_, Kv>(linker, HostState::kv)?;
        wasi_store::add_to_linker::<_, Kv>(linker, HostState::kv)?;
        atomics::add_to_linker::<_, Kv>(linker, HostState::kv)?;
        batch::add_to_linker::<_, Kv>(linker, HostState::kv)?;
        Ok(())
    }

    /// Opens the stores (embedded in the state directory, or as the runtime
    /// config file says) and notes which component may open which.
    fn configure(context: &AppContext<'_>) -> anyhow::Result<Self> {
        let components = &context.app.manifest.component;
        let known: Arc<HashSet<String>> = Arc::new(
            components
                .values()
                .flat_map(|c| c.key_value_stores.iter().cloned())
                .collect(),
        );
        for label in context.runtime_config.key_value_stores.keys() {
            if !known.contains(label) {
                tracing::warn!(
                    store = %label,
                    "the runtime config file configures key-value store `{label}`, \
                     which no component of the app uses"
                );
            }
        }
        let backend = open_stores(context.runtime_config, &context.state_dir.join("kv.redb"))?;
        let access = components
            .iter()
            .map(|(name, decl)| {
                let allowed = Arc::new(decl.key_value_stores.iter().cloned().collect());
                (name.clone(), KvAccess::new(allowed, known.clone()))
            })
            .collect();
        Ok(Self {
            backend,
            known,
            access,
            config_listener: None,
        })
    }

    fn instance(&self, component: &str) -> KvCtx {
        let access = self
            .access
            .get(component)
            .cloned()
            .unwrap_or_else(|| KvAccess::new(Arc::new(HashSet::new()), self.known.clone()));
        KvCtx {
            backend: self.backend.clone(),
            access,
            config_listener: self.config_listener.clone(),
        }
    }
}

/// An open store (a `spin:key-value` store or a `wasi:keyvalue` bucket).
pub struct StoreHandle {
    label: Arc<str>,
}

/// A `wasi:keyvalue/atomics` CAS handle: a key and the value seen when created.
pub struct CasHandle {
    label: Arc<str>,
    key: String,
    current: Option<Vec<u8>>,
}

/// The view of a store's data the key-value bindings work with.
pub struct KvView<'a> {
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
    /// The key-value context.
    pub ctx: &'a KvCtx,
}

impl KvView<'_> {
    /// Opens the store `label`, if the component may, as a handle in the
    /// instance's table (`wasi:keyvalue`'s `open`, both of its bindings).
    fn open_store(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, OpenDenied>> {
        if let Err(denied) = self.ctx.access.check(&label) {
            return Ok(Err(denied));
        }
        let handle = StoreHandle {
            label: label.into(),
        };
        Ok(Ok(self.table.push(handle)?))
    }
}

/// [`HasData`] marker for the key-value bindings.
pub struct Kv;

impl HasData for Kv {
    type Data<'a> = KvView<'a>;
}

/// Runs a backend write off the async executor threads (commits may fsync,
/// a network backend waits for its server).
pub async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, KvError> + Send + 'static,
) -> Result<R, KvError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KvError::Backend(e.to_string()))?
}

/// Runs a backend read of `label`: in place when the backend answers it
/// locally ([`KvBackend::reads_inline`]), else like [`blocking`].
async fn read<R: Send + 'static>(
    backend: Arc<dyn KvBackend>,
    label: Arc<str>,
    f: impl FnOnce(&dyn KvBackend, &str) -> Result<R, KvError> + Send + 'static,
) -> Result<R, KvError> {
    if backend.reads_inline(&label) {
        f(&*backend, &label)
    } else {
        blocking(move || f(&*backend, &label)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rules() {
        let set = |labels: &[&str]| Arc::new(labels.iter().map(|s| s.to_string()).collect());
        let access = KvAccess::new(set(&["default"]), set(&["default", "other"]));
        assert_eq!(access.check("default"), Ok(()));
        assert_eq!(access.check("other"), Err(OpenDenied::AccessDenied));
        assert_eq!(access.check("nope"), Err(OpenDenied::NoSuchStore));
    }
}
