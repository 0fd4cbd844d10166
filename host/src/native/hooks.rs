//! The native lane's webhook runner: one task on the host's runtime runs
//! the core's [`hooks::run`] for each service a request's selection named
//! (`hooks_due`), through the pooled upstream client, and again when a
//! gate held.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use upshift_core::hooks::{self, Outbound, Ran};
use upshift_model::store::{Store, StoreError};

use super::body::ForwardBody;
use super::{BUCKET, NativeGateway};
use crate::capabilities::kv::KvBackend;

/// How long after a run found another node at work it looks again.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// The services whose hooks have work, from the requests that said so.
pub struct HookQueue {
    sender: mpsc::UnboundedSender<Arc<str>>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Arc<str>>>>,
    /// Services queued or scheduled: requests saying so again change nothing.
    queued: Mutex<HashSet<Arc<str>>>,
}

impl Default for HookQueue {
    fn default() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        HookQueue {
            sender,
            receiver: Mutex::new(Some(receiver)),
            queued: Mutex::new(HashSet::new()),
        }
    }
}

impl HookQueue {
    /// Queues a run for `service`, unless one is queued or scheduled.
    pub fn wake(&self, service: &str) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if queued.contains(service) {
            return;
        }
        let service: Arc<str> = service.into();
        queued.insert(service.clone());
        let _ = self.sender.send(service);
    }

    fn done(&self, service: &str) {
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(service);
    }
}

/// Runs the hooks of the services `lane`'s requests name, until the lane
/// is dropped. Call once, on a multi-threaded runtime (store calls block
/// in place).
pub async fn run(lane: Weak<NativeGateway>) {
    let Some(mut receiver) = lane.upgrade().and_then(|l| {
        l.hooks
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }) else {
        return;
    };
    let mut scheduled: BTreeMap<Arc<str>, Instant> = BTreeMap::new();
    loop {
        let next = scheduled.values().min().copied();
        let woken = match next {
            Some(at) => tokio::select! {
                woken = receiver.recv() => woken,
                () = tokio::time::sleep_until(at) => None,
            },
            None => match receiver.recv().await {
                Some(service) => Some(service),
                None => return,
            },
        };
        let now = Instant::now();
        let due: Vec<Arc<str>> = match woken {
            Some(service) => vec![service],
            None => scheduled
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(s, _)| s.clone())
                .collect(),
        };
        let Some(lane) = lane.upgrade() else {
            return;
        };
        for service in due {
            scheduled.remove(&service);
            let outbound = NativeOutbound { lane: &lane };
            let store = KvStore(&*lane.kv);
            let again = match hooks::run(&store, &outbound, &service).await {
                Ok(Ran::Done) => None,
                Ok(Ran::Busy) => Some(BUSY_RETRY),
                Ok(Ran::Again(after)) => Some(after),
                Err(error) => {
                    tracing::warn!(%service, "rollout webhooks: {error}");
                    Some(BUSY_RETRY)
                }
            };
            match again {
                Some(after) => {
                    scheduled.insert(service, Instant::now() + after);
                }
                None => lane.hooks.done(&service),
            }
        }
    }
}

/// The lane's client, clock and variables, for the runner.
struct NativeOutbound<'a> {
    lane: &'a NativeGateway,
}

impl Outbound for NativeOutbound<'_> {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<u16, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        if !self.lane.allowed.allows(&uri) {
            return Err(format!("{url} is not in allowed_outbound_hosts"));
        }
        let mut request = http::Request::post(uri);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(ForwardBody::bytes(body))
            .map_err(|e| e.to_string())?;
        let response = self
            .lane
            .client
            .send((0, false), &self.lane.name, request, timeout)
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn now_ms(&self) -> u64 {
        upshift_core::clock::now_ms()
    }

    async fn variable(&self, name: &str) -> Option<String> {
        self.lane.variables.get(name).cloned()
    }
}

/// The shared store as the core's [`Store`], its calls blocking in place.
struct KvStore<'a>(&'a dyn KvBackend);

fn failed(error: crate::capabilities::kv::KvError) -> StoreError {
    StoreError(error.to_string())
}

impl Store for KvStore<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        tokio::task::block_in_place(|| self.0.get(BUCKET, key)).map_err(failed)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        tokio::task::block_in_place(|| self.0.get_many(BUCKET, keys)).map_err(failed)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        tokio::task::block_in_place(|| self.0.set(BUCKET, key, value)).map_err(failed)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        tokio::task::block_in_place(|| self.0.delete(BUCKET, key)).map_err(failed)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        tokio::task::block_in_place(|| self.0.increment(BUCKET, key, delta)).map_err(failed)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        tokio::task::block_in_place(|| self.0.compare_and_swap(BUCKET, key, expected, value))
            .map_err(failed)
    }
}
