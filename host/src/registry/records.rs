//! What the registry keeps in the key-value store: which pushed version of
//! each component is in force, who pushed each version, and every
//! transition (see `upshift_model::keys` for the key layout).

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use upshift_model::keys;

use crate::capabilities::kv::KvBackend;
use sha2::{Digest as _, Sha256};

/// The SHA-256 of `bytes`, in lower-case hex: a pushed version's name.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The bytes of pushed version `sha256` of component `name`, read from
/// `kv` and checked against their digest.
pub fn read_blob(kv: &dyn KvBackend, name: &str, sha256: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = kv
        .get("default", &keys::component_blob(sha256))?
        .with_context(|| format!("version {sha256} of `{name}` is missing from the store"))?;
    anyhow::ensure!(
        sha256_hex(&bytes) == sha256,
        "the stored bytes of version {sha256} of `{name}` do not match their digest"
    );
    Ok(bytes)
}

/// Whether `text` can name a pushed version (64 lower-case hex digits).
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The component versions in force on every node sharing the store; a
/// component that was never upgraded is absent and runs the manifest's
/// build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InForce(pub BTreeMap<String, Slot>);

impl InForce {
    /// The pushed version of `name` in force (`None`: the manifest's build).
    pub fn current(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.current.as_deref()
    }

    /// The component whose canary runs, and the canary's version.
    pub fn canary(&self) -> Option<(&str, &str)> {
        self.0
            .iter()
            .find_map(|(name, slot)| Some((name.as_str(), slot.canary.as_deref()?)))
    }

    /// Parses the stored document; an absent key is the empty document.
    pub fn parse(bytes: Option<&[u8]>) -> serde_json::Result<Self> {
        bytes.map_or(Ok(Self::default()), serde_json::from_slice)
    }
}

/// One component's versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The version in force (`None`: the manifest's build).
    pub current: Option<String>,
    /// The versions in force before it, oldest first: what `rollback`
    /// returns to.
    #[serde(default)]
    pub previous: Vec<Option<String>>,
    /// Every version pushed and admitted, oldest first: each node compiles
    /// them ahead of an upgrade.
    #[serde(default)]
    pub pushed: Vec<String>,
    /// The pushed version a canary sends a share of requests to, while
    /// one runs (its steps are under `components/{name}/canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
}

/// Who pushed a version, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    /// SHA-256 of the component's bytes.
    pub sha256: String,
    /// Size of the component, in bytes.
    pub size: u64,
    /// Who pushed it.
    pub by: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Why.
    pub reason: String,
}

/// What happened to a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A version was pushed and admitted (not in force yet).
    Push,
    /// A version was put in force.
    Upgrade,
    /// The version in force before the current one came back, or a
    /// canary was stopped.
    Rollback,
    /// A canary started.
    Canary,
    /// A canary moved to its next step.
    Step,
    /// A canary's version was put in force.
    Promote,
}

/// One entry of a component's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Position in the history, from 1.
    pub n: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    pub action: Action,
    /// The version in force before (`None`: the manifest's build).
    pub from: Option<String>,
    /// The version it concerns: pushed, or in force after.
    pub to: Option<String>,
    /// Who did it.
    pub by: String,
    /// Why.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_named_by_their_digest() {
        let sha = sha256_hex(b"abc");
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256(&sha));
        assert!(!is_sha256(&sha.to_uppercase()));
        assert!(!is_sha256("ba7816bf"));
    }

    #[test]
    fn an_absent_document_puts_no_pushed_version_in_force() {
        let none = InForce::parse(None).unwrap();
        assert_eq!(none.current("router"), None);
        let stored = br#"{"router":{"current":"aa","previous":[null],"pushed":["aa"]}}"#;
        let in_force = InForce::parse(Some(stored)).unwrap();
        assert_eq!(in_force.current("router"), Some("aa"));
        assert_eq!(in_force.0["router"].previous, vec![None]);
        assert_eq!(in_force.current("auth"), None);
    }
}
