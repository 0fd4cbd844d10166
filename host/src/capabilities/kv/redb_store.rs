//! The default [`KvBackend`]: an embedded, persistent `redb` database.
//!
//! Each store label is a table. Writes are one transaction each and durable
//! when they return. Counters (incremented on every request) are kept in
//! memory instead: an increment updates the in-memory value (reading the
//! stored one first if there is none) and the values are written to the
//! database, durably, every [`FLUSH_INTERVAL`] and when the store is dropped.
//! Reads, writes and compare-and-swap see the in-memory values, so the store
//! behaves as one; a crash can lose at most the last moments of counter
//! updates, and never one that a later durable write (a set, a delete, a
//! compare-and-swap) followed: those write every pending counter with them.
//! An increment thus costs a map update rather than a write transaction,
//! and never waits for a disk sync: it runs in place on the async threads
//! ([`KvBackend::increments_inline`]).
//!
//! A counter is stored as an 8-byte little-endian `i64`, as Spin's embedded
//! store does, so a `get` of one returns those 8 bytes (pending or written).
//! Upgrading: the previous release stored counters as decimal text. The
//! first increment of such a value reads it and the sum is written back as
//! little-endian; until then a `get` returns the text, which components
//! read as well.
//!
//! Lock order: a write transaction first, then the counters' lock, which is
//! never held across a disk sync.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use redb::{
    Database, Durability, ReadableDatabase as _, ReadableTable as _, TableDefinition,
    WriteTransaction,
};

use upshift_model::store::decode_counter;

use super::read_cache::{ReadCache, Written};
use super::{KvBackend, KvError};

/// How often counters are written to disk.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// A `redb` database holding all stores.
pub struct RedbStore {
    db: Arc<Database>,
    counters: Arc<Counters>,
    cache: ReadCache,
    /// Tells the flusher thread to stop.
    stop: Arc<(Mutex<bool>, Condvar)>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// Counter values not yet written to the database, by store and key.
#[derive(Default)]
struct Counters(Mutex<HashMap<String, HashMap<String, i64>>>);

impl Counters {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, i64>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Table<'txn> = redb::Table<'txn, &'static str, &'static [u8]>;

fn table(store: &str) -> String {
    format!("kv/{store}")
}

fn backend(error: impl Into<redb::Error>) -> KvError {
    KvError::Backend(error.into().to_string())
}

/// The counter a stored value holds, by the components' rule
/// ([`decode_counter`]): 8 bytes are a little-endian `i64`, decimal text
/// (a counter of the previous release) is read as text.
fn parse_counter(key: &str, value: &[u8]) -> Result<i64, KvError> {
    decode_counter(value).ok_or_else(|| KvError::NotAnInteger(key.to_owned()))
}

fn counter_bytes(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

/// The pending counters of one store, as a write transaction changes them:
/// what it takes out is put back if the transaction does not commit.
struct Pending<'a> {
    values: Option<&'a mut HashMap<String, i64>>,
    taken: Vec<(String, i64)>,
}

impl Pending<'_> {
    /// The pending value of `key`, if any.
    fn get(&self, key: &str) -> Option<i64> {
        self.values.as_ref()?.get(key).copied()
    }

    /// Drops the pending value of `key`: the transaction replaces it.
    fn take(&mut self, key: &str) {
        if let Some(values) = self.values.as_mut()
            && let Some((key, value)) = values.remove_entry(key)
        {
            self.taken.push((key, value));
        }
    }
}

impl RedbStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, KvError> {
        let db = Arc::new(Database::create(path).map_err(backend)?);
        let counters = Arc::new(Counters::default());
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flusher = std::thread::Builder::new()
            .name("kv-flusher".into())
            .spawn({
                let (db, counters, stop) = (db.clone(), counters.clone(), stop.clone());
                move || {
                    let (lock, condvar) = &*stop;
                    let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while !*stopped {
                        stopped = condvar
                            .wait_timeout(stopped, FLUSH_INTERVAL)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                        if let Err(error) = flush(&db, &counters) {
                            tracing::warn!("key-value flush failed: {error}");
                        }
                    }
                }
            })
            .map_err(|e| KvError::Backend(e.to_string()))?;
        Ok(Self {
            db,
            counters,
            cache: ReadCache::default(),
            stop,
            flusher: Some(flusher),
        })
    }

