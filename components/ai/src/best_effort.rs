//! The key-value store as a call uses it: usage counters, budgets and
//! cached answers are worth keeping, never worth failing a request for.

use upshift_model::store::{self, Store};

/// A [`Store`] whose failures lose a count or a cached answer, never the
/// response: each is reported on stderr (the host's log) and swallowed.
#[derive(Clone, Copy)]
pub(crate) struct BestEffort<'a>(pub &'a dyn Store);

impl BestEffort<'_> {
    /// Adds `delta` to the counter `key`, in the backend's encoding.
    pub fn add(&self, key: &str, delta: u64) {
        let delta = i64::try_from(delta).unwrap_or(i64::MAX);
        if let Err(error) = self.0.increment(key, delta) {
            eprintln!("ai: counter {key} not counted: {error}");
        }
    }

    /// The value of `key`, if any (none when it cannot be read).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.0.get(key) {
            Ok(value) => value,
            Err(error) => {
                eprintln!("ai: {key} not read: {error}");
                None
            }
        }
    }

    /// The number the counter `key` holds, in either encoding (see
    /// [`upshift_model::store`]); 0 when absent or unreadable.
    pub fn counter(&self, key: &str) -> u64 {
        store::counter(self.get(key).as_deref())
    }

    /// Sets `key` to `value`. Never a counter's key.
    pub fn set(&self, key: &str, value: &[u8]) {
        if let Err(error) = self.0.set(key, value) {
            eprintln!("ai: {key} not written: {error}");
        }
    }

    /// Removes `key`.
    pub fn delete(&self, key: &str) {
        if let Err(error) = self.0.delete(key) {
            eprintln!("ai: {key} not deleted: {error}");
        }
    }
}
