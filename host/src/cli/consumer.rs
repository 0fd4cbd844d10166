//! `upshift consumer`: consumers added to the config in force, each with
//! a first API key that is shown once.

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::json;

use crate::cli::AdminArgs;
use crate::cli::key::{client, duration, issue};

/// `upshift consumer` arguments.
#[derive(Debug, Args)]
pub struct ConsumerArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ConsumerAction,
}

/// `upshift consumer` actions.
#[derive(Debug, Subcommand)]
pub enum ConsumerAction {
    /// Add a consumer to the config in force (a new config version) and
    /// issue it an API key, shown once.
    Create {
        /// The consumer's name.
        name: String,
        /// The tenant it belongs to.
        #[arg(long)]
        tenant: Option<String>,
        /// A label for split and access rules; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// How long its key works (`90d`, `12h`); without it, until revoked.
        #[arg(long, value_parser = duration, conflicts_with = "no_key")]
        expires: Option<std::time::Duration>,
        /// Issue no key (for consumers that present JWTs).
        #[arg(long)]
        no_key: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// `upshift consumer …`.
pub async fn run(args: ConsumerArgs) -> anyhow::Result<ExitCode> {
    let ConsumerAction::Create {
        name,
        tenant,
        tags,
        expires,
        no_key,
        admin,
    } = args.action;
    let admin = client(&admin);
    let body = json!({ "name": name, "tenant": tenant, "tags": tags });
    let created = admin
        .send(
            Method::POST,
            "/admin/consumers",
            Some(("application/json", Bytes::from(body.to_string()))),
        )
        .await?;
    if !created.status.is_success() || no_key {
        return Ok(created.print());
    }
    let mut shown: serde_json::Value = serde_json::from_slice(&created.body)?;
    match issue(&admin, &name, expires).await? {
        Ok(key) => {
            shown["key"] = key;
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(refused) => {
            eprintln!("consumer {name:?} was created, but no key could be issued:");
            Ok(refused.print())
        }
    }
}
