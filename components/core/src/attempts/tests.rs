use super::*;
use crate::policy::Upstream;

fn selection(alternates: usize, attempts: u32, retry_on: &[u16]) -> Selection {
    let upstream = |i: usize| Upstream {
        version: 0,
        target: i as u32,
    };
    Selection {
        primary: upstream(0),
        alternates: (1..=alternates).map(upstream).collect(),
        shadow: None,
        retry: RetryPolicy {
            attempts,
            retry_on: retry_on.to_vec(),
            per_try_timeout_ms: Some(100),
        },
        reason: crate::policy::Reason::Weight,
        report_all: false,
        hooks_due: false,
    }
}

fn answered(status: u16) -> Ended {
    Ended::Answered {
        status,
        retry_after_s: None,
    }
}

/// The candidates tried while every try ends with `ended`.
fn tried(attempts: &mut Attempts, ended: Ended, budget: &mut u32) -> Vec<usize> {
    let mut seen = vec![attempts.current()];
    while let Some(next) = attempts.next(ended, || {
        let ok = *budget > 0;
        *budget = budget.saturating_sub(1);
        ok
    }) {
        seen.push(next.candidate);
    }
    seen
}

#[test]
fn proxy_retries_walk_the_alternates_and_stay_on_the_last() {
    let mut attempts = Attempts::proxy(&selection(2, 4, &[503]), true);
    assert_eq!(
        tried(&mut attempts, Ended::NoAnswer, &mut 10),
        [0, 1, 2, 2, 2]
    );
}

#[test]
fn proxy_retries_only_listed_statuses_and_failures() {
    let mut attempts = Attempts::proxy(&selection(1, 3, &[503]), true);
    assert_eq!(tried(&mut attempts, answered(500), &mut 10), [0]);
    let mut attempts = Attempts::proxy(&selection(1, 3, &[503]), true);
    assert_eq!(tried(&mut attempts, answered(503), &mut 10), [0, 1, 1, 1]);
}

#[test]
fn proxy_retries_need_a_replayable_body_and_budget() {
    let mut attempts = Attempts::proxy(&selection(1, 3, &[]), false);
    assert_eq!(tried(&mut attempts, Ended::NoAnswer, &mut 10), [0]);
    let mut attempts = Attempts::proxy(&selection(1, 3, &[]), true);
    assert_eq!(tried(&mut attempts, Ended::NoAnswer, &mut 1), [0, 1]);
}

#[test]
fn proxy_retries_do_not_wait() {
    let mut attempts = Attempts::proxy(&selection(0, 2, &[503]), true);
    let next = attempts.next(answered(503), || true).unwrap();
    assert_eq!(
        next,
        Try {
            candidate: 0,
            wait: Duration::ZERO
        }
    );
}

#[test]
fn ai_attempts_retry_with_backoff_then_fall_back() {
    let mut attempts = Attempts::ai([(2, 100), (0, 100)]);
    let waits: Vec<(usize, u128)> = std::iter::from_fn(|| {
        attempts
            .next(answered(503), || true)
            .map(|t| (t.candidate, t.wait.as_millis()))
    })
    .collect();
    assert_eq!(waits, [(0, 100), (0, 200), (1, 0)]);
}

#[test]
fn ai_attempts_honor_retry_after_up_to_the_limit() {
    let mut attempts = Attempts::ai([(1, 100), (0, 0)]);
    let slow = Ended::Answered {
        status: 429,
        retry_after_s: Some(2),
    };
    assert_eq!(attempts.next(slow, || true).unwrap().wait.as_millis(), 2000);
    let mut attempts = Attempts::ai([(1, 100), (0, 0)]);
    let too_slow = Ended::Answered {
        status: 429,
        retry_after_s: Some(u64::from(MAX_RETRY_WAIT_MS) / 1000 + 1),
    };
    // Not retried here: the next attempt takes it at once.
    assert_eq!(
        attempts.next(too_slow, || true),
        Some(Try {
            candidate: 1,
            wait: Duration::ZERO
        })
    );
}

#[test]
fn ai_answers_that_are_not_busy_or_failing_stand() {
    let mut attempts = Attempts::ai([(3, 10), (0, 0)]);
    assert_eq!(attempts.next(answered(400), || true), None);
    assert_eq!(attempts.next(answered(200), || true), None);
}

#[test]
fn unusable_candidates_are_skipped() {
    let mut attempts = Attempts::ai([(3, 10), (0, 0)]);
    assert_eq!(
        attempts.next(Ended::Unusable, || false).unwrap().candidate,
        1
    );
    assert_eq!(attempts.next(Ended::Unusable, || true), None);
}

#[test]
fn per_try_timeouts_apply_only_to_retried_requests() {
    let retry = selection(0, 2, &[]).retry;
    assert_eq!(try_timeout_ms(1000, &retry, true), 100);
    assert_eq!(try_timeout_ms(1000, &retry, false), 1000);
    assert_eq!(try_timeout_ms(50, &retry, true), 50);
    assert_eq!(try_timeout_ms(1000, &RetryPolicy::default(), true), 1000);
}
