//! The analysis of one rollout step: the canary's counters against the
//! absolute limits and against the stable's, and the move it leads to. A
//! passed step whose pause is over leads to the next step (or promotion),
//! a breach to a roll-back, an unhealthy baseline to a pause. Service
//! rollouts (the splitter) and component canaries (the host) both move
//! this way.

use crate::metrics::VersionStats;
use crate::rollout::{Actor, Analysis, Gate, Pause, Phase, RolloutState, Transition};
use crate::statistics::{self, Proportion};

/// Rates within this of their limit count as at the limit, which passes.
const TOLERANCE: f64 = 1e-9;

/// What a step's counters say, each in words: what was compared, the
/// numbers, and why it passed or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check had enough evidence and passed.
    Pass(String),
    /// Some check lacks data, or sees the canary worse than allowed without
    /// that being significant yet; nothing is decided.
    Inconclusive(String),
    /// The canary breaks a limit: roll back.
    Breach(String),
    /// The canary breaks an absolute limit, but the stable breaks it too and
    /// the canary is not worse than the stable by the relative margin: the
    /// canary is not to blame, and not to promote either.
    BaselineUnhealthy(String),
}

impl Verdict {
    /// The verdict's name: `pass`, `inconclusive`, `breach` or
    /// `baseline_unhealthy`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Pass(_) => "pass",
            Verdict::Inconclusive(_) => "inconclusive",
            Verdict::Breach(_) => "breach",
            Verdict::BaselineUnhealthy(_) => "baseline_unhealthy",
        }
    }

    /// The account of the checks that decided it.
    pub fn detail(&self) -> &str {
        match self {
            Verdict::Pass(why)
            | Verdict::Inconclusive(why)
            | Verdict::Breach(why)
            | Verdict::BaselineUnhealthy(why) => why,
        }
    }
}

/// The findings of the checks, by what they lead to.
#[derive(Default)]
struct Findings {
    passed: Vec<String>,
    inconclusive: Vec<String>,
    breaches: Vec<String>,
    baseline: Vec<String>,
}

impl Findings {
    /// Files the account of one check, as a breach or a pass.
    fn file(&mut self, breach: bool, what: String) {
        if breach {
            self.breaches.push(what);
        } else {
            self.passed.push(what);
        }
    }

    /// A breach outweighs an unhealthy baseline, which outweighs missing
    /// evidence, which outweighs passes.
    fn verdict(self) -> Verdict {
        let words = |list: Vec<String>| list.join("; ");
        if !self.breaches.is_empty() {
            Verdict::Breach(words(self.breaches))
        } else if !self.baseline.is_empty() {
            Verdict::BaselineUnhealthy(words(self.baseline))
        } else if !self.inconclusive.is_empty() {
            Verdict::Inconclusive(words(self.inconclusive))
        } else if self.passed.is_empty() {
            Verdict::Pass("no checks configured".to_owned())
        } else {
            Verdict::Pass(words(self.passed))
        }
    }

