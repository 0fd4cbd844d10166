//! Inbound TLS: the listener's certificates, chosen per connection by the
//! name the client asks for (SNI), and loaded again when their files
//! change, without a restart. HTTP/2 and HTTP/1.1 are offered by ALPN.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the certificate files are looked at.
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// A certificate and key pair that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file cannot be read or holds no usable PEM.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key does not fit its certificate, or is of no supported type.
    #[error("{cert} with {key}: {source}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// A certificate chain with its key, and its leaf for name checks.
struct Loaded {
    key: Arc<CertifiedKey>,
    leaf: CertificateDer<'static>,
}

/// The listener's certificates: `(certificate chain file, key file)` pairs.
pub struct ServerCerts {
    files: Vec<(PathBuf, PathBuf)>,
    loaded: RwLock<Vec<Arc<Loaded>>>,
}

impl std::fmt::Debug for ServerCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCerts")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerCerts {
    /// Loads every pair; the first is served when no other fits the name
    /// a client asks for.
    pub fn load(files: Vec<(PathBuf, PathBuf)>) -> Result<Arc<Self>, CertError> {
        let loaded = load_all(&files)?;
        Ok(Arc::new(Self {
            files,
            loaded: RwLock::new(loaded),
        }))
    }

    /// The listener's TLS settings over these certificates.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Loads the files again whenever one changes, on a thread of its own,
    /// until the process ends; a pair that cannot be loaded leaves the
    /// previous ones in use.
    pub fn reload_on_change(self: &Arc<Self>) {
        let certs = self.clone();
        let spawned = std::thread::Builder::new()
            .name("tls-reload".into())
            .spawn(move || {
                let mut seen = certs.modified();
                loop {
                    std::thread::sleep(RELOAD_POLL);
                    let now = certs.modified();
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    match load_all(&certs.files) {
                        Ok(loaded) => {
                            *certs.loaded.write().unwrap_or_else(|e| e.into_inner()) = loaded;
                            tracing::info!("TLS certificates reloaded");
                        }
                        Err(error) => tracing::error!(
                            "TLS certificates not reloaded, the previous ones stay: {error}"
                        ),
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!("TLS certificates will not be reloaded: {error}");
        }
    }

    fn modified(&self) -> Vec<Option<SystemTime>> {
        self.files
            .iter()
            .flat_map(|(cert, key)| [cert, key])
            .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
            .collect()
    }
}

impl ResolvesServerCert for ServerCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        let asked = hello
            .server_name()
            .and_then(|name| ServerName::try_from(name).ok());
        let fits = |pair: &&Arc<Loaded>| {
            asked.as_ref().is_some_and(|name| {
                webpki::EndEntityCert::try_from(&pair.leaf)
                    .is_ok_and(|leaf| leaf.verify_is_valid_for_subject_name(name).is_ok())
            })
        };
        loaded
            .iter()
            .find(fits)
            .or(loaded.first())
            .map(|pair| pair.key.clone())
    }
}

fn load_all(files: &[(PathBuf, PathBuf)]) -> Result<Vec<Arc<Loaded>>, CertError> {
    files
        .iter()
        .map(|(cert, key)| load_pair(cert, key).map(Arc::new))
        .collect()
}

fn load_pair(cert: &PathBuf, key: &PathBuf) -> Result<Loaded, CertError> {
    let file_error = |path: &PathBuf, message: String| CertError::File {
        path: path.clone(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| file_error(cert, e.to_string()))?;
    let leaf = chain
        .first()
        .cloned()
        .ok_or_else(|| file_error(cert, "no certificate in the file".into()))?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e.to_string()))?;
    let pair_error = |source| CertError::Pair {
        cert: cert.clone(),
        key: key.clone(),
        source,
    };
    let signing = ring::sign::any_supported_type(&private).map_err(pair_error)?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(pair_error)?;
    Ok(Loaded {
        key: Arc::new(certified),
        leaf,
    })
}
