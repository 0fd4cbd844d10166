//! The response body of an outbound request, failing when its upstream
//! goes quiet for longer than the guest's between-bytes timeout.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::UpstreamBody;

/// `body` as the runtime's response body, failing with
/// `connection-read-timeout` when no data arrives for `timeout`.
pub fn between_bytes_timeout<B>(body: UpstreamBody<B>, timeout: Duration) -> WasiBody
where
    B: Send + 'static,
{
    BetweenBytesTimeout {
        body,
        timeout,
        timer: None,
        armed: false,
    }
    .boxed_unsync()
}

/// A response body failing with `connection-read-timeout` when no data
/// arrives for `timeout` while it is waited for. The timer is armed only
/// when the body has nothing ready (a body that arrives whole never needs
/// one) and disarmed by every frame.
struct BetweenBytesTimeout<B> {
    body: UpstreamBody<B>,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the timer runs for the current wait.
    armed: bool,
}

impl<B> Body for BetweenBytesTimeout<B> {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.armed = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(HttpError::from(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = || tokio::time::Instant::now() + this.timeout;
                let timer = match this.timer.as_mut() {
                    Some(timer) if this.armed => timer,
                    Some(timer) => {
                        timer.as_mut().reset(deadline());
                        timer
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline()))),
                };
                this.armed = true;
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
