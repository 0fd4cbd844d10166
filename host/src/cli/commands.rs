//! Implementations of the `up`, `build`, `apply` and `get` subcommands.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::Method;
use upshift_model::Config;
use upshift_model::changes::changes;

use crate::capabilities::tls::server::ServerCerts;
use crate::cli::admin_client::{AdminClient, config_content_type};
use crate::cli::builder::{self, BuildError};
use crate::cli::watch::{self, Watched};
use crate::cli::{AdminArgs, ApplyArgs, ComposeArgs, GetArgs, ManifestArgs, Resource, UpArgs};
use crate::manifest::App;
use crate::native::WebSocketLimits;
use crate::runtime::{self, Runtime, RuntimeOptions, UnsetAdminToken};
use crate::server::{self, Limits, ServeOptions};
use crate::telemetry::spans::Collector;
use crate::telemetry::{Outputs, Telemetry};

/// Default number of requests running inside components at once, per core.
const CONCURRENCY_PER_CORE: usize = 2;

/// `upshift up`.
pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let tls = listener_tls(&args)?;
    let app = App::load(&args.manifest)?;
    if args.build
        && let Err(error) = builder::build(&app)
    {
        return Ok(build_failed(error));
    }
    let workers = args.workers.unwrap_or_else(default_workers);
    let options = RuntimeOptions {
        state_dir: args.state_dir,
        variables_file: args.variables_file,
        runtime_config_file: args.runtime_config_file,
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        instance_concurrency: usize::from(args.instance_concurrency),
        lane: args.lane,
        workers,
        admin_public: args.admin_public,
        unset_admin_token: UnsetAdminToken::Generate,
        telemetry: Telemetry::start(&Outputs {
            access_log: args.access_log.clone(),
            collector: args.otlp_endpoint.clone().map(|endpoint| Collector {
                endpoint,
                protocol: args.otlp_protocol,
            }),
        })?,
    };
    let watched = if args.watch {
        Some(Watched::from_app(&app)?)
    } else {
        None
    };
    let runtime = tokio::task::spawn_blocking(move || Runtime::load(&app, &options)).await??;
    if let Some(watched) = watched {
        watch::spawn(watched, runtime.registry.clone());
    }
    let listeners = server::bind(args.listen, workers)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let admin_addr = args
        .admin_listen
        .unwrap_or_else(|| admin_address(args.listen));
    let admin = server::bind(admin_addr, 1)
        .with_context(|| format!("cannot listen on {admin_addr} for the admin API"))?
        .remove(0);
    server::serve(
        runtime,
        listeners,
        admin,
        ServeOptions {
            workers,
            max_concurrency: args.max_concurrency.unwrap_or_else(default_concurrency),
            limits: Limits {
                header_read_timeout: Duration::from_secs(args.header_read_timeout.max(1)),
                max_header_bytes: args.max_header_bytes.max(8192),
                max_headers: args.max_headers.max(1),
                max_connections: args.max_connections.max(1),
                max_streams: args.max_streams.max(1),
                body_read_timeout: Duration::from_secs(args.body_read_timeout.max(1)),
                drain_timeout: Duration::from_secs(args.drain_timeout),
                websocket: WebSocketLimits {
                    idle_timeout: Duration::from_secs(args.websocket_idle_timeout.max(1)),
                    max_lifetime: (args.websocket_max_lifetime > 0)
                        .then(|| Duration::from_secs(args.websocket_max_lifetime)),
                    max_message_bytes: args.websocket_max_message_bytes.max(1024),
                    drain_grace: Duration::from_secs(args.websocket_drain_grace),
                },
            },
            tls,
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The admin API's default address: the loopback interface, on the port
/// after the public one (a free port when that is 0).
pub fn admin_address(public: SocketAddr) -> SocketAddr {
    let port = match public.port() {
        0 => 0,
        port => port.saturating_add(1),
    };
    SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port)
}

/// The listener's TLS settings, when certificates are given.
fn listener_tls(args: &UpArgs) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    if args.tls_cert.is_empty() && args.tls_key.is_empty() {
        return Ok(None);
    }
    anyhow::ensure!(
        args.tls_cert.len() == args.tls_key.len(),
        "each --tls-cert needs a --tls-key (got {} and {})",
        args.tls_cert.len(),
        args.tls_key.len()
    );
    let pairs = args
        .tls_cert
        .iter()
        .cloned()
        .zip(args.tls_key.iter().cloned());
    let certs = ServerCerts::load(pairs.collect())?;
    certs.reload_on_change();
    Ok(Some(certs.server_config()?))
}

