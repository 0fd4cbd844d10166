//! Rollouts moving by themselves: the analysis of a step, the decisions it
//! leads to, and nodes racing to write them.

mod support;

use std::cell::Cell;
use support::*;
use upshift_model::keys;
use upshift_model::metrics::VersionStats;
use upshift_model::rollout::{Actor, Analysis, Gate, Phase, RolloutSpec, RolloutState, Transition};
use upshift_model::store::for_each_encoding;
use upshift_splitter::{
    MemoryStore, NamedAttempt, NamedUpstream, Outcome, Plan, Reason, Store, StoreError,
    URGENT_INTERVAL_MS, Verdict, advance, evaluate,
};

const T0: u64 = 1_800_000_000_000;

/// `requests` requests with `errors` 5xx, all in the latency bucket ending at `p99_ms`.
fn stats(requests: u64, errors: u64, p99_ms: u32) -> VersionStats {
    let bucket = upshift_model::metrics::latency_bucket(p99_ms);
    let mut stats = VersionStats {
        requests,
        ..VersionStats::default()
    };
    stats.by_class = [0, requests - errors, 0, 0, errors];
    stats.latency_buckets[bucket] = requests;
    stats
}

fn analysis(yaml: &str) -> Analysis {
    let spec = RolloutSpec::parse(
        &format!("{{service: orders, canary: v2, analysis: {yaml}}}"),
        &config(ORDERS),
    )
    .unwrap();
    spec.analysis
}

fn state(steps: &str, analysis: &str) -> RolloutState {
    let spec = RolloutSpec::parse(
        &format!("{{service: orders, canary: v2, steps: {steps}, analysis: {analysis}}}"),
        &config(ORDERS),
    )
    .unwrap();
    RolloutState::start(spec, "r1", T0).0
}

#[test]
fn no_data_or_too_little_decides_nothing() {
    let a = analysis("{min_requests: 100, max_error_rate: 0.05}");
    let empty = VersionStats::default();
    assert!(matches!(
        evaluate(&a, &empty, &empty),
        Verdict::Inconclusive(_)
    ));
    let v = evaluate(&a, &stats(1000, 0, 10), &stats(99, 50, 10));
    assert_eq!(
        v,
        Verdict::Inconclusive("canary has 99 of 100 requests".into())
    );
    let s = state("[{weight: 10, pause: 1s}]", "{max_error_rate: 0.05}");
    assert_eq!(advance(&s, T0 + 60_000, &empty, &empty), None);
    assert_eq!(
        advance(&s, T0 + 60_000, &stats(900, 0, 10), &stats(99, 99, 10)),
        None
    );
}

#[test]
fn values_exactly_at_a_limit_pass() {
    let a = analysis(
        "{min_requests: 100, max_error_rate: 0.05, max_p99_ms: 250, max_error_rate_increase: 0.01, max_p99_ratio: 2.5}",
    );
    // 5% errors, p99 at the 250 ms bound, 1 point over the stable, 2.5 × its p99.
    assert_eq!(
        evaluate(&a, &stats(1000, 40, 100), &stats(100, 5, 250)).kind(),
        "pass"
    );
    assert!(matches!(
        evaluate(&a, &stats(1000, 40, 100), &stats(100, 6, 250)),
        Verdict::Breach(_)
    ));
    assert!(matches!(
        evaluate(&a, &stats(1000, 40, 100), &stats(100, 5, 251)),
        Verdict::Breach(_)
    ));
}

#[test]
fn cost_per_request_is_judged_absolutely_and_against_the_stable() {
    let a = analysis(
        "{min_requests: 100, max_cost_per_request: 0.002, max_cost_per_request_ratio: 1.5}",
    );
    let costing = |requests, usd_each: f64| VersionStats {
        cost_nanousd: (usd_each * 1e9) as u64 * requests,
        ..stats(requests, 0, 100)
    };
    // $0.001 against $0.001: pass; at exactly 1.5 × the stable: pass.
    assert_eq!(
        evaluate(&a, &costing(200, 0.001), &costing(100, 0.001)),
        Verdict::Pass(
            "cost per request $0.001000 ≤ $0.002000 over 100 requests; \
             cost per request $0.001000 within 1.5 × the stable's $0.001000"
                .into()
        )
    );
    assert_eq!(
        evaluate(&a, &costing(200, 0.001), &costing(100, 0.0015)).kind(),
        "pass"
    );
    assert_eq!(
        evaluate(&a, &costing(200, 0.001), &costing(100, 0.0016)),
        Verdict::Breach(
            "cost per request $0.001600 is more than 1.5 × the stable's $0.001000".into()
        )
    );
    // Over the absolute limit, whatever the stable costs.
    assert_eq!(
        evaluate(&a, &costing(200, 0.003), &costing(100, 0.0025)),
        Verdict::Breach("cost per request $0.002500 > $0.002000 over 100 requests".into())
    );
    // The ratio needs the stable's requests.
    assert_eq!(
        evaluate(&a, &costing(50, 0.001), &costing(100, 0.001)),
        Verdict::Inconclusive("stable has 50 of 100 requests".into())
    );
}

