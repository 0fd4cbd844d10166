//! What the admin API needs from a key-value store.

/// A failed store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct StoreError(pub String);

/// The key-value operations config versioning is built on.
pub trait ConfigStore {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes `value` at `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
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
