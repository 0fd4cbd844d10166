//! The admin audit trail: every admin write once its caller is known
//! (accepted or refused), kept under [`keys::audit`](crate::keys::audit)
//! by the admin API and the host's component registry alike.

use serde::{Deserialize, Serialize};

use crate::keys;
use crate::store::{Store, StoreError, counter};
use crate::token::Access;

/// How many entries [`recent`] returns, newest last.
pub const RECENT: u64 = 1000;

/// One admin write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the trail, from 1.
    pub n: u64,
    /// When, in Unix milliseconds.
    pub at_ms: u64,
    /// The token it came with: `admin` or `read-only`.
    pub token: String,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The status it was answered with.
    pub status: u16,
    /// What it changed (e.g. `version 7`), or why it was refused (the
    /// error code).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome: String,
}

impl Access {
    /// The token's name in the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Access::Full => "admin",
            Access::Read => "read-only",
            Access::None | Access::Closed => "none",
        }
    }
}

/// Appends `entry` to the trail, numbering it.
pub fn record<S: Store + ?Sized>(store: &S, mut entry: Entry) -> Result<u64, StoreError> {
    let n = store.increment(keys::AUDIT_SEQ, 1)?.unsigned_abs();
    entry.n = n;
    let json = serde_json::to_vec(&entry).expect("audit entries serialize");
    store.set(&keys::audit(n), &json)?;
    Ok(n)
}

/// The last [`RECENT`] entries, oldest first.
pub fn recent<S: Store + ?Sized>(store: &S) -> Result<Vec<Entry>, StoreError> {
    let newest = counter(store.get(keys::AUDIT_SEQ)?.as_deref());
    let keys: Vec<String> = (newest.saturating_sub(RECENT - 1).max(1)..=newest)
        .map(keys::audit)
        .collect();
    Ok(store
        .get_many(&keys)?
        .into_iter()
        .flatten()
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn entry(path: &str) -> Entry {
        Entry {
            n: 0,
            at_ms: 5,
            token: Access::Full.name().into(),
            method: "PUT".into(),
            path: path.into(),
            status: 201,
            outcome: "version 1".into(),
        }
    }

    #[test]
    fn entries_are_numbered_and_read_back_in_order() {
        let store = MemoryStore::default();
        assert_eq!(recent(&store).unwrap(), []);
        assert_eq!(record(&store, entry("/a")).unwrap(), 1);
        assert_eq!(record(&store, entry("/b")).unwrap(), 2);
        let read: Vec<(u64, String)> = recent(&store)
            .unwrap()
            .into_iter()
            .map(|e| (e.n, e.path))
            .collect();
        assert_eq!(read, [(1, "/a".to_owned()), (2, "/b".to_owned())]);
    }
}
