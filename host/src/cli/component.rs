//! `upshift component`: push, upgrade and roll back one component of the gateway
//! while traffic flows, through the component registry beside the admin
//! API.

use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Value, json};

use crate::cli::AdminArgs;
use crate::cli::admin_client::{AdminClient, AdminResponse};
use crate::registry::records::is_sha256;

/// Options of `upshift component`.
#[derive(Debug, Args)]
pub struct ComponentArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ComponentAction,
}

/// Component subcommands.
#[derive(Debug, Subcommand)]
pub enum ComponentAction {
    /// Show each component of the gateway: the version in force, the ones before
    /// it and the pushed ones.
    List(AdminOnly),
    /// Store a build and admit it (world, compilation, the config in
    /// force), without putting it in force.
    Push(PushArgs),
    /// Put a version in force on every node: a pushed one by its SHA-256,
    /// or a `.wasm` file, which is pushed first.
    Upgrade(UpgradeArgs),
    /// Send a share of requests to a version (a pushed SHA-256 or a
    /// `.wasm` file), in steps judged against the version in force; it
    /// promotes or rolls back by itself.
    Canary(CanaryArgs),
    /// Put the running canary's version in force now.
    Promote(ChangeArgs),
    /// Stop the running canary, or put the version in force before the
    /// current one back in force.
    Rollback(ChangeArgs),
    /// Show every transition of a component, with who and why.
    History(NameArgs),
}

/// Where the admin API is.
#[derive(Debug, Args)]
pub struct AdminOnly {
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Who asks and why, for the history.
#[derive(Debug, Args)]
pub struct Actor {
    /// Why, for the history.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Who, for the history (default: the `USER` environment variable).
    #[arg(long)]
    pub by: Option<String>,
}

/// Options of `upshift component push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The component's name in the manifest (e.g. `router`).
    pub name: String,
    /// The `.wasm` file.
    pub file: PathBuf,
    /// Who and why.
    #[command(flatten)]
    pub actor: Actor,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Options of `upshift component upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The component's name in the manifest (e.g. `router`).
    pub name: String,
    /// A pushed version's SHA-256, or a `.wasm` file to push first.
    pub version: String,
    /// Who and why.
    #[command(flatten)]
    pub actor: Actor,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Options of `upshift component canary`.
#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// The component's name in the manifest (e.g. `router`).
    pub name: String,
    /// A pushed version's SHA-256, or a `.wasm` file to push first.
    pub version: String,
    /// The canary's share of requests at each step, in percent.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,100")]
    pub steps: Vec<u8>,
    /// How long each step lasts at least before it is judged and left,
    /// e.g. `30s`, or `manual` to wait for `promote`.
    #[arg(long, default_value = "1m")]
    pub pause: String,
    /// Requests each side needs in a step before it is judged.
    #[arg(long, default_value_t = 100)]
    pub min_requests: u64,
    /// Highest excess of the canary's error rate over the stable's (a
    /// fraction).
    #[arg(long, default_value_t = 0.01)]
    pub max_error_rate_increase: f64,
    /// Highest ratio of the canary's p99 latency to the stable's.
    #[arg(long, default_value_t = 2.0)]
    pub max_p99_ratio: f64,
    /// Who and why.
    #[command(flatten)]
    pub actor: Actor,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// A component, who asks and why, and where the admin API is.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The component's name in the manifest (e.g. `router`).
    pub name: String,
    /// Who and why.
    #[command(flatten)]
    pub actor: Actor,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// A component and where the admin API is.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The component's name in the manifest (e.g. `router`).
    pub name: String,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

fn client(admin: &AdminArgs, actor: Option<&Actor>) -> AdminClient {
    let client = AdminClient::new(&admin.admin, &admin.token);
    match actor {
        Some(actor) => {
            let by = actor
                .by
                .clone()
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".to_owned());
            client
                .with_header("x-upshift-by", &by)
                .with_header("x-upshift-reason", &actor.reason)
        }
        None => client,
    }
}

/// `upshift component …`.
pub async fn run(args: ComponentArgs) -> anyhow::Result<ExitCode> {
    let response = match args.action {
        ComponentAction::List(list) => {
            client(&list.admin, None)
                .send(Method::GET, "/admin/components", None)
                .await?
        }
        ComponentAction::Push(push) => {
            let client = client(&push.admin, Some(&push.actor));
            send_file(&client, &push.name, &push.file).await?
        }
        ComponentAction::Upgrade(upgrade) => {
            let client = client(&upgrade.admin, Some(&upgrade.actor));
            let sha256 = match pushed(&client, &upgrade.name, &upgrade.version).await? {
                Ok(sha256) => sha256,
                Err(refused) => return Ok(refused.print()),
            };
            let body = json!({ "version": sha256 }).to_string();
            client
                .send(
                    Method::POST,
                    &format!("/admin/components/{}/upgrade", upgrade.name),
                    Some(("application/json", Bytes::from(body))),
                )
                .await?
        }
        ComponentAction::Canary(canary) => {
            let client = client(&canary.admin, Some(&canary.actor));
            let sha256 = match pushed(&client, &canary.name, &canary.version).await? {
                Ok(sha256) => sha256,
                Err(refused) => return Ok(refused.print()),
            };
            let steps: Vec<Value> = canary
                .steps
                .iter()
                .map(|weight| json!({ "weight": weight, "pause": canary.pause }))
                .collect();
            let body = json!({
                "version": sha256,
                "steps": steps,
                "analysis": {
                    "min_requests": canary.min_requests,
                    "max_error_rate_increase": canary.max_error_rate_increase,
                    "max_p99_ratio": canary.max_p99_ratio,
                },
            });
            client
                .send(
                    Method::POST,
                    &format!("/admin/components/{}/canary", canary.name),
                    Some(("application/json", Bytes::from(body.to_string()))),
                )
                .await?
        }
        ComponentAction::Promote(promote) => {
            client(&promote.admin, Some(&promote.actor))
                .send(
                    Method::POST,
                    &format!("/admin/components/{}/promote", promote.name),
                    None,
                )
                .await?
        }
        ComponentAction::Rollback(rollback) => {
            client(&rollback.admin, Some(&rollback.actor))
                .send(
                    Method::POST,
                    &format!("/admin/components/{}/rollback", rollback.name),
                    None,
                )
                .await?
        }
        ComponentAction::History(history) => {
            client(&history.admin, None)
                .send(
                    Method::GET,
                    &format!("/admin/components/{}/history", history.name),
                    None,
                )
                .await?
        }
    };
    Ok(response.print())
}

/// The SHA-256 of `version`: given, or of the `.wasm` file it names,
/// pushed first (`Err`: the registry's refusal).
async fn pushed(
    client: &AdminClient,
    name: &str,
    version: &str,
) -> anyhow::Result<Result<String, AdminResponse>> {
    if is_sha256(version) {
        return Ok(Ok(version.to_owned()));
    }
    let response = send_file(client, name, version.as_ref()).await?;
    if !response.status.is_success() {
        return Ok(Err(response));
    }
    let record: Value = serde_json::from_slice(&response.body)?;
    Ok(Ok(record["sha256"].as_str().unwrap_or_default().to_owned()))
}

/// Pushes `file` as a version of `name`.
async fn send_file(
    client: &AdminClient,
    name: &str,
    file: &std::path::Path,
) -> anyhow::Result<AdminResponse> {
    let bytes =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    client
        .send(
            Method::POST,
            &format!("/admin/components/{name}/versions"),
            Some(("application/wasm", Bytes::from(bytes))),
        )
        .await
}
