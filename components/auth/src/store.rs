//! What rate limiting needs from the key-value store, and an in-memory
//! store for tests and benchmarks.

use std::collections::HashMap;
use std::sync::Mutex;

/// A failed store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct StoreError(pub String);

/// The key-value operations rate limiting is built on.
pub trait Store {
    /// The values at `keys`, in the same order.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
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

/// A store in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Vec<u8>>>,
    /// When set, every operation fails (to test failing open).
    broken: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose every operation fails.
    pub fn broken() -> Self {
        MemoryStore {
            broken: true,
            ..Self::default()
        }
    }

    /// Keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let Ok(entries) = self.lock() else {
            return Vec::new();
        };
        let mut keys: Vec<String> = entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>>, StoreError> {
        if self.broken {
            return Err(StoreError("unavailable".into()));
        }
        Ok(self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Store for MemoryStore {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let entries = self.lock()?;
        Ok(keys.iter().map(|k| entries.get(k).cloned()).collect())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut entries = self.lock()?;
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
        let mut entries = self.lock()?;
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
        assert!(!store.compare_and_swap("k", Some(b"x"), b"y").unwrap());
        assert!(store.compare_and_swap("k", None, b"y").unwrap());
        assert_eq!(
            store.get_many(&["k".into(), "none".into()]).unwrap(),
            [Some(b"y".to_vec()), None]
        );
        assert_eq!(store.keys(""), ["k", "n"]);
        assert!(MemoryStore::broken().increment("n", 1).is_err());
    }
}
