//! What the admin API needs from a key-value store: the policy components'
//! [`Store`], and listing keys.

pub use upshift_model::store::{Store, StoreError};

/// The key-value operations the admin API is built on: config versions,
/// rollout state and its audit trail, counters, and listing them.
///
/// Why two traits: [`Store`] is the contract every policy component
/// decides on per request (get, set, compare-and-swap, counters); it has
/// no listing, which no request path needs. The admin API alone walks key
/// ranges (config versions, audit trails, metrics), so it asks for this
/// extension; anything that is a `ConfigStore` is also a `Store` and
/// shares its key layout.
pub trait ConfigStore: Store {
    /// Every key that starts with `prefix`, in order.
    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

#[cfg(test)]
impl ConfigStore for upshift_model::store::MemoryStore {
    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(upshift_model::store::MemoryStore::keys(self, prefix))
    }
}
