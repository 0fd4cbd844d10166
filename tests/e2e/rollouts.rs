//! Rollouts end to end: a canary that fails rolls back by itself, a healthy
//! one promotes itself, one without traffic is held with the reason, a
//! mirror step catches a failing canary before live traffic, webhooks
//! hold a step and are told of each transition once, operators steer one
//! through the CLI, a blue/green switch under load loses nothing, and the
//! counters come out as Prometheus text.

use crate::support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::peers::{Delivery, Receiver};
use support::traffic::{Seen, admin_get, admin_post, drive_to_rollback, send_many};
use support::upstream::{Behavior, Upstream, canary_service, canary_service_without_ejection};
use support::{Host, cli, repo};
use upshift_model::webhook::{DELIVERY_HEADER, SIGNATURE_HEADER, verify};

/// The key the rigs' webhooks sign with (variable `webhook_secret`).
const WEBHOOK_KEY: &str = "rig-webhook-key";

/// A host serving service `s` (as `doc` writes it) over a stable and a
/// canary upstream answering as told, with the rollout `plan` started;
/// its variable `webhook_secret` is [`WEBHOOK_KEY`].
struct Rig {
    host: Host,
    _stable: Upstream,
    canary: Upstream,
    _state: tempfile::TempDir,
}

impl Rig {
    async fn start(
        stable: Behavior,
        canary: Behavior,
        doc: impl Fn(&Upstream, &Upstream) -> String,
        plan: &str,
    ) -> Rig {
        let stable = Upstream::start_with("stable", stable).await;
        let canary = Upstream::start_with("canary", canary).await;
        let state = tempfile::tempdir().unwrap();
        let variables = state.path().join("variables.toml");
        std::fs::write(&variables, format!("webhook_secret = \"{WEBHOOK_KEY}\"\n")).unwrap();
        let host = Host::start_with(
            &repo().join("spin.toml"),
            state.path(),
            &["--variables-file", variables.to_str().unwrap()],
        );
        host.apply(&doc(&stable, &canary)).await;
        let (status, body) = admin_post(&host, "/admin/rollouts", plan).await;
        assert_eq!(status, 201, "{body}");
        Rig {
            host,
            _stable: stable,
            canary,
            _state: state,
        }
    }
}

