//! A Spin runtime config file (`--runtime-config-file`): where key-value
//! stores keep their data, and which root certificates outbound `https`
//! checks (see [`crate::capabilities::tls`]).
//!
//! The file format is Spin's: one `[key_value_store.<label>]` table per store
//! label that does not use the embedded default store, and `[[client_tls]]`
//! tables.
//!
//! ```toml
//! # Every node that points `default` at the same Redis shares its data.
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379/0"
//!
//! # An embedded store in its own file (relative to this file's folder).
//! [key_value_store.cache]
//! type = "spin"
//! path = "cache.redb"
//! ```
//!
//! Labels the file does not list stay on the embedded store in the state
//! directory. Unlike Spin, a `type = "spin"` store without `path` is that
//! persistent embedded store rather than an in-memory one. Anything else in
//! the file (other top-level tables, other store types, unknown fields,
//! client certificates) is a startup error naming the file and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::capabilities::tls::{ClientIdentity, ClientTls};

/// Where one store label keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A Redis server shared by every node configured with the same URL.
    Redis {
        /// `redis://[user:password@]host[:port][/db]`
        url: String,
    },
    /// The embedded store: in its own file at `path`, or, without `path`,
    /// the default database in the state directory.
    Embedded {
        /// The database file, resolved against the runtime config file's folder.
        path: Option<PathBuf>,
    },
}

/// What a runtime config file configures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Store label → where it keeps its data.
    pub key_value_stores: BTreeMap<String, StoreConfig>,
    /// Outbound TLS settings for some components and hosts, in file order.
    pub client_tls: Vec<ClientTls>,
}

/// A problem with a runtime config file: the file, the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfigError {
    /// The file.
    pub file: PathBuf,
    /// Dotted path of the offending field; empty for the file as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuntimeConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "runtime config file {}", self.file.display())?;
        if !self.field.is_empty() {
            write!(f, ": `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RuntimeConfigError {}

/// Store types a `[key_value_store.<label>]` table may name.
const STORE_TYPES: &str = "`redis` or `spin`";

impl RuntimeConfig {
    /// Reads and validates the runtime config file at `file`.
    pub fn load(file: &Path) -> Result<Self, RuntimeConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| RuntimeConfigError {
            file: file.to_owned(),
            field: String::new(),
            message: format!("cannot be read: {e}"),
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|(field, message)| RuntimeConfigError {
            file: file.to_owned(),
            field,
            message,
        })
    }

    /// Parses the text of a runtime config file; relative paths are resolved
    /// against `base`. Errors are `(field, message)`.
    fn parse(text: &str, base: &Path) -> Result<Self, (String, String)> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| (String::new(), format!("is not valid TOML: {e}")))?;
        let mut config = RuntimeConfig::default();
        for (key, value) in &table {
            if key == "client_tls" {
                let tables = value.as_array().ok_or_else(|| {
                    (
                        key.clone(),
                        "must be an array of tables (`[[client_tls]]`)".to_owned(),
                    )
                })?;
                for (index, entry) in tables.iter().enumerate() {
                    let field = format!("client_tls[{index}]");
                    config
                        .client_tls
                        .push(parse_client_tls(&field, entry, base)?);
                }
                continue;
            }
            if key != "key_value_store" {
                return Err((
                    key.clone(),
                    "is not supported by upshift (it reads `[key_value_store.<label>]` \
                     and `[[client_tls]]` tables)"
                        .to_owned(),
                ));
            }
            let stores = value
                .as_table()
                .ok_or_else(|| (key.clone(), "must be a table of store labels".to_owned()))?;
            for (label, store) in stores {
                let field = format!("key_value_store.{label}");
                let store = parse_store(&field, store, base)?;
                config.key_value_stores.insert(label.clone(), store);
            }
        }
        Ok(config)
    }
}

