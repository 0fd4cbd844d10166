//! The client's request body, cut off when the client sends nothing for a
//! while: a body that trickles (or stops) holds a connection and the
//! request's resources only as long as the listener's
//! `--body-read-timeout` between two chunks.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use upshift_core::GatewayError;

use crate::telemetry::BytesIn;

/// Why the client's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// The connection failed or the body broke off.
    #[error(transparent)]
    Read(#[from] hyper::Error),
    /// No data came for the timeout.
    #[error("the client sent no request body data for {} ms", .0.as_millis())]
    Stalled(Duration),
}

impl ClientBodyError {
    /// The error the request fails with.
    pub fn to_gateway(&self) -> GatewayError {
        match self {
            ClientBodyError::Read(error) => GatewayError::BadRequestBody(error.to_string()),
            ClientBodyError::Stalled(_) => GatewayError::RequestBodyTimeout,
        }
    }

    /// The stall that `error` (an upstream request's failure) comes from,
    /// if the client's body stalled.
    pub fn stall_in(error: &(dyn std::error::Error + 'static)) -> Option<GatewayError> {
        let mut source = Some(error);
        while let Some(cause) = source {
            if let Some(body) = cause.downcast_ref::<ClientBodyError>() {
                return matches!(body, ClientBodyError::Stalled(_)).then(|| body.to_gateway());
            }
            source = cause.source();
        }
        None
    }
}

/// A request body that fails with [`ClientBodyError::Stalled`] when no
/// data arrives for its timeout while it is waited for.
#[derive(Debug)]
pub struct ClientBody {
    body: Incoming,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the timer runs for the current wait.
    armed: bool,
    /// Bytes read so far, for the access log.
    read: BytesIn,
}

impl ClientBody {
    /// `body`, failing after `timeout` without data, counting the bytes
    /// it reads in `read`.
    pub fn new(body: Incoming, timeout: Duration, read: BytesIn) -> Self {
        Self {
            body,
            timeout,
            timer: None,
            armed: false,
            read,
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                if let Some(Ok(frame)) = &frame
                    && let Some(data) = frame.data_ref()
                {
                    this.read.0.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(ClientBodyError::from)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                let timer = match this.timer.as_mut() {
                    Some(timer) if this.armed => timer,
                    Some(timer) => {
                        timer.as_mut().reset(deadline);
                        timer
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                this.armed = true;
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(ClientBodyError::Stalled(this.timeout))))
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
