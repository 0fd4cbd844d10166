//! Ejected targets: the document under `health/{service}` and passive
//! outlier detection, which writes it.
//!
//! The document maps each ejected target URL to the Unix millisecond its
//! ejection ends: `{"http://10.0.0.5:8080": 1767225600000}`. Expired
//! entries are ignored, and dropped at the next write.

use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use upshift_model::{OutlierDetection, keys};

/// How often an ejection retries its compare-and-swap against other writers.
const CAS_ATTEMPTS: usize = 8;

/// Ejected targets of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Health(BTreeMap<String, u64>);

impl Health {
    /// Reads a stored document; an unreadable one ejects nothing.
    pub(crate) fn parse(bytes: Option<&[u8]>) -> Health {
        bytes
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }

    /// Whether `url` is ejected at `now_ms`.
    pub(crate) fn is_ejected(&self, url: &str, now_ms: u64) -> bool {
        !self.0.is_empty() && self.0.get(url).is_some_and(|until| *until > now_ms)
    }

    /// Whether every one of `urls` is ejected: the version's circuit is open.
    pub(crate) fn all_ejected<'u>(
        &self,
        mut urls: impl Iterator<Item = &'u str>,
        now_ms: u64,
    ) -> bool {
        !self.0.is_empty() && urls.all(|url| self.is_ejected(url, now_ms))
    }
}

/// Counts an error of `url` in the current window of `outliers`, and ejects
/// the target once the window holds `outliers.failures` errors.
pub(crate) fn count_error<S: Store + ?Sized>(
    store: &S,
    service: &str,
    url: &str,
    outliers: &OutlierDetection,
    now_ms: u64,
) -> Result<(), StoreError> {
    let window = now_ms / u64::from(outliers.window_ms.max(1));
    let key = keys::outlier_window(service, url, window);
    let errors = store.increment(&key, 1)?;
    if errors == 1 {
        crate::window::retire_older(
            store,
            &keys::outlier_last_window(service, url),
            window,
            |w| vec![keys::outlier_window(service, url, w)],
        )?;
    }
    if errors >= i64::from(outliers.failures)
        && eject(
            store,
            service,
            url,
            now_ms + u64::from(outliers.ejection_ms),
            now_ms,
        )?
    {
        // A target back from ejection starts counting afresh.
        store.delete(&key)?;
        store.increment(&keys::ejections(service, url), 1)?;
    }
    Ok(())
}

/// Ejects `url` of `service` until `until_ms`, unless it already is until
/// then; returns whether this call wrote the ejection.
fn eject<S: Store + ?Sized>(
    store: &S,
    service: &str,
    url: &str,
    until_ms: u64,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let key = keys::health(service);
    for _ in 0..CAS_ATTEMPTS {
        let bytes = store.get(&key)?;
        let mut health = Health::parse(bytes.as_deref());
        if health.0.get(url).is_some_and(|until| *until >= until_ms) {
            return Ok(false);
        }
        health.0.retain(|_, until| *until > now_ms);
        health.0.insert(url.to_owned(), until_ms);
        let json = serde_json::to_vec(&health).expect("health serializes");
        if store.compare_and_swap(&key, bytes.as_deref(), &json)? {
            return Ok(true);
        }
    }
    Err(StoreError(format!(
        "{key} kept changing while ejecting {url}"
    )))
}
