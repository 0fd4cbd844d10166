//! Caps the number of requests running guest code at once.
//!
//! A request holds a permit from the moment it is dispatched until the
//! component produced its response head, except while it waits for an
//! outbound HTTP response: waiting on an upstream uses no CPU, so the permit
//! is given back meanwhile and taken again before the guest resumes.
//!
//! The permit is owned by a [`RequestPermit`] in the request's front-end
//! future: when that future ends, normally or because the client went away
//! and the future was dropped, the permit is given back for good, even though
//! the guest may keep (clones of) the request's [`RequestSlot`] for longer.

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

    /// Waits for a permit and returns the request's hold on it.
    pub async fn start(&self) -> RequestPermit {
        let permit = acquire(&self.semaphore).await;
        RequestPermit(RequestSlot {
            semaphore: self.semaphore.clone(),
            state: Arc::new(Mutex::new(SlotState::Running(Some(permit)))),
        })
    }
}

/// A request's run permit, given back for good when this is dropped.
pub struct RequestPermit(RequestSlot);

impl RequestPermit {
    /// The slot to hand to the component instance handling the request.
    pub fn slot(&self) -> RequestSlot {
        self.0.clone()
    }
}

impl Drop for RequestPermit {
    fn drop(&mut self) {
        self.0.finish();
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
    fn finish(&self) {
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
        let permit = permits.start().await;
        assert_eq!(permits.semaphore.available_permits(), 0);
        let seen = permit
            .slot()
            .while_waiting(async { permits.semaphore.available_permits() })
            .await;
        assert_eq!(seen, 1);
        assert_eq!(permits.semaphore.available_permits(), 0);
        drop(permit);
        assert_eq!(permits.semaphore.available_permits(), 1);
    }

    #[tokio::test]
    async fn finished_requests_do_not_take_permits_back() {
        let permits = RunPermits::new(1);
        let permit = permits.start().await;
        let slot = permit.slot();
        slot.while_waiting(async { drop(permit) }).await;
        assert_eq!(permits.semaphore.available_permits(), 1);
    }

    #[tokio::test]
    async fn an_abandoned_request_gives_its_permit_back() {
        let permits = RunPermits::new(1);
        let permit = permits.start().await;
        // The guest keeps the slot, as a reused instance's store does.
        let kept_by_guest = permit.slot();
        drop(permit);
        assert_eq!(permits.semaphore.available_permits(), 1);
        kept_by_guest.while_waiting(async {}).await;
        assert_eq!(permits.semaphore.available_permits(), 1);
    }
}
