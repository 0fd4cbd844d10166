//! gRPC calls whose status comes in the trailers: the attempt is counted
//! when the answer's body ends, with the status the trailers give, so that
//! a call ending `UNAVAILABLE` after a `200` head counts as the error it is.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use upshift_core::grpc;
use upshift_core::policy::{Attempt, Outcome, Selection};
use upshift_core::tables::Route;

use super::proxy::{now_ms, tally};
use super::{NativeGateway, PolicySet};

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
    pub attempt: Attempt,
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

/// A gRPC answer's body, counting its attempt once it ends.
pub struct CallEnd<B> {
    body: B,
    pending: Option<Pending>,
}

impl<B> CallEnd<B> {
    /// `body`, with `pending` counted at its end.
    pub fn new(body: B, pending: Pending) -> Self {
        CallEnd {
            body,
            pending: Some(pending),
        }
    }

    fn finish(&mut self, code: Option<u32>) {
        if let Some(pending) = self.pending.take() {
            pending.finish(code);
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for CallEnd<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.finish(grpc::status(trailers));
                }
            }
            Poll::Ready(Some(Err(_)) | None) => this.finish(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for CallEnd<B> {
    fn drop(&mut self) {
        self.finish(Some(CANCELLED));
    }
}
