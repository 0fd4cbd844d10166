//! WebSocket connections relayed frame by frame once both sides switched
//! protocols: messages pass on as they are, pings are answered on each
//! side, and the gateway ends a connection with a close frame, never by
//! cutting it: `1001` (going away) when it stays idle, outlives its
//! lifetime or the gateway shuts down, `1009` (too big) for a message over
//! the limit. A close from either side is passed on to the other.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits of relayed WebSocket connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketLimits {
    /// Time a connection may pass no message either way.
    pub idle_timeout: Duration,
    /// Time a connection may stay open at all; `None`: no limit.
    pub max_lifetime: Option<Duration>,
    /// Largest message (and frame), in bytes.
    pub max_message_bytes: usize,
}

impl Default for WebSocketLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            max_lifetime: None,
            max_message_bytes: 16 << 20,
        }
    }
}

/// The host's relayed connections, and the limits they run under.
#[derive(Debug, Clone, Default)]
pub struct WebSockets {
    /// The limits.
    pub limits: WebSocketLimits,
    relays: TaskTracker,
    stopping: CancellationToken,
}

impl WebSockets {
    /// No relays yet, with `limits`.
    pub fn new(limits: WebSocketLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Relays the connection once both sides switched protocols, on a task
    /// of its own.
    pub fn spawn(&self, client: OnUpgrade, upstream: OnUpgrade, request_id: String) {
        let (limits, stopping) = (self.limits, self.stopping.clone());
        self.relays.spawn(async move {
            match tokio::try_join!(client, upstream) {
                Ok((client, upstream)) => relay(client, upstream, limits, stopping).await,
                Err(error) => tracing::debug!(%request_id, "WebSocket not relayed: {error}"),
            }
        });
    }

    /// Closes every relayed connection (1001) and waits until they ended;
    /// a connection switched from now on is closed at once.
    pub async fn drain(&self) {
        self.stopping.cancel();
        self.relays.close();
        self.relays.wait().await;
    }
}

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// How long a side gets to answer the gateway's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Relays messages between `client` and `upstream` (both switched) until
/// either side closes, a limit ends the connection, or `stopping`.
async fn relay(
    client: Upgraded,
    upstream: Upgraded,
    limits: WebSocketLimits,
    stopping: CancellationToken,
) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let mut client =
        Socket::from_raw_socket(TokioIo::new(client), Role::Server, Some(config)).await;
    let mut upstream =
        Socket::from_raw_socket(TokioIo::new(upstream), Role::Client, Some(config)).await;
    let lifetime = async {
        match limits.max_lifetime {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(lifetime);
    // The close frames each side gets at the end (`None`: the reply to its own).
    let (to_client, to_upstream) = loop {
        let idle = tokio::time::sleep(limits.idle_timeout);
        tokio::select! {
            read = client.next() => match pass(read, &mut upstream).await {
                Passed::On => continue,
                Passed::Closed(frame) => break (None, frame),
                Passed::End(frame) => break (Some(frame.clone()), Some(frame)),
            },
            read = upstream.next() => match pass(read, &mut client).await {
                Passed::On => continue,
                Passed::Closed(frame) => break (frame, None),
                Passed::End(frame) => break (Some(frame.clone()), Some(frame)),
            },
            () = idle => {
                let frame = going_away("idle");
                break (Some(frame.clone()), Some(frame));
            }
            () = &mut lifetime => {
                let frame = going_away("connection lifetime reached");
                break (Some(frame.clone()), Some(frame));
            }
            () = stopping.cancelled() => {
                let frame = going_away("the gateway is shutting down");
                break (Some(frame.clone()), Some(frame));
            }
        }
    };
    tokio::join!(
        finish(&mut client, to_client),
        finish(&mut upstream, to_upstream)
    );
}

/// What became of one message read from a side.
enum Passed {
    /// Passed on; the relay goes on.
    On,
    /// The side closed with this frame, which the other side gets.
    Closed(Option<CloseFrame>),
    /// The relay ends: both sides get this frame.
    End(CloseFrame),
}

fn going_away(reason: &'static str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::Away,
        reason: reason.into(),
    }
}

/// Passes what one side `read` on to `other`.
async fn pass(read: Option<Result<Message, Error>>, other: &mut Socket) -> Passed {
    match read {
        // Each side answers its own pings.
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Passed::On,
        Some(Ok(Message::Close(frame))) => Passed::Closed(frame),
        Some(Ok(message)) => match other.send(message).await {
            Ok(()) => Passed::On,
            Err(_) => Passed::End(going_away("the other side went away")),
        },
        Some(Err(Error::Capacity(_))) => Passed::End(CloseFrame {
            code: CloseCode::Size,
            reason: "message too big".into(),
        }),
        Some(Err(_)) | None => Passed::End(going_away("the other side went away")),
    }
}

/// Ends `socket` with the closing handshake: sends `frame` (or the reply
/// to the side's own close) and waits a moment for the side's answer.
async fn finish(socket: &mut Socket, frame: Option<CloseFrame>) {
    let _ = socket.close(frame).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}
