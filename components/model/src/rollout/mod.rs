//! Rollouts: moving a service's traffic from a stable version to a canary in
//! steps, each step judged by the analysis of its counters.
//!
//! An operator submits a [`RolloutSpec`] (`POST /admin/rollouts`); the admin
//! API starts a [`RolloutState`] and stores it as JSON under
//! [`keys::rollout_state`](crate::keys::rollout_state). The splitter reads
//! that state on every request for the weights, and moves it on by itself
//! (promote a step, roll back) with a compare-and-swap of the exact bytes it
//! read; operators move it with the manual transitions. Every move yields a
//! [`Transition`], appended to the audit keys, so the state itself stays
//! small.
//!
//! [`spec`] holds what an operator asks for, [`state`] the rollout under
//! way and its transitions, [`duration`] the durations written as text.

pub mod duration;
pub mod spec;
pub mod state;

pub(crate) use duration::duration_text;
pub use duration::{format_duration, parse_duration};
pub use spec::{Analysis, Pause, RolloutSpec, Step};
pub use state::{Actor, Gate, Phase, RolloutError, RolloutState, Transition, takes_new_requests};
