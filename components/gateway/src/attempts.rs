//! The attempts of one proxied request: the splitter's first choice, then
//! retries and the fallback while the route's policy and budget allow, each
//! attempt reported back to the splitter.

use crate::bindings::router::RouteMatch;
use crate::bindings::splitter::{Attempt, Outcome, Plan, Selection, Upstream};
use crate::body::Body;
use crate::errors::Refusal;
use crate::forwarding::Header;
use crate::upstream::{self, Outgoing};
use spin_sdk::wasip3::http::types::{Method, Response};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The request as every attempt sends it.
pub struct Forward<'a> {
    /// Method.
    pub method: &'a Method,
    /// Headers for the upstream.
    pub headers: &'a [Header],
}

/// The response that goes back to the client.
pub struct Answer {
    /// The attempt that produced it.
    pub attempt: Attempt,
    /// Upstream status.
    pub status: u16,
    /// Upstream headers.
    pub headers: Vec<Header>,
    /// The upstream response, body still streaming.
    pub response: Response,
}

/// Sends the request to the selection's upstreams until one answers with a
/// response that is not retried, or the attempts or the budget run out.
pub async fn run(
    plan: &Plan,
    route: &RouteMatch,
    selection: &Selection,
    forward: &Forward<'_>,
    body: &mut Body,
) -> Result<Answer, Refusal> {
    let candidates: Vec<&Upstream> = std::iter::once(&selection.primary)
        .chain(&selection.alternates)
        .collect();
    let retries = if body.replayable() {
        selection.retry.attempts as usize
    } else {
        0
    };
    let timeout_ms = match selection.retry.per_try_timeout_ms {
        Some(per_try) if retries > 0 => per_try.min(route.timeout_ms),
        _ => route.timeout_ms,
    };
    let mut n = 0;
    loop {
        let upstream = candidates[n.min(candidates.len() - 1)];
        let started = Instant::now();
        let result = upstream::send(
            body.contents()?,
            Outgoing {
                method: forward.method.clone(),
                target: &upstream.target,
                path_and_query: &route.upstream_path,
                headers: forward.headers.to_vec(),
                timeout_ms,
            },
        )
        .await;
        let outcome = match &result {
            Ok((status, ..)) => Outcome::Status(*status),
            // A failure that is not the upstream's doing (a bad target URL, a
            // header that cannot be sent) is neither recorded nor retried.
            Err(refusal) => outcome_of(refusal).ok_or_else(|| refusal.clone())?,
        };
        let attempt = Attempt {
            upstream: upstream.clone(),
            outcome,
            latency_ms: millis(started),
        };
        plan.report(&route.route, &selection.service, &attempt, now_ms());
        let retry = match &attempt.outcome {
            Outcome::Status(status) => selection.retry.retry_on.contains(status),
            Outcome::Failed | Outcome::TimedOut => true,
        };
        if retry && n < retries && plan.allow_retry(&route.route, now_ms()) {
            n += 1;
            continue;
        }
        return result.map(|(status, headers, response)| Answer {
            attempt,
            status,
            headers,
            response,
        });
    }
}

/// How a failed upstream call counts for the splitter, if it counts at all.
pub fn outcome_of(refusal: &Refusal) -> Option<Outcome> {
    match refusal.code.as_str() {
        upstream::TIMEOUT => Some(Outcome::TimedOut),
        upstream::UNAVAILABLE | upstream::TLS_FAILED => Some(Outcome::Failed),
        _ => None,
    }
}

/// Unix time in milliseconds, the clock the splitter decides with.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since `started`.
pub fn millis(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)
}