/// Worker threads by default: one per CPU core the process may run on.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Requests running inside components at once by default.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * CONCURRENCY_PER_CORE
}

/// `upshift compose`.
pub fn compose(args: ComposeArgs) -> anyhow::Result<ExitCode> {
    let app = App::load(&args.manifest)?;
    anyhow::ensure!(
        app.manifest.component.contains_key(&args.component),
        "the manifest has no component `{}`",
        args.component
    );
    let composed = runtime::composed(&app, &args.component)?;
    std::fs::write(&args.output, composed)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// `upshift build`.
pub fn build(args: ManifestArgs) -> anyhow::Result<ExitCode> {
    let app = App::load(&args.manifest)?;
    match builder::build(&app) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => Ok(build_failed(error)),
    }
}

/// Logs a build failure; returns the build command's exit code.
fn build_failed(error: BuildError) -> ExitCode {
    let code = error.exit_code();
    tracing::error!("{:#}", anyhow::Error::new(error));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `upshift diff`: what applying `file` would change against the version
/// in force, a line per change.
pub async fn diff(file: &Path, admin: &AdminArgs) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let wanted = match Config::parse(&text) {
        Ok(config) => serde_json::to_value(&config)?,
        Err(error) => {
            eprintln!("{}: {error}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let client = AdminClient::new(&admin.admin, &admin.token);
    let response = client.send(Method::GET, "/admin/config", None).await?;
    let (version, in_force) = match response.status.as_u16() {
        404 => (0, serde_json::json!({})),
        status if (200..300).contains(&status) => {
            let mut body: serde_json::Value = serde_json::from_slice(&response.body)?;
            (body["version"].as_u64().unwrap_or(0), body["config"].take())
        }
        _ => {
            eprintln!("cannot read the config in force ({}):", response.status);
            eprintln!("{}", response.pretty_body());
            return Ok(ExitCode::FAILURE);
        }
    };
    let found = changes(&in_force, &wanted);
    if found.is_empty() {
        println!("{}: no changes against version {version}", file.display());
    } else {
        println!("{} against version {version}:", file.display());
        for change in found {
            println!("  {change}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the operator answers yes to `question` on the terminal.
fn confirmed(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("not applied: there is no terminal to ask on; pass --yes");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `upshift apply`.
pub async fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let content = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if args.diff {
        let shown = diff(&args.file, &args.admin).await?;
        if shown != ExitCode::SUCCESS {
            return Ok(shown);
        }
        if !args.yes && !confirmed("Apply these changes?")? {
            println!("not applied");
            return Ok(ExitCode::FAILURE);
        }
    }
    let client = AdminClient::new(&args.admin.admin, &args.admin.token);
    let response = client
        .send(
            Method::PUT,
            "/admin/config",
            Some((config_content_type(&args.file), Bytes::from(content))),
        )
        .await?;
    if response.status.is_success() {
        println!("{}", response.pretty_body());
        Ok(ExitCode::SUCCESS)
    } else {
        let file = args.file.display();
        let problems = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|body| body["error"]["problems"].as_array().cloned());
        match problems {
            Some(problems) => {
                eprintln!(
                    "{file}: rejected ({}), nothing was applied:",
                    response.status
                );
                for problem in problems {
                    let path = problem["path"].as_str().unwrap_or_default();
                    let message = problem["message"].as_str().unwrap_or_default();
                    let at = if path.is_empty() {
                        String::new()
                    } else {
                        format!("{path}: ")
                    };
                    eprintln!("{file}: {at}{message}");
                }
            }
            None => {
                eprintln!("{file}: rejected ({}):", response.status);
                eprintln!("{}", response.pretty_body());
            }
        }
        Ok(ExitCode::FAILURE)
    }
}

/// `upshift get`.
pub async fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let path = match (args.resource, args.version) {
        (Resource::Config, Some(version)) => format!("/admin/config/versions/{version}"),
        (Resource::Config, None) => "/admin/config".to_owned(),
        (Resource::Routes, _) => "/admin/routes".to_owned(),
        (Resource::Services, _) => "/admin/services".to_owned(),
        (Resource::Metrics, _) => "/admin/metrics".to_owned(),
    };
    let client = AdminClient::new(&args.admin.admin, &args.admin.token);
    let response = client.send(Method::GET, &path, None).await?;
    if response.status.is_success() {
        println!("{}", response.pretty_body());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("request failed ({}):", response.status);
        eprintln!("{}", response.pretty_body());
        Ok(ExitCode::FAILURE)
    }
}
