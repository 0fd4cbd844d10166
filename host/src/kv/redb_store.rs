//! The default [`KvBackend`]: an embedded, persistent `redb` database.
//!
//! Each store label is a table and every operation one transaction, so
//! increments and compare-and-swap are atomic. Writes are durable when they
//! return, except increments (counters, hit on every request): they commit
//! without syncing, and are made durable by the next durable write, by a
//! flush every [`FLUSH_INTERVAL`], or when the store is dropped. A crash can
//! thus lose at most the last moments of counter updates.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use redb::{
    Database, Durability, ReadableDatabase as _, ReadableTable as _, TableDefinition,
    WriteTransaction,
};

use super::{KvBackend, KvError};

/// How often non-durable increments are synced to disk.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// A `redb` database holding all stores.
pub struct RedbStore {
    db: Arc<Database>,
    /// Set when a non-durable commit has not been synced yet.
    unsynced: Arc<AtomicBool>,
    /// Tells the flusher thread to stop.
    stop: Arc<(Mutex<bool>, Condvar)>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

fn table(store: &str) -> String {
    format!("kv/{store}")
}

fn backend(error: impl Into<redb::Error>) -> KvError {
    KvError::Backend(error.into().to_string())
}

impl RedbStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, KvError> {
        let db = Arc::new(Database::create(path).map_err(backend)?);
        let unsynced = Arc::new(AtomicBool::new(false));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flusher = std::thread::Builder::new()
            .name("kv-flusher".into())
            .spawn({
                let (db, unsynced, stop) = (db.clone(), unsynced.clone(), stop.clone());
                move || {
                    let (lock, condvar) = &*stop;
                    let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while !*stopped {
                        stopped = condvar
                            .wait_timeout(stopped, FLUSH_INTERVAL)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                        if let Err(error) = sync(&db, &unsynced) {
                            tracing::warn!("key-value flush failed: {error}");
                        }
                    }
                }
            })
            .map_err(|e| KvError::Backend(e.to_string()))?;
        Ok(Self {
            db,
            unsynced,
            stop,
            flusher: Some(flusher),
        })
    }

    /// Runs `f` in a durable write transaction on the store's table and commits.
    fn write<R>(
        &self,
        store: &str,
        f: impl FnOnce(&mut redb::Table<'_, &str, &[u8]>) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        self.write_with(Durability::Immediate, store, f)
    }

    /// Runs `f` in a write transaction with the given durability and commits.
    fn write_with<R>(
        &self,
        durability: Durability,
        store: &str,
        f: impl FnOnce(&mut redb::Table<'_, &str, &[u8]>) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        let name = table(store);
        let mut txn: WriteTransaction = self.db.begin_write().map_err(backend)?;
        txn.set_durability(durability)
            .map_err(|e| KvError::Backend(e.to_string()))?;
        let result = {
            let mut table = txn
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .map_err(backend)?;
            f(&mut table)?
        };
        // A durable commit also syncs every earlier non-durable one.
        let durable = matches!(durability, Durability::Immediate);
        if !durable {
            self.unsynced.store(true, Ordering::Release);
        }
        txn.commit().map_err(backend)?;
        if durable {
            self.unsynced.store(false, Ordering::Release);
        }
        Ok(result)
    }

    /// Runs `f` on the store's table in a read transaction; `None` if the table
    /// does not exist yet.
    fn read<R>(
        &self,
        store: &str,
        f: impl FnOnce(&redb::ReadOnlyTable<&str, &[u8]>) -> Result<R, KvError>,
    ) -> Result<Option<R>, KvError> {
        let name = table(store);
        let txn = self.db.begin_read().map_err(backend)?;
        match txn.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
            Ok(table) => f(&table).map(Some),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }
}

/// Makes pending non-durable commits durable.
fn sync(db: &Database, unsynced: &AtomicBool) -> Result<(), KvError> {
    if unsynced.swap(false, Ordering::AcqRel) {
        let mut txn = db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| KvError::Backend(e.to_string()))?;
        txn.commit().map_err(backend)?;
    }
    Ok(())
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        let (lock, condvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        condvar.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        if let Err(error) = sync(&self.db, &self.unsynced) {
            tracing::warn!("key-value flush on close failed: {error}");
        }
    }
}

impl KvBackend for RedbStore {
    /// Reads are MVCC snapshots of a memory-mapped file: microseconds, never
    /// waiting for writers.
    fn reads_inline(&self, _store: &str) -> bool {
        true
    }

    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self
            .read(store, |table| {
                Ok(table.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
            })?
            .flatten())
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.write(store, |table| {
            table.insert(key, value).map_err(backend)?;
            Ok(())
        })
    }

    fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        self.write(store, |table| {
            table.remove(key).map_err(backend)?;
            Ok(())
        })
    }

    fn keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        Ok(self
            .read(store, |table| {
                table
                    .iter()
                    .map_err(backend)?
                    .map(|entry| entry.map(|(k, _)| k.value().to_owned()).map_err(backend))
                    .collect()
            })?
            .unwrap_or_default())
    }

    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        self.write_with(Durability::None, store, |table| {
            let current = match table.get(key).map_err(backend)? {
                Some(value) => std::str::from_utf8(value.value())
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or_else(|| KvError::NotAnInteger(key.to_owned()))?,
                None => 0,
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| KvError::Overflow(key.to_owned()))?;
            table
                .insert(key, next.to_string().as_bytes())
                .map_err(backend)?;
            Ok(next)
        })
    }

    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError> {
        self.write(store, |table| {
            let matches = {
                let current = table.get(key).map_err(backend)?;
                current.as_ref().map(|v| v.value()) == expected
            };
            if matches {
                table.insert(key, value).map_err(backend)?;
            }
            Ok(matches)
        })
    }

    fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        Ok(self
            .read(store, |table| {
                keys.iter()
                    .map(|key| {
                        Ok(table
                            .get(key.as_str())
                            .map_err(backend)?
                            .map(|v| v.value().to_vec()))
                    })
                    .collect()
            })?
            .unwrap_or_else(|| vec![None; keys.len()]))
    }

    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.write(store, |table| {
            for (key, value) in entries {
                table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(backend)?;
            }
            Ok(())
        })
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), KvError> {
        self.write(store, |table| {
            for key in keys {
                table.remove(key.as_str()).map_err(backend)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn open(dir: &tempfile::TempDir) -> RedbStore {
        RedbStore::open(&dir.path().join("kv.redb")).unwrap()
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
        assert_eq!(
            store.get("default", "n").unwrap().as_deref(),
            Some(&b"199"[..])
        );
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
        assert!(store.compare_and_swap("default", "k", None, b"1").unwrap());
        assert!(!store.compare_and_swap("default", "k", None, b"2").unwrap());
        assert!(
            !store
                .compare_and_swap("default", "k", Some(b"0"), b"2")
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap("default", "k", Some(b"1"), b"2")
                .unwrap()
        );
        assert_eq!(
            store.get("default", "k").unwrap().as_deref(),
            Some(&b"2"[..])
        );
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
}