/// `answers` AI answers with `ttft_ms` each, `tokens` output over
/// `generation_ms` in all, `refusals` of them refused.
fn answers(
    answers: u64,
    ttft_ms: u64,
    (tokens, generation_ms): (u64, u64),
    refusals: u64,
) -> VersionStats {
    let mut stats = stats(answers, 0, 10);
    stats.ai = upshift_model::metrics::AiStats {
        answers,
        ttft_ms_sum: answers * ttft_ms,
        output_tokens: tokens,
        generation_ms_sum: generation_ms,
        refusals,
    };
    stats
}

#[test]
fn ai_answers_are_judged_by_first_token_speed_and_refusals() {
    let a = analysis(
        "{min_requests: 20, max_ttft_ms: 800, max_ttft_ratio: 2, min_tokens_per_second: 20, max_refusal_rate: 0.05}",
    );
    let stable = answers(100, 300, (5_000, 100_000), 1);
    // 600 ms to the first token, 40 tokens/s, 5% refusals: all within.
    let verdict = evaluate(&a, &stable, &answers(40, 600, (4_000, 100_000), 2));
    assert_eq!(verdict.kind(), "pass", "{verdict:?}");
    assert!(
        verdict
            .detail()
            .contains("mean time to first token 600 ms ≤ 800 ms over 40 answers"),
        "{verdict:?}"
    );
    assert!(
        verdict
            .detail()
            .contains("output 40.0 tokens/s ≥ 20 tokens/s"),
        "{verdict:?}"
    );
    // Too few answers: nothing decided.
    assert_eq!(
        evaluate(&a, &stable, &answers(19, 5_000, (0, 0), 19)),
        Verdict::Inconclusive("canary has 19 of 20 AI answers".into())
    );
    // Each gate breaches by itself.
    let slow = evaluate(&a, &stable, &answers(40, 700, (4_000, 100_000), 0));
    assert_eq!(
        slow,
        Verdict::Breach(
            "mean time to first token 700 ms is more than 2 × the stable's 300 ms".into()
        )
    );
    let sluggish = evaluate(&a, &stable, &answers(40, 300, (1_000, 100_000), 0));
    assert!(
        sluggish
            .detail()
            .contains("output 10.0 tokens/s < 20 tokens/s over 40 answers"),
        "{sluggish:?}"
    );
    let refusing = evaluate(&a, &stable, &answers(40, 300, (4_000, 100_000), 4));
    assert_eq!(
        refusing,
        Verdict::Breach("refusal rate 10.00% > 5.00% over 40 answers".into())
    );
    // Without stable traffic (the last step), only the ratio is skipped.
    let s = state(
        "[{weight: 100, pause: 0s}]",
        "{min_requests: 20, max_ttft_ratio: 2}",
    );
    let (done, _) = advance(
        &s,
        T0,
        &VersionStats::default(),
        &answers(40, 5_000, (1, 1), 0),
    )
    .unwrap();
    assert_eq!(done.phase, Phase::Promoted);
}

#[test]
fn a_breach_rolls_back_at_once_naming_the_metric() {
    let s = state(
        "[{weight: 10, pause: 10m}, {weight: 50}]",
        "{min_requests: 100, max_error_rate: 0.05}",
    );
    let (next, t) = advance(&s, T0 + 1, &stats(900, 9, 10), &stats(120, 12, 10)).unwrap();
    assert_eq!(
        (next.phase, next.step, next.revision),
        (Phase::RolledBack, 0, 2)
    );
    assert_eq!(next.weights(), (100, 0));
    assert_eq!(
        t.reason,
        "canary v2: error rate 10.00% > 5.00% over 120 requests"
    );
    assert_eq!(
        (t.from_phase, t.to_phase, t.actor),
        (Some(Phase::Progressing), Phase::RolledBack, Actor::Auto)
    );

    let latency = state("[{weight: 10}]", "{max_p99_ms: 100}");
    let (_, t) = advance(&latency, T0, &stats(900, 0, 10), &stats(100, 0, 20_000)).unwrap();
    assert_eq!(
        t.reason,
        "canary v2: p99 over 10000 ms > 100 ms over 100 requests"
    );

    let relative = state(
        "[{weight: 10}]",
        "{max_error_rate_increase: 0.02, max_p99_ratio: 1.5}",
    );
    let (_, t) = advance(&relative, T0, &stats(1000, 10, 100), &stats(100, 4, 250)).unwrap();
    assert_eq!(
        t.reason,
        "canary v2: error rate 4.00% against the stable's 1.00% over 100 and 1000 requests, \
         more than 2.00% higher; p99 250 ms is more than 1.5 × the stable's 100 ms"
    );
}

