//! What the gateway tells about each request it served: a line in the
//! access log ([`lines`]) and the spans of its trace ([`spans`]). Requests
//! hand their record to a bounded queue, and a thread of its own writes
//! the lines and makes the spans, so a request never waits on either. When
//! the thread falls behind a record is dropped, counted and reported,
//! rather than slowing requests.

pub mod lines;
pub mod spans;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use hyper::body::Frame;
use upshift_core::access_log::{self, Entry, LateUsage};
use upshift_core::trace::TraceContext;

use crate::watched_body::{Ending, Watcher};
use lines::{Lines, Sink};
use spans::{Collector, ShadowCall, Spans};

/// Records the queue holds before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// How long the telemetry thread lets records gather before it writes
/// them: a line reaches the log this long after its request at most.
const GATHER: Duration = Duration::from_millis(20);

/// What is recorded, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// Where the access log goes, if anywhere.
    pub access_log: Option<Sink>,
    /// Where spans are exported, if anywhere.
    pub collector: Option<Collector>,
}

/// The telemetry queue: cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct Telemetry {
    queue: SyncSender<Record>,
    dropped: Arc<AtomicU64>,
}

/// One thing to record.
enum Record {
    /// A request that ended.
    Request(Box<Finished>),
    /// A shadow copy that ended.
    Shadow(Box<ShadowCall>),
}

/// A request that ended, with its place in its trace.
struct Finished {
    entry: Entry,
    trace: TraceContext,
    arrived: SystemTime,
}

impl Telemetry {
    /// Opens `outputs` and starts the thread that writes to them; `None`
    /// when nothing is to be recorded.
    pub fn start(outputs: &Outputs) -> anyhow::Result<Option<Self>> {
        if outputs.access_log.is_none() && outputs.collector.is_none() {
            return Ok(None);
        }
        let lines = outputs.access_log.as_ref().map(Lines::open).transpose()?;
        let spans = outputs.collector.as_ref().map(Spans::start).transpose()?;
        let (queue, records) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("telemetry".into())
            .spawn(move || record(&records, lines, spans.as_ref(), &counted))
            .context("cannot start the telemetry thread")?;
        Ok(Some(Telemetry { queue, dropped }))
    }

    /// Queues the spans of a shadow copy.
    pub fn shadow(&self, call: ShadowCall) {
        self.queue_up(Record::Shadow(Box::new(call)));
    }

    /// Queues `record`, or drops it when the thread is behind.
    fn queue_up(&self, record: Record) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(record)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes the line and makes the spans of `record`.
fn one(record: Record, lines: Option<&mut Lines>, spans: Option<&Spans>) {
    match record {
        Record::Request(mut finished) => {
            let since_epoch = finished.arrived.duration_since(SystemTime::UNIX_EPOCH);
            let unix_ms = since_epoch.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
            finished.entry.time = access_log::timestamp(unix_ms);
            finished.entry.served.settle();
            if let Some(lines) = lines {
                lines.write(&finished.entry);
            }
            if let Some(spans) = spans {
                spans.request(&finished.entry, &finished.trace, finished.arrived);
            }
        }
        Record::Shadow(shadow) => {
            if let Some(spans) = spans {
                spans.shadow(&shadow);
            }
        }
    }
}

/// Records what is queued, flushing the log whenever the queue is empty.
fn record(
    records: &Receiver<Record>,
    mut lines: Option<Lines>,
    spans: Option<&Spans>,
    dropped: &AtomicU64,
) {
    while let Ok(first) = records.recv() {
        // Records gather while this thread sleeps: requests queue theirs
        // without waking it, and the log is written in batches, not a
        // write per request.
        std::thread::sleep(GATHER);
        one(first, lines.as_mut(), spans);
        while let Ok(next) = records.try_recv() {
            one(next, lines.as_mut(), spans);
        }
        if let Some(lines) = &mut lines {
            lines.flush();
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                records = lost,
                "access log lines and spans dropped: the telemetry thread fell behind"
            );
        }
    }
}

/// A request's record, waiting for the end of its answer.
pub struct Pending {
    /// Where it goes.
    pub telemetry: Telemetry,
    /// The line, but for its latency and byte counts.
    pub entry: Entry,
    /// The request's span of its trace.
    pub trace: TraceContext,
    /// When the request arrived.
    pub arrived: (Instant, SystemTime),
    /// The request body bytes read so far.
    pub bytes_in: BytesIn,
    /// Where a streamed AI answer leaves its usage.
    pub late: Option<LateUsage>,
}

/// Request body bytes read from the client, counted as they are read.
#[derive(Debug, Clone, Default)]
pub struct BytesIn(pub Arc<AtomicU64>);

/// Records a request when its answer's body ends, fails or is dropped (the
/// client went away), with the bytes it carried.
pub struct Recorded {
    pending: Pending,
    bytes_out: u64,
}

impl Recorded {
    /// The watcher of an answer whose request is `pending`.
    pub fn new(pending: Pending) -> Self {
        Recorded {
            pending,
            bytes_out: 0,
        }
    }
}

impl Watcher for Recorded {
    fn frame(&mut self, frame: &Frame<Bytes>) {
        if let Some(data) = frame.data_ref() {
            self.bytes_out += data.len() as u64;
        }
    }

    fn ended(self, _: Ending) {
        let Pending {
            telemetry,
            mut entry,
            trace,
            arrived: (arrived, arrived_at),
            bytes_in,
            late,
        } = self.pending;
        if let Some(usage) = late.as_ref().and_then(|late| late.get()) {
            entry.served.used(*usage);
        }
        entry.latency_ms = arrived.elapsed().as_secs_f64() * 1e3;
        entry.bytes_in = bytes_in.0.load(Ordering::Relaxed);
        entry.bytes_out = self.bytes_out;
        telemetry.queue_up(Record::Request(Box::new(Finished {
            entry,
            trace,
            arrived: arrived_at,
        })));
    }
}
