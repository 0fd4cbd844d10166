//! The access log's writer: requests hand their line to a bounded queue,
//! and a thread of its own serializes and writes them, to stdout or to a
//! file, so a request never waits on the log. When the writer falls behind
//! a line is dropped, counted and reported, rather than slowing requests.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::task::{Context, Poll};

use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use upshift_core::access_log::Entry;

/// Lines the queue holds before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// The process's standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

impl FromStr for Sink {
    type Err = std::convert::Infallible;

    /// `stdout` or `-`: standard output; anything else: a file's path.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(match value {
            "stdout" | "-" => Sink::Stdout,
            path => Sink::File(path.into()),
        })
    }
}

/// The access log: cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct AccessLog {
    queue: SyncSender<Box<Entry>>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Opens `sink` and starts its writer thread.
    pub fn start(sink: &Sink) -> anyhow::Result<Self> {
        let out: Box<dyn Write + Send> = match sink {
            Sink::Stdout => Box::new(std::io::stdout()),
            Sink::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open the access log {}", path.display()))?,
            ),
        };
        let (queue, lines) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&lines, out, &counted))
            .context("cannot start the access log's writer")?;
        Ok(AccessLog { queue, dropped })
    }

    /// Queues `entry`'s line, or drops it when the writer is behind.
    pub fn log(&self, entry: Entry) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(Box::new(entry))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes the queued lines, flushing whenever the queue is empty.
fn write_lines(lines: &Receiver<Box<Entry>>, out: Box<dyn Write + Send>, dropped: &AtomicU64) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut failing = false;
    while let Ok(first) = lines.recv() {
        let mut written = write_line(&mut out, first);
        while let Ok(line) = lines.try_recv() {
            written = written.and_then(|()| write_line(&mut out, line));
        }
        let result = written.and_then(|()| out.flush());
        match (result, failing) {
            (Err(error), false) => {
                tracing::error!("cannot write the access log: {error}");
                failing = true;
            }
            (Ok(()), true) => failing = false,
            _ => {}
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                lines = lost,
                "access log lines dropped: the writer fell behind"
            );
        }
    }
}

fn write_line(out: &mut impl Write, entry: Box<Entry>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &entry)?;
    out.write_all(b"\n")
}

/// A request's line, waiting for the end of its answer.
pub struct Pending {
    /// Where it goes.
    pub log: AccessLog,
    /// The line, but for its latency and byte counts.
    pub entry: Entry,
    /// When the request arrived.
    pub arrived: Instant,
    /// The request body bytes read so far.
    pub bytes_in: BytesIn,
}

/// Request body bytes read from the client, counted as they are read.
#[derive(Debug, Clone, Default)]
pub struct BytesIn(pub Arc<AtomicU64>);

/// An answer's body that logs its request when it ends, fails or is
/// dropped (the client went away).
pub struct Logged<B> {
    body: B,
    bytes_out: u64,
    pending: Option<Pending>,
}

impl<B> Logged<B> {
    /// `body`, logging `pending` at its end.
    pub fn new(body: B, pending: Pending) -> Self {
        Logged {
            body,
            bytes_out: 0,
            pending: Some(pending),
        }
    }

    fn finish(&mut self) {
        if let Some(Pending {
            log,
            mut entry,
            arrived,
            bytes_in,
        }) = self.pending.take()
        {
            entry.latency_ms = arrived.elapsed().as_secs_f64() * 1e3;
            entry.bytes_in = bytes_in.0.load(Ordering::Relaxed);
            entry.bytes_out = self.bytes_out;
            log.log(entry);
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Logged<B> {
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
                if let Some(data) = frame.data_ref() {
                    this.bytes_out += data.len() as u64;
                }
                if this.body.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(Some(Err(_)) | None) => this.finish(),
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

impl<B> Drop for Logged<B> {
    fn drop(&mut self) {
        self.finish();
    }
}
