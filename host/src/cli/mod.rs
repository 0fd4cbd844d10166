//! The command line: the `upshift` subcommands, their arguments, and what
//! each one does. Apart from `up` (and `demo`), which start the runtime
//! (`crate::runtime`, `crate::server`), the subcommands are clients: they
//! build components, or talk to a running gateway's admin API.
//!
//! - [`commands`]: `up`, `build`, `compose`, `apply`, `diff` and `get`;
//!   [`watch`] rebuilds components for `up --watch`, with [`builder`].
//! - [`rollout`], [`component`], [`consumer`], [`key`], [`top`]: the admin
//!   API's clients, over [`admin_client`]; [`local_time`] writes their times.
//! - [`demo`]: the demo, with its upstreams, in one process.

mod admin_client;
mod builder;
mod commands;
mod component;
mod consumer;
mod demo;
mod key;
pub mod local_time;
mod rollout;
mod top;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use self::top::TopArgs;
use crate::runtime::Lane;
use crate::server::Limits;
use crate::telemetry::lines::Sink;
use crate::telemetry::spans::Encoding;

/// Upshift: an edge API and AI gateway made of WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "upshift", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the app described by a Spin manifest.
    Up(UpArgs),
    /// Run each component's build command, like `spin build`.
    Build(ManifestArgs),
    /// Compose a component with its dependencies as `spin up` and `spin
    /// deploy` do, and write the composed component.
    Compose(ComposeArgs),
    /// Apply a gateway configuration file (YAML or JSON) through the admin API.
    Apply(ApplyArgs),
    /// Show what applying a configuration file would change against the
    /// version in force (consumers' keys hidden).
    Diff(DiffArgs),
    /// Show configuration, routes, services or metrics from the admin API.
    Get(GetArgs),
    /// Watch request rate, error rate and p99 per route and version, live.
    Top(TopArgs),
    /// Start, follow and steer rollouts through the admin API.
    Rollout(rollout::RolloutArgs),
    /// Push, upgrade and roll back one component of the gateway while traffic
    /// flows, on every node sharing the store.
    Component(component::ComponentArgs),
    /// Add consumers to the config in force, each with a first API key.
    Consumer(consumer::ConsumerArgs),
    /// Make, issue, list and revoke consumers' API keys: each key is
    /// shown once; the gateway keeps only its digest.
    Key(key::KeyArgs),
    /// Build, start two demo upstreams and the gateway, and apply the demo config.
    Demo(ManifestArgs),
}

impl Command {
    /// Runs the subcommand; the exit code is the process's.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Up(args) => commands::up(args).await,
            Command::Build(args) => commands::build(args),
            Command::Compose(args) => commands::compose(args),
            Command::Apply(args) => commands::apply(args).await,
            Command::Diff(args) => commands::diff(&args.file, &args.admin).await,
            Command::Get(args) => commands::get(args).await,
            Command::Top(args) => top::run(args).await,
            Command::Rollout(args) => rollout::run(args).await,
            Command::Component(args) => component::run(args).await,
            Command::Consumer(args) => consumer::run(args).await,
            Command::Key(args) => key::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    }
}

/// Locates the manifest.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// Path of the Spin manifest.
    #[arg(long, short = 'f', default_value = "spin.toml")]
    pub manifest: PathBuf,
}

/// Options of `upshift compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Path of the Spin manifest.
    #[arg(long, short = 'f', default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// The component to compose.
    pub component: String,
    /// Where to write the composed component.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
}