    /// Runs `f` in a write transaction on the store's table, with the
    /// store's pending counters, and commits durably together with every
    /// pending counter: a durable write never refers to a counter value
    /// the store could forget (a config version number, an audit sequence).
    ///
    /// The counters' lock is held from `f` to a commit without sync, so no
    /// increment or read runs in between; a second, empty commit then syncs
    /// it without the lock. What `f` records in [`Written`] goes into the
    /// read cache once the commit succeeded.
    fn write<R>(
        &self,
        store: &str,
        f: impl FnOnce(&mut Table<'_>, &mut Pending<'_>, &mut Written) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        let name = table(store);
        let mut txn: WriteTransaction = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::None)
            .map_err(|e| KvError::Backend(e.to_string()))?;
        {
            let mut counters = self.counters.lock();
            let mut pending = Pending {
                values: counters.get_mut(store),
                taken: Vec::new(),
            };
            let mut written = Written::new();
            let result = txn
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .map_err(backend)
                .and_then(|mut table| f(&mut table, &mut pending, &mut written));
            let taken = pending.taken;
            let result = result
                .and_then(|result| write_counters(&txn, &counters).map(|()| result))
                .and_then(|result| txn.commit().map_err(backend).map(|()| result));
            match &result {
                Ok(_) => {
                    counters.clear();
                    self.cache.apply(store, written);
                }
                Err(_) => {
                    for (key, _) in &written {
                        self.cache.forget(store, key);
                    }
                    if let Some(values) = counters.get_mut(store) {
                        values.extend(taken);
                    }
                }
            }
            result
        }
        .and_then(|result| {
            sync(&self.db)?;
            Ok(result)
        })
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

    /// What the database holds at `key`, through the read cache. The
    /// caller holds the counters' lock, which orders it after every write.
    fn get_stored(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(known) = self.cache.get(store, key) {
            return Ok(known);
        }
        let value = self
            .read(store, |table| {
                Ok(table.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
            })?
            .flatten();
        self.cache.put(store, key, value.as_deref());
        Ok(value)
    }
}

/// Makes every commit so far durable.
fn sync(db: &Database) -> Result<(), KvError> {
    let mut txn = db.begin_write().map_err(backend)?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| KvError::Backend(e.to_string()))?;
    txn.commit().map_err(backend)
}

/// Writes `counters` (by store and key) into their tables in `txn`.
fn write_counters(
    txn: &WriteTransaction,
    counters: &HashMap<String, HashMap<String, i64>>,
) -> Result<(), KvError> {
    for (store, values) in counters {
        let name = table(store);
        let mut table = txn
            .open_table(TableDefinition::<&str, &[u8]>::new(&name))
            .map_err(backend)?;
        for (key, value) in values {
            table
                .insert(key.as_str(), counter_bytes(*value).as_slice())
                .map_err(backend)?;
        }
    }
    Ok(())
}

/// Writes the pending counters durably, then forgets those that did not
/// change meanwhile (the database now holds their values).
fn flush(db: &Database, counters: &Counters) -> Result<(), KvError> {
    if counters.lock().is_empty() {
        return Ok(());
    }
    let mut txn = db.begin_write().map_err(backend)?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| KvError::Backend(e.to_string()))?;
    // Taken after the write transaction began: no other write can slip in
    // between this snapshot and the commit.
    let snapshot = counters.lock().clone();
    write_counters(&txn, &snapshot)?;
    txn.commit().map_err(backend)?;
    let mut pending = counters.lock();
    for (store, written) in snapshot {
        if let Some(values) = pending.get_mut(&store) {
            for (key, value) in written {
                if values.get(&key) == Some(&value) {
                    values.remove(&key);
                }
            }
            if values.is_empty() {
                pending.remove(&store);
            }
        }
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
        if let Err(error) = flush(&self.db, &self.counters) {
            tracing::warn!("key-value flush on close failed: {error}");
        }
    }
}

impl KvBackend for RedbStore {
    fn flush(&self) -> Result<(), KvError> {
        flush(&self.db, &self.counters)
    }

