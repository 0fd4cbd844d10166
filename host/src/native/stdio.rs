//! `wasi:io/streams` for the policy components, without waiting on tokio.
//!
//! A component's standard library writes panics and diagnostics to stderr
//! through these streams. wasmtime-wasi's synchronous streams block on a
//! tokio runtime for the blocking calls and for dropping a stream, which a
//! worker thread (itself running a tokio runtime) cannot do. The policy
//! components' streams are the process's stdio, which is always ready, so
//! the blocking calls here write and flush at once; a stream that would
//! really block (none is given to them) fails the call instead.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::streams::{self, InputStream, OutputStream};
use wasmtime_wasi::p2::{StreamError, StreamResult};
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    HostInputStream as AsyncInput, HostOutputStream as AsyncOutput,
};

use super::policy::PolicyState;

/// The streams of one policy instance: its resource table.
pub struct SyncStreams<'a>(pub &'a mut ResourceTable);

/// [`HasData`] marker for [`SyncStreams`].
struct Streams;

impl HasData for Streams {
    type Data<'a> = SyncStreams<'a>;
}

/// Replaces the `wasi:io/streams` that `wasmtime_wasi::p2::add_to_linker_sync`
/// put in `linker` with [`SyncStreams`].
pub fn add_to_linker(linker: &mut Linker<PolicyState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    streams::add_to_linker::<_, Streams>(linker, PolicyState::streams)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A stream that is not ready when a blocking call needs it.
fn would_block() -> StreamError {
    StreamError::Trap(wasmtime::Error::msg(
        "a policy component's stream would block, which the native lane does not allow",
    ))
}

impl streams::Host for SyncStreams<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.0, err)
    }
}

impl streams::HostOutputStream for SyncStreams<'_> {
    fn drop(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<()> {
        self.0.delete(stream)?;
        Ok(())
    }

    fn check_write(&mut self, stream: Resource<OutputStream>) -> StreamResult<u64> {
        AsyncOutput::check_write(self.0, stream)
    }

    fn write(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        AsyncOutput::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        let borrowed = || Resource::new_borrow(stream.rep());
        if AsyncOutput::check_write(self.0, borrowed())? < bytes.len() as u64 {
            return Err(would_block());
        }
        AsyncOutput::write(self.0, borrowed(), bytes)?;
        AsyncOutput::flush(self.0, borrowed())
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        let zeroes = vec![0; usize::try_from(len).map_err(|_| would_block())?];
        self.blocking_write_and_flush(stream, zeroes)
    }

    fn subscribe(
        &mut self,
        stream: Resource<OutputStream>,
    ) -> wasmtime::Result<Resource<wasmtime_wasi::p2::bindings::sync::io::poll::Pollable>> {
        AsyncOutput::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        AsyncOutput::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        AsyncOutput::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        AsyncOutput::flush(self.0, stream)
    }

    fn splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        AsyncOutput::splice(self.0, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        AsyncOutput::splice(self.0, dst, src, len)
    }
}

impl streams::HostInputStream for SyncStreams<'_> {
    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        self.0.delete(stream)?;
        Ok(())
    }

    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        AsyncInput::read(self.0, stream, len)
    }

    fn blocking_read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        AsyncInput::read(self.0, stream, len)
    }

    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        AsyncInput::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        AsyncInput::skip(self.0, stream, len)
    }

    fn subscribe(
        &mut self,
        stream: Resource<InputStream>,
    ) -> wasmtime::Result<Resource<wasmtime_wasi::p2::bindings::sync::io::poll::Pollable>> {
        AsyncInput::subscribe(self.0, stream)
    }
}