#[test]
fn a_failing_baseline_pauses_instead_of_blaming_the_canary() {
    let s = state(
        "[{weight: 10}]",
        "{max_error_rate: 0.05, max_error_rate_increase: 0.02}",
    );
    // Both at ~10%: the canary is not worse than the stable by more than 2 points.
    let (next, t) = advance(&s, T0 + 120_000, &stats(1000, 100, 10), &stats(100, 11, 10)).unwrap();
    assert_eq!(next.phase, Phase::Paused);
    assert_eq!(next.weights(), (90, 10), "the traffic stays as it was");
    assert_eq!(
        t.reason,
        "baseline unhealthy: stable error rate 10.00% > 5.00% over 1000 requests (canary 11.00%)"
    );
    assert_eq!(
        advance(&next, T0 + 240_000, &stats(1000, 0, 10), &stats(100, 0, 10)),
        None,
        "paused stays paused"
    );
    // Clearly worse than a failing baseline: still the canary's fault.
    let (next, _) = advance(&s, T0, &stats(1000, 100, 10), &stats(100, 30, 10)).unwrap();
    assert_eq!(next.phase, Phase::RolledBack);
    // A baseline with too little data cannot excuse the canary.
    let (next, _) = advance(&s, T0, &stats(50, 25, 10), &stats(100, 11, 10)).unwrap();
    assert_eq!(next.phase, Phase::RolledBack);
    // The same for latency, with the ratio as the margin.
    let slow = state("[{weight: 10}]", "{max_p99_ms: 100, max_p99_ratio: 1.2}");
    let (next, t) = advance(&slow, T0, &stats(1000, 0, 250), &stats(100, 0, 250)).unwrap();
    assert_eq!(next.phase, Phase::Paused);
    assert!(
        t.reason
            .starts_with("baseline unhealthy: stable p99 250 ms > 100 ms"),
        "{}",
        t.reason
    );
}

#[test]
fn a_passed_step_moves_on_only_after_its_pause_on_the_callers_clock() {
    let s = state(
        "[{weight: 10, pause: 30s}, {weight: 50, pause: 30s}]",
        "{max_error_rate: 0.05}",
    );
    let (good_stable, good_canary) = (stats(900, 0, 10), stats(100, 0, 10));
    // A node whose clock is behind the step's start: elapsed is zero, never negative.
    assert_eq!(
        advance(&s, T0 - 3_600_000, &good_stable, &good_canary),
        None
    );
    assert_eq!(advance(&s, 0, &good_stable, &good_canary), None);
    assert_eq!(advance(&s, T0 + 29_999, &good_stable, &good_canary), None);
    let (next, t) = advance(&s, T0 + 30_000, &good_stable, &good_canary).unwrap();
    assert_eq!(
        (next.phase, next.step, next.step_started_ms),
        (Phase::Progressing, 1, T0 + 30_000)
    );
    assert_eq!(next.weights(), (50, 50));
    assert_eq!(
        t.reason,
        "step 1 of 2 (10%) passed: error rate 0.00% ≤ 5.00% over 100 requests; \
         canary 0.00% errors, p99 10 ms over 100 requests; \
         stable 0.00% errors, p99 10 ms over 900 requests"
    );
    // The last step promotes.
    let (done, t) = advance(&next, T0 + 60_000, &good_stable, &good_canary).unwrap();
    assert_eq!(
        (done.phase, done.weights(), t.to_phase),
        (Phase::Promoted, (0, 100), Phase::Promoted)
    );
    assert_eq!(
        advance(&done, T0 + 90_000, &good_stable, &good_canary),
        None,
        "finished"
    );
    assert_eq!(
        advance(&s, u64::MAX, &good_stable, &good_canary)
            .unwrap()
            .0
            .step,
        1,
        "no overflow"
    );
}

#[test]
fn a_manual_step_waits_for_an_operator_but_can_still_roll_back() {
    let mut s = state(
        "[{weight: 10, pause: manual}, {weight: 100, pause: 0s}]",
        "{max_error_rate: 0.05}",
    );
    assert_eq!(
        advance(&s, T0 + 86_400_000, &stats(900, 0, 10), &stats(100, 0, 10)),
        None
    );
    let (rolled_back, _) = advance(&s, T0 + 1, &stats(900, 0, 10), &stats(100, 50, 10)).unwrap();
    assert_eq!(rolled_back.phase, Phase::RolledBack);
    s.resume(T0 + 5).unwrap();
    assert_eq!(s.step, 1);
    // At 100%, the stable has no traffic: relative checks are skipped.
    let relative = state(
        "[{weight: 100, pause: 0s}]",
        "{max_error_rate_increase: 0.01}",
    );
    let (done, _) = advance(&relative, T0, &VersionStats::default(), &stats(100, 0, 10)).unwrap();
    assert_eq!(done.phase, Phase::Promoted);
}

fn with_hooks(steps: &str, hooks: &str) -> RolloutState {
    let spec = RolloutSpec::parse(
        &format!(
            "{{service: orders, canary: v2, steps: {steps}, analysis: {{max_error_rate: 0.05}}, webhooks: {hooks}}}"
        ),
        &config(ORDERS),
    )
    .unwrap();
    RolloutState::start(spec, "r1", T0).0
}

