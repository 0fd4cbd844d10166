//! A rollout under way: its phase, step and gates, the transitions that
//! move it, and the weights it gives the stable and canary versions.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::{Pause, RolloutSpec, Step};
use crate::Config;
use crate::defaults::is_default;
use crate::webhook::{HookKind, Webhook};

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Moving through its steps.
    Progressing,
    /// Held by an operator or by an unhealthy baseline; keeps the step's weights.
    Paused,
    /// Done: the canary takes all traffic.
    Promoted,
    /// Stopped by the analysis: the stable takes all traffic.
    RolledBack,
    /// Stopped by an operator: the stable takes all traffic.
    Aborted,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::Promoted => "promoted",
            Phase::RolledBack => "rolled back",
            Phase::Aborted => "aborted",
        })
    }
}

/// Who moved a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The analysis, on some node.
    Auto,
    /// An operator, through the admin API.
    Admin,
    /// A webhook's answer at a gate.
    Webhook,
}

/// One move of a rollout, as stored in its audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The rollout's id.
    #[serde(default)]
    pub rollout: String,
    /// The rollout's revision after the move.
    #[serde(default)]
    pub revision: u64,
    /// When, in Unix milliseconds.
    pub at_ms: u64,
    /// The phase before; `None` when the rollout started.
    pub from_phase: Option<Phase>,
    /// The phase after.
    pub to_phase: Phase,
    /// The step before.
    pub from_step: usize,
    /// The step after.
    pub to_step: usize,
    /// Why, for people.
    pub reason: String,
    /// Who.
    pub actor: Actor,
}

/// A manual transition that does not apply to the rollout as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// The rollout has already finished.
    #[error("the rollout has already finished ({0})")]
    Finished(Phase),
    /// Pausing a paused rollout.
    #[error("the rollout is already paused")]
    AlreadyPaused,
    /// Resuming a rollout that is neither paused nor waiting at a manual step.
    #[error("the rollout is neither paused nor waiting at a manual step")]
    NotWaiting,
}

/// Whether `version` of `service` takes a share of new requests by
/// weight: under a rollout of the service (whatever its phase, as the
/// splitter reads it), its share there; else the config's weights (the
/// first version when none sets one). Pins and match rules aside.
pub fn takes_new_requests(
    config: &Config,
    rollout: Option<&RolloutState>,
    service: &str,
    version: &str,
) -> bool {
    let Some(service) = config.service(service) else {
        return false;
    };
    let has = |name: &str| service.versions.iter().any(|v| v.name == name);
    if let Some(state) = rollout.filter(|s| {
        s.spec.service == service.name
            && s.spec.stable != s.spec.canary
            && has(&s.spec.stable)
            && has(&s.spec.canary)
    }) {
        let (stable, canary) = state.weights();
        return (version == state.spec.stable && stable > 0)
            || (version == state.spec.canary && canary > 0);
    }
    if service.versions.iter().all(|v| v.weight.is_none()) {
        return service.versions.first().is_some_and(|v| v.name == version);
    }
    service
        .versions
        .iter()
        .any(|v| v.name == version && v.weight.unwrap_or(0) > 0)
}

/// A rollout in progress or finished: the document under
/// [`keys::rollout_state`](crate::keys::rollout_state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Identifies this rollout among the service's rollouts; one key
    /// segment (no `/`), as the step counters are keyed by it.
    pub id: String,
    /// Starts at 1, grows by one with every transition.
    pub revision: u64,
    /// What was asked for.
    pub spec: RolloutSpec,
    /// Where it stands.
    pub phase: Phase,
    /// Index of the current step in `spec.steps`.
    pub step: usize,
    /// When the current step started, in Unix milliseconds.
    pub step_started_ms: u64,
    /// When the state last changed, in Unix milliseconds.
    pub updated_ms: u64,
    /// Why it last changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Breaches in a row in the current step, tolerated under
    /// [`Analysis::failure_limit`](crate::rollout::Analysis::failure_limit).
    #[serde(default, skip_serializing_if = "is_default")]
    pub breaches: u32,
    /// The verdict a dry run last recorded in the current step
    /// (`pass`, `breach`, …), so that each change is recorded once.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dry_run_verdict: String,
    /// The gate the rollout waits at for its webhooks, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<Gate>,
    /// The revision up to which the webhooks have been told of the
    /// transitions.
    #[serde(default, skip_serializing_if = "is_default")]
    pub hooked: u64,
}

