//! `upshift key`: consumers' API keys. A key is made here, with the prefix
//! `upk_` that secret scanners can look for, and shown once; the gateway
//! is sent (and keeps) only its digest.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::json;
use upshift_model::rollout::parse_duration;
use upshift_model::token::{IssuedKey, digest};

use crate::cli::AdminArgs;
use crate::cli::admin_client::{AdminClient, AdminResponse};

/// `upshift key` arguments.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeyAction,
}

/// `upshift key` actions.
#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Print a new random key and its digest (for a consumer's `api_keys`
    /// in the config), as JSON.
    New,
    /// Issue a new key to a consumer of the config in force, through the
    /// admin API; it works on every node at once.
    Issue {
        /// The consumer.
        consumer: String,
        /// How long the key works (`90d`, `12h`, `30m`); without it, until
        /// revoked.
        #[arg(long, value_parser = duration)]
        expires: Option<std::time::Duration>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List the keys issued to a consumer (ids and expiry, no secrets).
    List {
        /// The consumer.
        consumer: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke a key issued to a consumer: it stops working on every node at
    /// once.
    Revoke {
        /// The consumer.
        consumer: String,
        /// The key's id (`upshift key list`).
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

pub(crate) fn duration(text: &str) -> Result<std::time::Duration, String> {
    parse_duration(text).ok_or_else(|| format!("{text:?} is not a duration like 90d, 12h or 30m"))
}

/// `upshift key …`.
pub async fn run(args: KeyArgs) -> anyhow::Result<ExitCode> {
    let response = match args.action {
        KeyAction::New => {
            let key = new_key();
            let made = json!({
                "key": key,
                "digest": digest(&key),
                "note": "the key is shown once: give it to its consumer, and keep only the digest in its api_keys",
            });
            println!("{}", serde_json::to_string_pretty(&made)?);
            return Ok(ExitCode::SUCCESS);
        }
        KeyAction::Issue {
            consumer,
            expires,
            admin,
        } => match issue(&client(&admin), &consumer, expires).await? {
            Ok(issued) => {
                println!("{}", serde_json::to_string_pretty(&issued)?);
                return Ok(ExitCode::SUCCESS);
            }
            Err(refused) => refused,
        },
        KeyAction::List { consumer, admin } => {
            client(&admin)
                .send(
                    Method::GET,
                    &format!("/admin/consumers/{consumer}/keys"),
                    None,
                )
                .await?
        }
        KeyAction::Revoke {
            consumer,
            id,
            admin,
        } => {
            client(&admin)
                .send(
                    Method::DELETE,
                    &format!("/admin/consumers/{consumer}/keys/{id}"),
                    None,
                )
                .await?
        }
    };
    Ok(response.print())
}

/// Makes a key and issues it to `consumer` through `admin`, for `expires`
/// (or until revoked): the key as JSON to show once, or the admin API's
/// refusal.
pub async fn issue(
    admin: &AdminClient,
    consumer: &str,
    expires: Option<std::time::Duration>,
) -> anyhow::Result<Result<serde_json::Value, AdminResponse>> {
    let key = new_key();
    let key_digest = digest(&key);
    let expires_at_ms = expires.map(|after| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from((now + after).as_millis()).unwrap_or(u64::MAX)
    });
    let body = json!({ "digest": key_digest, "expires_at_ms": expires_at_ms });
    let response = admin
        .send(
            Method::POST,
            &format!("/admin/consumers/{consumer}/keys"),
            Some(("application/json", Bytes::from(body.to_string()))),
        )
        .await?;
    if !response.status.is_success() {
        return Ok(Err(response));
    }
    Ok(Ok(json!({
        "key": key,
        "id": IssuedKey::id_of(&key_digest),
        "consumer": consumer,
        "expires_at_ms": expires_at_ms,
        "note": "the key is shown once: the gateway keeps only its digest",
    })))
}

pub(crate) fn client(admin: &AdminArgs) -> AdminClient {
    AdminClient::new(&admin.admin, &admin.token)
}

/// A new random key: `upk_` and 64 hex digits (244 random bits).
fn new_key() -> String {
    format!(
        "upk_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
