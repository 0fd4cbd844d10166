//! WebSocket connections relayed frame by frame once both sides switched
//! protocols: messages pass on as they are, pings are answered on each
//! side, and the gateway ends a connection with a close frame, never by
//! cutting it: `1001` (going away) when it stays idle, outlives its
//! lifetime or the gateway shuts down, `1009` (too big) for a message over
//! the limit. A close from either side is passed on to the other.
//!
//! Each connection counts in its version's counters (opened, closed by
//! code, messages each way). A version that stops taking new connections
//! (a rollback, a blue/green switch: see [`retire`]) has its connections
//! closed with `1001` once the drain grace has passed, so that clients
//! reconnect to the version now in force.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
use upshift_model::metrics;

/// Limits of relayed WebSocket connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketLimits {
    /// Time a connection may pass no message either way.
    pub idle_timeout: Duration,
    /// Time a connection may stay open at all; `None`: no limit.
    pub max_lifetime: Option<Duration>,
    /// Largest message (and frame), in bytes.
    pub max_message_bytes: usize,
    /// Time the connections of a version that no longer takes new ones
    /// stay open before the gateway closes them.
    pub drain_grace: Duration,
}

impl Default for WebSocketLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            max_lifetime: None,
            max_message_bytes: 16 << 20,
            drain_grace: Duration::from_secs(30),
        }
    }
}

/// A service version: `(service, version)`.
pub type VersionName = (Arc<str>, Arc<str>);

/// Adds `(field, delta)` to the counters of a connection's version.
pub type Tally = Box<dyn Fn(Vec<(String, i64)>) + Send + Sync>;

/// The version a relayed connection went to, and where it counts.
pub struct Relayed {
    /// Its version.
    pub version: VersionName,
    /// Its counters.
    pub tally: Tally,
}

/// The versions with open connections: how many, and the token that
/// retires them.
type Open = HashMap<VersionName, (usize, CancellationToken)>;

/// The host's relayed connections, and the limits they run under.
#[derive(Debug, Clone, Default)]
pub struct WebSockets {
    /// The limits.
    pub limits: WebSocketLimits,
    relays: TaskTracker,
    stopping: CancellationToken,
    open: Arc<Mutex<Open>>,
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
    pub fn spawn(
        &self,
        (client, upstream): (OnUpgrade, OnUpgrade),
        relayed: Relayed,
        request_id: String,
    ) {
        let (limits, stopping) = (self.limits, self.stopping.clone());
        let retired = self.enter(&relayed.version);
        let open = self.open.clone();
        self.relays.spawn(async move {
            let Relayed { version, tally } = relayed;
            tally(vec![(metrics::WEBSOCKET_OPENED.to_owned(), 1)]);
            let ending = Ending {
                stopping,
                retired,
                drain_grace: limits.drain_grace,
            };
            match tokio::try_join!(client, upstream) {
                Ok((client, upstream)) => relay(client, upstream, limits, ending, &tally).await,
                Err(error) => {
                    tracing::debug!(%request_id, "WebSocket not relayed: {error}");
                    tally(Ended::default().counts());
                }
            }
            leave(&open, &version);
        });
    }

    /// The versions that have open connections now.
    pub fn versions(&self) -> Vec<VersionName> {
        lock(&self.open).keys().cloned().collect()
    }

    /// Closes the open connections of `version` once the drain grace has
    /// passed; connections made from now on are not affected.
    pub fn retire(&self, version: &VersionName) {
        if let Some((count, token)) = lock(&self.open).remove(version) {
            tracing::info!(
                service = %version.0,
                version = %version.1,
                connections = count,
                "the version takes no new connections: its WebSockets close after the drain grace"
            );
            token.cancel();
        }
    }

    /// Counts a connection of `version` in; the token that retires it.
    fn enter(&self, version: &VersionName) -> CancellationToken {
        let mut open = lock(&self.open);
        let (count, token) = open.entry(version.clone()).or_default();
        *count += 1;
        token.clone()
    }