    /// Reads are MVCC snapshots of a memory-mapped file: microseconds, never
    /// waiting for writers.
    fn reads_inline(&self, _store: &str) -> bool {
        true
    }

    /// Increments update memory (and read the table on a counter's first use).
    fn increments_inline(&self, _store: &str) -> bool {
        true
    }

    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let counters = self.counters.lock();
        if let Some(value) = counters.get(store).and_then(|values| values.get(key)) {
            return Ok(Some(counter_bytes(*value)));
        }
        self.get_stored(store, key)
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.write(store, |table, pending, written| {
            table.insert(key, value).map_err(backend)?;
            pending.take(key);
            written.push((key.to_owned(), Some(value.to_vec())));
            Ok(())
        })
    }

    fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        self.write(store, |table, pending, written| {
            table.remove(key).map_err(backend)?;
            pending.take(key);
            written.push((key.to_owned(), None));
            Ok(())
        })
    }

    fn exists(&self, store: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(store, key)?.is_some())
    }

    fn keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        let counters = self.counters.lock();
        let mut keys: Vec<String> = self
            .read(store, |table| {
                table
                    .iter()
                    .map_err(backend)?
                    .map(|entry| entry.map(|(k, _)| k.value().to_owned()).map_err(backend))
                    .collect()
            })?
            .unwrap_or_default();
        if let Some(values) = counters.get(store) {
            keys.extend(values.keys().cloned());
            keys.sort_unstable();
            keys.dedup();
        }
        Ok(keys)
    }

    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut counters = self.counters.lock();
        let pending = counters
            .get_mut(store)
            .and_then(|values| values.get_mut(key));
        if let Some(value) = pending {
            *value = value
                .checked_add(delta)
                .ok_or_else(|| KvError::Overflow(key.to_owned()))?;
            return Ok(*value);
        }
        let current = match self.get_stored(store, key)? {
            Some(bytes) => parse_counter(key, &bytes)?,
            None => 0,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::Overflow(key.to_owned()))?;
        // The pending value is the truth from now on, until it is written.
        self.cache.forget(store, key);
        counters
            .entry(store.to_owned())
            .or_default()
            .insert(key.to_owned(), next);
        Ok(next)
    }

    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError> {
        self.write(store, |table, pending, written| {
            let matches = match pending.get(key) {
                Some(current) => expected == Some(counter_bytes(current).as_slice()),
                None => {
                    let current = table.get(key).map_err(backend)?;
                    current.as_ref().map(|v| v.value()) == expected
                }
            };
            if matches {
                table.insert(key, value).map_err(backend)?;
                pending.take(key);
                written.push((key.to_owned(), Some(value.to_vec())));
            }
            Ok(matches)
        })
    }

    fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let counters = self.counters.lock();
        let pending = counters.get(store);
        let mut values = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match pending.and_then(|values| values.get(key)) {
                Some(value) => values.push(Some(counter_bytes(*value))),
                None => match self.cache.get(store, key) {
                    Some(known) => values.push(known),
                    None => {
                        values.push(None);
                        missing.push(i);
                    }
                },
            }
        }
        if missing.is_empty() {
            return Ok(values);
        }
        // One read transaction for everything the cache did not know.
        let read = self.read(store, |table| {
            missing
                .iter()
                .map(|i| {
                    Ok(table
                        .get(keys[*i].as_str())
                        .map_err(backend)?
                        .map(|v| v.value().to_vec()))
                })
                .collect::<Result<Vec<_>, KvError>>()
        })?;
        let read = read.unwrap_or_else(|| vec![None; missing.len()]);
        for (i, value) in missing.into_iter().zip(read) {
            self.cache.put(store, &keys[i], value.as_deref());
            values[i] = value;
        }
        Ok(values)
    }

    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.write(store, |table, pending, written| {
            for (key, value) in entries {
                table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(backend)?;
                pending.take(key);
                written.push((key.clone(), Some(value.clone())));
            }
            Ok(())
        })
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), KvError> {
        self.write(store, |table, pending, written| {
            for key in keys {
                table.remove(key.as_str()).map_err(backend)?;
                pending.take(key);
                written.push((key.clone(), None));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