/// A gate a rollout waits at until its webhooks of one kind answer 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Before the first step: the canary takes no traffic yet.
    PreRollout,
    /// The current step has passed: the move to the next step (or the
    /// promotion after the last) waits for confirmation.
    Confirm,
}

impl RolloutState {
    /// A rollout of `spec` starting at its first step at `now_ms`.
    pub fn start(
        spec: RolloutSpec,
        id: impl Into<String>,
        now_ms: u64,
    ) -> (RolloutState, Transition) {
        let mut state = RolloutState {
            id: id.into(),
            revision: 1,
            spec,
            phase: Phase::Progressing,
            step: 0,
            step_started_ms: now_ms,
            updated_ms: now_ms,
            reason: "started".to_owned(),
            breaches: 0,
            dry_run_verdict: String::new(),
            awaiting: None,
            hooked: 0,
        };
        if !state.hooks(HookKind::PreRollout).is_empty() {
            state.awaiting = Some(Gate::PreRollout);
            state.reason =
                "started: the canary takes no traffic until the pre-rollout hooks pass".to_owned();
        }
        let transition = Transition {
            rollout: state.id.clone(),
            revision: state.revision,
            at_ms: now_ms,
            from_phase: None,
            to_phase: Phase::Progressing,
            from_step: 0,
            to_step: 0,
            reason: state.reason.clone(),
            actor: Actor::Admin,
        };
        (state, transition)
    }

    /// The stable's and the canary's share of traffic, in percent: the
    /// current step's while progressing or paused, all to the canary once
    /// promoted, all to the stable once rolled back or aborted.
    pub fn weights(&self) -> (u32, u32) {
        if self.awaiting == Some(Gate::PreRollout) && self.is_active() {
            return (100, 0);
        }
        match self.phase {
            Phase::Progressing | Phase::Paused => {
                let canary = self.current_step().map_or(0, |s| s.weight.min(100));
                (100 - canary, canary)
            }
            Phase::Promoted => (0, 100),
            Phase::RolledBack | Phase::Aborted => (100, 0),
        }
    }