/// One `[[client_tls]]` table.
fn parse_client_tls(
    field: &str,
    value: &toml::Value,
    base: &Path,
) -> Result<ClientTls, (String, String)> {
    let table = value
        .as_table()
        .ok_or_else(|| (field.to_owned(), "must be a table".to_owned()))?;
    const FIELDS: [&str; 6] = [
        "component_ids",
        "hosts",
        "ca_use_webpki_roots",
        "ca_roots_file",
        "client_cert_file",
        "client_private_key_file",
    ];
    if let Some(key) = table.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let message = format!(
            "unknown field (expected {})",
            FIELDS.map(|f| format!("`{f}`")).join(", ")
        );
        return Err((format!("{field}.{key}"), message));
    }
    let strings = |name: &str| -> Result<Vec<String>, (String, String)> {
        let wrong = || {
            (
                format!("{field}.{name}"),
                "must be a list of strings".to_owned(),
            )
        };
        let list = table
            .get(name)
            .ok_or_else(|| (format!("{field}.{name}"), "is missing".to_owned()))?
            .as_array()
            .ok_or_else(wrong)?;
        let list: Vec<String> = list
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err((format!("{field}.{name}"), "must not be empty".to_owned()));
        }
        Ok(list)
    };
    let use_webpki_roots = match table.get("ca_use_webpki_roots") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => {
            return Err((
                format!("{field}.ca_use_webpki_roots"),
                "must be true or false".to_owned(),
            ));
        }
    };
    let path = |name: &str| match table.get(name) {
        None => Ok(None),
        Some(toml::Value::String(path)) if !path.is_empty() => Ok(Some(base.join(path))),
        Some(_) => Err((format!("{field}.{name}"), "must be a file path".to_owned())),
    };
    let client_identity = match (path("client_cert_file")?, path("client_private_key_file")?) {
        (None, None) => None,
        (Some(cert_file), Some(private_key_file)) => Some(ClientIdentity {
            cert_file,
            private_key_file,
        }),
        (Some(_), None) => {
            return Err((
                format!("{field}.client_private_key_file"),
                "is missing: a client certificate needs its key".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                format!("{field}.client_cert_file"),
                "is missing: a client key needs its certificate".to_owned(),
            ));
        }
    };
    Ok(ClientTls {
        component_ids: strings("component_ids")?,
        hosts: strings("hosts")?,
        use_webpki_roots,
        ca_roots_file: path("ca_roots_file")?,
        client_identity,
    })
}

/// One `[key_value_store.<label>]` table.
fn parse_store(
    field: &str,
    value: &toml::Value,
    base: &Path,
) -> Result<StoreConfig, (String, String)> {
    let table = value
        .as_table()
        .ok_or_else(|| (field.to_owned(), "must be a table".to_owned()))?;
    let string = |name: &str| -> Result<Option<&str>, (String, String)> {
        match table.get(name) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err((
                format!("{field}.{name}"),
                format!("must be a string, found {}", other.type_str()),
            )),
        }
    };
    let kind = string("type")?.ok_or_else(|| {
        (
            format!("{field}.type"),
            format!("is missing (expected {STORE_TYPES})"),
        )
    })?;
    let allowed: &[&str] = match kind {
        "redis" => &["type", "url"],
        "spin" => &["type", "path"],
        other => {
            return Err((
                format!("{field}.type"),
                format!("unknown store type `{other}` (expected {STORE_TYPES})"),
            ));
        }
    };
    if let Some(unknown) = table.keys().find(|k| !allowed.contains(&k.as_str())) {
        let expected: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
        return Err((
            format!("{field}.{unknown}"),
            format!(
                "unknown field for a `{kind}` store (expected {})",
                expected.join(", ")
            ),
        ));
    }
    match kind {
        "redis" => {
            let url = string("url")?.ok_or_else(|| {
                (
                    format!("{field}.url"),
                    "is missing (e.g. `redis://127.0.0.1:6379`)".to_owned(),
                )
            })?;
            crate::capabilities::kv::RedisStore::check_url(url)
                .map_err(|message| (format!("{field}.url"), message))?;
            Ok(StoreConfig::Redis {
                url: url.to_owned(),
            })
        }
        _ => {
            let path = string("path")?.map(|p| base.join(p));
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err((format!("{field}.path"), "must not be empty".to_owned()));
            }
            Ok(StoreConfig::Embedded { path })
        }
    }
}

#[cfg(test)]
mod tests;
