//! Counters over fixed time windows (`now_ms / window_ms`) whose old
//! windows are deleted, so the store holds only live ones.

use crate::store::{Store, StoreError};

/// Called by whoever opened `window` (its first increment): records it in
/// `pointer` and deletes the keys (`keys_of`) of the window recorded there
/// before. Idempotent, so racing nodes do no harm.
pub(crate) fn retire_older<S: Store + ?Sized>(
    store: &S,
    pointer: &str,
    window: u64,
    keys_of: impl Fn(u64) -> Vec<String>,
) -> Result<(), StoreError> {
    // The pointer is decimal text written with `set`, never a counter.
    let last = store
        .get(pointer)?
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u64>().ok());
    if last.is_some_and(|last| last >= window) {
        return Ok(());
    }
    store.set(pointer, window.to_string().as_bytes())?;
    if let Some(last) = last {
        for key in keys_of(last) {
            store.delete(&key)?;
        }
    }
    Ok(())
}