#[test]
fn webhook_gates_hold_the_moves_they_confirm() {
    let (good, bad) = (stats(900, 0, 10), stats(100, 50, 10));
    // A pre-rollout hook keeps the canary dark and the analysis idle.
    let mut s = with_hooks(
        "[{weight: 10, pause: 1s}, {weight: 50, pause: manual}]",
        "[{name: smoke, type: pre_rollout, url: 'http://127.0.0.1:9/'},
          {name: ok, type: confirm_step, url: 'http://127.0.0.1:9/'},
          {name: promo, type: confirm_promotion, url: 'http://127.0.0.1:9/'}]",
    );
    assert_eq!(s.awaiting, Some(Gate::PreRollout));
    assert_eq!(s.weights(), (100, 0));
    assert!(s.hooks_due());
    assert_eq!(advance(&s, T0 + 60_000, &good, &bad), None);
    let passed = s
        .pass_gate(T0 + 10, "smoke answered 200", Actor::Webhook)
        .unwrap();
    assert_eq!((passed.to_step, passed.actor), (0, Actor::Webhook));
    assert_eq!(
        (s.awaiting, s.weights(), s.step_started_ms),
        (None, (90, 10), T0 + 10)
    );

    // A passed step whose pause is over waits at the confirm gate...
    let (gated, why) = advance(&s, T0 + 2_000, &good, &good).unwrap();
    assert_eq!((gated.phase, gated.step), (Phase::Progressing, 0));
    assert_eq!(gated.awaiting, Some(Gate::Confirm));
    assert!(
        why.reason.ends_with("awaiting the confirm_step hooks: ok"),
        "{}",
        why.reason
    );
    // ...where passing again changes nothing and a breach still rolls back.
    assert_eq!(advance(&gated, T0 + 3_000, &good, &good), None);
    let (rolled_back, _) = advance(&gated, T0 + 3_000, &good, &bad).unwrap();
    assert_eq!(
        (rolled_back.phase, rolled_back.awaiting),
        (Phase::RolledBack, None)
    );

    // The confirm hooks pass it; at the manual last step they stand in for
    // the operator, and the promotion waits for its own hook.
    let mut s = gated;
    s.pass_gate(T0 + 4_000, "ok answered 200", Actor::Webhook)
        .unwrap();
    assert_eq!((s.step, s.awaiting), (1, None));
    let (at_promotion, _) = advance(&s, T0 + 4_001, &good, &good).unwrap();
    assert_eq!(at_promotion.awaiting, Some(Gate::Confirm));
    assert_eq!(
        at_promotion.gate_kind(),
        Some(upshift_model::webhook::HookKind::ConfirmPromotion)
    );
    // An operator can pass the gate too.
    let mut s = at_promotion;
    let t = s.resume(T0 + 5_000).unwrap();
    assert_eq!((t.to_phase, t.actor), (Phase::Promoted, Actor::Admin));
    // Every transition names the rollout and its revision.
    assert_eq!((t.rollout.as_str(), t.revision), ("r1", s.revision));
}

#[test]
fn a_dark_step_is_judged_on_its_shadow_copies() {
    let mut shadowed = VersionStats {
        shadow_requests: 100,
        shadow_mismatches: 10,
        ..VersionStats::default()
    };
    let dark = state(
        "[{weight: 0, pause: 0s}, {weight: 50}]",
        "{max_error_rate: 0.01, max_shadow_mismatch_rate: 0.05}",
    );
    let (next, t) = advance(&dark, T0, &stats(1000, 0, 10), &shadowed).unwrap();
    assert_eq!(next.phase, Phase::RolledBack);
    assert_eq!(
        t.reason,
        "canary v2: shadow mismatch rate 10.00% > 5.00% over 100 copies"
    );
    shadowed.shadow_mismatches = 5;
    assert_eq!(
        advance(&dark, T0, &stats(1000, 0, 10), &shadowed)
            .unwrap()
            .0
            .step,
        1
    );
    shadowed.shadow_requests = 99;
    assert_eq!(advance(&dark, T0, &stats(1000, 0, 10), &shadowed), None);
    // Without shadow checks a dark step has nothing to wait for.
    let plain = state(
        "[{weight: 0, pause: 0s}, {weight: 50}]",
        "{max_error_rate: 0.01}",
    );
    assert_eq!(
        advance(
            &plain,
            T0,
            &VersionStats::default(),
            &VersionStats::default()
        )
        .unwrap()
        .0
        .step,
        1
    );
}

/// `requests` requests with `errors` 5xx and the latency histogram `buckets`
/// (its counts must sum to `requests`), with `latency_ms_sum`.
fn timed(requests: u64, errors: u64, buckets: [u64; 12], latency_ms_sum: u64) -> VersionStats {
    VersionStats {
        latency_buckets: buckets,
        latency_ms_sum,
        ..stats(requests, errors, 10)
    }
}

