//! `upshift`: serves Spin-manifest apps of WebAssembly components on wasmtime.

mod admin_token;
mod bindings;
mod capabilities;
mod cli;
mod client_body;
mod compose;
mod composed;
mod concurrency;
mod engine;
mod instances;
mod manifest;
mod native;
mod poll;
mod priority;
mod registry;
mod routes;
mod runtime;
mod runtime_config;
mod server;
mod sources;
mod telemetry;
mod watched_body;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::cli::Cli;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::local_time::init();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    // The control plane: everything but the data plane's workers, which
    // have threads of their own (see `server`).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("control")
        .on_thread_start(priority::control_plane)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli.command.run());
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
