//! `upshift demo`: builds the app, starts two echo upstreams (`v1`, `v2`) in
//! the process, serves the gateway on 127.0.0.1:3000 and applies
//! `host/demo/upshift.yaml` (with `${V1_PORT}` / `${V2_PORT}` substituted).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::cli::ManifestArgs;
use crate::cli::admin_client::AdminClient;
use crate::cli::builder;
use crate::cli::commands::{default_concurrency, default_workers};
use crate::manifest::App;
use crate::runtime::{Lane, Runtime, RuntimeOptions, UnsetAdminToken};
use crate::server::{self, ServeOptions};

const GATEWAY: &str = "127.0.0.1:3000";
const ADMIN: &str = "127.0.0.1:3001";
const DEFAULT_ADMIN_TOKEN: &str = "upshift-dev-admin-token";

/// Runs the demo until interrupted.
pub async fn run(args: ManifestArgs) -> anyhow::Result<ExitCode> {
    let app = App::load(&args.manifest)?;
    builder::build(&app)?;
    let config_path = app.resolve("host/demo/upshift.yaml");
    let template = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read the demo config {}", config_path.display()))?;

    let v1 = start_echo_upstream("v1").await?;
    let v2 = start_echo_upstream("v2").await?;
    tracing::info!("demo upstreams: v1 on {v1}, v2 on {v2}");

    let workers = default_workers();
    let options = RuntimeOptions {
        state_dir: app.resolve(".upshift"),
        variables_file: None,
        runtime_config_file: None,
        request_timeout: Duration::from_secs(30),
        instance_concurrency: 1,
        lane: Lane::Native,
        workers,
        admin_public: false,
        unset_admin_token: UnsetAdminToken::Fixed(DEFAULT_ADMIN_TOKEN.to_owned()),
        telemetry: None,
    };
    let runtime = tokio::task::spawn_blocking(move || Runtime::load(&app, &options)).await??;
    let listeners = server::bind(GATEWAY.parse()?, workers)
        .with_context(|| format!("cannot listen on {GATEWAY}"))?;
    let admin = server::bind(ADMIN.parse()?, 1)
        .with_context(|| format!("cannot listen on {ADMIN}"))?
        .remove(0);
    let gateway = tokio::spawn(server::serve(
        runtime,
        listeners,
        admin,
        ServeOptions {
            workers,
            max_concurrency: default_concurrency(),
            limits: server::Limits::default(),
            tls: None,
        },
    ));

    let config = template
        .replace("${V1_PORT}", &v1.port().to_string())
        .replace("${V2_PORT}", &v2.port().to_string());
    let token = std::env::var("UPSHIFT_ADMIN_TOKEN")
        .or_else(|_| std::env::var("SPIN_VARIABLE_ADMIN_TOKEN"))
        .unwrap_or_else(|_| DEFAULT_ADMIN_TOKEN.to_owned());
    let client = AdminClient::new(&format!("http://{ADMIN}"), &token);
    let response = client
        .send(
            Method::PUT,
            "/admin/config",
            Some(("application/yaml", Bytes::from(config))),
        )
        .await?;
    if !response.status.is_success() {
        bail!(
            "the demo config was rejected ({}): {}",
            response.status,
            response.pretty_body()
        );
    }
    println!("Demo config applied:\n{}\n", response.pretty_body());
    println!("Try:");
    println!(
        "  curl -i http://{GATEWAY}/orders                # 90% v1, 10% v2 (x-upshift-upstream)"
    );
    println!("  curl -i -H 'x-version: v2' http://{GATEWAY}/orders  # testers reach v2");
    println!("  curl -i -H 'x-user: ada' http://{GATEWAY}/orders    # ada stays on one version");
    println!("  curl -i http://{GATEWAY}/legacy/orders         # v1 with Deprecation and Sunset");
    println!("  curl -i -H 'x-api-key: demo-key-123456' http://{GATEWAY}/api/items");
    println!("  curl -i http://{GATEWAY}/api/items             # 401 without a key");
    println!("  curl -s http://{GATEWAY}/v1/models");
    println!("  export UPSHIFT_ADMIN_TOKEN={token}   # for the CLI");
    println!("  upshift get routes; upshift get services; upshift get config");
    println!("  upshift rollout start orders --canary v2 --steps 25,50,100 --pause 20s");
    println!("  upshift rollout status orders                  # while traffic flows");
    println!("  curl -s -H 'authorization: Bearer {token}' http://{ADMIN}/admin/metrics");
    println!("Press Ctrl-C to stop.");

    gateway.await??;
    Ok(ExitCode::SUCCESS)
}

/// Starts an echo server on a free local port; returns its address.
async fn start_echo_upstream(name: &'static str) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| echo(name, request));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Describes the request it received as JSON.
async fn echo(
    name: &'static str,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body_bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let headers: BTreeMap<&str, &str> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("<binary>")))
        .collect();
    let description = serde_json::json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        "headers": headers,
        "body_bytes": body_bytes,
    });
    let mut response = Response::new(Full::new(Bytes::from(description.to_string())));
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert("x-demo-upstream", http::HeaderValue::from_static(name));
    Ok(response)
}