    /// Closes every relayed connection (1001) and waits until they ended;
    /// a connection switched from now on is closed at once.
    pub async fn drain(&self) {
        self.stopping.cancel();
        self.relays.close();
        self.relays.wait().await;
    }
}

/// Counts a connection of `version` out.
fn leave(open: &Mutex<Open>, version: &VersionName) {
    let mut open = lock(open);
    if let Some((count, _)) = open.get_mut(version) {
        *count -= 1;
        if *count == 0 {
            open.remove(version);
        }
    }
}

fn lock(open: &Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// What ends a connection besides its sides and limits.
struct Ending {
    /// The gateway shuts down.
    stopping: CancellationToken,
    /// Its version takes no new connections.
    retired: CancellationToken,
    /// Time left to a retired version's connections.
    drain_grace: Duration,
}

/// What a relayed connection did, for its counters.
#[derive(Debug, Default)]
struct Ended {
    /// Messages passed to the upstream and to the client.
    messages: (i64, i64),
    /// The close code the connection ended with (`None`: a close frame
    /// without one, counted as 1005).
    code: Option<u16>,
}

impl Ended {
    fn counts(&self) -> Vec<(String, i64)> {
        let code = self.code.unwrap_or(1005);
        vec![
            (metrics::WEBSOCKET_CLOSED.to_owned(), 1),
            (metrics::websocket_close_field(code), 1),
            (metrics::WEBSOCKET_MESSAGES_UP.to_owned(), self.messages.0),
            (metrics::WEBSOCKET_MESSAGES_DOWN.to_owned(), self.messages.1),
        ]
    }
}

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// How long a side gets to answer the gateway's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Relays messages between `client` and `upstream` (both switched) until
/// either side closes, a limit ends the connection, or `ending` does; what
/// it did goes to `tally` as the closing handshake starts.
async fn relay(
    client: Upgraded,
    upstream: Upgraded,
    limits: WebSocketLimits,
    ending: Ending,
    tally: &Tally,
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
    let retired = async {
        ending.retired.cancelled().await;
        tokio::time::sleep(ending.drain_grace).await;
    };
    tokio::pin!(lifetime, retired);
    let mut ended = Ended::default();
    let both = |frame: CloseFrame| (Some(frame.clone()), Some(frame));
    // The close frames each side gets at the end (`None`: the reply to its own).
    let (to_client, to_upstream) = loop {
        let idle = tokio::time::sleep(limits.idle_timeout);
        tokio::select! {
            read = client.next() => match pass(read, &mut upstream).await {
                Passed::On(counted) => ended.messages.0 += i64::from(counted),
                Passed::Closed(frame) => break (None, frame),
                Passed::End(frame) => break both(frame),
            },
            read = upstream.next() => match pass(read, &mut client).await {
                Passed::On(counted) => ended.messages.1 += i64::from(counted),
                Passed::Closed(frame) => break (frame, None),
                Passed::End(frame) => break both(frame),
            },
            () = idle => break both(going_away("idle")),
            () = &mut lifetime => break both(going_away("connection lifetime reached")),
            () = &mut retired => break both(going_away("the version was retired")),
            () = ending.stopping.cancelled() => {
                break both(going_away("the gateway is shutting down"));
            }
        }
    };
    ended.code = to_client
        .as_ref()
        .or(to_upstream.as_ref())
        .map(|frame| u16::from(frame.code));
    tally(ended.counts());
    tokio::join!(
        finish(&mut client, to_client),
        finish(&mut upstream, to_upstream)
    );
}

/// What became of one message read from a side.
enum Passed {
    /// Passed on (`true`: a data message, which counts); the relay goes on.
    On(bool),
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
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Passed::On(false),
        Some(Ok(Message::Close(frame))) => Passed::Closed(frame),
        Some(Ok(message)) => match other.send(message).await {
            Ok(()) => Passed::On(true),
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
