//! Shadow copies: the same request sent to another version after the
//! client's own attempt answered, its response discarded and compared.
//! The copy runs as a task of its own, so however slowly it ends, the
//! client's response never waits for it.

use crate::attempts::{millis, now_ms, outcome_of};
use crate::bindings::splitter::{Attempt, Outcome, ShadowCopy};
use crate::body::Held;
use crate::config::Loaded;
use crate::forwarding::Header;
use crate::upstream::{self, Outgoing};
use spin_sdk::wasip3::http::types::Method;
use spin_sdk::wasip3::wit_bindgen;
use std::rc::Rc;
use std::time::Instant;

/// Header that marks a shadow copy for the upstream.
pub const MARKER: &str = "x-upshift-shadow";

/// What a shadow copy needs to know about the client's request.
pub struct Mirror {
    /// Route name.
    pub route: String,
    /// Service name.
    pub service: String,
    /// Method.
    pub method: Method,
    /// Path and query upstream.
    pub path_and_query: String,
    /// Headers as sent to the primary.
    pub headers: Vec<Header>,
}

/// Sends `copy` of the request in the background and records how it
/// compared with `primary`.
pub fn spawn(config: Rc<Loaded>, copy: ShadowCopy, mirror: Mirror, body: &Held, primary: Attempt) {
    let Ok(contents) = body.contents() else {
        return;
    };
    let mut headers = mirror.headers;
    headers.push((MARKER.to_owned(), b"true".to_vec()));
    wit_bindgen::spawn(async move {
        let started = Instant::now();
        let result = upstream::send(
            contents,
            Outgoing {
                method: mirror.method,
                target: &copy.upstream.target,
                path_and_query: &mirror.path_and_query,
                headers,
                timeout_ms: copy.timeout_ms,
            },
        )
        .await;
        let outcome = match &result {
            Ok((status, ..)) => Outcome::Status(*status),
            Err(refusal) => outcome_of(refusal).unwrap_or(Outcome::Failed),
        };
        let shadow = Attempt {
            upstream: copy.upstream,
            outcome,
            latency_ms: millis(started),
        };
        config
            .splitter
            .report_shadow(&mirror.route, &mirror.service, &shadow, &primary, now_ms());
    });
}
