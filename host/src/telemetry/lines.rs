//! The access log's lines: one JSON object per request, to standard
//! output or appended to a file.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context as _;
use upshift_core::access_log::Entry;

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

/// The open access log, buffered.
pub struct Lines {
    out: BufWriter<Box<dyn Write + Send>>,
    /// Whether the last write failed (reported once, until one succeeds).
    failing: bool,
}

impl Lines {
    /// Opens `sink`.
    pub fn open(sink: &Sink) -> anyhow::Result<Self> {
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
        Ok(Lines {
            out: BufWriter::with_capacity(64 * 1024, out),
            failing: false,
        })
    }

    /// Writes `entry`'s line into the buffer.
    pub fn write(&mut self, entry: &Entry) {
        let written = serde_json::to_writer(&mut self.out, entry)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        self.report(written);
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        let flushed = self.out.flush();
        self.report(flushed);
    }

    fn report(&mut self, result: std::io::Result<()>) {
        match (result, self.failing) {
            (Err(error), false) => {
                tracing::error!("cannot write the access log: {error}");
                self.failing = true;
            }
            (Ok(()), true) => self.failing = false,
            _ => {}
        }
    }
}