    /// Files a comparison with the stable of a canary `increase` over the
    /// `allowed` margin: within it passes; beyond it breaches when the
    /// difference is significant at `confidence` (or, without one,
    /// always), and is inconclusive until then.
    fn compare(
        &mut self,
        what: String,
        beyond: bool,
        confidence: Option<f64>,
        test: impl FnOnce() -> (&'static str, f64),
    ) {
        if !beyond {
            self.passed
                .push(format!("{what}: within the allowed margin"));
            return;
        }
        let Some(confidence) = confidence else {
            self.breaches.push(what);
            return;
        };
        let (name, p) = test();
        let level = percent_short(confidence);
        if p <= 1.0 - confidence {
            self.breaches.push(format!(
                "{what}, significant at {level} confidence ({name}, p = {p:.2e})"
            ));
        } else {
            self.inconclusive.push(format!(
                "{what}, not significant at {level} confidence yet ({name}, p = {p:.3})"
            ));
        }
    }
}

/// Judges a step. Each side needs `min_requests` requests before its
/// request-based checks run (shadow copies, for the shadow check); the
/// relative checks need both sides. A breach with enough data is reported
/// at once, whatever else still waits for data. Limits are inclusive. With
/// a `confidence`, the relative error and latency checks also need the
/// difference to be significant (see [`crate::statistics`]).
pub fn evaluate(analysis: &Analysis, stable: &VersionStats, canary: &VersionStats) -> Verdict {
    let min = analysis.min_requests;
    let relative = analysis.max_error_rate_increase.is_some()
        || analysis.max_p99_ratio.is_some()
        || analysis.max_latency_increase.is_some()
        || analysis.max_cost_per_request_ratio.is_some();
    let request_checks = relative
        || analysis.max_error_rate.is_some()
        || analysis.max_p99_ms.is_some()
        || analysis.max_cost_per_request.is_some();
    let mut found = Findings::default();

    let canary_ready = canary.requests >= min;
    let stable_ready = stable.requests >= min;
    // Shadow copies and AI answers are counted apart from requests.
    let other_checks = analysis.max_shadow_mismatch_rate.is_some()
        || analysis.max_shadow_diff_rate.is_some()
        || has_ai_checks(analysis);
    if !canary_ready && (request_checks || !other_checks) {
        found
            .inconclusive
            .push(format!("canary has {} of {min} requests", canary.requests));
    }
    if canary_ready {
        absolute_checks(analysis, stable, canary, stable_ready, &mut found);
        if relative && !stable_ready {
            found
                .inconclusive
                .push(format!("stable has {} of {min} requests", stable.requests));
        }
        if relative && stable_ready {
            relative_checks(analysis, stable, canary, &mut found);
        }
    }
    ai_checks(analysis, stable, canary, &mut found);
    if let Some(max) = analysis.max_shadow_diff_rate {
        if canary.shadow_compared < min {
            found.inconclusive.push(format!(
                "canary has {} of {min} compared shadow answers",
                canary.shadow_compared
            ));
        } else {
            let rate = canary.shadow_diff_rate().unwrap_or(0.0);
            let breach = above(rate, max);
            let what = format!(
                "shadow answers differing {} {} {} over {} compared",
                percent(rate),
                if breach { ">" } else { "≤" },
                percent(max),
                canary.shadow_compared
            );
            if breach {
                found.breaches.push(what);
            } else {
                found.passed.push(what);
            }
        }
    }
    if let Some(max) = analysis.max_shadow_mismatch_rate {
        if canary.shadow_requests < min {
            found.inconclusive.push(format!(
                "canary has {} of {min} shadow copies",
                canary.shadow_requests
            ));
        } else {
            let rate = canary.shadow_mismatch_rate().unwrap_or(0.0);
            let breach = above(rate, max);
            let what = format!(
                "shadow mismatch rate {} {} {} over {} copies",
                percent(rate),
                if breach { ">" } else { "≤" },
                percent(max),
                canary.shadow_requests
            );
            if breach {
                found.breaches.push(what);
            } else {
                found.passed.push(what);
            }
        }
    }
    found.verdict()
}

fn has_ai_checks(analysis: &Analysis) -> bool {
    analysis.max_ttft_ms.is_some()
        || analysis.max_ttft_ratio.is_some()
        || analysis.min_tokens_per_second.is_some()
        || analysis.max_refusal_rate.is_some()
}

/// The canary's AI answers: time to the first token (against its limit
/// and the stable's), output speed and refusals. Each side needs
/// `min_requests` answers.
fn ai_checks(
    analysis: &Analysis,
    stable: &VersionStats,
    canary: &VersionStats,
    found: &mut Findings,
) {
    let min = analysis.min_requests;
    if !has_ai_checks(analysis) {
        return;
    }
    let ai = &canary.ai;
    if ai.answers < min {
        found
            .inconclusive
            .push(format!("canary has {} of {min} AI answers", ai.answers));
        return;
    }
    let ttft = ai.mean_ttft_ms().unwrap_or(0.0);
    if let Some(max) = analysis.max_ttft_ms {
        let breach = above(ttft, f64::from(max));
        found.file(
            breach,
            format!(
                "mean time to first token {ttft:.0} ms {} {max} ms over {} answers",
                if breach { ">" } else { "≤" },
                ai.answers
            ),
        );
    }
    if let Some(want) = analysis.min_tokens_per_second {
        let speed = ai.tokens_per_second().unwrap_or(f64::INFINITY);
        let breach = speed + TOLERANCE < want;
        found.file(
            breach,
            format!(
                "output {speed:.1} tokens/s {} {want} tokens/s over {} answers",
                if breach { "<" } else { "≥" },
                ai.answers
            ),
        );
    }
    if let Some(max) = analysis.max_refusal_rate {
        let rate = ai.refusal_rate().unwrap_or(0.0);
        let breach = above(rate, max);
        found.file(
            breach,
            format!(
                "refusal rate {} {} {} over {} answers",
                percent(rate),
                if breach { ">" } else { "≤" },
                percent(max),
                ai.answers
            ),
        );
    }
    if let Some(ratio) = analysis.max_ttft_ratio {
        if stable.ai.answers < min {
            found.inconclusive.push(format!(
                "stable has {} of {min} AI answers",
                stable.ai.answers
            ));
            return;
        }
        let stable_ttft = stable.ai.mean_ttft_ms().unwrap_or(0.0);
        let breach = above(ttft, ratio * stable_ttft);
        found.file(
            breach,
            format!(
                "mean time to first token {ttft:.0} ms {} {ratio} × the stable's {stable_ttft:.0} ms",
                if breach { "is more than" } else { "within" }
            ),
        );
    }
}

/// The canary's error rate, p99 and cost against their absolute limits; a
/// breach the stable shares is the baseline's.
fn absolute_checks(
    analysis: &Analysis,
    stable: &VersionStats,
    canary: &VersionStats,
    stable_ready: bool,
    found: &mut Findings,
) {
    let rate = canary.error_rate().unwrap_or(0.0);
    let stable_rate = stable.error_rate().unwrap_or(0.0);
    let p99 = canary.quantile_ms(0.99).unwrap_or(0);
    let stable_p99 = stable.quantile_ms(0.99).unwrap_or(0);
    let cost = canary.cost_per_request().unwrap_or(0.0);
    if let Some(max) = analysis.max_cost_per_request {
        let what = format!(
            "cost per request {} {} {} over {} requests",
            dollars(cost),
            if above(cost, max) { ">" } else { "≤" },
            dollars(max),
            canary.requests
        );
        if above(cost, max) {
            found.breaches.push(what);
        } else {
            found.passed.push(what);
        }
    }
    if let Some(max) = analysis.max_error_rate {
        if !above(rate, max) {
            found.passed.push(format!(
                "error rate {} ≤ {} over {} requests",
                percent(rate),
                percent(max),
                canary.requests
            ));
        } else {
            let margin = analysis.max_error_rate_increase.unwrap_or(0.0);
            if stable_ready && above(stable_rate, max) && !above(rate, stable_rate + margin) {
                found.baseline.push(format!(
                    "stable error rate {} > {} over {} requests (canary {})",
                    percent(stable_rate),
                    percent(max),
                    stable.requests,
                    percent(rate)
                ));
            } else {
                found.breaches.push(format!(
                    "error rate {} > {} over {} requests",
                    percent(rate),
                    percent(max),
                    canary.requests
                ));
            }
        }
    }
    if let Some(max) = analysis.max_p99_ms {
        if p99 <= max {
            found.passed.push(format!(
                "p99 {} ≤ {max} ms over {} requests",
                millis(p99),
                canary.requests
            ));
        } else {
            let ratio = analysis.max_p99_ratio.unwrap_or(1.0);
            if stable_ready
                && stable_p99 > max
                && !above(f64::from(p99), ratio * f64::from(stable_p99))
            {
                found.baseline.push(format!(
                    "stable p99 {} > {max} ms over {} requests (canary {})",
                    millis(stable_p99),
                    stable.requests,
                    millis(p99)
                ));
            } else {
                found.breaches.push(format!(
                    "p99 {} > {max} ms over {} requests",
                    millis(p99),
                    canary.requests
                ));
            }
        }
    }
}

/// The canary against the stable: error rate and mean latency (with
/// significance when a confidence is set), p99 and cost ratios.
fn relative_checks(
    analysis: &Analysis,
    stable: &VersionStats,
    canary: &VersionStats,
    found: &mut Findings,
) {
    let confidence = analysis.confidence;
    if let Some(increase) = analysis.max_error_rate_increase {
        let rate = canary.error_rate().unwrap_or(0.0);
        let stable_rate = stable.error_rate().unwrap_or(0.0);
        let beyond = above(rate, stable_rate + increase);
        let what = format!(
            "error rate {} against the stable's {} over {} and {} requests{}",
            percent(rate),
            percent(stable_rate),
            canary.requests,
            stable.requests,
            if beyond {
                format!(", more than {} higher", percent(increase))
            } else {
                String::new()
            }
        );
        found.compare(what, beyond, confidence, || {
            let side = |s: &VersionStats| Proportion {
                requests: s.requests,
                errors: s.errors(),
            };
            let p = statistics::errors_greater(side(canary), side(stable));
            ("Fisher's exact test", p)
        });
    }
    if let Some(increase) = analysis.max_latency_increase {
        let mean = |s: &VersionStats| s.latency_ms_sum as f64 / s.requests.max(1) as f64;
        let (mean, stable_mean) = (mean(canary), mean(stable));
        let beyond = above(mean, stable_mean * (1.0 + increase));
        let what = format!(
            "mean latency {mean:.1} ms against the stable's {stable_mean:.1} ms{}",
            if beyond {
                format!(", more than {} higher", percent(increase))
            } else {
                String::new()
            }
        );
        found.compare(what, beyond, confidence, || {
            let p = statistics::latency_greater(&canary.latency_buckets, &stable.latency_buckets);
            ("Mann–Whitney U", p)
        });
    }
    if let Some(ratio) = analysis.max_p99_ratio {
        let p99 = canary.quantile_ms(0.99).unwrap_or(0);
        let stable_p99 = stable.quantile_ms(0.99).unwrap_or(0);
        if above(f64::from(p99), ratio * f64::from(stable_p99)) {
            found.breaches.push(format!(
                "p99 {} is more than {ratio} × the stable's {}",
                millis(p99),
                millis(stable_p99)
            ));
        } else {
            found.passed.push(format!(
                "p99 {} within {ratio} × the stable's {}",
                millis(p99),
                millis(stable_p99)
            ));
        }
    }
    if let Some(ratio) = analysis.max_cost_per_request_ratio {
        let cost = canary.cost_per_request().unwrap_or(0.0);
        let stable_cost = stable.cost_per_request().unwrap_or(0.0);
        if above(cost, ratio * stable_cost) {
            found.breaches.push(format!(
                "cost per request {} is more than {ratio} × the stable's {}",
                dollars(cost),
                dollars(stable_cost)
            ));
        } else {
            found.passed.push(format!(
                "cost per request {} within {ratio} × the stable's {}",
                dollars(cost),
                dollars(stable_cost)
            ));
        }
    }
}

/// A one-line account of a side's counters, for transition reasons.
pub fn summary(stats: &VersionStats) -> String {
    format!(
        "{} errors, p99 {} over {} requests",
        percent(stats.error_rate().unwrap_or(0.0)),
        stats
            .quantile_ms(0.99)
            .map_or_else(|| "-".to_owned(), millis),
        stats.requests
    )
}

fn above(value: f64, limit: f64) -> bool {
    value > limit + TOLERANCE
}

fn percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// A confidence as a short percentage: `95%`, `99.9%`.
fn percent_short(fraction: f64) -> String {
    format!("{}%", (fraction * 1000.0).round() / 10.0)
}

fn dollars(usd: f64) -> String {
    format!("${usd:.6}")
}

fn millis(ms: u32) -> String {
    if ms == u32::MAX {
        "over 10000 ms".to_owned()
    } else {
        format!("{ms} ms")
    }
}

/// The next state of a progressing rollout at `now_ms`, given its current
/// step's counters, and the transition there; `None` when it stays.
///
/// A step's pause and its analysis's initial delay count from
/// `step_started_ms` on the caller's clock, never negative: a node whose
/// clock is behind waits longer rather than moving early. A manual step
/// waits for an operator, though its analysis can still roll back or
/// pause it. The analysis runs during the pause as well as at its end:
/// a breach rolls back at once (after `failure_limit` tolerated breaches
/// in a row), a pass moves on when the pause is over, and an
/// inconclusive step runs on past its pause for up to
/// `inconclusive_limit`, then pauses with the reason. A `dry_run`
/// records each change of verdict and moves on the pauses alone.
pub fn advance(
    state: &RolloutState,
    now_ms: u64,
    stable: &VersionStats,
    canary: &VersionStats,
) -> Option<(RolloutState, Transition)> {
    if state.phase != Phase::Progressing || state.awaiting == Some(Gate::PreRollout) {
        return None;
    }
    let step = state.current_step()?;
    let spec = &state.spec.analysis;
    let elapsed = u128::from(now_ms.saturating_sub(state.step_started_ms));
    if elapsed < spec.initial_delay.as_millis() {
        return None;
    }
    let verdict = judge(state, stable, canary);
    // A manual step with confirm hooks lets them stand in for its operator.
    let pause_over = match step.pause {
        Pause::For(pause) => elapsed >= pause.as_millis(),
        Pause::Manual => !state.hooks(state.confirm_kind()).is_empty(),
    };
    // Once at the confirm gate, only a breach or an unhealthy baseline moves.
    let at_gate = state.awaiting == Some(Gate::Confirm);
    let mut next = state.clone();
    let here = state.step;
    let canary_name = &state.spec.canary;

    if spec.dry_run {
        if at_gate {
            return None;
        }
        if pause_over {
            let why = format!(
                "dry run, pause over ({}): {}; canary {}; stable {}",
                verdict.kind(),
                verdict.detail(),
                summary(canary),
                summary(stable)
            );
            return Some(move_on(next, now_ms, why));
        }
        if next.dry_run_verdict == verdict.kind() {
            return None;
        }
        next.dry_run_verdict = verdict.kind().to_owned();
        let why = format!("dry run, {}: {}", verdict.kind(), verdict.detail());
        let transition = next.transition(Phase::Progressing, here, now_ms, why, Actor::Auto);
        return Some((next, transition));
    }

    let transition = match verdict {
        Verdict::Breach(why) if state.breaches < spec.failure_limit => {
            next.breaches += 1;
            let why = format!(
                "breach {} of {} tolerated in a row: canary {canary_name}: {why}",
                next.breaches, spec.failure_limit
            );
            next.transition(Phase::Progressing, here, now_ms, why, Actor::Auto)
        }
        Verdict::Breach(why) => next.transition(
            Phase::RolledBack,
            here,
            now_ms,
            format!("canary {canary_name}: {why}"),
            Actor::Auto,
        ),
        Verdict::BaselineUnhealthy(why) => next.transition(
            Phase::Paused,
            here,
            now_ms,
            format!("baseline unhealthy: {why}"),
            Actor::Auto,
        ),
        _ if state.breaches > 0 => {
            next.breaches = 0;
            let why = format!(
                "breaches cleared after {} in a row: {}",
                state.breaches,
                verdict.detail()
            );
            next.transition(Phase::Progressing, here, now_ms, why, Actor::Auto)
        }
        Verdict::Inconclusive(why) => {
            let Pause::For(pause) = step.pause else {
                return None;
            };
            let limit = pause.saturating_add(spec.inconclusive_limit);
            if elapsed < limit.as_millis() {
                return None;
            }
            let why = format!(
                "held: the analysis stayed inconclusive {} past the step's pause: {why}",
                crate::rollout::format_duration(spec.inconclusive_limit)
            );
            next.transition(Phase::Paused, here, now_ms, why, Actor::Auto)
        }
        Verdict::Pass(why) => {
            if !pause_over || at_gate {
                return None;
            }
            let why = format!(
                "passed: {why}; canary {}; stable {}",
                summary(canary),
                summary(stable)
            );
            return Some(move_on(next, now_ms, why));
        }
    };
    Some((next, transition))
}

/// Moves `state` past its current step, or to the confirm gate before
/// that when the rollout has hooks to confirm the move.
fn move_on(mut state: RolloutState, now_ms: u64, why: String) -> (RolloutState, Transition) {
    let kind = state.confirm_kind();
    let names: Vec<&str> = state.hooks(kind).iter().map(|h| h.name.as_str()).collect();
    if names.is_empty() {
        return next_step(state, now_ms, why);
    }
    let why = format!(
        "step {} of {} {why}; awaiting the {} hooks: {}",
        state.step + 1,
        state.spec.steps.len(),
        kind.name(),
        names.join(", ")
    );
    let here = state.step;
    let transition = state.transition(Phase::Progressing, here, now_ms, why, Actor::Auto);
    state.awaiting = Some(Gate::Confirm);
    (state, transition)
}

/// Moves `state` past its current step (promoted after the last), saying
/// what the step showed.
fn next_step(mut state: RolloutState, now_ms: u64, why: String) -> (RolloutState, Transition) {
    let step = state.step;
    let weight = state.current_step().map_or(0, |s| s.weight);
    let why = format!(
        "step {} of {} ({weight}%) {why}",
        step + 1,
        state.spec.steps.len(),
    );
    let transition = if state.at_last_step() {
        state.transition(Phase::Promoted, step, now_ms, why, Actor::Auto)
    } else {
        state.transition(Phase::Progressing, step + 1, now_ms, why, Actor::Auto)
    };
    (state, transition)
}

/// The verdict on the current step of `state`: [`evaluate`] with the
/// checks its weights allow.
pub fn judge(state: &RolloutState, stable: &VersionStats, canary: &VersionStats) -> Verdict {
    let (stable_weight, canary_weight) = state.weights();
    evaluate(
        &scoped(&state.spec.analysis, stable_weight, canary_weight),
        stable,
        canary,
    )
}

/// The checks a step's weights allow: without stable traffic there is
/// nothing to compare with, nor copies to judge; without canary traffic
/// only shadow copies can be judged, and without those nothing needs to be
/// waited for.
fn scoped(analysis: &Analysis, stable_weight: u32, canary_weight: u32) -> Analysis {
    let mut scoped = analysis.clone();
    if stable_weight == 0 || canary_weight == 0 {
        scoped.max_error_rate_increase = None;
        scoped.max_latency_increase = None;
        scoped.max_p99_ratio = None;
        scoped.max_ttft_ratio = None;
    }
    if stable_weight == 0 {
        // No primary on the stable to copy to the canary.
        scoped.max_shadow_mismatch_rate = None;
        scoped.max_shadow_diff_rate = None;
    }
    if canary_weight == 0 {
        scoped.max_error_rate = None;
        scoped.max_p99_ms = None;
        scoped.max_ttft_ms = None;
        scoped.min_tokens_per_second = None;
        scoped.max_refusal_rate = None;
        if scoped.max_shadow_mismatch_rate.is_none() && scoped.max_shadow_diff_rate.is_none() {
            scoped.min_requests = 0;
        }
    }
    scoped
}
