//! The client's request body as the native lane sends it: streamed once,
//! or held in memory (up to [`REPLAY_LIMIT`]) so that retries and a shadow
//! copy can send it again. Held bodies go without trailers.

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
    /// Past [`REPLAY_LIMIT`]: what was read, then the rest, once.
    Overflowed(ForwardBody),
    /// Sent already.
    Spent,
}

impl RequestBody {
    /// Takes `body`: held in memory when `replay` is wanted and it fits
    /// [`REPLAY_LIMIT`], streaming otherwise.
    pub async fn take(mut body: ClientBody, replay: bool) -> Result<Self, GatewayError> {
        let declared = body.size_hint().exact();
        if !replay || declared.is_some_and(|n| n > REPLAY_LIMIT as u64) {
            return Ok(RequestBody::Streaming(body));
        }
        let mut held = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_gateway())?;
            if let Ok(data) = frame.into_data() {
                held.extend_from_slice(&data);
                if held.len() > REPLAY_LIMIT {
                    return Ok(RequestBody::Overflowed(ForwardBody::Resumed {
                        read: Some(held.freeze()),
                        rest: body,
                    }));
                }
            }
        }
        Ok(RequestBody::Held(held.freeze()))
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
