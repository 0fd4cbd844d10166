//! The analysis of one rollout step: the canary's counters against the
//! absolute limits and against the stable's, and the move it leads to. A
//! passed step whose pause is over leads to the next step (or promotion),
//! a breach to a roll-back, an unhealthy baseline to a pause. Service
//! rollouts (the splitter) and component canaries (the host) both move
//! this way.

//!
//! The `checks` module holds the checks of a step's counters, [`advance`]
//! the moves they lead to.

mod advance;
mod checks;

pub use advance::{advance, judge};
use checks::{
    above, absolute_checks, ai_checks, has_ai_checks, millis, percent, percent_short,
    relative_checks,
};

use crate::metrics::VersionStats;
use crate::rollout::Analysis;

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
            found.file(breach, what);
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
            found.file(breach, what);
        }
    }
    found.verdict()
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
