//! Tests of the embedded store.

use super::*;
use crate::capabilities::kv::testing::compare_and_swap_expects;
use std::sync::Arc;

fn open(dir: &tempfile::TempDir) -> RedbStore {
    RedbStore::open(&dir.path().join("kv.redb")).unwrap()
}

/// A counter as this store keeps it.
fn le(n: i64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

#[test]
fn values_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        assert_eq!(store.get("default", "k").unwrap(), None);
        store.set("default", "k", b"v").unwrap();
        store.set("other", "k", b"w").unwrap();
        store.set("default", "gone", b"x").unwrap();
        store.delete("default", "gone").unwrap();
        store.delete("default", "never").unwrap();
    }
    let store = open(&dir);
    assert_eq!(
        store.get("default", "k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(store.get("other", "k").unwrap().as_deref(), Some(&b"w"[..]));
    assert!(!store.exists("default", "gone").unwrap());
    assert_eq!(store.keys("default").unwrap(), ["k"]);
    assert!(store.keys("empty").unwrap().is_empty());
}

#[test]
fn increments_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    store.increment("default", "n", 2).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.increment("default", "n", -1).unwrap(), 199);
    assert_eq!(store.get("default", "n").unwrap(), Some(le(199)));
    store.set("default", "text", b"abc").unwrap();
    assert!(matches!(
        store.increment("default", "text", 1),
        Err(KvError::NotAnInteger(_))
    ));
}

#[test]
fn compare_and_swap_detects_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    compare_and_swap_expects(&store, b"2");
    assert_eq!(
        store.get("default", "k").unwrap().as_deref(),
        Some(&b"2"[..])
    );
}

#[test]
fn counters_are_seen_before_and_after_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        store.set("default", "n", &le(40)).unwrap();
        assert_eq!(store.increment("default", "n", 1).unwrap(), 41);
        assert_eq!(store.increment("default", "m", 5).unwrap(), 5);
        assert_eq!(store.get("default", "n").unwrap(), Some(le(41)));
        assert!(store.exists("default", "m").unwrap());
        assert_eq!(store.keys("default").unwrap(), ["m", "n"]);
        assert_eq!(
            store
                .get_many("default", &["m".into(), "x".into(), "n".into()])
                .unwrap(),
            [Some(le(5)), None, Some(le(41))]
        );
        assert_eq!(store.get_many("empty", &["c".into()]).unwrap(), [None]);
        assert_eq!(store.increment("empty", "c", 2).unwrap(), 2);
        assert_eq!(
            store.get_many("empty", &["c".into()]).unwrap(),
            [Some(le(2))]
        );
        flush(&store.db, &store.counters).unwrap();
        assert!(store.counters.lock().is_empty());
        assert_eq!(store.increment("default", "n", 1).unwrap(), 42);
    }
    // Dropping the store writes what is still pending.
    let store = open(&dir);
    assert_eq!(store.get("default", "n").unwrap(), Some(le(42)));
    assert_eq!(store.get("empty", "c").unwrap(), Some(le(2)));
}

#[test]
fn durable_writes_take_every_pending_counter_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // A version number drawn, then the document stored under it.
    assert_eq!(store.increment("default", "seq", 1).unwrap(), 1);
    store.increment("metrics", "hits", 5).unwrap();
    store.set("default", "doc/1", b"{}").unwrap();
    assert!(store.counters.lock().is_empty(), "nothing left to flush");
    assert_eq!(store.get_stored("default", "seq").unwrap(), Some(le(1)));
    assert_eq!(store.get_stored("metrics", "hits").unwrap(), Some(le(5)));
    // A failed compare-and-swap writes nothing, counters included.
    store.increment("default", "seq", 1).unwrap();
    assert!(
        !store
            .compare_and_swap("default", "doc/1", None, b"x")
            .unwrap()
    );
    assert_eq!(store.get("default", "seq").unwrap(), Some(le(2)));
}

#[test]
fn writes_replace_pending_counters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.increment("default", "a", 3).unwrap();
    store.set("default", "a", b"text").unwrap();
    assert_eq!(
        store.get("default", "a").unwrap().as_deref(),
        Some(&b"text"[..])
    );
    assert!(matches!(
        store.increment("default", "a", 1),
        Err(KvError::NotAnInteger(_))
    ));
    store.increment("default", "b", 3).unwrap();
    store.delete("default", "b").unwrap();
    assert_eq!(store.get("default", "b").unwrap(), None);
    assert_eq!(store.increment("default", "b", 1).unwrap(), 1);
    store.delete_many("default", &["b".into()]).unwrap();
    store.increment("default", "c", 1).unwrap();
    store.set_many("default", &[("c".into(), le(10))]).unwrap();
    assert_eq!(store.increment("default", "c", 1).unwrap(), 11);
    flush(&store.db, &store.counters).unwrap();
    assert_eq!(store.keys("default").unwrap(), ["a", "c"]);
}

#[test]
fn compare_and_swap_sees_pending_counters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.increment("default", "n", 7).unwrap();
    assert!(!store.compare_and_swap("default", "n", None, b"1").unwrap());
    assert!(
        !store
            .compare_and_swap("default", "n", Some(&le(6)), &le(1))
            .unwrap()
    );
    // A failed swap keeps the counter.
    assert_eq!(store.increment("default", "n", 1).unwrap(), 8);
    assert!(
        store
            .compare_and_swap("default", "n", Some(&le(8)), &le(1))
            .unwrap()
    );
    assert_eq!(store.increment("default", "n", 1).unwrap(), 2);
}

#[test]
fn decimal_counters_of_the_previous_release_are_rewritten_as_little_endian() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        // As the previous release left them; 8 digits are still text.
        store.set("default", "small", b"-3").unwrap();
        store.set("default", "eight", b"12345678").unwrap();
        store.set("default", "idle", b"7").unwrap();
        assert_eq!(store.increment("default", "small", 1).unwrap(), -2);
        assert_eq!(store.increment("default", "eight", 1).unwrap(), 12_345_679);
        assert_eq!(store.get("default", "eight").unwrap(), Some(le(12_345_679)));
    }
    let store = open(&dir);
    assert_eq!(store.get_stored("default", "small").unwrap(), Some(le(-2)));
    assert_eq!(
        store.get_stored("default", "eight").unwrap(),
        Some(le(12_345_679))
    );
    // Not incremented yet: still text, read by components as it is.
    assert_eq!(
        store.get("default", "idle").unwrap().as_deref(),
        Some(&b"7"[..])
    );
    // 8 bytes that are not digits are little-endian; other lengths are
    // not counters.
    store.set("default", "bytes", &le(1 << 40)).unwrap();
    assert_eq!(
        store.increment("default", "bytes", 1).unwrap(),
        (1 << 40) + 1
    );
    for (key, value) in [("short", &[1_u8, 0, 0, 0][..]), ("text", b"4 2")] {
        store.set("default", key, value).unwrap();
        assert!(matches!(
            store.increment("default", key, 1),
            Err(KvError::NotAnInteger(k)) if k == key
        ));
    }
}

#[test]
fn batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(store.get_many("default", &["a".into()]).unwrap(), [None]);
    store
        .set_many(
            "default",
            &[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())],
        )
        .unwrap();
    assert_eq!(
        store
            .get_many("default", &["a".into(), "c".into()])
            .unwrap(),
        [Some(b"1".to_vec()), None]
    );
    store
        .delete_many("default", &["a".into(), "b".into()])
        .unwrap();
    assert!(store.keys("default").unwrap().is_empty());
}
