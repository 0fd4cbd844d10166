//! Rollout requests and the manual transitions of a rollout.

use std::time::Duration;
use upshift_model::Config;
use upshift_model::rollout::{Actor, Pause, Phase, RolloutError, RolloutSpec, RolloutState, Step};

fn config() -> Config {
    Config::parse(
        r#"
services:
  - name: orders
    versions:
      - { name: v1, weight: 10, targets: [{ url: "http://a" }] }
      - { name: v2, weight: 90, targets: [{ url: "http://b" }] }
      - { name: v3, targets: [{ url: "http://c" }] }
  - name: solo
    versions: [{ name: v1, targets: [{ url: "http://d" }] }]
"#,
    )
    .unwrap()
}

fn problems(text: &str) -> Vec<String> {
    match RolloutSpec::parse(text, &config()) {
        Ok(spec) => panic!("accepted: {spec:?}"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_minimal_request_gets_the_defaults() {
    let spec = RolloutSpec::parse("{service: orders, canary: v3}", &config()).unwrap();
    assert_eq!(spec.stable, "v2", "highest weight");
    let weights: Vec<u32> = spec.steps.iter().map(|s| s.weight).collect();
    assert_eq!(weights, [10, 25, 50, 100]);
    assert!(
        spec.steps
            .iter()
            .all(|s| s.pause == Pause::For(Duration::from_secs(60)))
    );
    assert_eq!(spec.analysis.min_requests, 100);
    assert_eq!(spec.analysis.interval, Duration::from_secs(1));
    // Canary v2 has the highest weight itself: the stable is the next one.
    let spec = RolloutSpec::parse("{service: orders, canary: v2}", &config()).unwrap();
    assert_eq!(spec.stable, "v1");
}

#[test]
fn a_full_request_round_trips_through_json() {
    let text = r#"
service: orders
canary: v3
stable: v1
steps:
  - { weight: 5, pause: 500ms }
  - { weight: 50, pause: manual }
  - { weight: 100, pause: 2h }
  - { weight: 100, pause: 1m, header_route: { x-tester: "yes" }, mirror: 12.5 }
analysis:
  min_requests: 20
  interval: 250ms
  max_error_rate: 0.01
  max_p99_ms: 300
  max_error_rate_increase: 0.005
  max_p99_ratio: 1.5
  max_shadow_mismatch_rate: 0.02
  max_latency_increase: 0.1
  confidence: 0.95
  initial_delay: 30s
  inconclusive_limit: 5m
  failure_limit: 2
  dry_run: true
"#;
    let spec = RolloutSpec::parse(text, &config()).unwrap();
    assert_eq!(
        spec.steps[0],
        Step {
            weight: 5,
            pause: Pause::For(Duration::from_millis(500)),
            header_route: Default::default(),
            mirror: None,
        }
    );
    assert_eq!(spec.steps[1].pause, Pause::Manual);
    assert_eq!(spec.steps[3].header_route["x-tester"], "yes");
    assert_eq!(spec.steps[3].mirror, Some(12.5));
    let json = serde_json::to_string(&spec).unwrap();
    assert!(json.contains(r#""pause":"500ms""#), "{json}");
    assert!(json.contains(r#""pause":"2h""#), "{json}");
    assert!(json.contains(r#""interval":"250ms""#), "{json}");
    assert!(json.contains(r#""inconclusive_limit":"5m""#), "{json}");
    assert_eq!(spec.analysis.initial_delay, Duration::from_secs(30));
    assert_eq!(
        (
            spec.analysis.confidence,
            spec.analysis.failure_limit,
            spec.analysis.dry_run
        ),
        (Some(0.95), 2, true)
    );
    assert_eq!(RolloutSpec::parse(&json, &config()).unwrap(), spec);
}

#[test]
fn every_problem_is_reported() {
    assert_eq!(
        problems(
            r#"{service: orders, canary: v9, stable: v8, steps: [{weight: 50}, {weight: 20}, {weight: 101}],
               analysis: {min_requests: 0, interval: 0s, max_error_rate: 1.5, max_p99_ms: 0,
                          max_error_rate_increase: -0.1, max_p99_ratio: 0, max_shadow_mismatch_rate: 2}}"#
        ),
        [
            "canary: service \"orders\" has no version \"v9\"",
            "stable: service \"orders\" has no version \"v8\"",
            "steps[1].weight: weights must not decrease (the step before has 50)",
            "steps[2].weight: must be between 0 and 100",
            "analysis.min_requests: must be at least 1",
            "analysis.interval: must be at least 1ms",
            "analysis.max_p99_ms: must be at least 1",
            "analysis.max_error_rate: must be a fraction between 0 and 1",
            "analysis.max_error_rate_increase: must be a fraction between 0 and 1",
            "analysis.max_shadow_mismatch_rate: must be a fraction between 0 and 1",
            "analysis.max_p99_ratio: must be a number above 0",
        ]
    );
    assert_eq!(
        problems(
            "{service: orders, canary: v3, analysis: {confidence: 1.0, max_latency_increase: -1}}"
        ),
        [
            "analysis.confidence: must be at least 0.5 and below 1 (0.95 is usual)",
            "analysis.max_latency_increase: must be a fraction of 0 or more (0.1 is 10% slower)",
        ]
    );
    assert_eq!(
        problems(
            "{service: orders, canary: v3, steps: [{weight: 0, mirror: 101, header_route: {X-Tester: yes}}]}"
        ),
        [
            "steps[0].mirror: must be a percentage between 0 and 100",
            "steps[0].header_route: \"X-Tester\" is not a lower-case header name",
        ]
    );
    assert_eq!(
        problems("{service: orders, canary: v3, analysis: {confidence: 0.9}}"),
        [
            "analysis.confidence: applies to max_error_rate_increase and max_latency_increase; set one"
        ]
    );
    assert_eq!(
        problems("{service: nope, canary: v1, steps: []}"),
        [
            "service: unknown service \"nope\"",
            "steps: a rollout needs at least one step"
        ]
    );
    assert_eq!(
        problems("{service: solo, canary: v1}"),
        ["stable: service \"solo\" has no other version than the canary"]
    );
    assert_eq!(
        problems("{service: orders, canary: v1, stable: v1}"),
        ["stable: the stable and the canary must be different versions"]
    );
    let syntax = problems("{service: orders, canary: v3, steps: [{weight: 5, pause: soon}]}");
    assert!(
        syntax[0].starts_with("steps[0].pause: \"soon\" is not a duration"),
        "{syntax:?}"
    );
    let unknown = problems("{service: orders, canary: v3, rollback: true}");
    assert!(
        unknown[0].contains("unknown field `rollback`"),
        "{unknown:?}"
    );
}

fn started(steps: &str) -> RolloutState {
    let spec = RolloutSpec::parse(
        &format!("{{service: orders, canary: v3, steps: {steps}}}"),
        &config(),
    )
    .unwrap();
    let (state, transition) = RolloutState::start(spec, "r1", 1_000);
    assert_eq!(transition.from_phase, None);
    assert_eq!(transition.to_phase, Phase::Progressing);
    assert_eq!(transition.actor, Actor::Admin);
    assert_eq!(
        (state.revision, state.step, state.step_started_ms),
        (1, 0, 1_000)
    );
    state
}

#[test]
fn weights_follow_the_phase() {
    let mut state = started("[{weight: 10}, {weight: 40}]");
    assert!(state.is_active());
    assert_eq!(state.weights(), (90, 10));
    state.pause(2_000, "looking").unwrap();
    assert_eq!(state.weights(), (90, 10), "paused keeps the step's weights");
    state.resume(3_000).unwrap();
    state.promote(4_000).unwrap();
    assert_eq!((state.phase, state.step), (Phase::Promoted, 1));
    assert_eq!(state.weights(), (0, 100));
    assert!(!state.is_active());

    let mut state = started("[{weight: 10}]");
    state.abort(2_000, "wrong build").unwrap();
    assert_eq!(state.weights(), (100, 0));
    state.phase = Phase::RolledBack;
    assert_eq!(state.weights(), (100, 0));
}

#[test]
fn manual_transitions_check_the_phase_and_count_revisions() {
    let mut state = started("[{weight: 10, pause: manual}, {weight: 50, pause: manual}]");
    assert_eq!(state.pause(2_000, "hold").unwrap().to_phase, Phase::Paused);
    assert_eq!(
        state.pause(2_500, "again"),
        Err(RolloutError::AlreadyPaused)
    );
    assert_eq!(state.revision, 2);

    // Resuming a paused rollout continues it at the same step, whose
    // pause (and any extension for an inconclusive analysis) starts again.
    let t = state.resume(3_000).unwrap();
    assert_eq!(
        (t.from_phase, t.to_phase, t.to_step),
        (Some(Phase::Paused), Phase::Progressing, 0)
    );
    assert_eq!(
        state.step_started_ms, 3_000,
        "same step, its clock restarted"
    );

    // Resuming at a manual step passes it.
    let t = state.resume(4_000).unwrap();
    assert_eq!((t.from_step, t.to_step, t.actor), (0, 1, Actor::Admin));
    assert_eq!(state.step_started_ms, 4_000);
    let t = state.resume(5_000).unwrap();
    assert_eq!(t.to_phase, Phase::Promoted);
    assert_eq!(state.revision, 5);
    assert_eq!(state.updated_ms, 5_000);

    for result in [
        state.clone().pause(6_000, "x"),
        state.clone().resume(6_000),
        state.clone().promote(6_000),
        state.clone().abort(6_000, "x"),
    ] {
        assert_eq!(result, Err(RolloutError::Finished(Phase::Promoted)));
    }

    let mut timed = started("[{weight: 10, pause: 1m}]");
    assert_eq!(timed.resume(2_000), Err(RolloutError::NotWaiting));
    assert_eq!(timed.revision, 1);
}

#[test]
fn the_state_document_is_small_json() {
    let mut state = started("[{weight: 10}]");
    state.abort(2_000, "bad").unwrap();
    let json = serde_json::to_string(&state).unwrap();
    assert!(json.contains(r#""phase":"aborted""#), "{json}");
    assert!(json.len() < 300, "{} bytes: {json}", json.len());
    let again: RolloutState = serde_json::from_str(&json).unwrap();
    assert_eq!(again, state);
}

#[test]
fn versions_take_new_requests_by_the_rollout_then_the_config() {
    use upshift_model::rollout::takes_new_requests;
    let config = config();
    let takes = |state: Option<&RolloutState>, service: &str, version: &str| {
        takes_new_requests(&config, state, service, version)
    };
    // The config's weights: v3 sets none among versions that do.
    assert!(takes(None, "orders", "v1") && takes(None, "orders", "v2"));
    assert!(!takes(None, "orders", "v3"));
    assert!(takes(None, "solo", "v1"), "the only version takes all");
    assert!(!takes(None, "orders", "v9") && !takes(None, "nope", "v1"));

    let spec = RolloutSpec::parse("{service: orders, canary: v3}", &config).unwrap();
    let (mut state, _) = RolloutState::start(spec, "r1", 0);
    assert!(takes(Some(&state), "orders", "v2") && takes(Some(&state), "orders", "v3"));
    assert!(
        !takes(Some(&state), "orders", "v1"),
        "the rollout's two versions share the traffic"
    );
    state.abort(1, "by hand").unwrap();
    assert!(takes(Some(&state), "orders", "v2"));
    assert!(!takes(Some(&state), "orders", "v3"), "rolled back");
    let spec = RolloutSpec::parse("{service: orders, canary: v3}", &config).unwrap();
    let (mut state, _) = RolloutState::start(spec, "r2", 0);
    state.promote(1).unwrap();
    assert!(!takes(Some(&state), "orders", "v2"), "promoted away");
    assert!(takes(Some(&state), "orders", "v3"));
}