    /// Whether the rollout is still moving or paused (not finished).
    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Progressing | Phase::Paused)
    }

    /// The current step (the last one if `step` is out of range).
    pub fn current_step(&self) -> Option<&Step> {
        self.spec.steps.get(self.step).or(self.spec.steps.last())
    }

    /// Whether the current step is the last.
    pub fn at_last_step(&self) -> bool {
        self.step + 1 >= self.spec.steps.len()
    }

    /// The rollout's webhooks of `kind`.
    pub fn hooks(&self, kind: HookKind) -> Vec<&Webhook> {
        self.spec
            .webhooks
            .iter()
            .filter(|h| h.kind == kind)
            .collect()
    }

    /// The kind of hook that confirms leaving the current step:
    /// `confirm_promotion` after the last step, else `confirm_step`.
    pub fn confirm_kind(&self) -> HookKind {
        if self.at_last_step() {
            HookKind::ConfirmPromotion
        } else {
            HookKind::ConfirmStep
        }
    }

    /// The kind of the hooks the rollout waits for, if it waits at a gate.
    pub fn gate_kind(&self) -> Option<HookKind> {
        match self.awaiting? {
            Gate::PreRollout => Some(HookKind::PreRollout),
            Gate::Confirm => Some(self.confirm_kind()),
        }
    }

    /// Whether the webhooks have work: transitions not yet told, or a gate
    /// to ask.
    pub fn hooks_due(&self) -> bool {
        !self.spec.webhooks.is_empty()
            && (self.hooked < self.revision || (self.is_active() && self.awaiting.is_some()))
    }

    /// Passes the gate the rollout waits at, as its hooks allowed: after
    /// the pre-rollout hooks the first step starts; after the confirm
    /// hooks the rollout moves to the next step, or is promoted after the
    /// last. `None` when it waits at no gate.
    pub fn pass_gate(&mut self, now_ms: u64, why: &str, actor: Actor) -> Option<Transition> {
        let gate = self.awaiting.filter(|_| self.phase == Phase::Progressing)?;
        Some(match gate {
            Gate::PreRollout => {
                let transition = self.transition(
                    Phase::Progressing,
                    self.step,
                    now_ms,
                    format!("pre-rollout gate passed ({why}): the first step starts"),
                    actor,
                );
                self.awaiting = None;
                self.step_started_ms = now_ms;
                transition
            }
            Gate::Confirm if self.at_last_step() => self.transition(
                Phase::Promoted,
                self.step,
                now_ms,
                format!("promotion confirmed ({why})"),
                actor,
            ),
            Gate::Confirm => self.transition(
                Phase::Progressing,
                self.step + 1,
                now_ms,
                format!(
                    "step {} of {} confirmed ({why})",
                    self.step + 1,
                    self.spec.steps.len()
                ),
                actor,
            ),
        })
    }

    /// Holds the rollout at its current step.
    pub fn pause(
        &mut self,
        now_ms: u64,
        reason: impl Into<String>,
    ) -> Result<Transition, RolloutError> {
        match self.phase {
            Phase::Progressing => {
                Ok(self.transition(Phase::Paused, self.step, now_ms, reason, Actor::Admin))
            }
            Phase::Paused => Err(RolloutError::AlreadyPaused),
            finished => Err(RolloutError::Finished(finished)),
        }
    }

    /// Continues a paused rollout at its step, whose pause starts again, or
    /// passes the manual step or the webhook gate it waits at (to the next
    /// step, or promoted after the last).
    pub fn resume(&mut self, now_ms: u64) -> Result<Transition, RolloutError> {
        if self.phase == Phase::Progressing
            && let Some(transition) = self.pass_gate(now_ms, "by an operator", Actor::Admin)
        {
            return Ok(transition);
        }
        match self.phase {
            Phase::Paused => {
                let transition = self.transition(
                    Phase::Progressing,
                    self.step,
                    now_ms,
                    "resumed: the step's pause starts again",
                    Actor::Admin,
                );
                self.step_started_ms = now_ms;
                self.breaches = 0;
                Ok(transition)
            }
            Phase::Progressing
                if self
                    .current_step()
                    .is_some_and(|s| s.pause == Pause::Manual) =>
            {
                let reason = "manual step approved";
                Ok(if self.at_last_step() {
                    self.transition(Phase::Promoted, self.step, now_ms, reason, Actor::Admin)
                } else {
                    self.transition(
                        Phase::Progressing,
                        self.step + 1,
                        now_ms,
                        reason,
                        Actor::Admin,
                    )
                })
            }
            Phase::Progressing => Err(RolloutError::NotWaiting),
            finished => Err(RolloutError::Finished(finished)),
        }
    }

    /// Sends all traffic to the canary now, skipping the remaining steps.
    pub fn promote(&mut self, now_ms: u64) -> Result<Transition, RolloutError> {
        self.finish(Phase::Promoted, now_ms, "promoted by an operator")
    }

    /// Sends all traffic back to the stable now.
    pub fn abort(
        &mut self,
        now_ms: u64,
        reason: impl Into<String>,
    ) -> Result<Transition, RolloutError> {
        self.finish(Phase::Aborted, now_ms, reason)
    }

    fn finish(
        &mut self,
        phase: Phase,
        now_ms: u64,
        reason: impl Into<String>,
    ) -> Result<Transition, RolloutError> {
        if !self.is_active() {
            return Err(RolloutError::Finished(self.phase));
        }
        let step = if phase == Phase::Promoted {
            self.spec.steps.len().saturating_sub(1)
        } else {
            self.step
        };
        Ok(self.transition(phase, step, now_ms, reason, Actor::Admin))
    }

    /// Moves to `phase` at `step`: bumps the revision, restarts the step
    /// clock when the step changes, and describes the move.
    pub fn transition(
        &mut self,
        phase: Phase,
        step: usize,
        now_ms: u64,
        reason: impl Into<String>,
        actor: Actor,
    ) -> Transition {
        if step != self.step || phase != self.phase {
            self.awaiting = None;
        }
        let transition = Transition {
            rollout: self.id.clone(),
            revision: self.revision + 1,
            at_ms: now_ms,
            from_phase: Some(self.phase),
            to_phase: phase,
            from_step: self.step,
            to_step: step,
            reason: reason.into(),
            actor,
        };
        if step != self.step {
            self.step_started_ms = now_ms;
            self.breaches = 0;
            self.dry_run_verdict.clear();
        }
        self.phase = phase;
        self.step = step;
        self.revision += 1;
        self.updated_ms = now_ms;
        self.reason.clone_from(&transition.reason);
        transition
    }
}
