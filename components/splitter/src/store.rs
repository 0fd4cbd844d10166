//! What the splitter needs from the key-value store, and an in-memory
//! store for tests and benchmarks.
//!
//! Every piece of live state (rollout state, ejected targets, counters)
//! goes through this trait, so that every node sharing the store decides
//! alike. Counters are decimal text, as the stores' atomic increment
//! writes them.

use std::collections::HashMap;
use std::sync::Mutex;

/// A failed store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct StoreError(pub String);

/// The key-value operations the splitter is built on.
pub trait Store {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The values at `keys`, in the same order.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Writes `value` at `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key` (absent keys are fine).
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Atomically adds `delta` to the counter at `key` (absent: 0) and
    /// returns the new value.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Writes `value` at `key` only if the key still holds `expected`
    /// (`None`: absent). Returns whether it wrote.
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError>;
}

/// The value of a counter, 0 when absent, unreadable or negative.
pub(crate) fn counter(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map_or(0, |n| n.max(0).unsigned_abs())
}

/// A store in process memory, shared by whoever holds a reference.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .lock()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let entries = self.lock();
        Ok(keys.iter().map(|k| entries.get(k).cloned()).collect())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut entries = self.lock();
        let current = match entries.get(key) {
            None => 0,
            Some(value) => std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| StoreError(format!("{key} does not hold an integer")))?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| StoreError(format!("{key} overflows")))?;
        entries.insert(key.to_owned(), next.to_string().into_bytes());
        Ok(next)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let mut entries = self.lock();
        if entries.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        entries.insert(key.to_owned(), value.to_vec());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_compare_and_swap() {
        let store = MemoryStore::new();
        assert_eq!(store.increment("n", 2).unwrap(), 2);
        assert_eq!(store.increment("n", -5).unwrap(), -3);
        assert_eq!(counter(store.get("n").unwrap().as_deref()), 0);
        store.set("t", b"text").unwrap();
        assert!(store.increment("t", 1).is_err());
        assert!(!store.compare_and_swap("k", Some(b"x"), b"y").unwrap());
        assert!(store.compare_and_swap("k", None, b"y").unwrap());
        assert!(store.compare_and_swap("k", Some(b"y"), b"z").unwrap());
        assert_eq!(
            store.get_many(&["k".into(), "none".into()]).unwrap(),
            [Some(b"z".to_vec()), None]
        );
        store.delete("k").unwrap();
        assert_eq!(store.keys(""), ["n", "t"]);
    }
}
