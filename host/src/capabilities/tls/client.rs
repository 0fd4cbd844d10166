//! Outbound TLS: the root certificates an `https` upstream's certificate is
//! checked against. By default these are the Mozilla roots (webpki-roots); a
//! runtime config file's `[[client_tls]]` tables (Spin's format) set other
//! roots for some components calling some hosts, e.g. a private CA:
//!
//! ```toml
//! [[client_tls]]
//! component_ids = ["gateway"]
//! hosts = ["payments.internal:8443"]   # port 443 when left out
//! ca_roots_file = "certs/internal-ca.pem"
//! ca_use_webpki_roots = false          # default: true
//! client_cert_file = "certs/gateway.pem"        # mutual TLS: the chain
//! client_private_key_file = "certs/gateway.key" # and its key (PKCS#8, PKCS#1 or SEC1)
//! ```
//!
//! Each distinct setting is built once and shared by the connection pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// One `[[client_tls]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// Components it applies to.
    pub component_ids: Vec<String>,
    /// `host[:port]` authorities it applies to.
    pub hosts: Vec<String>,
    /// Whether the Mozilla roots are trusted too.
    pub use_webpki_roots: bool,
    /// PEM file of further root certificates (resolved against the runtime
    /// config file's folder).
    pub ca_roots_file: Option<PathBuf>,
    /// The client certificate chain and private key (PEM files) presented
    /// to upstreams that ask for one (mutual TLS).
    pub client_identity: Option<ClientIdentity>,
}

/// A client certificate for mutual TLS: PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The leaf's private key.
    pub private_key_file: PathBuf,
}

/// Root certificates that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM file cannot be read or parsed.
    #[error("client_tls[{index}].ca_roots_file {path}: {message}")]
    Roots {
        /// Position of the `[[client_tls]]` table.
        index: usize,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The client certificate or its key cannot be read or parsed.
    #[error("client_tls[{index}] client certificate {path}: {message}")]
    Identity {
        /// Position of the `[[client_tls]]` table.
        index: usize,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The TLS library refused the settings.
    #[error("client_tls[{index}]: {source}")]
    Settings {
        /// Position of the `[[client_tls]]` table.
        index: usize,
        /// Why.
        source: rustls::Error,
    },
}

/// The TLS client settings of every component and host, built once.
pub struct TlsConfigs {
    /// Settings by id; id 0 is the default (Mozilla roots).
    configs: Vec<Arc<ClientConfig>>,
    /// `(component, host, port)` → settings id.
    rules: HashMap<(String, String, u16), usize>,
}

impl TlsConfigs {
    /// Builds the default settings and those of `entries`; a later entry
    /// naming the same component and host wins.
    pub fn new(entries: &[ClientTls]) -> Result<Self, TlsError> {
        let mut configs = vec![client_config(webpki_roots(), None, 0)?];
        let mut rules = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let mut roots = if entry.use_webpki_roots {
                webpki_roots()
            } else {
                RootCertStore::empty()
            };
            if let Some(path) = &entry.ca_roots_file {
                add_pem_roots(&mut roots, path, index)?;
            }
            configs.push(client_config(roots, entry.client_identity.as_ref(), index)?);
            let id = configs.len() - 1;
            for component in &entry.component_ids {
                for host in &entry.hosts {
                    let (host, port) = split_authority(host);
                    rules.insert((component.clone(), host.to_owned(), port), id);
                }
            }
        }
        Ok(Self { configs, rules })
    }

    /// The id of the settings for `component` calling `host:port` (0: the
    /// default, the Mozilla roots).
    pub fn lookup(&self, component: &str, host: &str, port: u16) -> usize {
        if self.rules.is_empty() {
            return 0;
        }
        self.rules
            .get(&(component.to_owned(), host.to_owned(), port))
            .copied()
            .unwrap_or(0)
    }

    /// Every setting, in the order of their ids.
    pub fn all(&self) -> &[Arc<ClientConfig>] {
        &self.configs
    }
}

/// `host` and port of `host[:port]` (443 when left out; IPv6 in brackets).
fn split_authority(authority: &str) -> (&str, u16) {
    if let Some((host, port)) = authority.rsplit_once(':')
        && !host.ends_with(':')
        && let Ok(port) = port.parse()
    {
        return (host.trim_start_matches('[').trim_end_matches(']'), port);
    }
    (authority.trim_start_matches('[').trim_end_matches(']'), 443)
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn add_pem_roots(roots: &mut RootCertStore, path: &Path, index: usize) -> Result<(), TlsError> {
    let failed = |message: String| TlsError::Roots {
        index,
        path: path.to_owned(),
        message,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if certificates.is_empty() {
        return Err(failed("holds no PEM certificate".to_owned()));
    }
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|e| failed(format!("not a usable root certificate: {e}")))?;
    }
    Ok(())
}

fn client_config(
    roots: RootCertStore,
    identity: Option<&ClientIdentity>,
    index: usize,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Settings { index, source })?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let failed = |path: &Path, message: String| TlsError::Identity {
                index,
                path: path.to_owned(),
                message,
            };
            let chain = CertificateDer::pem_file_iter(&identity.cert_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| failed(&identity.cert_file, e.to_string()))?;
            if chain.is_empty() {
                return Err(failed(
                    &identity.cert_file,
                    "holds no PEM certificate".to_owned(),
                ));
            }
            let key = PrivateKeyDer::from_pem_file(&identity.private_key_file)
                .map_err(|e| failed(&identity.private_key_file, e.to_string()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                failed(
                    &identity.private_key_file,
                    format!("does not fit the certificate: {e}"),
                )
            })?
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hosts: &[&str], ca: Option<PathBuf>, webpki: bool) -> ClientTls {
        ClientTls {
            component_ids: vec!["gateway".into()],
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            use_webpki_roots: webpki,
            ca_roots_file: ca,
            client_identity: None,
        }
    }

    fn ca_file(dir: &Path) -> PathBuf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        path
    }

    #[test]
    fn entries_apply_to_their_components_and_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let configs = TlsConfigs::new(&[
            entry(
                &["payments.internal:8443", "ledger"],
                Some(ca_file(dir.path())),
                false,
            ),
            entry(&["[::1]:9443"], None, true),
        ])
        .unwrap();
        assert_eq!(configs.lookup("gateway", "payments.internal", 8443), 1);
        assert_eq!(configs.lookup("gateway", "ledger", 443), 1);
        assert_eq!(configs.lookup("gateway", "::1", 9443), 2);
        // Another port, host or component keeps the default roots.
        assert_eq!(configs.lookup("gateway", "payments.internal", 443), 0);
        assert_eq!(configs.lookup("gateway", "api.openai.com", 443), 0);
        assert_eq!(configs.lookup("admin", "ledger", 443), 0);
    }

    #[test]
    fn unreadable_or_empty_root_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = TlsConfigs::new(&[entry(&["a"], Some(missing), true)])
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("client_tls[0].ca_roots_file"), "{error}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let error = TlsConfigs::new(&[entry(&["a"], Some(empty), true)])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("holds no PEM certificate"), "{error}");
    }
}
