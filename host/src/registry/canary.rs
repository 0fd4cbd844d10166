//! Component canaries: a share of requests decides with a pushed version
//! of one component, moved through steps by the same rollout machinery as
//! service rollouts (`upshift_model::rollout` and `analysis`): each step's
//! counters of both sides are analysed, a passed step whose pause is over
//! leads to the next (or promotion), a breach rolls the canary back. A
//! failure of the canary build rolls it back at once.
//!
//! Every node drives the canary: it reads the state, sets its share, and
//! moves it by compare-and-swap, so among nodes racing on one move exactly
//! one makes it and records it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use upshift_model::analysis::advance;
use upshift_model::keys;
use upshift_model::metrics::{FIELDS, VersionStats};
use upshift_model::rollout::{Analysis, Phase, RolloutSpec, RolloutState, Transition};
use upshift_model::store::counter;

use super::records::{Action, InForce, is_sha256};
use super::{Actor, BUCKET, Changed, Registry, RegistryError, now_ms, off_thread, unreadable};
use crate::native::{CanaryRun, Side, Trap};

/// How often each node reads the canary's state (its share follows within
/// this).
const TICK: Duration = Duration::from_millis(200);

/// The label of the manifest's build as a canary's stable side.
const MANIFEST: &str = "manifest";

