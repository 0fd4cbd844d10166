//! The request body as the attempts see it: streamed once, or held in memory
//! so that retries and shadow copies can send it again.

use spin_sdk::wasip3::http::types::{ErrorCode, Request, Trailers};
use spin_sdk::wasip3::wit_bindgen::{self, FutureReader, FutureWriter, StreamReader, StreamResult};
use spin_sdk::wasip3::{wit_future, wit_stream};
use upshift_core::GatewayError;

/// Largest body held in memory for retries and shadow copies; a longer body
/// streams once, without them.
pub const REPLAY_LIMIT: usize = 1 << 20;

/// Read size when holding a body.
const CHUNK: usize = 64 * 1024;

/// A body with its trailers, ready for one outgoing request.
pub struct Contents {
    /// The body bytes.
    pub stream: StreamReader<u8>,
    /// The trailers that follow the body.
    pub trailers: TrailersReader,
    /// Where to report how sending the body ended, for the incoming side.
    pub done: Option<FutureWriter<Result<(), ErrorCode>>>,
}

impl Contents {
    /// `bytes` as a body, without trailers.
    pub fn bytes(bytes: Vec<u8>) -> Contents {
        let (mut writer, stream) = wit_stream::new::<u8>();
        wit_bindgen::spawn(async move {
            writer.write_all(bytes).await;
        });
        Contents {
            stream,
            trailers: wit_future::new(|| Ok(None)).1,
            done: None,
        }
    }
}

/// The trailers future of a body.
pub type TrailersReader = FutureReader<Result<Option<Trailers>, ErrorCode>>;

/// A whole response body of at most `limit` bytes; an error when it broke
/// off or is longer.
pub async fn read_whole(
    mut body: StreamReader<u8>,
    trailers: TrailersReader,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    loop {
        let (status, chunk) = body.read(Vec::with_capacity(CHUNK)).await;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > limit {
            return Err(format!("the answer is over {limit} bytes"));
        }
        if matches!(status, StreamResult::Dropped | StreamResult::Cancelled) {
            break;
        }
    }
    match trailers.await {
        Ok(_) => Ok(bytes),
        Err(error) => Err(format!("the answer broke off: {error:?}")),
    }
}

/// The incoming request's body.
pub enum Body {
    /// Not read: it streams to the first attempt, the only one.
    Streaming(Request),
    /// Read in full: every attempt and copy gets the same bytes.
    Held(Held),
    /// Longer than [`REPLAY_LIMIT`]: what was read, then the rest, once.
    Overflowed(Contents),
    /// Sent already.
    Spent,
}

/// A body read into memory, with its trailers as `(name, value)` pairs.
pub struct Held {
    bytes: Vec<u8>,
    trailers: Option<Vec<(String, Vec<u8>)>>,
}

impl Body {
    /// Takes the body of `request`: held in memory when `replay` is wanted
    /// and the body fits [`REPLAY_LIMIT`], streaming otherwise.
    pub async fn take(request: Request, replay: bool) -> Result<Body, GatewayError> {
        if !replay || declared_length(&request).is_some_and(|n| n > REPLAY_LIMIT as u64) {
            return Ok(Body::Streaming(request));
        }
        let (done, result) = wit_future::new(|| Ok(()));
        let (mut stream, trailers) = Request::consume_body(request, result);
        let mut bytes = Vec::new();
        loop {
            let (status, chunk) = stream.read(Vec::with_capacity(CHUNK)).await;
            bytes.extend_from_slice(&chunk);
            if bytes.len() > REPLAY_LIMIT {
                return Ok(Body::Overflowed(Contents {
                    stream: pipe(bytes, stream),
                    trailers,
                    done: Some(done),
                }));
            }
            if matches!(status, StreamResult::Dropped | StreamResult::Cancelled) {
                break;
            }
        }
        let trailers = match trailers.await {
            Ok(fields) => fields.map(|f| f.copy_all()),
            Err(error) => {
                let failed = body_error(&error);
                let _ = done.write(Err(error)).await;
                return Err(failed);
            }
        };
        let _ = done.write(Ok(())).await;
        Ok(Body::Held(Held { bytes, trailers }))
    }

    /// Whether the body can be sent again after [`Body::contents`].
    pub fn replayable(&self) -> bool {
        matches!(self, Body::Held(_))
    }

    /// The held body, for a shadow copy.
    pub fn held(&self) -> Option<&Held> {
        match self {
            Body::Held(held) => Some(held),
            _ => None,
        }
    }

    /// The body for the next attempt: the stream itself the first time, a
    /// fresh copy each time if held.
    pub fn contents(&mut self) -> Result<Contents, GatewayError> {
        match std::mem::replace(self, Body::Spent) {
            Body::Streaming(request) => {
                let (done, result) = wit_future::new(|| Ok(()));
                let (stream, trailers) = Request::consume_body(request, result);
                Ok(Contents {
                    stream,
                    trailers,
                    done: Some(done),
                })
            }
            Body::Held(held) => {
                let contents = held.contents();
                *self = Body::Held(held);
                contents
            }
            Body::Overflowed(contents) => Ok(contents),
            Body::Spent => Err(GatewayError::BodyConsumed),
        }
    }
}

impl Held {
    /// A fresh stream of the held bytes and their trailers.
    pub fn contents(&self) -> Result<Contents, GatewayError> {
        let (mut writer, stream) = wit_stream::new::<u8>();
        let bytes = self.bytes.clone();
        wit_bindgen::spawn(async move {
            writer.write_all(bytes).await;
        });
        let trailers = match &self.trailers {
            None => wit_future::new(|| Ok(None)).1,
            Some(list) => {
                let fields = Trailers::from_list(list).map_err(|e| {
                    GatewayError::BadRequest(format!(
                        "a request trailer cannot be forwarded: {e:?}"
                    ))
                })?;
                let (writer, reader) = wit_future::new(|| Ok(None));
                wit_bindgen::spawn(async move {
                    let _ = writer.write(Ok(Some(fields))).await;
                });
                reader
            }
        };
        Ok(Contents {
            stream,
            trailers,
            done: None,
        })
    }
}

/// A stream of `first`, then everything left in `rest`.
fn pipe(first: Vec<u8>, mut rest: StreamReader<u8>) -> StreamReader<u8> {
    let (mut writer, reader) = wit_stream::new::<u8>();
    wit_bindgen::spawn(async move {
        if !writer.write_all(first).await.is_empty() {
            return;
        }
        loop {
            let (status, chunk) = rest.read(Vec::with_capacity(CHUNK)).await;
            if !chunk.is_empty() && !writer.write_all(chunk).await.is_empty() {
                return;
            }
            if matches!(status, StreamResult::Dropped | StreamResult::Cancelled) {
                return;
            }
        }
    });
    reader
}

fn declared_length(request: &Request) -> Option<u64> {
    request
        .get_headers()
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
}

/// The error a request fails with when the client's body could not be
/// read: the runtime's read timeout (the client stopped sending), or a
/// body that broke off.
pub fn body_error(error: &ErrorCode) -> GatewayError {
    match error {
        ErrorCode::ConnectionReadTimeout => GatewayError::RequestBodyTimeout,
        other => GatewayError::BadRequestBody(format!("{other:?}")),
    }
}