async fn rollout(host: &Host) -> Value {
    let (status, body) = admin_get(host, "/admin/rollouts/s").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Sends traffic in rounds until the rollout leaves `phase`, for at most
/// `within`: steps pause for a time, so a bound in requests would depend
/// on how fast the gateway is.
async fn drive_while(host: &Host, phase: &str, within: Duration) -> (Vec<Seen>, Value) {
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < within {
        seen.extend(send_many(host, "/r", 50, 8, |_, r| r).await);
        let status = rollout(host).await;
        if status["rollout"]["phase"] != phase {
            return (seen, status);
        }
    }
    panic!(
        "still {phase} after {within:?} and {} requests: {}",
        seen.len(),
        rollout(host).await
    );
}

/// The audit trail is one chain: each transition starts where the last ended.
fn assert_chain(history: &[Value]) {
    for pair in history.windows(2) {
        assert_eq!(pair[0]["to_phase"], pair[1]["from_phase"], "{history:?}");
        assert_eq!(pair[0]["to_step"], pair[1]["from_step"], "{history:?}");
    }
}

#[tokio::test]
async fn a_failing_canary_rolls_back_by_itself() {
    let rig = Rig::start(Behavior::Normal, Behavior::FailEvery(5), canary_service,
        "service: s\ncanary: v2\n\
         steps: [{ weight: 20, pause: 10m }, { weight: 50, pause: 10m }, { weight: 100, pause: 10m }]\n\
         analysis: { min_requests: 40, max_error_rate: 0.05, interval: 100ms }\n",
    )
    .await;
    let host = &rig.host;

    let (seen, status) = drive_while(host, "progressing", Duration::from_secs(20)).await;
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    assert_eq!(
        status["rollout"]["step"], 0,
        "rolled back at the first step"
    );
    let reason = status["rollout"]["reason"].as_str().unwrap();
    assert!(reason.contains("error rate"), "{reason}");
    assert_eq!(status["weights"]["canary"], 0);

    // Only the first step's share of requests could meet the failing canary:
    // about 20% of them went there and 20% of those failed.
    let failed = seen.iter().filter(|s| s.status != 200).count();
    let allowed = seen.len() as f64 * 0.2 * 0.2 * 1.5 + 5.0;
    assert!(
        (failed as f64) <= allowed,
        "{failed} of {} requests failed",
        seen.len()
    );
    let history = status["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "start and rollback: {history:?}");
    assert_eq!(history[1]["actor"], "auto");
    assert_chain(history);

    // Rolled back means all traffic on the stable version again.
    let after = send_many(host, "/r", 200, 8, |_, r| r).await;
    assert!(after.iter().all(|s| s.status == 200 && s.version() == "v1"));
}

#[tokio::test]
async fn a_healthy_canary_promotes_itself() {
    let rig = Rig::start(Behavior::Normal, Behavior::Normal, canary_service,
        "{\"service\": \"s\", \"canary\": \"v2\", \
          \"steps\": [{\"weight\": 10, \"pause\": \"300ms\"}, {\"weight\": 50, \"pause\": \"300ms\"}], \
          \"analysis\": {\"min_requests\": 20, \"max_error_rate\": 0.01, \"max_p99_ms\": 1000, \"interval\": \"100ms\"}}",
    )
    .await;
    let host = &rig.host;
    let (seen, status) = drive_while(host, "progressing", Duration::from_secs(20)).await;
    assert!(seen.iter().all(|s| s.status == 200));
    assert_eq!(status["rollout"]["phase"], "promoted", "{status}");
    let history = status["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "start, step 2, promotion: {history:?}");
    assert!(history[1..].iter().all(|t| t["actor"] == "auto"));
    assert_chain(history);

    let after = send_many(host, "/r", 100, 8, |_, r| r).await;
    assert!(after.iter().all(|s| s.status == 200 && s.version() == "v2"));
    let metrics = support::client()
        .get(format!("{}/admin/metrics", host.admin))
        .bearer_auth(support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    let count = |version: &str| -> u64 {
        let prefix =
            format!("upshift_requests_total{{route=\"all\",service=\"s\",version=\"{version}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        count("v1") + count("v2"),
        (seen.len() + after.len()) as u64,
        "{text}"
    );
    assert!(text.contains("upshift_upstream_latency_seconds_bucket{route=\"all\",service=\"s\",version=\"v2\",le=\"+Inf\"}"));
    let gauge = |name: &str| {
        let labels = "{service=\"s\",stable=\"v1\",canary=\"v2\",phase=\"promoted\"} ";
        let prefix = format!("{name}{labels}");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::to_owned)
    };
    assert_eq!(
        gauge("upshift_rollout_canary_weight").as_deref(),
        Some("100")
    );
    assert_eq!(
        gauge("upshift_rollout_step").as_deref(),
        Some("2"),
        "{text}"
    );
    assert_eq!(gauge("upshift_rollout_steps").as_deref(), Some("2"));
}

#[tokio::test]
async fn a_canary_without_traffic_holds_the_rollout_with_the_reason() {
    // Every request carries a header that a split rule pins to v1, so the
    // canary's 50% step sees none of them.
    let pinned = |stable: &Upstream, canary: &Upstream| {
        canary_service(stable, canary).replace(
            "routes: [{ name: all, service: s }]",
            "routes: [{ name: all, service: s, \
             split: { rules: [{ match: { headers: { x-cohort: old } }, version: v1 }] } }]",
        )
    };
    let rig = Rig::start(
        Behavior::Normal,
        Behavior::Normal,
        pinned,
        "service: s\ncanary: v2\n\
         steps: [{ weight: 50, pause: 300ms }, { weight: 100, pause: 300ms }]\n\
         analysis: { min_requests: 20, max_error_rate: 0.05, max_error_rate_increase: 0.01, \
                     confidence: 0.95, interval: 50ms, inconclusive_limit: 1s }\n",
    )
    .await;
    let host = &rig.host;

    let started = Instant::now();
    let mut served = 0;
    let status = loop {
        let seen = send_many(host, "/r", 20, 4, |_, r| r.header("x-cohort", "old")).await;
        assert!(seen.iter().all(|s| s.status == 200 && s.server == "stable"));
        served += seen.len();
        let status = rollout(host).await;
        if status["rollout"]["phase"] != "progressing" {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never held: {status}"
        );
    };
    // Held, not promoted or rolled back, and only after the pause and the
    // extension had passed.
    assert_eq!(status["rollout"]["phase"], "paused", "{status}");
    assert_eq!(status["rollout"]["step"], 0);
    assert_eq!(
        status["weights"]["canary"], 50,
        "the traffic stays as it was"
    );
    let reason = status["rollout"]["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "held: the analysis stayed inconclusive 1s past the step's pause: \
         canary has 0 of 20 requests"
    );
    assert_eq!(status["step"]["analysis"]["verdict"], "inconclusive");
    assert_eq!(status["step"]["canary"]["requests"], 0, "{status}");
    assert!(served >= 20);
    let history = status["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "start and hold: {history:?}");
    let held_after = history[1]["at_ms"].as_u64().unwrap() - history[0]["at_ms"].as_u64().unwrap();
    assert!(held_after >= 1_300, "held {held_after} ms after the start");
    assert_eq!(history[1]["actor"], "auto");
    assert_chain(history);

    // More stable traffic while paused changes nothing.
    send_many(host, "/r", 100, 8, |_, r| r.header("x-cohort", "old")).await;
    assert_eq!(rollout(host).await["rollout"]["phase"], "paused");
}

#[tokio::test]
async fn a_mirror_step_catches_a_failing_canary_before_any_live_traffic() {
    let rig = Rig::start(
        Behavior::Normal,
        Behavior::FailEvery(4),
        canary_service,
        "service: s\ncanary: v2\n\
         steps: [{ weight: 0, pause: 10m, mirror: 50, header_route: { x-tester: 'yes' } }, \
                 { weight: 50, pause: 10m }]\n\
         analysis: { min_requests: 20, max_shadow_mismatch_rate: 0.05, interval: 50ms }\n",
    )
    .await;
    let (host, canary) = (&rig.host, &rig.canary);

    // Testers reach the canary by header while the public weight is 0.
    let testers = send_many(host, "/r", 3, 1, |_, r| r.header("x-tester", "yes")).await;
    assert!(testers.iter().all(|s| s.server == "canary"), "{testers:?}");

    let (seen, status) = drive_while(host, "progressing", Duration::from_secs(20)).await;
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    assert_eq!(status["rollout"]["step"], 0, "before any live traffic");
    let reason = status["rollout"]["reason"].as_str().unwrap();
    assert!(reason.contains("shadow mismatch rate"), "{reason}");
    // Every public request was answered by the stable; the canary saw
    // only copies (and the testers).
    assert!(seen.iter().all(|s| s.status == 200 && s.server == "stable"));
    assert!(canary.hits() >= 20, "{} copies", canary.hits());
    assert!(canary.hits() < seen.len() as u64 + 3);
}

#[tokio::test]
async fn shadow_diffing_catches_a_canary_answering_differently_before_live_traffic() {
    if support::lane() == "component" {
        // Answers are compared on the native lane only.
        return;
    }
    // The same answers as the stable, but the price differs on 1 in 20.
    let rig = Rig::start(
        Behavior::Catalog(0),
        Behavior::Catalog(20),
        canary_service,
        "service: s\ncanary: v2\n\
         steps: [{ weight: 0, pause: 10m, mirror: 100 }, { weight: 50, pause: 10m }]\n\
         analysis: { min_requests: 200, max_shadow_diff_rate: 0.01, interval: 50ms }\n",
    )
    .await;
    let host = &rig.host;
    let (seen, status) = drive_while(host, "progressing", Duration::from_secs(30)).await;
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    assert_eq!(status["rollout"]["step"], 0, "before any live traffic");
    assert!(seen.iter().all(|s| s.status == 200 && s.server == "stable"));
    let reason = status["rollout"]["reason"].as_str().unwrap();
    assert!(reason.contains("shadow answers differing"), "{reason}");

    // The price is blamed; the timestamp, which differs between two answers
    // of the stable itself, is noise.
    let diffs = &status["step"]["diffs"];
    let blamed = diffs["fields"].as_object().unwrap();
    assert_eq!(blamed.keys().collect::<Vec<_>>(), ["$.price"], "{diffs}");
    assert!(
        diffs["noise"]["$.served_at"].as_u64().unwrap() >= 200,
        "{diffs}"
    );
    let sample = &diffs["samples"][0];
    assert_eq!(sample["path"], "/r");
    assert_eq!(
        sample["fields"],
        serde_json::json!([{ "path": "$.price", "primary": "10", "canary": "11" }])
    );
    let (ok, out, err) = cli(&["rollout", "status", "s", "--admin", host.admin.as_str()]);
    assert!(ok, "{err}");
    assert!(out.contains("answer diffs: $.price ("), "{out}");
    assert!(out.contains("$.price 10 -> 11"), "{out}");
}

#[tokio::test]
async fn fields_that_differ_between_stable_answers_are_not_blamed() {
    if support::lane() == "component" {
        return;
    }
    let rig = Rig::start(
        Behavior::Catalog(0),
        Behavior::Catalog(0),
        canary_service,
        "service: s\ncanary: v2\n\
         steps: [{ weight: 0, pause: 300ms, mirror: 100 }, { weight: 100, pause: 0s }]\n\
         analysis: { min_requests: 100, max_shadow_diff_rate: 0, interval: 50ms }\n",
    )
    .await;
    let host = &rig.host;
    let (_, status) = drive_while(host, "progressing", Duration::from_secs(30)).await;
    assert_eq!(status["rollout"]["phase"], "promoted", "{status}");
    let history = status["history"].as_array().unwrap();
    let passed = history[1]["reason"].as_str().unwrap();
    assert!(
        passed.contains("shadow answers differing 0.00% ≤ 0.00%"),
        "{passed}"
    );
}

/// Checks that every delivery is signed with [`WEBHOOK_KEY`] and names a
/// delivery no other one does.
fn assert_signed_once(deliveries: &[Delivery]) {
    let mut ids = std::collections::HashSet::new();
    for delivery in deliveries {
        let signature = delivery.header(SIGNATURE_HEADER).expect("signed");
        assert!(
            verify(WEBHOOK_KEY.as_bytes(), signature, &delivery.raw).is_some(),
            "bad signature {signature} on {}",
            delivery.body
        );
        assert!(
            verify(b"another key", signature, &delivery.raw).is_none(),
            "a wrong key must not verify"
        );
        let id = delivery.header(DELIVERY_HEADER).expect("a delivery id");
        assert!(ids.insert(id.to_owned()), "{id} delivered twice");
    }
}

#[tokio::test]
async fn a_confirm_hook_holds_a_step_until_it_answers_2xx() {
    let hooks = Receiver::start().await;
    hooks.answer("/confirm", 403);
    let plan = format!(
        "service: s\ncanary: v2\n\
         steps: [{{ weight: 20, pause: 0s }}, {{ weight: 60, pause: 0s }}]\n\
         analysis: {{ min_requests: 5, max_error_rate: 0.05, interval: 100ms }}\n\
         webhooks:\n\
         - {{ name: gate, type: confirm_step, url: '{}', secret_variable: webhook_secret }}\n\
         - {{ name: events, type: event, url: '{}', secret_variable: webhook_secret }}\n",
        hooks.url("/confirm"),
        hooks.url("/events"),
    );
    let rig = Rig::start(Behavior::Normal, Behavior::Normal, canary_service, &plan).await;
    let host = &rig.host;

    // The step passes, then waits at the gate: the hook is asked again
    // each interval and keeps saying no.
    let started = Instant::now();
    while hooks.taken("/confirm").len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the confirm hook was not asked: {}",
            rollout(host).await
        );
        send_many(host, "/r", 20, 4, |_, r| r).await;
    }
    let held = rollout(host).await;
    assert_eq!(held["rollout"]["phase"], "progressing", "{held}");
    assert_eq!(held["rollout"]["step"], 0, "{held}");
    assert_eq!(held["rollout"]["awaiting"], "confirm", "{held}");
    assert_eq!(held["weights"]["canary"], 20);
    let gate = held["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["hook"] == "gate")
        .unwrap();
    assert_eq!(gate["outcome"], "answered 403", "{held}");
    let asked = hooks.taken("/confirm");
    assert_signed_once(&asked[..1]);
    assert_eq!(asked[0].body["type"], "confirm_step");
    assert_eq!(asked[0].body["step"], 0);
    // Asked about once per interval, not per request.
    let span = asked.len() as f64;
    assert!(
        span <= 3.0 + started.elapsed().as_secs_f64() * 10.0 * 1.5,
        "{span}"
    );

    // A 2xx releases the step; the last one needs no confirmation.
    hooks.answer("/confirm", 204);
    let (_, done) = drive_while(host, "progressing", Duration::from_secs(20)).await;
    assert_eq!(done["rollout"]["phase"], "promoted", "{done}");
    let history = done["history"].as_array().unwrap();
    assert!(
        history.iter().any(|t| t["actor"] == "webhook"
            && t["reason"]
                .as_str()
                .unwrap()
                .starts_with("step 1 of 2 confirmed (confirm_step hooks: gate answered 204)")),
        "{history:?}"
    );
    assert_chain(history);

    // The event hook hears of every transition, once each, in order.
    let revision = done["rollout"]["revision"].as_u64().unwrap();
    let started = Instant::now();
    while (hooks.taken("/events").len() as u64) < revision {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "events missing"
        );
        send_many(host, "/r", 5, 1, |_, r| r).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = hooks.taken("/events");
    assert_signed_once(&events);
    let revisions: Vec<u64> = events
        .iter()
        .map(|e| e.body["transition"]["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revisions, (1..=revision).collect::<Vec<_>>());
    assert_eq!(
        events.last().unwrap().body["transition"]["to_phase"],
        "promoted"
    );
}

#[tokio::test]
async fn a_rollback_is_told_once_and_a_failing_pre_rollout_hook_keeps_the_canary_dark() {
    let hooks = Receiver::start().await;
    let plan = format!(
        "service: s\ncanary: v2\n\
         steps: [{{ weight: 50, pause: 10m }}]\n\
         analysis: {{ min_requests: 20, max_error_rate: 0.05, interval: 100ms }}\n\
         webhooks:\n\
         - {{ name: back, type: rollback, url: '{}', secret_variable: webhook_secret }}\n\
         - {{ name: after, type: post_rollout, url: '{}', retries: 0 }}\n",
        hooks.url("/rollback"),
        hooks.url("/post"),
    );
    let rig = Rig::start(
        Behavior::Normal,
        Behavior::Status(500),
        canary_service,
        &plan,
    )
    .await;
    let host = &rig.host;
    let (_, status) = drive_while(host, "progressing", Duration::from_secs(20)).await;
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    // Traffic goes on after the rollback: the news is told once.
    let started = Instant::now();
    while hooks.taken("/rollback").is_empty() || hooks.taken("/post").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no rollback event"
        );
        send_many(host, "/r", 10, 2, |_, r| r).await;
    }
    send_many(host, "/r", 200, 8, |_, r| r).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let told = hooks.taken("/rollback");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_signed_once(&told);
    assert_eq!(told[0].body["phase"], "rolled_back");
    assert_eq!(told[0].body["transition"]["to_phase"], "rolled_back");
    assert!(
        told[0].body["transition"]["reason"]
            .as_str()
            .unwrap()
            .contains("error rate"),
        "{}",
        told[0].body
    );
    let after = hooks.taken("/post");
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(
        after[0].header(SIGNATURE_HEADER).is_none(),
        "no secret, no signature"
    );

    // A pre-rollout hook that fails rolls the next rollout back before the
    // canary takes a single request.
    hooks.answer("/smoke", 500);
    let (cleared, body) = support::traffic::admin_delete(host, "/admin/rollouts/s").await;
    assert_eq!(cleared, 200, "{body}");
    let served_before = rig.canary.hits();
    let plan = format!(
        "service: s\ncanary: v2\n\
         steps: [{{ weight: 50, pause: 10m }}]\n\
         webhooks: [{{ name: smoke, type: pre_rollout, url: '{}', retries: 1, backoff: 50ms }}]\n",
        hooks.url("/smoke"),
    );
    let (started_status, body) = admin_post(host, "/admin/rollouts", &plan).await;
    assert_eq!(started_status, 201, "{body}");
    assert_eq!(body["rollout"]["awaiting"], "pre_rollout");
    let (_, status) = drive_while(host, "progressing", Duration::from_secs(20)).await;
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    assert_eq!(
        status["rollout"]["reason"],
        "the pre_rollout hook smoke answered 500 after 2 attempts"
    );
    assert_eq!(hooks.taken("/smoke").len(), 2, "one retry");
    assert_eq!(rig.canary.hits(), served_before, "the canary stayed dark");
}

#[tokio::test]
async fn a_failing_canary_takes_no_new_request_soon_after_the_evidence() {
    // The default analysis interval, 1 s: a failing canary is judged sooner.
    let rig = Rig::start(
        Behavior::Normal,
        Behavior::Status(500),
        canary_service_without_ejection,
        "service: s\ncanary: v2\nsteps: [{ weight: 50, pause: 10m }]\n\
         analysis: { min_requests: 20, max_error_rate: 0.05 }\n",
    )
    .await;
    let (host, canary) = (&rig.host, &rig.canary);
    drive_to_rollback(&[host], canary, 20)
        .await
        .print("one node");
}

#[tokio::test]
async fn operators_steer_a_rollout_from_the_cli() {
    let stable = Upstream::start("stable").await;
    let canary = Upstream::start("canary").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&canary_service(&stable, &canary)).await;
    let admin = ["--admin", host.admin.as_str()];
    let run = |args: &[&str]| cli(&[args, &admin[..]].concat());

    let (ok, out, err) = run(&[
        "rollout", "start", "s", "--canary", "v2", "--steps", "30,100", "--pause", "manual",
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(" of s started: progressing, step 1 of 2, v1 70% / v2 30%"),
        "{out}"
    );
    let (ok, out, _) = run(&["rollout", "status", "s", "--output", "json"]);
    assert!(ok);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["weights"]["canary"], 30, "{out}");
    let (ok, _, err) = run(&["rollout", "start", "s", "--canary", "v2"]);
    assert!(!ok && err.contains("rollout_in_progress"), "{err}");

    // A manual gate holds the step however much traffic passes.
    let seen = send_many(&host, "/r", 300, 8, |_, r| r).await;
    let on_canary = seen.iter().filter(|s| s.version() == "v2").count();
    assert!(
        (50..=130).contains(&on_canary),
        "{on_canary} of 300 on the canary"
    );
    let (ok, out, _) = run(&["rollout", "status", "s"]);
    assert!(ok);
    assert!(out.contains("v1 70% / v2 30%"), "{out}");

    let (ok, out, err) = run(&["rollout", "pause", "s", "--reason", "checking dashboards"]);
    assert!(ok, "{err}");
    assert!(out.contains(" of s paused: paused, step 1 of 2"), "{out}");
    let (ok, _, err) = run(&["rollout", "resume", "s"]);
    assert!(ok, "{err}");
    assert_eq!(
        rollout(&host).await["weights"]["canary"],
        30,
        "resume from a pause keeps the step"
    );
    let (ok, _, err) = run(&["rollout", "resume", "s"]);
    assert!(ok, "{err}");
    assert_eq!(
        rollout(&host).await["weights"]["canary"],
        100,
        "resume passes the gate"
    );
    let (ok, _, err) = run(&["rollout", "abort", "s", "--reason", "customer report"]);
    assert!(ok, "{err}");
    let status = rollout(&host).await;
    assert_eq!(status["rollout"]["phase"], "aborted");
    assert_eq!(status["weights"]["canary"], 0);
    let after = send_many(&host, "/r", 50, 8, |_, r| r).await;
    assert!(after.iter().all(|s| s.version() == "v1"));

    let (ok, out, _) = run(&["rollout", "status", "s"]);
    assert!(ok);
    for reason in ["checking dashboards", "customer report"] {
        assert!(out.contains(reason), "{out}");
    }
    let history = status["history"].as_array().unwrap();
    assert!(history.iter().all(|t| t["actor"] == "admin"), "{history:?}");
    assert_chain(history);
    let (ok, out, _) = run(&["rollout", "promote", "s"]);
    assert!(!ok, "promoting an aborted rollout: {out}");
    // A finished rollout can be followed by a new one, or cleared so that
    // the config's weights rule again.
    let (ok, out, err) = run(&["rollout", "start", "s", "--canary", "v2", "--steps", "100"]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = run(&["rollout", "clear", "s"]);
    assert!(!ok && err.contains("rollout_in_progress"), "{err}");
    let (ok, _, err) = run(&["rollout", "promote", "s"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["rollout", "clear", "s"]);
    assert!(ok, "{err}");
    let after = send_many(&host, "/r", 50, 8, |_, r| r).await;
    assert!(
        after.iter().all(|s| s.version() == "v1"),
        "config weights again"
    );
}

#[tokio::test]
async fn a_blue_green_switch_under_load_loses_nothing() {
    let blue = Upstream::start("blue").await;
    let green = Upstream::start("green").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    let doc = |weights: (u32, u32)| {
        format!(
            "services:\n\
             - name: s\n\
             \x20 versions:\n\
             \x20   - {{ name: blue, weight: {}, targets: [{{ url: '{}' }}] }}\n\
             \x20   - {{ name: green, weight: {}, targets: [{{ url: '{}' }}] }}\n\
             routes: [{{ name: all, service: s }}]\n",
            weights.0,
            blue.url(),
            weights.1,
            green.url()
        )
    };
    host.apply(&doc((100, 0))).await;
    // The switch is applied once a third of the requests have gone out,
    // however fast the lane serves them.
    const REQUESTS: usize = 6_000;
    let started = std::sync::atomic::AtomicUsize::new(0);
    let load = send_many(&host, "/bg", REQUESTS, 32, |i, r| {
        started.store(i, std::sync::atomic::Ordering::Relaxed);
        r
    });
    let switch = async {
        while started.load(std::sync::atomic::Ordering::Relaxed) < REQUESTS / 3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        host.apply(&doc((0, 100))).await;
        Instant::now()
    };
    let (seen, _) = tokio::join!(load, switch);
    let failed: Vec<&Seen> = seen.iter().filter(|s| s.status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let first_green = seen
        .iter()
        .position(|s| s.version() == "green")
        .expect("green served");
    assert!(first_green > 0 && seen[0].version() == "blue");
    // After the switch (allowing for requests in flight), only green.
    assert!(
        seen[first_green + 64..]
            .iter()
            .all(|s| s.version() == "green")
    );
}