impl Registry {
    /// Starts a canary of pushed version `version` of `name` with the
    /// steps and analysis of `plan` (JSON; defaults as for rollouts, and
    /// an analysis against the stable side when none is given).
    pub(super) fn start_canary(
        &self,
        name: &str,
        plan: &Value,
        actor: &Actor,
    ) -> Result<Changed, RegistryError> {
        let version = plan
            .get("version")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RegistryError::InvalidPlan("`version` (a pushed SHA-256) is missing".into())
            })?
            .to_owned();
        let bytes = self.pushed_bytes(name, &version)?;
        self.known(name)?;
        let in_force = self.in_force()?;
        if let Some((running, _)) = in_force.canary() {
            return Err(RegistryError::CanaryInProgress(running.to_owned()));
        }
        if in_force.current(name) == Some(version.as_str()) {
            return Err(RegistryError::InvalidPlan(format!(
                "{version} is already in force"
            )));
        }
        let mut spec = json!({
            "service": name,
            "canary": version,
            "stable": in_force.current(name).unwrap_or(MANIFEST),
            "analysis": plan.get("analysis").cloned().unwrap_or_else(default_analysis),
        });
        if let Some(steps) = plan.get("steps") {
            spec["steps"] = steps.clone();
        }
        let spec: RolloutSpec =
            serde_json::from_value(spec).map_err(|e| RegistryError::InvalidPlan(e.to_string()))?;
        spec.check_plan()
            .map_err(|e| RegistryError::InvalidPlan(e.to_string()))?;
        self.lane
            .admit(name, &bytes)
            .map_err(|refusal| RegistryError::Refused {
                name: name.to_owned(),
                sha256: version.clone(),
                refusal,
            })?;

        let now = now_ms();
        let (state, _) = RolloutState::start(spec, format!("c{now}"), now);
        let key = keys::component_canary(name);
        let stored = self.kv.get(BUCKET, &key)?;
        let state_bytes = serde_json::to_vec(&state).expect("rollout states serialize");
        if !self
            .kv
            .compare_and_swap(BUCKET, &key, stored.as_deref(), &state_bytes)?
        {
            return Err(RegistryError::Contended);
        }
        let (before, after) = self.update(|in_force| {
            if let Some((running, _)) = in_force.canary() {
                return Err(RegistryError::CanaryInProgress(running.to_owned()));
            }
            in_force.0.entry(name.to_owned()).or_default().canary = Some(version.clone());
            Ok(())
        })?;
        self.record(
            name,
            Action::Canary,
            before.current(name),
            Some(&version),
            actor,
        )?;
        Ok(Changed {
            name: name.to_owned(),
            action: Action::Canary,
            from: before.current(name).map(str::to_owned),
            in_force: after,
        })
    }

    /// The canary of `name`: its state, and its step's counters per side.
    pub(super) fn canary_status(&self, name: &str) -> Result<Value, RegistryError> {
        self.known(name)?;
        let Some((state, _)) = self.canary_state(name)? else {
            return Ok(json!({ "name": name, "canary": null }));
        };
        let stable = self.step_stats(name, &state, Side::Stable)?;
        let canary = self.step_stats(name, &state, Side::Canary)?;
        let (stable_weight, canary_weight) = state.weights();
        Ok(json!({
            "name": name,
            "canary": state,
            "weights": { "stable": stable_weight, "canary": canary_weight },
            "step_counters": { "stable": stats_json(&stable), "canary": stats_json(&canary) },
        }))
    }

    /// Ends the running canary of `name` by an operator: promoted, or
    /// rolled back (`None` when none runs).
    pub(super) fn end_canary(
        &self,
        name: &str,
        promote: bool,
        actor: &Actor,
    ) -> Result<Option<Changed>, RegistryError> {
        if self
            .in_force()?
            .canary()
            .is_none_or(|(running, _)| running != name)
        {
            return Ok(None);
        }
        let Some((mut state, bytes)) = self.canary_state(name)? else {
            return Ok(None);
        };
        let now = now_ms();
        let ended = if promote {
            state.promote(now)
        } else {
            let reason = if actor.reason.is_empty() {
                "rolled back by an operator"
            } else {
                &actor.reason
            };
            state.abort(now, reason)
        };
        let transition = ended.map_err(|e| RegistryError::InvalidPlan(e.to_string()))?;
        if !self.move_canary(name, &bytes, &state, &transition, &actor.by)? {
            return Err(RegistryError::Contended);
        }
        let after = self.in_force()?;
        Ok(Some(Changed {
            name: name.to_owned(),
            action: if promote {
                Action::Promote
            } else {
                Action::Rollback
            },
            from: None,
            in_force: after,
        }))
    }

    /// Drives the running canary on this node until the process ends:
    /// sets its share, moves it on when its analysis says so, and rolls it
    /// back when its build fails here.
    pub async fn drive_canaries(self: Arc<Self>) {
        let Some(mut failures) = self.lane.canary().failures() else {
            return;
        };
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut analysed: Option<Instant> = None;
        loop {
            let failure = tokio::select! {
                _ = ticker.tick() => None,
                failure = failures.recv() => failure,
            };
            let registry = self.clone();
            let result = match failure {
                Some(trap) => off_thread(move || registry.trapped(&trap)).await,
                None => {
                    let due = analysed.map(|at| at.elapsed());
                    let work = off_thread(move || registry.tick(due)).await;
                    if let Ok(true) = work {
                        analysed = Some(Instant::now());
                    }
                    work.map(|_| ())
                }
            };
            if let Err(error) = result {
                tracing::warn!("component canary: {error}");
            }
        }
    }

    /// Reads the canary, sets this node's share, and analyses the step
    /// when its interval has passed since `since_analysis`. Returns whether
    /// it analysed.
    fn tick(&self, since_analysis: Option<Duration>) -> Result<bool, RegistryError> {
        let in_force = self.in_force()?;
        let Some((name, version)) = in_force.canary() else {
            self.lane.canary().idle();
            return Ok(false);
        };
        let Some((state, bytes)) = self.canary_state(name)? else {
            self.lane.canary().stop();
            return Ok(false);
        };
        if state.spec.canary != version || !state.is_active() {
            // Moved on another node, or by a node that did not finish the
            // move: finish it.
            self.finished(&state);
            if state.spec.canary == version {
                self.conclude(name, &state)?;
            }
            return Ok(false);
        }
        self.lane.canary().set(CanaryRun {
            name: name.into(),
            id: state.id.clone(),
            step: state.step,
            weight: state.weights().1,
        });
        if state.phase != Phase::Progressing
            || since_analysis.is_some_and(|elapsed| elapsed < state.spec.analysis.interval)
        {
            return Ok(false);
        }
        let stable = self.step_stats(name, &state, Side::Stable)?;
        let canary = self.step_stats(name, &state, Side::Canary)?;
        if let Some((next, transition)) = advance(&state, now_ms(), &stable, &canary) {
            self.move_canary(name, &bytes, &next, &transition, "analysis")?;
        }
        Ok(true)
    }

    /// Rolls the canary back after its build failed on this node.
    fn trapped(&self, trap: &Trap) -> Result<(), RegistryError> {
        let Some((mut state, bytes)) = self.canary_state(&trap.name)? else {
            return Ok(());
        };
        if state.id != trap.id || !state.is_active() {
            return Ok(());
        }
        let transition = state.transition(
            Phase::RolledBack,
            state.step,
            now_ms(),
            format!("canary {} failed: {}", state.spec.canary, trap.detail),
            upshift_model::rollout::Actor::Auto,
        );
        self.move_canary(&trap.name, &bytes, &state, &transition, "analysis")?;
        Ok(())
    }

    /// Writes `next` over the canary state `expected` and records the
    /// move; a finished canary leaves the versions in force (promoted:
    /// with its version). Returns whether the move was made here.
    fn move_canary(
        &self,
        name: &str,
        expected: &[u8],
        next: &RolloutState,
        transition: &Transition,
        by: &str,
    ) -> Result<bool, RegistryError> {
        let bytes = serde_json::to_vec(next).expect("rollout states serialize");
        if !self.kv.compare_and_swap(
            BUCKET,
            &keys::component_canary(name),
            Some(expected),
            &bytes,
        )? {
            return Ok(false);
        }
        let action = match next.phase {
            Phase::Promoted => Action::Promote,
            Phase::RolledBack | Phase::Aborted => Action::Rollback,
            Phase::Progressing | Phase::Paused => Action::Step,
        };
        let stable = (next.spec.stable != MANIFEST).then_some(next.spec.stable.as_str());
        let canary = Some(next.spec.canary.as_str());
        let (from, to) = if action == Action::Rollback {
            (canary, stable)
        } else {
            (stable, canary)
        };
        let actor = Actor {
            by: by.to_owned(),
            reason: transition.reason.clone(),
        };
        self.record(name, action, from, to, &actor)?;
        if !next.is_active() {
            self.finished(next);
            self.conclude(name, next)?;
        }
        Ok(true)
    }

    /// Sets this node's share for the finished canary `state`.
    fn finished(&self, state: &RolloutState) {
        if state.phase == Phase::Promoted {
            self.lane.canary().promoted();
        } else {
            self.lane.canary().stop();
        }
    }

    /// Takes the finished canary `state` out of the versions in force, and
    /// puts its version in force when it was promoted.
    fn conclude(&self, name: &str, state: &RolloutState) -> Result<(), RegistryError> {
        self.update(|in_force: &mut InForce| {
            let slot = in_force.0.entry(name.to_owned()).or_default();
            if slot.canary.as_deref() != Some(state.spec.canary.as_str()) {
                return Ok(());
            }
            slot.canary = None;
            if state.phase == Phase::Promoted {
                let before = slot.current.replace(state.spec.canary.clone());
                slot.previous.push(before);
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The canary state of `name` and its stored bytes, if one was started.
    fn canary_state(&self, name: &str) -> Result<Option<(RolloutState, Vec<u8>)>, RegistryError> {
        let key = keys::component_canary(name);
        match self.kv.get(BUCKET, &key)? {
            None => Ok(None),
            Some(bytes) => Ok(Some((
                unreadable(&key, serde_json::from_slice(&bytes))?,
                bytes,
            ))),
        }
    }

    /// The counters of `side` in the current step of `state`.
    fn step_stats(
        &self,
        name: &str,
        state: &RolloutState,
        side: Side,
    ) -> Result<VersionStats, RegistryError> {
        let keys: Vec<String> = FIELDS
            .iter()
            .map(|field| {
                keys::component_canary_metric(name, &state.id, state.step, side.label(), field)
            })
            .collect();
        let values = self.kv.get_many(BUCKET, &keys)?;
        Ok(VersionStats::from_fields(
            FIELDS
                .iter()
                .zip(&values)
                .map(|(field, value)| (*field, counter(value.as_deref()))),
        ))
    }

    /// The bytes of pushed version `version` of `name`.
    pub(super) fn pushed_bytes(&self, name: &str, version: &str) -> Result<Vec<u8>, RegistryError> {
        let unknown = || RegistryError::UnknownVersion {
            name: name.to_owned(),
            version: version.to_owned(),
        };
        if !is_sha256(version)
            || !self
                .kv
                .exists(BUCKET, &keys::component_version(name, version))?
        {
            return Err(unknown());
        }
        self.kv
            .get(BUCKET, &keys::component_blob(version))?
            .ok_or_else(unknown)
    }
}

/// A canary's analysis when the plan gives none: no more errors and no
/// slower p99 than the stable side (within a point and twice).
fn default_analysis() -> Value {
    serde_json::to_value(Analysis {
        max_error_rate_increase: Some(0.01),
        max_p99_ratio: Some(2.0),
        ..Analysis::default()
    })
    .expect("analyses serialize")
}

fn stats_json(stats: &VersionStats) -> Value {
    json!({
        "requests": stats.requests,
        "error_rate": stats.error_rate(),
        "p99_ms": stats.quantile_ms(0.99),
    })
}
