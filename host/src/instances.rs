//! Instance reuse for one component, on top of wasmtime-wasi-http's
//! `ProxyHandler`: how instances are created, how many requests each takes,
//! and when idle or stuck instances are dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};

use crate::capabilities::Capabilities;
use crate::concurrency::RequestSlot;
use crate::engine::{EPOCH_TICK, HostState, new_store};

/// Requests served by one instance before it is replaced (which bounds
/// what a guest may leak or cache).
const MAX_REQUESTS_PER_INSTANCE: usize = 1024;

/// How long an idle instance is kept for reuse.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long past its request's budget a busy instance may live (a safety net
/// for guests stuck in host calls, which epochs cannot interrupt).
const STUCK_GRACE: Duration = Duration::from_secs(60);

/// Everything needed to create instances of one component.
pub struct ComponentInstances {
    /// Component name, for logs.
    pub name: Arc<str>,
    /// The engine.
    pub engine: Engine,
    /// The linked, pre-instantiated component.
    pub pre: ProxyPre<HostState>,
    /// The host's capabilities, configured for the app.
    pub capabilities: Arc<Capabilities>,
    /// Execution budget of one request.
    pub request_timeout: Duration,
    /// Requests one instance may serve side by side.
    pub instance_concurrency: usize,
}

impl HandlerState for ComponentInstances {
    type StoreData = HostState;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiration, Worker>> {
        let mut store = new_store(&self.engine, self.capabilities.instance(&self.name));
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy,
            view: HostState::http_view,
            expiration: Expiration::new(self.request_timeout),
            state: Worker {
                name: self.name.clone(),
                request_timeout: self.request_timeout,
                concurrency: self.instance_concurrency.max(1),
            },
        })
    }
}

/// Per-instance policy: a bounded number of requests at a time (one by
/// default, so that a trap fails only that request) and in total, and a
/// per-request budget.
pub struct Worker {
    name: Arc<str>,
    request_timeout: Duration,
    concurrency: usize,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    /// The request id (for logs) and its run-permit slot.
    type RequestData = (Arc<str>, RequestSlot);

    fn should_accept_request(&self, concurrent_count: usize, total_count: usize) -> ShouldAccept {
        if total_count >= MAX_REQUESTS_PER_INSTANCE {
            ShouldAccept::Never
        } else if concurrent_count >= self.concurrency {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        (request_id, slot): (Arc<str>, RequestSlot),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let ticks = (self.request_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1);
        store
            .data_mut()
            .start_request(request_id, slot, u64::try_from(ticks).unwrap_or(u64::MAX));
        // Wall-clock limit for producing the response head: generous, since the
        // guest may be waiting on slow upstreams without using any CPU.
        Box::pin(tokio::time::sleep(self.request_timeout + STUCK_GRACE))
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        if let Err(error) = result {
            tracing::warn!(
                component = %self.name,
                request_id = store.data().request_id().unwrap_or("-"),
                "instance discarded: {}",
                error.root_cause()
            );
            tracing::debug!(component = %self.name, "instance failure details: {error:?}");
        }
    }
}

/// Decides when a worker's instance is dropped.
pub struct Expiration {
    request_timeout: Duration,
    armed_for: Option<(WorkerStatus, Instant)>,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Expiration {
    fn new(request_timeout: Duration) -> Self {
        Self {
            request_timeout,
            armed_for: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

impl WorkerExpiration for Expiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        state: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        if this.armed_for != Some((state, start)) {
            let lifetime = match state {
                WorkerStatus::Idle => IDLE_TIMEOUT,
                WorkerStatus::Requests | WorkerStatus::PostReturn => {
                    this.request_timeout + STUCK_GRACE
                }
            };
            this.timer
                .as_mut()
                .reset(tokio::time::Instant::from_std(start + lifetime));
            this.armed_for = Some((state, start));
        }
        this.timer.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(concurrency: usize) -> Worker {
        Worker {
            name: "gateway".into(),
            request_timeout: Duration::from_secs(1),
            concurrency,
        }
    }

    fn accepts(worker: &Worker, concurrent: usize, total: usize) -> &'static str {
        match worker.should_accept_request(concurrent, total) {
            ShouldAccept::Yes => "yes",
            ShouldAccept::No => "no",
            ShouldAccept::Never => "never",
        }
    }

    #[test]
    fn one_request_at_a_time_by_default() {
        let single = worker(1);
        assert_eq!(accepts(&single, 0, 5), "yes");
        assert_eq!(accepts(&single, 1, 5), "no");
    }

    #[test]
    fn concurrent_instances_take_requests_up_to_their_limit() {
        let shared = worker(8);
        assert_eq!(accepts(&shared, 7, 100), "yes");
        assert_eq!(accepts(&shared, 8, 100), "no");
    }

    #[test]
    fn instances_retire_after_their_request_quota() {
        for concurrency in [1, 8] {
            let w = worker(concurrency);
            assert_eq!(accepts(&w, 0, MAX_REQUESTS_PER_INSTANCE - 1), "yes");
            assert_eq!(accepts(&w, 0, MAX_REQUESTS_PER_INSTANCE), "never");
        }
    }
}
