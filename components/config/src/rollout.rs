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

use crate::webhook::{self, HookKind, Webhook};
use crate::{Config, ConfigError, Problem, Service};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A rollout as an operator asks for it, in YAML or JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// The service whose traffic moves.
    pub service: String,
    /// The version traffic moves to.
    pub canary: String,
    /// The version traffic moves from. When absent (empty),
    /// [`RolloutSpec::parse`] fills it in: the version with the highest
    /// weight in the config in force (the first one when none has a weight),
    /// other than the canary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable: String,
    /// The canary's share at each step, in order.
    #[serde(default = "default_steps")]
    pub steps: Vec<Step>,
    /// What each step must show before the next.
    #[serde(default, skip_serializing_if = "is_default")]
    pub analysis: Analysis,
    /// Calls to the team's own systems: gates the rollout waits for, and
    /// notifications of its transitions (see [`webhook`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
}

/// One step of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The canary's share of traffic, 0–100 (the stable takes the rest).
    pub weight: u32,
    /// How long the step lasts at least, or `manual` to wait for an operator.
    #[serde(default = "default_pause")]
    pub pause: Pause,
    /// Requests with all these headers (lower-case names, exact values) go
    /// to the canary whatever the weight: testers reach it while the
    /// public share stays.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header_route: BTreeMap<String, String>,
    /// Share of the stable's requests, 0–100, copied to the canary as
    /// shadow copies (their answers discarded and compared): with weight
    /// 0, a step that judges the canary before any live traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<f64>,
}

/// How a step ends once its analysis passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Pause {
    /// After this long (`30s`, `2m`, `500ms`, `1h`).
    For(Duration),
    /// When an operator resumes the rollout (`manual`).
    Manual,
}

impl TryFrom<String> for Pause {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text == "manual" {
            return Ok(Pause::Manual);
        }
        parse_duration(&text)
            .map(Pause::For)
            .ok_or_else(|| format!("{text:?} is not a duration like 30s, 2m or 500ms, or manual"))
    }
}

impl From<Pause> for String {
    fn from(pause: Pause) -> String {
        match pause {
            Pause::Manual => "manual".to_owned(),
            Pause::For(duration) => format_duration(duration),
        }
    }
}

/// The checks on a step's counters: the canary's against absolute limits
/// and against the stable's. Rates are fractions (`0.05` is 5%). Limits are
/// inclusive: a value exactly at its limit passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Requests each side needs in a step before it is judged.
    #[serde(
        default = "default_min_requests",
        skip_serializing_if = "is_default_min_requests"
    )]
    pub min_requests: u64,
    /// How often a node re-checks a running rollout.
    #[serde(
        default = "default_interval",
        skip_serializing_if = "is_default_interval",
        with = "duration_text"
    )]
    pub interval: Duration,
    /// Highest error rate of the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Highest p99 latency of the canary, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_ms: Option<u32>,
    /// Highest excess of the canary's error rate over the stable's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate_increase: Option<f64>,
    /// Highest ratio of the canary's p99 latency to the stable's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_ratio: Option<f64>,
    /// Highest excess of the canary's mean latency over the stable's, as a
    /// fraction of the stable's (`0.1`: 10% slower).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_increase: Option<f64>,
    /// Confidence of the comparisons with the stable (`0.95`). When set, a
    /// canary worse than `max_error_rate_increase` or
    /// `max_latency_increase` allow breaches only if the difference is
    /// significant at this confidence (Fisher's exact test for errors,
    /// Mann–Whitney U for latencies); until then the step is inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Highest share of the canary's shadow copies that differ from the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_shadow_mismatch_rate: Option<f64>,
    /// Highest share of the canary's compared shadow copies whose answer
    /// differs from the primary's in a field that is not noise. Setting it
    /// turns on answer diffing for the rollout's shadow copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_shadow_diff_rate: Option<f64>,
    /// Answer fields never compared (`$.id`, `$.items[*].updated_at`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff_ignore: Vec<String>,
    /// Highest cost per request of the canary, in US dollars (model
    /// canaries: from the models' prices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_per_request: Option<f64>,
    /// Highest ratio of the canary's cost per request to the stable's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_per_request_ratio: Option<f64>,
    /// Highest mean time to the first token of the canary's AI answers,
    /// in milliseconds (to the whole answer when not streamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttft_ms: Option<u32>,
    /// Highest ratio of the canary's mean time to the first token to the
    /// stable's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttft_ratio: Option<f64>,
    /// Lowest output speed of the canary's AI answers, in tokens per
    /// second of generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens_per_second: Option<f64>,
    /// Highest share of the canary's AI answers that are refusals: stopped
    /// by a content filter (`content_filter`, Anthropic's `refusal`,
    /// Gemini's `SAFETY`), or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_refusal_rate: Option<f64>,
    /// How long after a step starts its analysis begins (warm-up).
    #[serde(
        default,
        skip_serializing_if = "Duration::is_zero",
        with = "duration_text"
    )]
    pub initial_delay: Duration,
    /// How long a step may run past its pause while its analysis is
    /// inconclusive (too little data, or a difference not yet
    /// significant) before the rollout pauses with the reason. A rollout
    /// never fails for lack of data.
    #[serde(
        default = "default_inconclusive_limit",
        skip_serializing_if = "is_default_inconclusive_limit",
        with = "duration_text"
    )]
    pub inconclusive_limit: Duration,
    /// Breaches in a row tolerated before rolling back (0: the first).
    #[serde(default, skip_serializing_if = "is_default")]
    pub failure_limit: u32,
    /// Judge and record in the audit trail, never act: steps advance on
    /// their pauses whatever the analysis says.
    #[serde(default, skip_serializing_if = "is_default")]
    pub dry_run: bool,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            min_requests: default_min_requests(),
            interval: default_interval(),
            max_error_rate: None,
            max_p99_ms: None,
            max_error_rate_increase: None,
            max_p99_ratio: None,
            max_shadow_mismatch_rate: None,
            max_shadow_diff_rate: None,
            diff_ignore: Vec::new(),
            max_cost_per_request: None,
            max_cost_per_request_ratio: None,
            max_latency_increase: None,
            max_ttft_ms: None,
            max_ttft_ratio: None,
            min_tokens_per_second: None,
            max_refusal_rate: None,
            confidence: None,
            initial_delay: Duration::ZERO,
            inconclusive_limit: default_inconclusive_limit(),
            failure_limit: 0,
            dry_run: false,
        }
    }
}

