//! The component registry: builds of the policy components pushed through
//! the admin API, stored content-addressed (SHA-256) in the key-value
//! store every node shares, admitted before any traffic reaches them, put
//! in force and rolled back while traffic flows, with a history of every
//! transition. Every node follows the versions in force in the store (see
//! [`crate::native`]); the node that takes the request answers once it
//! serves the change itself.

mod api;
mod canary;
mod lane;
pub mod records;

use std::sync::Arc;
use std::time::Duration;
use upshift_core::clock::now_ms;

use http::StatusCode;
use serde_json::{Value, json};
use upshift_model::keys;

use crate::capabilities::kv::{KvBackend, KvError};
use crate::native::Refusal;
use records::{Action, InForce, Pushed, Transition, sha256_hex};

pub use api::PREFIX;
pub use lane::Lane;

/// The key-value store the registry keeps its records in: the gateway's.
const BUCKET: &str = "default";

/// How long a switch may take on the node that takes the request before
/// the request fails (the switch still completes later).
const SWITCH_WAIT: Duration = Duration::from_secs(60);

/// How many history entries `history` returns, newest last.
const HISTORY_LIMIT: u64 = 1000;

/// Why a registry request fails.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No component of the gateway has that name.
    #[error("no component of the gateway is named `{0}`")]
    UnknownComponent(String),
    /// The gateway component does not serve requests on this node.
    #[error(
        "`{0}` does not serve requests on this node's native lane, where the host \
         orchestrates: upgrade it on Spin, or on the component lane (`upshift up --lane component`)"
    )]
    NotServed(String),
    /// The component has no such pushed version.
    #[error("`{name}` has no pushed version `{version}`")]
    UnknownVersion {
        /// The component.
        name: String,
        /// The version asked for.
        version: String,
    },
    /// The build was refused; the version in force stays.
    #[error("version {sha256} of `{name}` is refused, the version in force stays: {refusal}")]
    Refused {
        /// The component.
        name: String,
        /// SHA-256 of the refused bytes.
        sha256: String,
        /// Why.
        refusal: Refusal,
    },
    /// A canary of some component runs already.
    #[error("a canary of `{0}` runs: promote it or roll it back first")]
    CanaryInProgress(String),
    /// `promote` with no canary running.
    #[error("no canary of `{0}` runs")]
    NoCanary(String),
    /// The canary's plan is not valid.
    #[error("invalid canary: {0}")]
    InvalidPlan(String),
    /// `rollback` with nothing in force before.
    #[error("`{0}` has no earlier version to roll back to")]
    NothingToRollBack(String),
    /// The store failed.
    #[error("the key-value store failed: {0}")]
    Store(#[from] KvError),
    /// A record in the store cannot be read.
    #[error("{0}")]
    Unreadable(String),
    /// Other changes kept winning the compare-and-swap.
    #[error("other changes of the components kept going first; try again")]
    Contended,
    /// The registry's own work failed.
    #[error("the registry failed: {0}")]
    Internal(String),
    /// The change is stored but this node could not load it.
    #[error("the change is recorded, but this node does not serve it: {0}")]
    Switch(String),
}

impl RegistryError {
    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            RegistryError::UnknownComponent(_) | RegistryError::UnknownVersion { .. } => {
                StatusCode::NOT_FOUND
            }
            RegistryError::Refused { .. } | RegistryError::InvalidPlan(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            RegistryError::NothingToRollBack(_)
            | RegistryError::NotServed(_)
            | RegistryError::Contended
            | RegistryError::CanaryInProgress(_)
            | RegistryError::NoCanary(_) => StatusCode::CONFLICT,
            RegistryError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            RegistryError::Unreadable(_)
            | RegistryError::Internal(_)
            | RegistryError::Switch(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable error code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::UnknownComponent(_) => "component_not_found",
            RegistryError::UnknownVersion { .. } => "component_version_not_found",
            RegistryError::NotServed(_) => "component_not_served",
            RegistryError::Refused { .. } => "component_refused",
            RegistryError::NothingToRollBack(_) => "nothing_to_roll_back",
            RegistryError::CanaryInProgress(_) => "canary_in_progress",
            RegistryError::NoCanary(_) => "no_canary",
            RegistryError::InvalidPlan(_) => "invalid_canary",
            RegistryError::Store(_) => "store_unavailable",
            RegistryError::Unreadable(_) => "store_unreadable",
            RegistryError::Contended => "contended",
            RegistryError::Internal(_) => "internal",
            RegistryError::Switch(_) => "switch_failed",
        }
    }
}

