//! Which backend serves which store label.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::{KvBackend, KvError, RedbStore, RedisStore};
use crate::runtime_config::{RuntimeConfig, StoreConfig};

/// Store labels on their backends; labels not listed use the default one.
struct Stores {
    default: Arc<dyn KvBackend>,
    by_label: HashMap<String, Arc<dyn KvBackend>>,
}

impl Stores {
    fn backend(&self, store: &str) -> &dyn KvBackend {
        match self.by_label.get(store) {
            Some(backend) => &**backend,
            None => &*self.default,
        }
    }
}

impl KvBackend for Stores {
    fn reads_inline(&self, store: &str) -> bool {
        self.backend(store).reads_inline(store)
    }

    fn increments_inline(&self, store: &str) -> bool {
        self.backend(store).increments_inline(store)
    }

    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.backend(store).get(store, key)
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.backend(store).set(store, key, value)
    }

    fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        self.backend(store).delete(store, key)
    }

    fn exists(&self, store: &str, key: &str) -> Result<bool, KvError> {
        self.backend(store).exists(store, key)
    }

    fn keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        self.backend(store).keys(store)
    }

    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        self.backend(store).increment(store, key, delta)
    }

    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError> {
        self.backend(store)
            .compare_and_swap(store, key, expected, value)
    }

    fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        self.backend(store).get_many(store, keys)
    }

    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.backend(store).set_many(store, entries)
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), KvError> {
        self.backend(store).delete_many(store, keys)
    }
}

/// Opens the backends of every store: the embedded database at
/// `default_path` for labels `config` does not list, and what it says for
/// the others. Labels on the same Redis URL or file share one backend.
/// Redis is connected to now, but only to warn if it is not reachable yet:
/// requests fail with a key-value error until it is.
pub fn open_stores(
    config: &RuntimeConfig,
    default_path: &Path,
) -> anyhow::Result<Arc<dyn KvBackend>> {
    let default: Arc<dyn KvBackend> =
        Arc::new(RedbStore::open(default_path).with_context(|| {
            format!(
                "cannot open the key-value database {}",
                default_path.display()
            )
        })?);
    if config.key_value_stores.is_empty() {
        return Ok(default);
    }
    let default_path = absolute(default_path);
    let mut redis: HashMap<&str, Arc<dyn KvBackend>> = HashMap::new();
    let mut files: HashMap<PathBuf, Arc<dyn KvBackend>> = HashMap::new();
    let mut by_label = HashMap::new();
    for (label, store) in &config.key_value_stores {
        let backend = match store {
            StoreConfig::Redis { url } => match redis.get(url.as_str()) {
                Some(backend) => backend.clone(),
                None => {
                    let store = RedisStore::open(url)
                        .with_context(|| format!("key-value store `{label}`: invalid Redis URL"))?;
                    tracing::info!(store = %label, redis = %store.name(), "key-value store on Redis");
                    if let Err(error) = store.ping() {
                        tracing::warn!(
                            store = %label,
                            "{error}; requests using this store fail until it is reachable"
                        );
                    }
                    let backend: Arc<dyn KvBackend> = Arc::new(store);
                    redis.insert(url, backend.clone());
                    backend
                }
            },
            StoreConfig::Embedded { path: None } => default.clone(),
            StoreConfig::Embedded { path: Some(path) } => {
                let path = absolute(path);
                if path == default_path {
                    default.clone()
                } else if let Some(backend) = files.get(&path) {
                    backend.clone()
                } else {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).with_context(|| {
                            format!("cannot create directory {}", parent.display())
                        })?;
                    }
                    let backend: Arc<dyn KvBackend> =
                        Arc::new(RedbStore::open(&path).with_context(|| {
                            format!("key-value store `{label}`: cannot open {}", path.display())
                        })?);
                    tracing::info!(store = %label, path = %path.display(), "key-value store embedded");
                    files.insert(path, backend.clone());
                    backend
                }
            }
        };
        by_label.insert(label.clone(), backend);
    }
    Ok(Arc::new(Stores { default, by_label }))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn labels_go_to_their_backends() {
        let dir = tempfile::tempdir().unwrap();
        let default_path = dir.path().join("kv.redb");
        let config = RuntimeConfig {
            key_value_stores: BTreeMap::from([
                (
                    "cache".to_owned(),
                    StoreConfig::Embedded {
                        path: Some(dir.path().join("sub/cache.redb")),
                    },
                ),
                (
                    "also-cache".to_owned(),
                    StoreConfig::Embedded {
                        path: Some(dir.path().join("sub/cache.redb")),
                    },
                ),
                ("local".to_owned(), StoreConfig::Embedded { path: None }),
            ]),
            ..RuntimeConfig::default()
        };
        {
            let stores = open_stores(&config, &default_path).unwrap();
            for label in ["default", "cache", "also-cache", "local"] {
                stores.set(label, "who", label.as_bytes()).unwrap();
                assert!(stores.reads_inline(label));
            }
            assert_eq!(stores.get("default", "who").unwrap().unwrap(), b"default");
            assert_eq!(stores.get("local", "who").unwrap().unwrap(), b"local");
            assert_eq!(stores.get("cache", "who").unwrap().unwrap(), b"cache");
            assert_eq!(
                stores.get("also-cache", "who").unwrap().unwrap(),
                b"also-cache"
            );
        }
        assert!(dir.path().join("sub/cache.redb").exists());
        // Unlisted labels and `type = "spin"` without a path share the default file.
        let default = RedbStore::open(&default_path).unwrap();
        assert_eq!(default.get("local", "who").unwrap().unwrap(), b"local");
        assert_eq!(default.get("cache", "who").unwrap(), None);
    }

    #[test]
    fn redis_stores_are_not_read_inline() {
        let dir = tempfile::tempdir().unwrap();
        let config = RuntimeConfig {
            key_value_stores: BTreeMap::from([(
                "default".to_owned(),
                StoreConfig::Redis {
                    // Nothing listens there: opening still works.
                    url: format!("unix://{}", dir.path().join("none.sock").display()),
                },
            )]),
            ..RuntimeConfig::default()
        };
        let stores = open_stores(&config, &dir.path().join("kv.redb")).unwrap();
        assert!(!stores.reads_inline("default"));
        assert!(stores.reads_inline("other"));
        let error = stores.get("default", "k").unwrap_err().to_string();
        assert!(error.contains("unreachable"), "{error}");
    }
}