#[test]
fn a_significant_difference_breaches_and_a_small_sample_is_inconclusive() {
    let a = analysis("{min_requests: 100, confidence: 0.95, max_error_rate_increase: 0}");
    // 2% against 1%: at 500 requests each chance explains it (p = 0.149).
    let v = evaluate(&a, &stats(500, 5, 10), &stats(500, 10, 10));
    assert_eq!(
        v,
        Verdict::Inconclusive(
            "error rate 2.00% against the stable's 1.00% over 500 and 500 requests, \
             more than 0.00% higher, not significant at 95% confidence yet \
             (Fisher's exact test, p = 0.149)"
                .into()
        )
    );
    // At 20,000 each it does not (p = 7.2e-17).
    let v = evaluate(&a, &stats(20_000, 200, 10), &stats(20_000, 400, 10));
    assert_eq!(v.kind(), "breach", "{v:?}");
    assert!(
        v.detail()
            .ends_with("significant at 95% confidence (Fisher's exact test, p = 7.18e-17)"),
        "{v:?}"
    );
    // Within the margin passes, however much data.
    let v = evaluate(&a, &stats(20_000, 400, 10), &stats(20_000, 200, 10));
    assert_eq!(v.kind(), "pass", "{v:?}");

    // A 30% latency shift (the histograms of the statistics' own tests):
    // detected at 500 requests, at 50 only at 95%, not at 99%.
    let stable_500 = timed(500, 0, [13, 60, 182, 245, 0, 0, 0, 0, 0, 0, 0, 0], 12_515);
    let canary_500 = timed(500, 0, [0, 49, 133, 233, 85, 0, 0, 0, 0, 0, 0, 0], 16_263);
    let stable_50 = timed(50, 0, [2, 5, 18, 25, 0, 0, 0, 0, 0, 0, 0, 0], 1_254);
    let canary_50 = timed(50, 0, [0, 5, 13, 24, 8, 0, 0, 0, 0, 0, 0, 0], 1_629);
    let latency = |confidence: f64| {
        analysis(&format!(
            "{{min_requests: 50, confidence: {confidence}, max_latency_increase: 0.1}}"
        ))
    };
    let v = evaluate(&latency(0.95), &stable_500, &canary_500);
    assert_eq!(
        v,
        Verdict::Breach(
            "mean latency 32.5 ms against the stable's 25.0 ms, more than 10.00% higher, \
             significant at 95% confidence (Mann–Whitney U, p = 1.88e-12)"
                .into()
        )
    );
    assert_eq!(
        evaluate(&latency(0.95), &stable_50, &canary_50).kind(),
        "breach"
    );
    assert_eq!(
        evaluate(&latency(0.99), &stable_50, &canary_50).kind(),
        "inconclusive"
    );
    assert_eq!(
        evaluate(&latency(0.95), &stable_500, &stable_500).kind(),
        "pass"
    );
}

#[test]
fn an_inconclusive_step_is_extended_then_paused_never_failed() {
    let s = state(
        "[{weight: 10, pause: 30s}, {weight: 50}]",
        "{min_requests: 100, max_error_rate: 0.05, inconclusive_limit: 1m}",
    );
    let no_canary = VersionStats::default();
    let stable = stats(5_000, 0, 10);
    // Past the pause, within the extension: held where it is.
    assert_eq!(advance(&s, T0 + 30_000, &stable, &no_canary), None);
    assert_eq!(advance(&s, T0 + 89_999, &stable, &no_canary), None);
    let (next, t) = advance(&s, T0 + 90_000, &stable, &no_canary).unwrap();
    assert_eq!((next.phase, next.step), (Phase::Paused, 0));
    assert_eq!(next.weights(), (90, 10), "the traffic stays as it was");
    assert_eq!(
        t.reason,
        "held: the analysis stayed inconclusive 1m past the step's pause: \
         canary has 0 of 100 requests"
    );
    // A manual step waits for its operator, however long.
    let manual = state("[{weight: 10, pause: manual}]", "{max_error_rate: 0.05}");
    assert_eq!(advance(&manual, u64::MAX, &stable, &no_canary), None);
}

