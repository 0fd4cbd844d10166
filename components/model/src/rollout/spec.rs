//! What an operator asks for: the rollout spec with its steps, pauses and
//! analysis limits, and its checks against the config in force.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use super::duration::{duration_text, format_duration, parse_duration};
use crate::defaults::is_default;
use crate::webhook::{self, Webhook};
use crate::{Config, ConfigError, Problem, Service};

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
