//! What the tests of calls share: an in-memory store and header lookup.

use std::cell::RefCell;
use std::collections::BTreeMap;

use upshift_ai::Store;

/// A store in memory, its counters readable as numbers.
#[derive(Default)]
pub struct Memory(pub RefCell<BTreeMap<String, Vec<u8>>>);

impl Store for Memory {
    fn add(&self, key: &str, delta: u64) {
        let now = self.get(key) + delta;
        self.0
            .borrow_mut()
            .insert(key.to_owned(), now.to_string().into_bytes());
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8]) {
        self.0.borrow_mut().insert(key.to_owned(), value.to_vec());
    }

    fn delete(&self, key: &str) {
        self.0.borrow_mut().remove(key);
    }
}

impl Memory {
    /// The counter `key`.
    pub fn get(&self, key: &str) -> u64 {
        Store::get(self, key).map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap())
    }
}

/// The value of header `name`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}
