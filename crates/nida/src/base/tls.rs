//! TLS: the server side of SIP over TLS from the configured certificate
//! and key, the client side (connections nida opens itself, SIP or HTTP)
//! from the configured or the system's trust roots, and SRTP master keys
//! for calls over TLS.

use crate::config::TlsConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Debian's bundle of trusted roots.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a TLS side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate file could not be read.
    #[error("cannot read certificates from {}: {reason}", path.display())]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A certificate file holds no certificate.
    #[error("no certificate in {}", .0.display())]
    NoCertificate(PathBuf),
    /// The private key could not be read.
    #[error("cannot read the private key {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The certificate and the key are not a pair.
    #[error("certificate {} and key {} do not go together: {reason}", certificate.display(), key.display())]
    Mismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: rustls::Error,
    },
    /// rustls refused the protocol settings.
    #[error("TLS settings: {0}")]
    Settings(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificates {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// The TLS server side: the certificate chain and key of `cfg`.
pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let chain = certificates(&cfg.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| TlsError::Key {
        path: cfg.key.clone(),
        reason: e.to_string(),
    })?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|reason| TlsError::Mismatch {
            certificate: cfg.certificate.clone(),
            key: cfg.key.clone(),
            reason,
        })?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// A client configuration verifying peers against `ca` (an error if it
/// cannot be read) or else the system's roots (none if the system has no
/// bundle: then every connection fails its check).
pub fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let certs = match ca {
        Some(path) => certificates(path)?,
        None => certificates(Path::new(SYSTEM_ROOTS)).unwrap_or_default(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        // A bundle may hold roots rustls cannot use: the rest still count.
        let _ = roots.add(cert);
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The TLS client side of SIP, verifying peers as [`client_config`] does
/// with `cfg.ca`.
pub fn connector(cfg: &TlsConfig) -> Result<TlsConnector, TlsError> {
    Ok(TlsConnector::from(Arc::new(client_config(
        cfg.ca.as_deref(),
    )?)))
}

/// A fresh SRTP master key and salt from the OS CSPRNG.
pub fn srtp_key() -> [u8; 30] {
    nida_sip::rng::os_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel)
    }

    fn cfg(cert: &str, key: &str) -> TlsConfig {
        TlsConfig {
            addr: Some("127.0.0.1:5061".parse().unwrap()),
            certificate: repo(cert),
            key: repo(key),
            ca: Some(repo("tests/tls/test-ca.crt")),
            https_addr: None,
        }
    }

    #[test]
    fn the_test_certificate_loads_and_bad_files_say_which() {
        let good = cfg("tests/tls/nida-test.crt", "tests/tls/nida-test.key");
        assert!(acceptor(&good).is_ok());
        assert!(connector(&good).is_ok());
        let system = TlsConfig {
            ca: None,
            ..good.clone()
        };
        assert!(
            connector(&system).is_ok(),
            "with or without a system bundle"
        );
        let missing = TlsConfig {
            ca: Some(repo("tests/tls/none-ca.crt")),
            ..good.clone()
        };
        assert!(connector(&missing)
            .err()
            .unwrap()
            .to_string()
            .contains("none-ca.crt"));
        let err = acceptor(&cfg("tests/tls/none.crt", "tests/tls/nida-test.key"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("none.crt"), "{err}");
        // A key file given as the certificate holds no certificate.
        let err = acceptor(&cfg("tests/tls/nida-test.key", "tests/tls/nida-test.key"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no certificate"), "{err}");
        let err = acceptor(&cfg("tests/tls/nida-test.crt", "tests/tls/nida-test.crt"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("private key"), "{err}");
    }

    #[test]
    fn srtp_keys_are_fresh() {
        let (a, b) = (srtp_key(), srtp_key());
        assert_ne!(a, b);
    }
}
