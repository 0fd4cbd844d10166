//! Checks that every backend's tests make.

use super::KvBackend;

/// Checks that `compare_and_swap` of key `k` in store `default`, which
/// must not exist yet, creates it, then swaps only from the value it
/// expects, the last time to `replacement`.
pub fn compare_and_swap_expects(store: &dyn KvBackend, replacement: &[u8]) {
    assert!(store.compare_and_swap("default", "k", None, b"1").unwrap());
    assert!(!store.compare_and_swap("default", "k", None, b"2").unwrap());
    assert!(
        !store
            .compare_and_swap("default", "k", Some(b"0"), b"2")
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap("default", "k", Some(b"1"), replacement)
            .unwrap()
    );
}