/// Who asks for a change, and why: recorded in the history.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// The registry of one gateway's components.
pub struct Registry {
    lane: Lane,
    kv: Arc<dyn KvBackend>,
    /// The admin API's bearer tokens: full and read-only (empty: none).
    tokens: (String, String),
}

impl Registry {
    /// The registry of `lane`'s components, over `kv`, answering requests
    /// that carry the admin token `full` (or, for reads, `read`).
    pub fn new(lane: Lane, kv: Arc<dyn KvBackend>, full: String, read: String) -> Self {
        Self {
            lane,
            kv,
            tokens: (full, read),
        }
    }

    /// Whether `name` is one of the components the registry changes.
    pub fn has(&self, name: &str) -> bool {
        self.lane.has(name)
    }

    /// Pushes `bytes` as a version of `name` and puts it in force, unless
    /// it is in force already; returns once this node serves it.
    pub async fn replace(
        self: &Arc<Self>,
        name: &str,
        bytes: Vec<u8>,
        actor: Actor,
    ) -> Result<(), RegistryError> {
        let (registry, name) = (self.clone(), name.to_owned());
        let changed = off_thread(move || {
            let (pushed, _) = registry.push(&name, &bytes, &actor)?;
            let serving = registry
                .lane
                .entries()
                .into_iter()
                .any(|entry| entry.serving.as_deref() == Some(pushed.sha256.as_str()));
            if registry.in_force()?.current(&name) == Some(pushed.sha256.as_str()) && serving {
                return Ok(None);
            }
            registry.upgrade(&name, &pushed.sha256, &actor).map(Some)
        })
        .await?;
        match changed {
            Some(changed) => self.settle(&changed).await,
            None => Ok(()),
        }
    }

    /// Fails unless `name` is one of the components the registry changes.
    fn known(&self, name: &str) -> Result<(), RegistryError> {
        if self.lane.has(name) {
            Ok(())
        } else if matches!(self.lane, Lane::Native(_)) && self.lane.gateway() == name {
            Err(RegistryError::NotServed(name.to_owned()))
        } else {
            Err(RegistryError::UnknownComponent(name.to_owned()))
        }
    }

    /// Every component: the version in force, the manifest's build, the
    /// versions before and the pushed ones.
    fn list(&self) -> Result<Value, RegistryError> {
        let in_force = self.in_force()?;
        let entries = self.lane.entries();
        let mut components = Vec::with_capacity(entries.len());
        for entry in entries {
            let name = &*entry.name;
            let slot = in_force.0.get(name).cloned().unwrap_or_default();
            let keys: Vec<String> = slot
                .pushed
                .iter()
                .map(|sha256| keys::component_version(name, sha256))
                .collect();
            let pushed: Vec<Value> = self
                .kv
                .get_many(BUCKET, &keys)?
                .into_iter()
                .zip(&slot.pushed)
                .filter_map(|(bytes, sha256)| {
                    let mut record = serde_json::from_slice::<Value>(&bytes?).ok()?;
                    record["ready"] = self.lane.is_ready(sha256).into();
                    Some(record)
                })
                .collect();
            components.push(json!({
                "name": name,
                "interface": entry.interface,
                "world": entry.world,
                "in_force": slot.current,
                "serving": entry.serving,
                "manifest_sha256": &*entry.manifest_sha256,
                "previous": slot.previous,
                "canary": slot.canary,
                "pushed": pushed,
            }));
        }
        Ok(json!({ "components": components }))
    }

