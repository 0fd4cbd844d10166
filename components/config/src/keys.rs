//! Key layout of the config documents in the key-value store.
//!
//! Versions are immutable once written; `config/current` names the version
//! in force. A new version is allocated with an atomic increment of
//! `config/seq`, written, then made current.

/// Key holding the number of the version in force, as decimal text.
pub const CURRENT: &str = "config/current";

/// Counter from which new version numbers are allocated.
pub const SEQUENCE: &str = "config/seq";

/// Key holding the stored document of version `n`.
pub fn version(n: u64) -> String {
    format!("config/versions/{n}")
}
