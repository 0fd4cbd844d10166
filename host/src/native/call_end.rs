//! gRPC calls whose status comes in the trailers: the attempt is counted
//! when the answer's body ends, with the status the trailers give, so that
//! a call ending `UNAVAILABLE` after a `200` head counts as the error it is.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::body::Frame;
use upshift_core::grpc;
use upshift_core::policy::{Outcome, Selection, UpstreamAttempt};
use upshift_core::tables::Route;

use super::proxy::tally;
use super::{NativeGateway, PolicySet};
use crate::watched_body::{Ending, Watcher};
use upshift_core::clock::now_ms;

/// The status of a call the client stopped reading: `CANCELLED`.
const CANCELLED: u32 = 1;

/// What counting an attempt at its end needs.
pub struct Pending {
    /// The lane that counts it.
    pub lane: Arc<NativeGateway>,
    /// The policy set the request decided with.
    pub policies: Arc<Mutex<PolicySet>>,
    /// The route's index and the route.
    pub route: (u32, Route),
    /// The selection the attempt followed.
    pub selection: Selection,
    /// The version it went to.
    pub version: Arc<str>,
    /// The attempt, its outcome still the head's.
    pub attempt: UpstreamAttempt,
}

impl Pending {
    /// Counts the attempt as ended with gRPC status `code` (`None`: the
    /// body broke, or ended with no status).
    fn finish(mut self, code: Option<u32>) {
        self.attempt.outcome = code.map_or(Outcome::Failed, |code| {
            Outcome::Status(grpc::http_equivalent(code))
        });
        let counts = tally(
            &self.policies,
            (self.route.0, &self.route.1),
            &self.selection,
            &self.version,
            &self.attempt,
            code,
            now_ms(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { self.lane.add(counts).await });
        }
    }
}

/// Counts a gRPC answer's attempt once its body ends, with the status its
/// trailers gave.
pub struct CallEnd {
    pending: Pending,
    /// The status the trailers gave, once they came.
    code: Option<u32>,
}

impl CallEnd {
    /// The watcher of an answer whose attempt is `pending`.
    pub fn new(pending: Pending) -> Self {
        CallEnd {
            pending,
            code: None,
        }
    }
}

impl Watcher for CallEnd {
    fn frame(&mut self, frame: &Frame<Bytes>) {
        if let Some(trailers) = frame.trailers_ref() {
            self.code = grpc::status(trailers);
        }
    }

    fn ended(self, ending: Ending) {
        let code = match ending {
            Ending::Complete | Ending::Failed => self.code,
            Ending::Dropped => self.code.or(Some(CANCELLED)),
        };
        self.pending.finish(code);
    }
}