    /// Stores and admits `bytes` as a version of `name`, not in force yet.
    /// Returns its record, and whether it is new.
    fn push(
        &self,
        name: &str,
        bytes: &[u8],
        actor: &Actor,
    ) -> Result<(Pushed, bool), RegistryError> {
        self.known(name)?;
        let sha256 = sha256_hex(bytes);
        self.lane
            .admit(name, bytes)
            .map_err(|refusal| RegistryError::Refused {
                name: name.to_owned(),
                sha256: sha256.clone(),
                refusal,
            })?;
        let record_key = keys::component_version(name, &sha256);
        if let Some(stored) = self.kv.get(BUCKET, &record_key)? {
            return Ok((
                unreadable(&record_key, serde_json::from_slice(&stored))?,
                false,
            ));
        }
        let record = Pushed {
            sha256: sha256.clone(),
            size: bytes.len() as u64,
            by: actor.by.clone(),
            at_ms: now_ms(),
            reason: actor.reason.clone(),
        };
        let record_bytes = serde_json::to_vec(&record).expect("records serialize");
        // The bytes first: a version is listed only once every node can get it.
        self.kv.set_many(
            BUCKET,
            &[
                (keys::component_blob(&sha256), bytes.to_vec()),
                (record_key, record_bytes),
            ],
        )?;
        let (before, _) = self.update(|in_force| {
            let slot = in_force.0.entry(name.to_owned()).or_default();
            if !slot.pushed.contains(&sha256) {
                slot.pushed.push(sha256.clone());
            }
            Ok(())
        })?;
        self.record(
            name,
            Action::Push,
            before.current(name),
            Some(&sha256),
            actor,
        )?;
        Ok((record, true))
    }

    /// Puts pushed version `sha256` of `name` in force on every node, after
    /// admitting it again against the config in force now.
    fn upgrade(&self, name: &str, sha256: &str, actor: &Actor) -> Result<Changed, RegistryError> {
        self.known(name)?;
        let bytes = self.pushed_bytes(name, sha256)?;
        if let Some((running, _)) = self.in_force()?.canary() {
            return Err(RegistryError::CanaryInProgress(running.to_owned()));
        }
        self.lane
            .admit(name, &bytes)
            .map_err(|refusal| RegistryError::Refused {
                name: name.to_owned(),
                sha256: sha256.to_owned(),
                refusal,
            })?;
        self.change(name, Action::Upgrade, actor, |slot| {
            if slot.current.as_deref() != Some(sha256) {
                let before = slot.current.replace(sha256.to_owned());
                slot.previous.push(before);
            }
            Ok(())
        })
    }

    /// Puts the version in force before the current one of `name` back in
    /// force on every node.
    fn rollback(&self, name: &str, actor: &Actor) -> Result<Changed, RegistryError> {
        self.known(name)?;
        self.change(name, Action::Rollback, actor, |slot| {
            let back = slot
                .previous
                .pop()
                .ok_or_else(|| RegistryError::NothingToRollBack(name.to_owned()))?;
            slot.current = back;
            Ok(())
        })
    }

    /// Changes `name`'s slot and records the transition.
    fn change(
        &self,
        name: &str,
        action: Action,
        actor: &Actor,
        change: impl Fn(&mut records::Slot) -> Result<(), RegistryError>,
    ) -> Result<Changed, RegistryError> {
        let (before, after) =
            self.update(|in_force| change(in_force.0.entry(name.to_owned()).or_default()))?;
        let (from, to) = (before.current(name), after.current(name));
        self.record(name, action, from, to, actor)?;
        Ok(Changed {
            name: name.to_owned(),
            action,
            from: from.map(str::to_owned),
            in_force: after,
        })
    }

    /// Waits until this node serves `changed`.
    async fn settle(&self, changed: &Changed) -> Result<(), RegistryError> {
        self.lane
            .follow(changed.in_force.clone(), SWITCH_WAIT)
            .await
            .map_err(RegistryError::Switch)
    }

