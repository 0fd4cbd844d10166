//! The live state one decision needs: the service's rollout state and its
//! ejected targets, read from the store in one batch and parsed only when
//! their bytes changed since this instance last read them.

use crate::hash::NameMap;
use crate::health::Health;
use crate::plan::ServicePlan;
use crate::store::{Store, StoreError};
use std::sync::{Arc, Mutex, MutexGuard};
use upshift_model::rollout::RolloutState;

/// The store's state of one service, as read for a request.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub(crate) rollout: Option<Arc<RolloutState>>,
    pub(crate) health: Arc<Health>,
}

/// Parsed documents by service, keyed by the exact bytes they came from.
#[derive(Debug, Default)]
pub(crate) struct LiveCache(Mutex<NameMap<Parsed>>);

#[derive(Debug, Default)]
struct Parsed {
    rollout: Option<(Vec<u8>, Option<Arc<RolloutState>>)>,
    /// The bytes last read (`None`: absent) and what they say.
    health: (Option<Vec<u8>>, Arc<Health>),
}

impl LiveCache {
    /// Reads the rollout state and health of `service` (one batch read).
    pub(crate) fn read<S: Store + ?Sized>(
        &self,
        store: &S,
        service: &ServicePlan,
    ) -> Result<Live, StoreError> {
        let mut values = store.get_many(&service.state_keys)?.into_iter();
        let (state, health) = (values.next().flatten(), values.next().flatten());
        let mut cache = self.lock();
        let parsed = parsed(&mut cache, &service.name);
        Ok(Live {
            rollout: parsed.rollout(state),
            health: parsed.health(health),
        })
    }

    /// Reads the rollout state of `service` alone.
    pub(crate) fn rollout<S: Store + ?Sized>(
        &self,
        store: &S,
        service: &ServicePlan,
    ) -> Result<Option<Arc<RolloutState>>, StoreError> {
        let state = store.get(&service.state_keys[0])?;
        Ok(parsed(&mut self.lock(), &service.name).rollout(state))
    }

    fn lock(&self) -> MutexGuard<'_, NameMap<Parsed>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn parsed<'c>(cache: &'c mut NameMap<Parsed>, service: &str) -> &'c mut Parsed {
    if !cache.contains_key(service) {
        cache.insert(service.to_owned(), Parsed::default());
    }
    cache.get_mut(service).expect("just inserted")
}

impl Parsed {
    /// The rollout in `bytes`; an unreadable document counts as none.
    fn rollout(&mut self, bytes: Option<Vec<u8>>) -> Option<Arc<RolloutState>> {
        let bytes = bytes?;
        match &self.rollout {
            Some((seen, state)) if *seen == bytes => state.clone(),
            _ => {
                let state = serde_json::from_slice(&bytes).ok().map(Arc::new);
                self.rollout = Some((bytes, state.clone()));
                state
            }
        }
    }

    fn health(&mut self, bytes: Option<Vec<u8>>) -> Arc<Health> {
        if self.health.0 != bytes {
            let health = Arc::new(Health::parse(bytes.as_deref()));
            self.health = (bytes, health);
        }
        self.health.1.clone()
    }
}