#[test]
fn analysis_options_delay_tolerate_and_dry_run() {
    let failing = stats(100, 50, 10);
    let good = stats(900, 0, 10);
    // No judgement before the initial delay.
    let delayed = state(
        "[{weight: 10, pause: 1m}]",
        "{max_error_rate: 0.05, initial_delay: 10s}",
    );
    assert_eq!(advance(&delayed, T0 + 9_999, &good, &failing), None);
    assert_eq!(
        advance(&delayed, T0 + 10_000, &good, &failing)
            .unwrap()
            .0
            .phase,
        Phase::RolledBack
    );

    // Two breaches in a row are tolerated, the third rolls back; a pass
    // between them starts the count again.
    let tolerant = state(
        "[{weight: 10, pause: 1m}]",
        "{max_error_rate: 0.05, failure_limit: 2}",
    );
    let (first, t) = advance(&tolerant, T0 + 1, &good, &failing).unwrap();
    assert_eq!((first.phase, first.breaches), (Phase::Progressing, 1));
    assert!(
        t.reason.starts_with("breach 1 of 2 tolerated in a row"),
        "{}",
        t.reason
    );
    let (cleared, t) = advance(&first, T0 + 2, &good, &stats(100, 0, 10)).unwrap();
    assert_eq!((cleared.phase, cleared.breaches), (Phase::Progressing, 0));
    assert!(
        t.reason.starts_with("breaches cleared after 1"),
        "{}",
        t.reason
    );
    let mut run = cleared;
    for n in 1..=2 {
        run = advance(&run, T0 + 3, &good, &failing).unwrap().0;
        assert_eq!((run.phase, run.breaches), (Phase::Progressing, n));
    }
    assert_eq!(
        advance(&run, T0 + 4, &good, &failing).unwrap().0.phase,
        Phase::RolledBack
    );

    // A dry run records each change of verdict once and moves on its pauses.
    let dry = state(
        "[{weight: 10, pause: 1m}, {weight: 50, pause: 1m}]",
        "{max_error_rate: 0.05, dry_run: true}",
    );
    let (recorded, t) = advance(&dry, T0 + 1, &good, &failing).unwrap();
    assert_eq!(recorded.phase, Phase::Progressing);
    assert_eq!(
        t.reason,
        "dry run, breach: error rate 50.00% > 5.00% over 100 requests"
    );
    assert_eq!(
        advance(&recorded, T0 + 2, &good, &failing),
        None,
        "recorded once"
    );
    let (moved, t) = advance(&recorded, T0 + 60_000, &good, &failing).unwrap();
    assert_eq!((moved.phase, moved.step), (Phase::Progressing, 1));
    assert!(
        t.reason
            .starts_with("step 1 of 2 (10%) dry run, pause over (breach)"),
        "{}",
        t.reason
    );
}

const ROLLOUT_DOC: &str = "  - { name: orders, service: orders }\n";

/// A plan of [`ROLLOUT_DOC`] and, in `store`, a rollout of it by `spec`
/// started at [`T0`].
fn rolling_out(store: &MemoryStore, spec: &str) -> (Plan, RolloutState) {
    let doc = orders(ROLLOUT_DOC);
    let state = start_rollout(store, &doc, spec, T0);
    (plan(&doc), state)
}

fn audit(store: &MemoryStore) -> Vec<Transition> {
    let keys = store.keys(&keys::rollout_audit_prefix("orders"));
    store
        .get_many(&keys)
        .unwrap()
        .into_iter()
        .map(|v| serde_json::from_slice(&v.unwrap()).unwrap())
        .collect()
}

/// Sends `n` requests at `now` through `plan`, answering the canary with
/// `canary_status` and everyone else with 200.
fn traffic(plan: &Plan, store: &MemoryStore, n: usize, now: u64, canary_status: u16) {
    for i in 0..n {
        let s = plan
            .choose(
                store,
                "orders",
                "orders",
                &head(format!("{now}-{i}")),
                None,
                now,
            )
            .unwrap();
        let status = if s.primary.version == "v3" {
            canary_status
        } else {
            200
        };
        let attempt = NamedAttempt {
            upstream: s.primary,
            outcome: Outcome::Status(status),
            latency_ms: 12,
        };
        add(store, plan.report(store, "orders", "orders", &attempt, now));
    }
}

#[test]
fn a_step_can_route_testers_by_header_and_mirror_the_rest() {
    let doc = orders(ROLLOUT_DOC);
    let p = plan(&doc);
    let store = MemoryStore::default();
    start_rollout(
        &store,
        &doc,
        "{service: orders, canary: v3, steps: [\
           {weight: 0, pause: 1m, header_route: {x-tester: 'yes'}, mirror: 25}, {weight: 50}]}",
        T0,
    );
    let choose = |head: &upshift_model::RequestHead<'_>| {
        let s = p
            .choose(&store, "orders", "orders", head, None, T0)
            .unwrap();
        (
            s.primary.version.to_owned(),
            s.shadow.map(|c| c.upstream.version.to_owned()),
        )
    };
    let (mut public, mut mirrored) = (0, 0);
    for i in 0..2_000 {
        let (version, shadow) = choose(&head(i));
        assert_eq!(version, "v1", "the public weight stays at 0");
        public += 1;
        if let Some(to) = shadow {
            assert_eq!(to, "v3", "copies go to the canary");
            mirrored += 1;
        }
        // Testers reach the canary, which is never its own shadow.
        let tester = with_header(head(i), "x-tester", "yes");
        assert_eq!(choose(&tester), ("v3".to_owned(), None));
        let other = with_header(head(i), "x-tester", "no");
        assert_eq!(choose(&other).0, "v1");
    }
    let share = f64::from(mirrored) / f64::from(public);
    assert!(
        (0.22..0.28).contains(&share),
        "{mirrored} of {public} mirrored"
    );

    // Finished, the step's routes and mirror end with it.
    let mut state = rollout(&store, "orders");
    state.abort(T0 + 1, "stop").unwrap();
    store
        .set(
            &keys::rollout_state("orders"),
            &serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
    for i in 0..200 {
        let tester = with_header(head(i), "x-tester", "yes");
        assert_eq!(choose(&tester), ("v1".to_owned(), None));
    }
}

