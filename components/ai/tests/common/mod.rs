//! What the tests of calls share: counter reads from the in-memory store,
//! and header lookup.

pub use upshift_model::store::MemoryStore;
use upshift_model::store::{Store, counter};

/// Reads counters back from a [`MemoryStore`].
pub trait Counters {
    /// The counter `key` (0 when absent); a failed read fails the test.
    fn counter(&self, key: &str) -> u64;
}

impl Counters for MemoryStore {
    fn counter(&self, key: &str) -> u64 {
        counter(self.get(key).unwrap().as_deref())
    }
}

/// The value of header `name`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}
