//! The checks of one step's counters: the canary against the absolute
//! limits, against the stable, and against the AI limits (time to first
//! token, tokens per second, cost), each adding a finding.

use super::Findings;
use crate::metrics::VersionStats;
use crate::rollout::Analysis;
use crate::statistics::{self, Proportion};

/// Rates within this of their limit count as at the limit, which passes.
const TOLERANCE: f64 = 1e-9;

pub(super) fn has_ai_checks(analysis: &Analysis) -> bool {
    analysis.max_ttft_ms.is_some()
        || analysis.max_ttft_ratio.is_some()
        || analysis.min_tokens_per_second.is_some()
        || analysis.max_refusal_rate.is_some()
}

/// The canary's AI answers: time to the first token (against its limit
/// and the stable's), output speed and refusals. Each side needs
/// `min_requests` answers.
pub(super) fn ai_checks(
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
pub(super) fn absolute_checks(
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
        found.file(above(cost, max), what);
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
pub(super) fn relative_checks(
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
        let breach = above(f64::from(p99), ratio * f64::from(stable_p99));
        file_ratio(found, breach, "p99", ratio, millis(p99), millis(stable_p99));
    }
    if let Some(ratio) = analysis.max_cost_per_request_ratio {
        let cost = canary.cost_per_request().unwrap_or(0.0);
        let stable_cost = stable.cost_per_request().unwrap_or(0.0);
        let breach = above(cost, ratio * stable_cost);
        let (cost, stable_cost) = (dollars(cost), dollars(stable_cost));
        file_ratio(found, breach, "cost per request", ratio, cost, stable_cost);
    }
}

/// Files a check of the canary's `what` against `ratio` × the stable's.
fn file_ratio(
    found: &mut Findings,
    breach: bool,
    what: &str,
    ratio: f64,
    canary: String,
    stable: String,
) {
    let account = if breach {
        format!("{what} {canary} is more than {ratio} × the stable's {stable}")
    } else {
        format!("{what} {canary} within {ratio} × the stable's {stable}")
    };
    found.file(breach, account);
}

/// Whether `value` is over `limit` by more than [`TOLERANCE`].
pub(super) fn above(value: f64, limit: f64) -> bool {
    value > limit + TOLERANCE
}

pub(super) fn percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// A confidence as a short percentage: `95%`, `99.9%`.
pub(super) fn percent_short(fraction: f64) -> String {
    format!("{}%", (fraction * 1000.0).round() / 10.0)
}

fn dollars(usd: f64) -> String {
    format!("${usd:.6}")
}

pub(super) fn millis(ms: u32) -> String {
    if ms == u32::MAX {
        "over 10000 ms".to_owned()
    } else {
        format!("{ms} ms")
    }
}