#[test]
fn a_healthy_rollout_promotes_itself_step_by_step() {
    for_each_encoding(|store| {
        let (p, _) = rolling_out(
            &store,
            "{service: orders, canary: v3, steps: [{weight: 20, pause: 10s}, {weight: 60, pause: 10s}, {weight: 100, pause: 10s}], \
              analysis: {min_requests: 20, max_error_rate: 0.01, max_p99_ratio: 1.5}}",
        );
        let mut now = T0;
        for _ in 0..5 {
            now += 10_000;
            traffic(&p, &store, 300, now, 200);
        }
        let state = rollout(&store, "orders");
        assert_eq!(state.phase, Phase::Promoted);
        let moves: Vec<(usize, Phase)> = audit(&store)
            .iter()
            .map(|t| (t.to_step, t.to_phase))
            .collect();
        assert_eq!(
            moves,
            [
                (1, Phase::Progressing),
                (2, Phase::Progressing),
                (2, Phase::Promoted)
            ]
        );
        assert!(audit(&store).iter().all(|t| t.actor == Actor::Auto));
        // Step counters are kept per step.
        let step0 = upshift_splitter::step_stats(
            &store,
            &RolloutState {
                step: 0,
                ..state.clone()
            },
            "v3",
        )
        .unwrap();
        assert!(step0.requests >= 20, "{step0:?}");
        // Promoted: all traffic on the canary.
        traffic(&p, &store, 50, now + 1, 200);
        assert!((0..50).all(|i| {
            p.choose(&store, "orders", "orders", &head(i), None, now)
                .unwrap()
                .primary
                .version
                == "v3"
        }));
    });
}

#[test]
fn a_failing_canary_is_rolled_back_by_the_traffic_itself() {
    for_each_encoding(|store| {
        let (p, _) = rolling_out(
            &store,
            "{service: orders, canary: v3, steps: [{weight: 20}], analysis: {min_requests: 20, max_error_rate: 0.05}}",
        );
        traffic(&p, &store, 300, T0 + 1_000, 503);
        // This instance analysed at its first report, before there was data;
        // the next report after the interval sees the failures.
        assert_eq!(rollout(&store, "orders").phase, Phase::Progressing);
        traffic(&p, &store, 1, T0 + 2_000, 503);
        let state = rollout(&store, "orders");
        assert_eq!(state.phase, Phase::RolledBack);
        assert!(
            state
                .reason
                .starts_with("canary v3: error rate 100.00% > 5.00%"),
            "{}",
            state.reason
        );
        assert_eq!(audit(&store).len(), 1);
        let s = p
            .choose(&store, "orders", "orders", &head(1), None, T0 + 2_000)
            .unwrap();
        assert_eq!(s.primary.version, "v1");
    });
}

#[test]
fn analysis_runs_at_most_once_per_interval_per_instance() {
    for_each_encoding(|store| {
        let (p, _) = rolling_out(
            &store,
            "{service: orders, canary: v3, steps: [{weight: 50, pause: 0s}, {weight: 100}], \
              analysis: {min_requests: 10, interval: 1m, max_error_rate: 0.05}}",
        );
        // The first report analyses (too little data); the healthy ones
        // after it wait for the next interval.
        traffic(&p, &store, 200, T0 + 1, 200);
        assert_eq!(rollout(&store, "orders").step, 0);
        traffic(&p, &store, 1, T0 + 60_000, 200);
        assert_eq!(rollout(&store, "orders").step, 0, "1 ms early");
        traffic(&p, &store, 1, T0 + 60_001, 200);
        assert_eq!(rollout(&store, "orders").step, 1);
    });
}

#[test]
fn a_failing_canary_is_analysed_again_within_the_urgent_interval() {
    for_each_encoding(|store| {
        let (p, _) = rolling_out(
            &store,
            "{service: orders, canary: v3, steps: [{weight: 50}], analysis: {min_requests: 10, interval: 1m, max_error_rate: 0.05}}",
        );
        traffic(&p, &store, 200, T0 + 1, 503);
        assert_eq!(rollout(&store, "orders").phase, Phase::Progressing);
        // Half of the requests meet the failing canary.
        traffic(&p, &store, 20, T0 + URGENT_INTERVAL_MS, 503);
        assert_eq!(
            rollout(&store, "orders").phase,
            Phase::Progressing,
            "1 ms early"
        );
        traffic(&p, &store, 20, T0 + 1 + URGENT_INTERVAL_MS, 503);
        assert_eq!(rollout(&store, "orders").phase, Phase::RolledBack);
    });
}