/// Options of `upshift up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Path of the Spin manifest.
    #[arg(long, short = 'f', default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Address of the admin API (the trigger routes under `/admin`, and
    /// the component registry). Default: the loopback interface, on the
    /// port after `--listen`'s (a free port when that is 0).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Serve the admin API on the public listener too.
    #[arg(long)]
    pub admin_public: bool,
    /// Directory for key-value data and compiled components.
    #[arg(long, default_value = ".upshift")]
    pub state_dir: PathBuf,
    /// TOML or JSON file with values for application variables.
    #[arg(long)]
    pub variables_file: Option<PathBuf>,
    /// Spin runtime config file (TOML): `[key_value_store.<label>]` tables put
    /// stores on Redis (`type = "redis"`, `url`) or in an embedded file
    /// (`type = "spin"`, `path`). Unlisted stores are embedded in the state dir.
    #[arg(long)]
    pub runtime_config_file: Option<PathBuf>,
    /// Run the build commands first.
    #[arg(long)]
    pub build: bool,
    /// Rebuild a component when one of its sources changes (its build
    /// `command` and `watch` globs) and swap the new build of a policy
    /// component in while traffic flows.
    #[arg(long)]
    pub watch: bool,
    /// Execution-time budget of one request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Requests running inside components at once (default: 2 per CPU core).
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Requests one component instance may serve side by side. 1 isolates
    /// every request: a trap fails that request alone. More lets requests
    /// that wait on upstreams share an instance (less memory, more
    /// throughput), and a trap then fails every request of that instance.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub instance_concurrency: u16,
    /// How an Upshift gateway component is served: `native` (the host
    /// moves the bytes, the policy components decide) or `component` (the
    /// `gateway` component serves every request, as on Spin).
    #[arg(long, value_enum, default_value_t = Lane::Native)]
    pub lane: Lane,
    /// Where to log requests, one JSON line each: `stdout` (or `-`), or
    /// a file's path, appended to. Off when not given.
    #[arg(long, env = "UPSHIFT_ACCESS_LOG")]
    pub access_log: Option<Sink>,
    /// The OpenTelemetry collector spans are exported to, over OTLP/HTTP
    /// (its base URL, e.g. `http://127.0.0.1:4318`; spans go to
    /// `/v1/traces`). Off when not given. Batching follows the standard
    /// `OTEL_BSP_*` variables.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The encoding of exported spans: `http/protobuf` or `http/json`.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "http/protobuf"
    )]
    pub otlp_protocol: Encoding,
    /// Worker threads, each with its own listening socket (default: one
    /// per CPU core available to the process).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seconds a request head may take to arrive, counted from when the
    /// connection waits for one; a connection still sending one (or idle
    /// that long) is closed.
    #[arg(long, default_value_t = Limits::default().header_read_timeout.as_secs())]
    pub header_read_timeout: u64,
    /// Largest request head (HTTP/1.1) or header list (HTTP/2), in bytes;
    /// a larger one gets a 431.
    #[arg(long, default_value_t = Limits::default().max_header_bytes)]
    pub max_header_bytes: usize,
    /// Most headers of an HTTP/1.1 request; more get a 431.
    #[arg(long, default_value_t = Limits::default().max_headers)]
    pub max_headers: usize,
    /// Connections open at once; one more is answered 503 with
    /// `retry-after` and closed.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Concurrent streams of one HTTP/2 connection.
    #[arg(long, default_value_t = Limits::default().max_streams)]
    pub max_streams: u32,
    /// Seconds a request body may go without data; the request then fails
    /// with a 408.
    #[arg(long, default_value_t = Limits::default().body_read_timeout.as_secs())]
    pub body_read_timeout: u64,
    /// PEM certificate chain to serve TLS with (repeatable, each with its
    /// `--tls-key`); a client gets the first whose names fit the name it
    /// asks for (SNI), else the first. Reloaded when the files change.
    #[arg(long)]
    pub tls_cert: Vec<PathBuf>,
    /// PEM private key of the `--tls-cert` at the same position.
    #[arg(long)]
    pub tls_key: Vec<PathBuf>,
    /// Seconds a relayed WebSocket connection may pass no message before
    /// the gateway closes it (1001).
    #[arg(long, default_value_t = Limits::default().websocket.idle_timeout.as_secs())]
    pub websocket_idle_timeout: u64,
    /// Seconds a relayed WebSocket connection may stay open at all (1001
    /// then); 0: no limit.
    #[arg(long, default_value_t = 0)]
    pub websocket_max_lifetime: u64,
    /// Largest WebSocket message, in bytes; a larger one closes the
    /// connection (1009).
    #[arg(long, default_value_t = Limits::default().websocket.max_message_bytes)]
    pub websocket_max_message_bytes: usize,
    /// Seconds the WebSocket connections of a version that takes no new
    /// ones (after a rollback or a blue/green switch) stay open before the
    /// gateway closes them (1001).
    #[arg(long, default_value_t = Limits::default().websocket.drain_grace.as_secs())]
    pub websocket_drain_grace: u64,
    /// Seconds requests in flight get to finish after SIGTERM or Ctrl-C
    /// (a second signal exits at once).
    #[arg(long, default_value_t = Limits::default().drain_timeout.as_secs())]
    pub drain_timeout: u64,
}

/// How to reach the admin API.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Base URL of the gateway's admin API (`upshift up --admin-listen`).
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    pub admin: String,
    /// Admin bearer token (`upshift up` prints the one it generates on its
    /// first start when none is configured; `upshift demo` prints its own).
    #[arg(long, env = "UPSHIFT_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Options of `upshift apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The configuration file (`.yaml`, `.yml` or `.json`).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Show what the file changes first, and ask before applying it.
    #[arg(long)]
    pub diff: bool,
    /// With `--diff`: apply without asking.
    #[arg(long, requires = "diff")]
    pub yes: bool,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Options of `upshift diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The configuration file (`.yaml`, `.yml` or `.json`).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// What `upshift get` shows.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Resource {
    /// The configuration document.
    Config,
    /// The compiled routes.
    Routes,
    /// The services and their versions.
    Services,
    /// Counters per route and version, in Prometheus text format.
    Metrics,
}

/// Options of `upshift get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to show.
    pub resource: Resource,
    /// A specific configuration version (only with `config`).
    #[arg(long)]
    pub version: Option<u64>,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_runtime_config_file() {
        let cli = Cli::parse_from(["upshift", "up", "--runtime-config-file", "rc.toml"]);
        let Command::Up(args) = cli.command else {
            panic!("expected up")
        };
        assert_eq!(args.runtime_config_file, Some(PathBuf::from("rc.toml")));
    }

    #[test]
    fn parses_get_with_version() {
        let cli = Cli::parse_from(["upshift", "get", "config", "--version", "3", "--token", "t"]);
        let Command::Get(args) = cli.command else {
            panic!("expected get")
        };
        assert!(matches!(args.resource, Resource::Config));
        assert_eq!(args.version, Some(3));
        assert_eq!(args.admin.admin, "http://127.0.0.1:3001");
    }
}
