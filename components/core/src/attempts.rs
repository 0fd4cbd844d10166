//! The attempts of one request: which candidate each try goes to, how long
//! to wait before it, and whether another try follows the one that just
//! ended. One driver serves both lanes of the request path:
//!
//! - proxy routes: the splitter's primary, then its alternates in order,
//!   the last one taking any further tries; at most the route's `attempts`
//!   retries, each within the route's retry budget, on the statuses the
//!   route retries and on every failure or timeout; only when the body can
//!   be sent again.
//! - AI calls: each provider attempt (the model, then its fallbacks) is
//!   tried up to `1 + retries` times with exponential backoff (or the
//!   provider's `retry-after` when longer, up to [`MAX_RETRY_WAIT_MS`]),
//!   on 429, any 5xx, failures and timeouts; then the next attempt.

use std::time::Duration;

use upshift_model::ai::MAX_RETRY_WAIT_MS;

use crate::policy::{RetryPolicy, Selection};

/// Which answers are worth another try.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RetryOn {
    /// These statuses (a proxy route's `retry_on`).
    Statuses(Vec<u16>),
    /// 429 and any 5xx (a provider that is busy or failing).
    BusyOrFailing,
}

/// One place a try can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    /// Tries it takes at most.
    tries: u32,
    /// Pause before its first retry; each next one doubles.
    backoff_ms: u32,
}

/// How a try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// A response head arrived with `status`; `retry_after_s` is what its
    /// `retry-after` header asked for, in seconds.
    Answered {
        /// The status.
        status: u16,
        /// The `retry-after` delay, if any.
        retry_after_s: Option<u64>,
    },
    /// No response: refused, reset, broken off or timed out.
    NoAnswer,
    /// The candidate cannot be tried at all (a provider key is missing).
    Unusable,
}

/// The next try: its candidate and the pause before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Try {
    /// Position of the candidate (0: the first).
    pub candidate: usize,
    /// How long to wait before sending.
    pub wait: Duration,
}

/// The attempts of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts {
    candidates: Vec<Candidate>,
    retry_on: RetryOn,
    /// Retries left across all candidates (`None`: as the candidates allow).
    retries_left: Option<u32>,
    current: usize,
    /// Tries made of the current candidate.
    tries: u32,
}

impl Attempts {
    /// The attempts of a proxied request to `selection`. Without a body
    /// that can be sent again (`replayable`), there is one try only.
    pub fn proxy(selection: &Selection, replayable: bool) -> Self {
        let count = 1 + selection.alternates.len();
        let candidates = (0..count)
            .map(|i| Candidate {
                tries: if i + 1 == count { u32::MAX } else { 1 },
                backoff_ms: 0,
            })
            .collect();
        Attempts {
            candidates,
            retry_on: RetryOn::Statuses(selection.retry.retry_on.clone()),
            retries_left: Some(if replayable {
                selection.retry.attempts
            } else {
                0
            }),
            current: 0,
            tries: 1,
        }
    }

    /// The attempts of an AI call: `(retries, backoff_ms)` of each provider
    /// attempt, in order.
    pub fn ai(attempts: impl IntoIterator<Item = (u32, u32)>) -> Self {
        Attempts {
            candidates: attempts
                .into_iter()
                .map(|(retries, backoff_ms)| Candidate {
                    tries: retries.saturating_add(1),
                    backoff_ms,
                })
                .collect(),
            retry_on: RetryOn::BusyOrFailing,
            retries_left: None,
            current: 0,
            tries: 1,
        }
    }

    /// The candidate of the try in progress.
    pub fn current(&self) -> usize {
        self.current
    }

    /// Whether an answer with `status` is worth another try.
    pub fn retries_status(&self, status: u16) -> bool {
        match &self.retry_on {
            RetryOn::Statuses(statuses) => statuses.contains(&status),
            RetryOn::BusyOrFailing => status == 429 || status >= 500,
        }
    }

    /// After the current try `ended`: the next try, or `None` when the
    /// current one's answer (or failure) stands. `budget` is asked, last,
    /// whether one more retry fits (a proxy route's retry budget); moving
    /// past an unusable candidate needs no budget.
    pub fn next(&mut self, ended: Ended, budget: impl FnOnce() -> bool) -> Option<Try> {
        let retry_after_s = match ended {
            Ended::Unusable => return self.advance(),
            Ended::Answered { status, .. } if !self.retries_status(status) => return None,
            // Only providers' pauses are honored; a proxied upstream's
            // retry goes to the next candidate at once.
            Ended::Answered { retry_after_s, .. } if self.retry_on == RetryOn::BusyOrFailing => {
                retry_after_s
            }
            Ended::Answered { .. } | Ended::NoAnswer => None,
        };
        if self.retries_left == Some(0) {
            return None;
        }
        let candidate = self.candidates.get(self.current)?;
        let again = (self.tries < candidate.tries)
            .then(|| pause(candidate.backoff_ms, self.tries - 1, retry_after_s))
            .flatten();
        let next = match again {
            Some(wait) => Try {
                candidate: self.current,
                wait,
            },
            None if self.current + 1 < self.candidates.len() => Try {
                candidate: self.current + 1,
                wait: Duration::ZERO,
            },
            None => return None,
        };
        if !budget() {
            return None;
        }
        if let Some(left) = &mut self.retries_left {
            *left -= 1;
        }
        self.move_to(next.candidate);
        Some(next)
    }

    /// Moves past the current candidate without a retry.
    fn advance(&mut self) -> Option<Try> {
        let candidate = self.current + 1;
        (candidate < self.candidates.len()).then(|| {
            self.move_to(candidate);
            Try {
                candidate,
                wait: Duration::ZERO,
            }
        })
    }

    fn move_to(&mut self, candidate: usize) {
        if candidate == self.current {
            self.tries += 1;
        } else {
            self.current = candidate;
            self.tries = 1;
        }
    }
}

/// The pause before retry `retry` (0: the first) of a candidate whose
/// backoff is `backoff_ms`: doubled per retry, or what `retry-after` asks
/// when that is longer; `None` (no retry) when `retry-after` asks for more
/// than [`MAX_RETRY_WAIT_MS`].
fn pause(backoff_ms: u32, retry: u32, retry_after_s: Option<u64>) -> Option<Duration> {
    let max = u64::from(MAX_RETRY_WAIT_MS);
    let base = (u64::from(backoff_ms) << retry.min(16)).min(max);
    let asked = retry_after_s.map_or(0, |s| s.saturating_mul(1000));
    (asked <= max).then(|| Duration::from_millis(asked.max(base)))
}

/// The timeout of each try of a request on a route with `route_timeout_ms`:
/// the retry policy's per-try timeout when the request may be retried and
/// it is shorter.
pub fn try_timeout_ms(route_timeout_ms: u32, retry: &RetryPolicy, replayable: bool) -> u32 {
    match retry.per_try_timeout_ms {
        Some(per_try) if replayable && retry.attempts > 0 => per_try.min(route_timeout_ms),
        _ => route_timeout_ms,
    }
}

#[cfg(test)]
mod tests;