impl RolloutSpec {
    /// Parses and validates a rollout request (YAML or JSON) against the
    /// config in force: the service and versions exist, there is at least
    /// one step, weights are 0–100 and never decrease, limits are in range.
    /// Fills in `stable` when absent.
    pub fn parse(text: &str, config: &Config) -> Result<RolloutSpec, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let mut spec: RolloutSpec =
            serde_path_to_error::deserialize(de).map_err(ConfigError::syntax)?;
        let mut problems = Vec::new();
        match config.service(&spec.service) {
            None => problems.push(Problem::new(
                "service",
                format!("unknown service {:?}", spec.service),
            )),
            Some(service) => spec.check_versions(&service, &mut problems),
        }
        spec.check_steps(&mut problems);
        spec.analysis.check(&mut problems);
        webhook::check(&spec.webhooks, &mut problems);
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Checks the steps and the analysis alone, as [`RolloutSpec::parse`]
    /// does: for plans whose versions are not a service's (component
    /// canaries).
    pub fn check_plan(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        self.check_steps(&mut problems);
        for (i, step) in self.steps.iter().enumerate() {
            if !step.header_route.is_empty() || step.mirror.is_some() {
                problems.push(Problem::new(
                    format!("steps[{i}]"),
                    "header_route and mirror apply to service rollouts only",
                ));
            }
        }
        if !self.webhooks.is_empty() {
            problems.push(Problem::new(
                "webhooks",
                "webhooks apply to service rollouts only",
            ));
        }
        self.analysis.check(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    fn check_versions(&mut self, service: &Service, problems: &mut Vec<Problem>) {
        let has = |name: &str| service.versions.iter().any(|v| v.name == name);
        let missing = |name: &str| format!("service {:?} has no version {name:?}", service.name);
        if !has(&self.canary) {
            problems.push(Problem::new("canary", missing(&self.canary)));
        }
        match self.stable.as_str() {
            "" => match default_stable(service, &self.canary) {
                Some(stable) => self.stable = stable.to_owned(),
                None => problems.push(Problem::new(
                    "stable",
                    format!(
                        "service {:?} has no other version than the canary",
                        service.name
                    ),
                )),
            },
            stable if !has(stable) => problems.push(Problem::new("stable", missing(stable))),
            stable if stable == self.canary => problems.push(Problem::new(
                "stable",
                "the stable and the canary must be different versions",
            )),
            _ => {}
        }
    }

    fn check_steps(&self, problems: &mut Vec<Problem>) {
        if self.steps.is_empty() {
            problems.push(Problem::new("steps", "a rollout needs at least one step"));
        }
        let mut previous = 0;
        for (i, step) in self.steps.iter().enumerate() {
            if step.weight > 100 {
                problems.push(Problem::new(
                    format!("steps[{i}].weight"),
                    "must be between 0 and 100",
                ));
            } else if step.weight < previous {
                problems.push(Problem::new(
                    format!("steps[{i}].weight"),
                    format!("weights must not decrease (the step before has {previous})"),
                ));
            }
            previous = previous.max(step.weight);
            if let Some(mirror) = step.mirror
                && !(mirror.is_finite() && (0.0..=100.0).contains(&mirror))
            {
                problems.push(Problem::new(
                    format!("steps[{i}].mirror"),
                    "must be a percentage between 0 and 100",
                ));
            }
            for name in step.header_route.keys() {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || name.to_ascii_lowercase() != *name
                {
                    problems.push(Problem::new(
                        format!("steps[{i}].header_route"),
                        format!("{name:?} is not a lower-case header name"),
                    ));
                }
            }
        }
    }
}

impl Analysis {
    fn check(&self, problems: &mut Vec<Problem>) {
        if self.min_requests == 0 {
            problems.push(Problem::new("analysis.min_requests", "must be at least 1"));
        }
        if self.interval.is_zero() {
            problems.push(Problem::new("analysis.interval", "must be at least 1ms"));
        }
        if self.max_p99_ms == Some(0) {
            problems.push(Problem::new("analysis.max_p99_ms", "must be at least 1"));
        }
        if self.max_ttft_ms == Some(0) {
            problems.push(Problem::new("analysis.max_ttft_ms", "must be at least 1"));
        }
        for (field, value) in [
            ("max_error_rate", self.max_error_rate),
            ("max_error_rate_increase", self.max_error_rate_increase),
            ("max_shadow_mismatch_rate", self.max_shadow_mismatch_rate),
            ("max_shadow_diff_rate", self.max_shadow_diff_rate),
            ("max_refusal_rate", self.max_refusal_rate),
        ] {
            if let Some(rate) = value
                && !(0.0..=1.0).contains(&rate)
            {
                problems.push(Problem::new(
                    format!("analysis.{field}"),
                    "must be a fraction between 0 and 1",
                ));
            }
        }
        if let Some(confidence) = self.confidence
            && !(0.5..1.0).contains(&confidence)
        {
            problems.push(Problem::new(
                "analysis.confidence",
                "must be at least 0.5 and below 1 (0.95 is usual)",
            ));
        }
        if self.confidence.is_some()
            && self.max_error_rate_increase.is_none()
            && self.max_latency_increase.is_none()
        {
            problems.push(Problem::new(
                "analysis.confidence",
                "applies to max_error_rate_increase and max_latency_increase; set one",
            ));
        }
        for (i, path) in self.diff_ignore.iter().enumerate() {
            if !(path == "$" || path.starts_with("$.") || path.starts_with("$[")) {
                problems.push(Problem::new(
                    format!("analysis.diff_ignore[{i}]"),
                    format!("{path:?} is not a field path like $.id or $.items[*].at"),
                ));
            }
        }
        if let Some(increase) = self.max_latency_increase
            && !(increase.is_finite() && increase >= 0.0)
        {
            problems.push(Problem::new(
                "analysis.max_latency_increase",
                "must be a fraction of 0 or more (0.1 is 10% slower)",
            ));
        }
        for (field, value) in [
            ("max_p99_ratio", self.max_p99_ratio),
            ("max_ttft_ratio", self.max_ttft_ratio),
            ("min_tokens_per_second", self.min_tokens_per_second),
            ("max_cost_per_request", self.max_cost_per_request),
            (
                "max_cost_per_request_ratio",
                self.max_cost_per_request_ratio,
            ),
        ] {
            if let Some(number) = value
                && !(number.is_finite() && number > 0.0)
            {
                problems.push(Problem::new(
                    format!("analysis.{field}"),
                    "must be a number above 0",
                ));
            }
        }
    }
}

/// The highest-weight version of `service` other than `canary`.
fn default_stable<'s>(service: &'s Service, canary: &str) -> Option<&'s str> {
    let any_weight = service.versions.iter().any(|v| v.weight.is_some());
    service
        .versions
        .iter()
        .enumerate()
        .filter(|(_, v)| v.name != canary)
        .map(|(i, v)| {
            let weight = if any_weight {
                v.weight.unwrap_or(0)
            } else {
                u32::from(i == 0)
            };
            (weight, std::cmp::Reverse(i), v.name.as_str())
        })
        .max()
        .map(|(_, _, name)| name)
}

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
    /// [`Analysis::failure_limit`].
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

/// Parses `500ms`, `30s`, `2m`, `1h`, `90d` (a whole number and a unit).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// The shortest form [`parse_duration`] reads back to the same milliseconds.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        0 => "0s".to_owned(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

/// Serde for durations written as text (`1s`, `250ms`).
pub(crate) mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a duration like 1s or 500ms")))
    }
}

fn default_steps() -> Vec<Step> {
    [10, 25, 50, 100]
        .map(|weight| Step {
            weight,
            pause: default_pause(),
            header_route: BTreeMap::new(),
            mirror: None,
        })
        .to_vec()
}

fn default_pause() -> Pause {
    Pause::For(Duration::from_secs(60))
}

fn default_min_requests() -> u64 {
    100
}

fn is_default_min_requests(n: &u64) -> bool {
    *n == default_min_requests()
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}

fn is_default_interval(d: &Duration) -> bool {
    *d == default_interval()
}

fn default_inconclusive_limit() -> Duration {
    Duration::from_secs(600)
}

fn is_default_inconclusive_limit(d: &Duration) -> bool {
    *d == default_inconclusive_limit()
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
