//! Bodies watched on their way to the client: one wrapper that shows each
//! frame to a [`Watcher`] and tells it, exactly once, how the body ended.
//! The access log, gRPC calls counted by their trailers and shadow answer
//! diffing are watchers; the wrapper is the only place that knows the
//! three ways a body ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// How a watched body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its last frame was read.
    Complete,
    /// It failed while being read.
    Failed,
    /// It was dropped before its end: the client went away.
    Dropped,
}

/// What a watched body reports to.
pub trait Watcher {
    /// Sees each frame as it passes.
    fn frame(&mut self, _frame: &Frame<Bytes>) {}
    /// How the body ended; called once.
    fn ended(self, ending: Ending);
}

/// `B`, shown frame by frame to a [`Watcher`].
pub struct Watched<B, W: Watcher> {
    body: B,
    watcher: Option<W>,
}

impl<B, W: Watcher> Watched<B, W> {
    /// `body`, reporting to `watcher`.
    pub fn new(body: B, watcher: W) -> Self {
        Watched {
            body,
            watcher: Some(watcher),
        }
    }

    fn end(&mut self, ending: Ending) {
        if let Some(watcher) = self.watcher.take() {
            watcher.ended(ending);
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin, W: Watcher + Unpin> Body for Watched<B, W> {
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
                if let Some(watcher) = this.watcher.as_mut() {
                    watcher.frame(frame);
                }
                // A body of known length is not polled past its last frame.
                if this.body.is_end_stream() {
                    this.end(Ending::Complete);
                }
            }
            Poll::Ready(None) => this.end(Ending::Complete),
            Poll::Ready(Some(Err(_))) => this.end(Ending::Failed),
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

impl<B, W: Watcher> Drop for Watched<B, W> {
    fn drop(&mut self) {
        self.end(Ending::Dropped);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http_body_util::{BodyExt as _, Full, StreamBody};

    use super::*;

    /// The bytes a watcher saw and how the body ended.
    type Log = Arc<Mutex<(usize, Vec<Ending>)>>;

    /// Records the bytes it saw and how the body ended.
    struct Seen(Log);

    impl Watcher for Seen {
        fn frame(&mut self, frame: &Frame<Bytes>) {
            self.0.lock().unwrap().0 += frame.data_ref().map_or(0, Bytes::len);
        }
        fn ended(self, ending: Ending) {
            self.0.lock().unwrap().1.push(ending);
        }
    }

    fn seen() -> (Seen, Log) {
        let shared = Arc::new(Mutex::new((0, Vec::new())));
        (Seen(shared.clone()), shared)
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_ends_complete_once() {
        let (watcher, shared) = seen();
        let body = Watched::new(Full::new(Bytes::from_static(b"hello")), watcher);
        let read = body.collect().await.unwrap().to_bytes();
        assert_eq!(read, "hello");
        assert_eq!(*shared.lock().unwrap(), (5, vec![Ending::Complete]));
    }

    #[tokio::test]
    async fn a_failing_body_ends_failed_and_a_dropped_one_dropped() {
        let (watcher, shared) = seen();
        let frames: Vec<Result<Frame<Bytes>, &str>> =
            vec![Ok(Frame::data(Bytes::from_static(b"ab"))), Err("broken")];
        let body = Watched::new(StreamBody::new(futures::stream::iter(frames)), watcher);
        assert!(body.collect().await.is_err());
        assert_eq!(*shared.lock().unwrap(), (2, vec![Ending::Failed]));

        let (watcher, shared) = seen();
        drop(Watched::new(
            Full::new(Bytes::from_static(b"unread")),
            watcher,
        ));
        assert_eq!(*shared.lock().unwrap(), (0, vec![Ending::Dropped]));
    }
}
