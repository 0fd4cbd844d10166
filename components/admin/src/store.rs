//! What the admin API needs from a key-value store.

/// A failed store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct StoreError(pub String);

/// The key-value operations the admin API is built on: config versions,
/// rollout state and its audit trail, counters.
pub trait ConfigStore {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The values at `keys`, in order.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Writes `value` at `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key that starts with `prefix`, in order.
    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Atomically adds `delta` to the counter at `key` and returns the new value.
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

/// An in-process store with the host's semantics, for unit tests.
#[cfg(test)]
pub mod memory {
    use super::{ConfigStore, StoreError};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Keys and values in a map.
    #[derive(Default)]
    pub struct MemoryStore(pub RefCell<BTreeMap<String, Vec<u8>>>);

    impl ConfigStore for MemoryStore {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.0.borrow().get(key).cloned())
        }
        fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
            keys.iter().map(|k| self.get(k)).collect()
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.0.borrow_mut().insert(key.into(), value.into());
            Ok(())
        }
        fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.0.borrow_mut().remove(key);
            Ok(())
        }
        fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            Ok(self
                .0
                .borrow()
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
            let mut map = self.0.borrow_mut();
            let n = map
                .get(key)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
                .unwrap_or(0)
                + delta;
            map.insert(key.into(), n.to_string().into_bytes());
            Ok(n)
        }
        fn compare_and_swap(
            &self,
            key: &str,
            expected: Option<&[u8]>,
            value: &[u8],
        ) -> Result<bool, StoreError> {
            let mut map = self.0.borrow_mut();
            if map.get(key).map(Vec::as_slice) != expected {
                return Ok(false);
            }
            map.insert(key.into(), value.into());
            Ok(true)
        }
    }
}
