//! The client's request body as the native lane sends it: streamed once,
//! or held in memory (up to [`REPLAY_LIMIT`]) so that retries and a shadow
//! copy can send it again. Held bodies go without trailers. A gRPC call's
//! messages are held only while they come without a pause: a stream that
//! waits for answers before it sends more (bidirectional streaming) goes
//! on as it comes, without retries, rather than waiting for its end.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};
use upshift_core::GatewayError;

use crate::client_body::{ClientBody, ClientBodyError};

/// Largest body held in memory for retries and shadow copies; a longer body
/// streams once, without them.
pub const REPLAY_LIMIT: usize = 1 << 20;

/// The longest pause in a gRPC call's messages that holding waits out.
const STREAM_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// A body sent upstream.
#[derive(Debug)]
pub enum ForwardBody {
    /// The client's body, as it streams in.
    Streaming(ClientBody),
    /// Bytes in memory (a held body, an AI provider request).
    Bytes(Option<Bytes>),
    /// What was read of a body past [`REPLAY_LIMIT`], then the rest of it.
    Resumed {
        /// What was read.
        read: Option<Bytes>,
        /// The rest.
        rest: ClientBody,
    },
}

impl ForwardBody {
    /// A body of `bytes`.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        ForwardBody::Bytes(Some(bytes.into()))
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        match self.get_mut() {
            ForwardBody::Streaming(body) => Pin::new(body).poll_frame(cx),
            ForwardBody::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ForwardBody::Resumed { read, rest } => match read.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Pin::new(rest).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ForwardBody::Streaming(body) => body.is_end_stream(),
            ForwardBody::Bytes(bytes) => bytes.is_none(),
            ForwardBody::Resumed { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ForwardBody::Streaming(body) => body.size_hint(),
            ForwardBody::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ForwardBody::Resumed { read, rest } => {
                let read = read.as_ref().map_or(0, |b| b.len() as u64);
                let mut hint = SizeHint::new();
                hint.set_lower(rest.size_hint().lower() + read);
                if let Some(upper) = rest.size_hint().upper() {
                    hint.set_upper(upper + read);
                }
                hint
            }
        }
    }
}

/// The client's body, as the attempts see it.
pub enum RequestBody {
    /// Not read: it streams to the first attempt, the only one.
    Streaming(ClientBody),
    /// Read in full: every attempt and copy gets the same bytes.
    Held(Bytes),
    /// Not held whole (past [`REPLAY_LIMIT`], or a gRPC stream that paused):
    /// what was read, then the rest, once.
    Overflowed(ForwardBody),
    /// Sent already.
    Spent,
}

impl RequestBody {
    /// Takes `body`: held in memory when `replay` is wanted and it fits
    /// [`REPLAY_LIMIT`] (and, for a gRPC call, comes without a pause
    /// longer than [`STREAM_PAUSE`]), streaming otherwise.
    pub async fn take(
        mut body: ClientBody,
        replay: bool,
        grpc: bool,
    ) -> Result<Self, GatewayError> {
        let declared = body.size_hint().exact();
        if !replay || declared.is_some_and(|n| n > REPLAY_LIMIT as u64) {
            return Ok(RequestBody::Streaming(body));
        }
        let mut held = BytesMut::new();
        loop {
            let frame = if grpc {
                match tokio::time::timeout(STREAM_PAUSE, body.frame()).await {
                    Ok(frame) => frame,
                    Err(_) => break Ok(RequestBody::resumed(held, body)),
                }
            } else {
                body.frame().await
            };
            let Some(frame) = frame else {
                break Ok(RequestBody::Held(held.freeze()));
            };
            let frame = frame.map_err(|e| e.to_gateway())?;
            if let Ok(data) = frame.into_data() {
                held.extend_from_slice(&data);
                if held.len() > REPLAY_LIMIT {
                    break Ok(RequestBody::resumed(held, body));
                }
            }
        }
    }

    /// What was `held` of `body`, then the rest of it, sent once.
    fn resumed(held: BytesMut, rest: ClientBody) -> Self {
        RequestBody::Overflowed(ForwardBody::Resumed {
            read: Some(held.freeze()),
            rest,
        })
    }

    /// Whether the body can be sent again after [`RequestBody::next`].
    pub fn replayable(&self) -> bool {
        matches!(self, RequestBody::Held(_))
    }

    /// The held bytes, for a shadow copy.
    pub fn held(&self) -> Option<Bytes> {
        match self {
            RequestBody::Held(bytes) => Some(bytes.clone()),
            _ => None,
        }
    }

    /// The body of the next attempt: the stream itself the first time, a
    /// copy each time if held.
    pub fn next(&mut self) -> Result<ForwardBody, GatewayError> {
        match std::mem::replace(self, RequestBody::Spent) {
            RequestBody::Streaming(body) => Ok(ForwardBody::Streaming(body)),
            RequestBody::Held(bytes) => {
                *self = RequestBody::Held(bytes.clone());
                Ok(ForwardBody::bytes(bytes))
            }
            RequestBody::Overflowed(body) => Ok(body),
            RequestBody::Spent => Err(GatewayError::BodyConsumed),
        }
    }
}
