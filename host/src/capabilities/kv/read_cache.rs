//! Values of the embedded store kept in memory once read, so that the keys
//! every request reads (a service's rollout state and ejected targets, a
//! rate limit's previous window) cost a map lookup rather than a read
//! transaction. Only the process that has the database open writes it, and
//! every write updates the cache under the same lock that orders reads, so
//! the cache is exact. Counters are not cached: their pending values are the
//! truth until they are written.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Keys cached per store before the store's cache starts afresh.
const MAX_KEYS: usize = 16 * 1024;

/// Values larger than this (config documents) are read from the database.
const MAX_VALUE: usize = 16 * 1024;

/// Known values of one store (`None`: known to be absent), by key.
type Known = HashMap<String, Option<Box<[u8]>>>;

/// Known values, by store and key.
#[derive(Default)]
pub struct ReadCache(Mutex<HashMap<String, Known>>);

/// A change to the cache, applied once the write that makes it committed.
pub type Written = Vec<(String, Option<Vec<u8>>)>;

impl ReadCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Known>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What is known of `key`: `Some(None)` when it is known to be absent,
    /// `None` when nothing is known.
    pub fn get(&self, store: &str, key: &str) -> Option<Option<Vec<u8>>> {
        self.lock()
            .get(store)?
            .get(key)
            .map(|value| value.as_deref().map(<[u8]>::to_vec))
    }

    /// Remembers what the database holds at `key`.
    pub fn put(&self, store: &str, key: &str, value: Option<&[u8]>) {
        if value.is_some_and(|v| v.len() > MAX_VALUE) {
            self.forget(store, key);
            return;
        }
        let mut cache = self.lock();
        let values = match cache.get_mut(store) {
            Some(values) => values,
            None => cache.entry(store.to_owned()).or_default(),
        };
        if values.len() >= MAX_KEYS && !values.contains_key(key) {
            values.clear();
        }
        values.insert(key.to_owned(), value.map(Box::from));
    }

    /// Forgets `key`: a counter took it over, or a write failed.
    pub fn forget(&self, store: &str, key: &str) {
        if let Some(values) = self.lock().get_mut(store) {
            values.remove(key);
        }
    }

    /// Applies the changes a committed write made to `store`.
    pub fn apply(&self, store: &str, written: Written) {
        for (key, value) in written {
            self.put(store, &key, value.as_deref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_values_absence_and_forgets() {
        let cache = ReadCache::default();
        assert_eq!(cache.get("s", "k"), None);
        cache.put("s", "k", None);
        assert_eq!(cache.get("s", "k"), Some(None));
        cache.put("s", "k", Some(b"v"));
        assert_eq!(cache.get("s", "k"), Some(Some(b"v".to_vec())));
        assert_eq!(cache.get("other", "k"), None);
        cache.forget("s", "k");
        assert_eq!(cache.get("s", "k"), None);
    }

    #[test]
    fn large_values_are_not_kept_and_the_cache_stays_bounded() {
        let cache = ReadCache::default();
        cache.put("s", "doc", Some(&vec![0; MAX_VALUE + 1]));
        assert_eq!(cache.get("s", "doc"), None);
        for i in 0..=MAX_KEYS {
            cache.put("s", &format!("k{i}"), None);
        }
        assert!(cache.lock()["s"].len() <= MAX_KEYS);
    }
}
