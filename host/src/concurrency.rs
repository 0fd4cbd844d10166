//! Caps the number of requests running guest code at once.
//!
//! A request holds a permit from the moment it is dispatched until the
//! component produced its response head, except while it waits for an
//! outbound HTTP response: waiting on an upstream uses no CPU, so the permit
//! is given back meanwhile and taken again before the guest resumes.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The pool of run permits.
#[derive(Clone)]
pub struct RunPermits {
    semaphore: Arc<Semaphore>,
}

impl RunPermits {
    /// A pool allowing `limit` requests to run at once.
    pub fn new(limit: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// Waits for a permit and returns the request's slot holding it.
    pub async fn start(&self) -> RequestSlot {
        let permit = acquire(&self.semaphore).await;
        RequestSlot {
            semaphore: self.semaphore.clone(),
            state: Arc::new(Mutex::new(SlotState::Running(Some(permit)))),
        }
    }
}

async fn acquire(semaphore: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    semaphore
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed")
}

enum SlotState {
    /// The request is in progress; `None` while it waits on I/O.
    Running(Option<OwnedSemaphorePermit>),
    /// The response head was produced; the permit is gone for good.
    Finished,
}

/// One request's hold on a run permit.
#[derive(Clone)]
pub struct RequestSlot {
    semaphore: Arc<Semaphore>,
    state: Arc<Mutex<SlotState>>,
}

impl RequestSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the permit back for good.
    pub fn finish(&self) {
        *self.lock() = SlotState::Finished;
    }

    /// Runs `wait` without holding the permit, then takes a permit again
    /// (unless the request finished meanwhile).
    pub async fn while_waiting<F: Future>(self, wait: F) -> F::Output {
        let released = match &mut *self.lock() {
            SlotState::Running(permit) => permit.take(),
            SlotState::Finished => None,
        };
        let held = released.is_some();
        drop(released);
        let output = wait.await;
        if held {
            let permit = acquire(&self.semaphore).await;
            if let SlotState::Running(slot @ None) = &mut *self.lock() {
                *slot = Some(permit);
            }
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_releases_the_permit() {
        let permits = RunPermits::new(1);
        let slot = permits.start().await;
        assert_eq!(permits.semaphore.available_permits(), 0);
        let seen = slot
            .clone()
            .while_waiting(async { permits.semaphore.available_permits() })
            .await;
        assert_eq!(seen, 1);
        assert_eq!(permits.semaphore.available_permits(), 0);
        slot.finish();
        assert_eq!(permits.semaphore.available_permits(), 1);
    }

    #[tokio::test]
    async fn finished_requests_do_not_take_permits_back() {
        let permits = RunPermits::new(1);
        let slot = permits.start().await;
        let finisher = slot.clone();
        slot.while_waiting(async { finisher.finish() }).await;
        assert_eq!(permits.semaphore.available_permits(), 1);
    }
}