/// A store where another node moves the rollout between this node's read
/// and its compare-and-swap.
struct Racing<'a> {
    inner: &'a MemoryStore,
    rival: &'a Plan,
    raced: Cell<bool>,
    now: u64,
}

impl Store for Racing<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.inner.get_many(keys)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.inner.increment(key, delta)
    }
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        if key == keys::rollout_state("orders") && !self.raced.replace(true) {
            let attempt = NamedAttempt {
                upstream: NamedUpstream {
                    version: "v1",
                    target: "http://v1-a",
                },
                outcome: Outcome::Status(200),
                latency_ms: 1,
            };
            add(
                self.inner,
                self.rival
                    .report(self.inner, "orders", "orders", &attempt, self.now),
            );
        }
        self.inner.compare_and_swap(key, expected, value)
    }
}

#[test]
fn two_nodes_racing_move_the_rollout_once() {
    for_each_encoding(|store| {
        let doc = orders(ROLLOUT_DOC);
        let (a, b) = (plan(&doc), plan(&doc));
        start_rollout(
            &store,
            &doc,
            "{service: orders, canary: v3, steps: [{weight: 50, pause: 0s}, {weight: 100}], analysis: {min_requests: 10}}",
            T0,
        );
        // Both sides get enough traffic, without analysis yet (a third node).
        let warm = plan(&doc);
        traffic(&warm, &store, 100, T0, 200);
        let before = rollout(&store, "orders");
        assert_eq!(
            before.step, 0,
            "the warm-up node analysed before there was data"
        );

        let racing = Racing {
            inner: &store,
            rival: &b,
            raced: Cell::new(false),
            now: T0 + 5_000,
        };
        let attempt = NamedAttempt {
            upstream: NamedUpstream {
                version: "v3",
                target: "http://v3-a",
            },
            outcome: Outcome::Status(200),
            latency_ms: 1,
        };
        add(
            &racing,
            a.report(&racing, "orders", "orders", &attempt, T0 + 5_000),
        );
        assert!(racing.raced.get(), "node a tried to write");

        let after = rollout(&store, "orders");
        assert_eq!(
            (after.step, after.revision),
            (1, before.revision + 1),
            "moved exactly once"
        );
        let moves = audit(&store);
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert_eq!((moves[0].from_step, moves[0].to_step), (0, 1));
    });
}

#[test]
fn an_ejected_canary_counts_its_lost_requests_as_failures() {
    for_each_encoding(|store| {
        let (p, state) = rolling_out(
            &store,
            "{service: orders, canary: v3, steps: [{weight: 50}]}",
        );
        eject(&store, "orders", &["http://v3-a"], T0 + 60_000);
        let diverted = (0..100)
            .map(|i| {
                p.choose(&store, "orders", "orders", &head(i), None, T0)
                    .unwrap()
            })
            .filter(|s| s.reason == Reason::CircuitOpen)
            .inspect(|s| assert_eq!(s.primary.version, "v1", "to the rollout's stable"))
            .count();
        assert!(diverted > 30, "{diverted}");
        let canary = upshift_splitter::step_stats(&store, &state, "v3").unwrap();
        assert_eq!(
            (canary.requests, canary.failures),
            (diverted as u64, diverted as u64)
        );
    });
}

#[test]
fn the_analysis_reads_step_counters_left_in_either_encoding() {
    for_each_encoding(|store| {
        let (p, state) = rolling_out(
            &store,
            "{service: orders, canary: v3, steps: [{weight: 50}], analysis: {min_requests: 10, max_error_rate: 0.05}}",
        );
        let fill = |version: &str, field: &str, n: i64| {
            store.fill_counter(
                &keys::step_metric("orders", &state.id, 0, version, field),
                n,
            );
        };
        fill("v1", "requests", 100);
        fill("v1", "status_2xx", 100);
        fill("v3", "requests", 100);
        fill("v3", "status_2xx", 50);
        fill("v3", "status_5xx", 50);
        let canary = upshift_splitter::step_stats(&store, &state, "v3").unwrap();
        assert_eq!((canary.requests, canary.errors()), (100, 50));

        // The first report analyses what was counted before it.
        let attempt = NamedAttempt {
            upstream: NamedUpstream {
                version: "v1",
                target: "http://v1-a",
            },
            outcome: Outcome::Status(200),
            latency_ms: 3,
        };
        add(
            &store,
            p.report(&store, "orders", "orders", &attempt, T0 + 1_000),
        );
        let after = rollout(&store, "orders");
        assert_eq!(after.phase, Phase::RolledBack);
        assert!(
            after
                .reason
                .starts_with("canary v3: error rate 50.00% > 5.00%"),
            "{}",
            after.reason
        );
        assert_eq!(
            store
                .get(&keys::step_metric("orders", &state.id, 0, "v1", "requests"))
                .unwrap(),
            Some(store.encoding().encode(101))
        );
    });
}
