//! The key-value contract the policy components keep their live state in
//! (rate-limit windows, rollout state, ejected targets, counters), and an
//! in-memory store for tests and benchmarks.
//!
//! Every piece of live state goes through [`Store`], so that every node
//! sharing the store decides alike. In a component, [`keyvalue_store!`]
//! implements the trait over `wasi:keyvalue`.
//!
//! # Counters
//!
//! A counter is written only by [`Store::increment`], whose encoding is the
//! backend's: Spin's embedded (SQLite) store and the `upshift` host's
//! embedded store keep an 8-byte little-endian `i64`, Spin's Redis store and
//! the host's keep decimal text (`INCRBY`). A component cannot tell which
//! backend it runs on, so:
//!
//! - a key that is incremented is never written with [`Store::set`] or
//!   [`Store::compare_and_swap`] (deleting it is fine): a value in the other
//!   encoding makes the next increment fail, and Spin's embedded store
//!   panics on it;
//! - a counter is read with [`decode_counter`] (or [`counter`]), which
//!   accepts both encodings.
//!
//! [`MemoryStore`] keeps counters in either encoding
//! ([`CounterEncoding`]) and refuses to `set` or compare-and-swap a
//! counter, so unit tests catch a breach of these rules;
//! [`for_each_encoding`] runs a test on both encodings.
//!
//! [`keyvalue_store!`]: crate::keyvalue_store

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A failed store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct StoreError(pub String);