    /// The history of `name`, oldest first (the last [`HISTORY_LIMIT`]).
    fn history(&self, name: &str) -> Result<Vec<Transition>, RegistryError> {
        self.known(name)?;
        let newest = self
            .kv
            .increment(BUCKET, &keys::component_history_seq(name), 0)?;
        let newest = u64::try_from(newest).unwrap_or(0);
        let keys: Vec<String> = (newest.saturating_sub(HISTORY_LIMIT - 1).max(1)..=newest)
            .map(|n| keys::component_history(name, n))
            .collect();
        let mut entries = Vec::with_capacity(keys.len());
        for (key, bytes) in keys.iter().zip(self.kv.get_many(BUCKET, &keys)?) {
            if let Some(bytes) = bytes {
                entries.push(unreadable(key, serde_json::from_slice(&bytes))?);
            }
        }
        Ok(entries)
    }

    fn in_force(&self) -> Result<InForce, RegistryError> {
        let bytes = self.kv.get(BUCKET, keys::COMPONENTS_IN_FORCE)?;
        unreadable(keys::COMPONENTS_IN_FORCE, InForce::parse(bytes.as_deref()))
    }

    /// Applies `change` to the versions in force by compare-and-swap;
    /// returns them before and after.
    fn update(
        &self,
        change: impl Fn(&mut InForce) -> Result<(), RegistryError>,
    ) -> Result<(InForce, InForce), RegistryError> {
        for _ in 0..32 {
            let stored = self.kv.get(BUCKET, keys::COMPONENTS_IN_FORCE)?;
            let before = unreadable(keys::COMPONENTS_IN_FORCE, InForce::parse(stored.as_deref()))?;
            let mut after = before.clone();
            change(&mut after)?;
            let bytes = serde_json::to_vec(&after).expect("records serialize");
            if self.kv.compare_and_swap(
                BUCKET,
                keys::COMPONENTS_IN_FORCE,
                stored.as_deref(),
                &bytes,
            )? {
                return Ok((before, after));
            }
        }
        Err(RegistryError::Contended)
    }

    /// Appends a transition to `name`'s history.
    fn record(
        &self,
        name: &str,
        action: Action,
        from: Option<&str>,
        to: Option<&str>,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        let n = self
            .kv
            .increment(BUCKET, &keys::component_history_seq(name), 1)?;
        let n = u64::try_from(n).unwrap_or(0);
        let entry = Transition {
            n,
            at_ms: now_ms(),
            action,
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            by: actor.by.clone(),
            reason: actor.reason.clone(),
        };
        let bytes = serde_json::to_vec(&entry).expect("records serialize");
        self.kv
            .set(BUCKET, &keys::component_history(name, n), &bytes)?;
        tracing::info!(
            component = %name,
            action = ?action,
            from = from.unwrap_or("manifest"),
            to = to.unwrap_or("manifest"),
            by = %actor.by,
            reason = %actor.reason,
            "component registry"
        );
        Ok(())
    }
}

/// A change of the versions in force of one component.
struct Changed {
    name: String,
    action: Action,
    from: Option<String>,
    in_force: InForce,
}

impl Changed {
    fn to_json(&self) -> Value {
        let slot = self.in_force.0.get(&self.name);
        json!({
            "name": self.name,
            "action": self.action,
            "from": self.from,
            "in_force": slot.and_then(|s| s.current.as_deref()),
            "previous": slot.map(|s| &s.previous),
        })
    }
}

/// Runs registry work that reads the store or compiles off the async
/// threads.
async fn off_thread<R: Send + 'static>(
    work: impl FnOnce() -> Result<R, RegistryError> + Send + 'static,
) -> Result<R, RegistryError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(RegistryError::Internal(e.to_string())))
}

fn unreadable<T>(key: &str, parsed: serde_json::Result<T>) -> Result<T, RegistryError> {
    parsed.map_err(|e| RegistryError::Unreadable(format!("{key} cannot be read: {e}")))
}
