//! What the tests of calls share: an in-memory store and header lookup.

use upshift_ai::Store;
use upshift_config::store::{MemoryStore, Store as _, counter};

/// The AI's store over a [`MemoryStore`], which keeps counters in its own
/// encoding and refuses to set one: any failed operation fails the test.
#[derive(Default)]
pub struct Memory(pub MemoryStore);

impl Store for Memory {
    fn add(&self, key: &str, delta: u64) {
        self.0
            .increment(key, i64::try_from(delta).unwrap())
            .unwrap();
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.get(key).unwrap()
    }

    fn set(&self, key: &str, value: &[u8]) {
        self.0.set(key, value).unwrap();
    }

    fn delete(&self, key: &str) {
        self.0.delete(key).unwrap();
    }
}

impl Memory {
    /// The counter `key`.
    pub fn get(&self, key: &str) -> u64 {
        counter(Store::get(self, key).as_deref())
    }
}

/// The value of header `name`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}