/// The key-value operations the policy components are built on.
pub trait Store {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The values at `keys`, in the same order.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Writes `value` at `key`. Never a counter's key (see the
    /// [module docs](self)).
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key` (absent keys are fine).
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Atomically adds `delta` to the counter at `key` (absent: 0) and
    /// returns the new value. The stored bytes are in the backend's
    /// encoding: read them with [`decode_counter`].
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Writes `value` at `key` only if the key still holds `expected`
    /// (`None`: absent). Returns whether it wrote. Never a counter's key.
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError>;
}

/// The value of a counter as any backend's increment stores it.
///
/// Bytes that are ASCII digits with an optional leading `-`, once ASCII
/// whitespace is trimmed from both ends, are decimal text (Redis); else
/// exactly 8 bytes are a little-endian `i64` (Spin's and the host's
/// embedded stores). Anything else is `None`.
///
/// The one ambiguity: a little-endian value whose 8 bytes all pass for
/// decimal text reads as that text. Its most significant byte is then a
/// digit or whitespace, at least `0x09`, so the value is at least
/// `0x09 << 56` (about 6.5e17; at least `0x3030_3030_3030_3030`, about
/// 3.5e18, without whitespace), which no counter reaches.
pub fn decode_counter(bytes: &[u8]) -> Option<i64> {
    let text = bytes.trim_ascii();
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        // ASCII, so UTF-8; too many digits for an i64 is unreadable.
        return std::str::from_utf8(text).ok()?.parse().ok();
    }
    Some(i64::from_le_bytes(bytes.try_into().ok()?))
}

/// The value of a counter, 0 when absent, unreadable or negative.
pub fn counter(value: Option<&[u8]>) -> u64 {
    value
        .and_then(decode_counter)
        .map_or(0, |n| n.max(0).unsigned_abs())
}

/// How a store's increment encodes counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CounterEncoding {
    /// An 8-byte little-endian `i64`: Spin's default (embedded SQLite)
    /// store and the `upshift` host's embedded store.
    #[default]
    LittleEndian,
    /// Decimal text, as Redis `INCRBY` writes it: Spin's Redis store and
    /// the host's.
    Decimal,
}

impl CounterEncoding {
    /// Every encoding, for tests that must pass on each.
    pub const ALL: [CounterEncoding; 2] = [CounterEncoding::LittleEndian, CounterEncoding::Decimal];

    /// The bytes a counter holding `value` is stored as.
    pub fn encode(self, value: i64) -> Vec<u8> {
        match self {
            CounterEncoding::LittleEndian => value.to_le_bytes().to_vec(),
            CounterEncoding::Decimal => value.to_string().into_bytes(),
        }
    }

    /// The counter `bytes` hold, read as strictly as the backend does
    /// before it increments.
    fn decode(self, bytes: &[u8]) -> Option<i64> {
        match self {
            CounterEncoding::LittleEndian => bytes.try_into().ok().map(i64::from_le_bytes),
            CounterEncoding::Decimal => std::str::from_utf8(bytes).ok()?.parse().ok(),
        }
    }
}

/// A store in process memory, shared by whoever holds a reference.
///
/// Counters are kept in its [`CounterEncoding`]. A key once incremented
/// (or filled with [`MemoryStore::fill_counter`]) stays a counter, deleted
/// or not: [`Store::set`] and [`Store::compare_and_swap`] of it fail.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<Entries>,
    encoding: CounterEncoding,
    /// When set, every operation fails (to test failing open).
    broken: bool,
}

#[derive(Debug, Default)]
struct Entries {
    values: HashMap<String, Vec<u8>>,
    /// Keys ever incremented.
    counters: HashSet<String>,
}

impl Entries {
    /// Fails when `key` is a counter: a write would be in the wrong encoding
    /// on some backend.
    fn writable(&self, key: &str) -> Result<(), StoreError> {
        if self.counters.contains(key) {
            return Err(StoreError(format!(
                "{key} is a counter: counters are only incremented, never set or swapped"
            )));
        }
        Ok(())
    }
}

impl MemoryStore {
    /// An empty store keeping counters as 8-byte little-endian integers,
    /// as Spin's default store does.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping counters in `encoding`.
    pub fn with_encoding(encoding: CounterEncoding) -> Self {
        MemoryStore {
            encoding,
            ..Self::default()
        }
    }

    /// A store whose every operation fails.
    pub fn broken() -> Self {
        MemoryStore {
            broken: true,
            ..Self::default()
        }
    }

    /// How this store encodes counters.
    pub fn encoding(&self) -> CounterEncoding {
        self.encoding
    }

    /// Stores `value` at `key` as a counter, in the store's encoding, as if
    /// an earlier run had counted it (even when broken).
    pub fn fill_counter(&self, key: &str, value: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .values
            .insert(key.to_owned(), self.encoding.encode(value));
        entries.counters.insert(key.to_owned());
    }

    /// Keys starting with `prefix`, sorted (none when broken).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let Ok(entries) = self.lock() else {
            return Vec::new();
        };
        let mut keys: Vec<String> = entries
            .values
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Entries>, StoreError> {
        if self.broken {
            return Err(StoreError("unavailable".into()));
        }
        Ok(self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock()?.values.get(key).cloned())
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let entries = self.lock()?;
        Ok(keys
            .iter()
            .map(|k| entries.values.get(k).cloned())
            .collect())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut entries = self.lock()?;
        entries.writable(key)?;
        entries.values.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock()?.values.remove(key);
        Ok(())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut entries = self.lock()?;
        let current = match entries.values.get(key) {
            None => 0,
            Some(value) => self.encoding.decode(value).ok_or_else(|| {
                StoreError(format!(
                    "{key} does not hold a counter in {:?} encoding",
                    self.encoding
                ))
            })?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| StoreError(format!("{key} overflows")))?;
        entries
            .values
            .insert(key.to_owned(), self.encoding.encode(next));
        entries.counters.insert(key.to_owned());
        Ok(next)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let mut entries = self.lock()?;
        entries.writable(key)?;
        if entries.values.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        entries.values.insert(key.to_owned(), value.to_vec());
        Ok(true)
    }
}

/// Runs `test` on an empty [`MemoryStore`] of each [`CounterEncoding`] in
/// turn: whatever counts must work on every backend.
pub fn for_each_encoding(mut test: impl FnMut(MemoryStore)) {
    for encoding in CounterEncoding::ALL {
        // Shown with the output of a failing test.
        println!("counters encoded {encoding:?}");
        test(MemoryStore::with_encoding(encoding));
    }
}

/// Expands, inside a component's binding module, `KeyValue`: bucket
/// `$bucket` of `wasi:keyvalue` as a [`Store`], and `bucket()`, which opens
/// it once per instance (again after a failed open). The generated modules
/// `wasi::keyvalue::{store, atomics, batch}` must be in scope.
#[macro_export]
macro_rules! keyvalue_store {
    ($bucket:expr) => {
        thread_local! {
            static OPENED: ::std::cell::RefCell<Option<::std::rc::Rc<KeyValue>>> =
                const { ::std::cell::RefCell::new(None) };
        }

        fn bucket() -> Result<::std::rc::Rc<KeyValue>, $crate::store::StoreError> {
            OPENED.with(|opened| {
                if let Some(bucket) = &*opened.borrow() {
                    return Ok(bucket.clone());
                }
                let bucket = ::std::rc::Rc::new(KeyValue(
                    wasi::keyvalue::store::open($bucket).map_err(failed)?,
                ));
                *opened.borrow_mut() = Some(bucket.clone());
                Ok(bucket)
            })
        }

        /// `wasi:keyvalue` as a [`Store`](upshift_model::store::Store).
        struct KeyValue(wasi::keyvalue::store::Bucket);

        fn failed(e: wasi::keyvalue::store::Error) -> $crate::store::StoreError {
            $crate::store::StoreError(format!("{e:?}"))
        }

        impl $crate::store::Store for KeyValue {
            fn get(&self, key: &str) -> Result<Option<Vec<u8>>, $crate::store::StoreError> {
                self.0.get(key).map_err(failed)
            }

            fn get_many(
                &self,
                keys: &[String],
            ) -> Result<Vec<Option<Vec<u8>>>, $crate::store::StoreError> {
                if let [key] = keys {
                    return Ok(vec![self.0.get(key).map_err(failed)?]);
                }
                let mut found = wasi::keyvalue::batch::get_many(&self.0, keys).map_err(failed)?;
                // Answers may come in any order; match them to the keys asked for.
                Ok(keys
                    .iter()
                    .enumerate()
                    .map(|(i, key)| match found.get_mut(i) {
                        Some((k, value)) if k == key => value.take(),
                        _ => found
                            .iter_mut()
                            .find(|(k, _)| k == key)
                            .and_then(|(_, value)| value.take()),
                    })
                    .collect())
            }

            fn set(&self, key: &str, value: &[u8]) -> Result<(), $crate::store::StoreError> {
                self.0.set(key, value).map_err(failed)
            }

            fn delete(&self, key: &str) -> Result<(), $crate::store::StoreError> {
                self.0.delete(key).map_err(failed)
            }

            fn increment(&self, key: &str, delta: i64) -> Result<i64, $crate::store::StoreError> {
                wasi::keyvalue::atomics::increment(&self.0, key, delta).map_err(failed)
            }

            fn compare_and_swap(
                &self,
                key: &str,
                expected: Option<&[u8]>,
                value: &[u8],
            ) -> Result<bool, $crate::store::StoreError> {
                use wasi::keyvalue::atomics;
                let cas = atomics::Cas::new(&self.0, key).map_err(failed)?;
                if cas.current().map_err(failed)?.as_deref() != expected {
                    return Ok(false);
                }
                match atomics::swap(cas, value) {
                    Ok(()) => Ok(true),
                    Err(atomics::CasError::CasFailed(_)) => Ok(false),
                    Err(atomics::CasError::StoreError(e)) => Err(failed(e)),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_decode_in_either_encoding() {
        for n in [0, 1, 42, -3, 1 << 40, i64::MAX, i64::MIN] {
            for encoding in CounterEncoding::ALL {
                assert_eq!(
                    decode_counter(&encoding.encode(n)),
                    Some(n),
                    "{encoding:?} {n}"
                );
            }
        }
        assert_eq!(decode_counter(b" 17\n"), Some(17));
        assert_eq!(
            decode_counter(b"12345678"),
            Some(12_345_678),
            "decimal first"
        );
        for unreadable in [
            &b""[..],
            b"-",
            b"1.5",
            b"text",
            b"\x01\x00",
            b"99999999999999999999",
        ] {
            assert_eq!(decode_counter(unreadable), None, "{unreadable:?}");
        }
        assert_eq!(counter(Some(&CounterEncoding::LittleEndian.encode(-4))), 0);
        assert_eq!(counter(Some(b"9")), 9);
        assert_eq!(counter(None), 0);
    }

    #[test]
    fn counters_and_compare_and_swap() {
        for_each_encoding(|store| {
            assert_eq!(store.increment("n", 2).unwrap(), 2);
            assert_eq!(store.increment("n", -5).unwrap(), -3);
            assert_eq!(store.get("n").unwrap(), Some(store.encoding().encode(-3)));
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
        });
    }

    #[test]
    fn counters_are_never_set_or_swapped() {
        for_each_encoding(|store| {
            store.fill_counter("filled", 40);
            assert_eq!(store.increment("filled", 2).unwrap(), 42);
            store.increment("counted", 1).unwrap();
            for key in ["filled", "counted"] {
                let set = store.set(key, b"0").unwrap_err();
                assert!(
                    set.0.contains(key) && set.0.contains("only incremented"),
                    "{set}"
                );
                let held = store.get(key).unwrap();
                assert!(store.compare_and_swap(key, held.as_deref(), b"0").is_err());
            }
            // Deleting is fine, and the key stays a counter.
            store.delete("counted").unwrap();
            assert_eq!(store.get("counted").unwrap(), None);
            assert!(store.set("counted", b"0").is_err());
            assert_eq!(store.increment("counted", 1).unwrap(), 1);
        });
    }

    #[test]
    fn increments_read_only_their_own_encoding() {
        let little = MemoryStore::new();
        assert_eq!(little.encoding(), CounterEncoding::LittleEndian);
        little.set("n", b"5").unwrap();
        let error = little.increment("n", 1).unwrap_err();
        assert!(error.0.contains("n does not hold a counter"), "{error}");
        little.set("m", &7_i64.to_le_bytes()).unwrap();
        assert_eq!(little.increment("m", 1).unwrap(), 8);

        let decimal = MemoryStore::with_encoding(CounterEncoding::Decimal);
        decimal.set("n", &5_i64.to_le_bytes()).unwrap();
        assert!(decimal.increment("n", 1).is_err());
        decimal.set("m", b"7").unwrap();
        assert_eq!(decimal.increment("m", 1).unwrap(), 8);
        assert_eq!(decimal.get("m").unwrap().as_deref(), Some(&b"8"[..]));
    }

    #[test]
    fn a_broken_store_fails_every_operation() {
        let broken = MemoryStore::broken();
        assert!(broken.increment("n", 1).is_err());
        assert!(broken.get("n").is_err());
        assert!(broken.set("n", b"1").is_err());
        assert!(broken.keys("").is_empty());
    }
}
