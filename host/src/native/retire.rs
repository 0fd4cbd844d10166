//! Which versions' WebSocket connections to drain. While connections are
//! open, every [`INTERVAL`] the versions they went to are checked against
//! the config in force and their services' rollout states in the shared
//! store, so that a rollback or a blue/green switch made through any node
//! drains every node's connections. A version that takes no new requests
//! is retired ([`WebSockets::retire`]): its connections close with `1001`
//! once the drain grace has passed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use upshift_model::Config;
use upshift_model::keys;
use upshift_model::rollout::{RolloutState, takes_new_requests};

use super::websocket::{VersionName, WebSockets};
use super::{BUCKET, config_in_force, parse_version};
use crate::capabilities::kv::{KvBackend, blocking};

/// A config version in force and its document, read.
type InForce = Arc<(u64, Config)>;

/// How often the versions of open connections are checked.
const INTERVAL: Duration = Duration::from_millis(250);

/// Checks the versions of `websockets`' open connections against what
/// `kv` holds in force, until the process ends.
pub async fn watch(websockets: WebSockets, kv: Arc<dyn KvBackend>) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut config: Option<InForce> = None;
    loop {
        ticker.tick().await;
        let open = websockets.versions();
        if open.is_empty() {
            continue;
        }
        let (kv, known) = (kv.clone(), config.clone());
        let checked = blocking(move || Ok(check(&*kv, known, &open))).await;
        match checked.map_err(anyhow::Error::from).and_then(|c| c) {
            Ok((in_force, retired)) => {
                config = Some(in_force);
                for version in &retired {
                    websockets.retire(version);
                }
            }
            Err(error) => tracing::debug!("cannot check the versions of WebSockets: {error:#}"),
        }
    }
}

/// The config in force (`known` again if its version did not change), and
/// the versions in `open` that take no new requests under it.
fn check(
    kv: &dyn KvBackend,
    known: Option<InForce>,
    open: &[VersionName],
) -> anyhow::Result<(InForce, Vec<VersionName>)> {
    let version = parse_version(kv.get(BUCKET, keys::CURRENT)?.as_deref())?;
    let in_force = match known {
        Some(known) if known.0 == version => known,
        _ => {
            let (version, document) = config_in_force(kv)?;
            let config = Config::from_canonical_json(&document)
                .with_context(|| format!("config version {version} is not readable"))?;
            Arc::new((version, config))
        }
    };
    let services: BTreeSet<&str> = open.iter().map(|(service, _)| &**service).collect();
    let services: Vec<&str> = services.into_iter().collect();
    let state_keys: Vec<String> = services.iter().map(|s| keys::rollout_state(s)).collect();
    let states = kv.get_many(BUCKET, &state_keys)?;
    let rollout = |service: &str| -> Option<RolloutState> {
        let at = services.iter().position(|s| *s == service)?;
        serde_json::from_slice(states.get(at)?.as_deref()?).ok()
    };
    let retired = open
        .iter()
        .filter(|(service, version)| {
            !takes_new_requests(&in_force.1, rollout(service).as_ref(), service, version)
        })
        .cloned()
        .collect();
    Ok((in_force, retired))
}
