//! SIP over TLS: the server side from the configured certificate and key,
//! the client side (connections nida opens itself) from the configured or
//! the system's trust roots, and SRTP master keys for calls over TLS.

use crate::config::TlsConfig;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Debian's bundle of trusted roots.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

/// The TLS server side: the certificate chain and key of `cfg`.
pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, String> {
    let chain = certificates(&cfg.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .map_err(|e| format!("cannot read the private key {}: {e}", cfg.key.display()))?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "certificate {} and key {} do not go together: {e}",
                cfg.certificate.display(),
                cfg.key.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The TLS client side, verifying peers against `cfg.ca` (an error if it
/// cannot be read) or else the system's roots (none if the system has no
/// bundle: then every connection nida opens fails its check).
pub fn connector(cfg: &TlsConfig) -> Result<TlsConnector, String> {
    let certs = match &cfg.ca {
        Some(path) => certificates(path)?,
        None => certificates(Path::new(SYSTEM_ROOTS)).unwrap_or_default(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        // A bundle may hold roots rustls cannot use: the rest still count.
        let _ = roots.add(cert);
    }
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(client)))
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
            addr: "127.0.0.1:5061".parse().unwrap(),
            certificate: repo(cert),
            key: repo(key),
            ca: Some(repo("tests/tls/test-ca.crt")),
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
        assert!(connector(&missing).err().unwrap().contains("none-ca.crt"));
        let err = acceptor(&cfg("tests/tls/none.crt", "tests/tls/nida-test.key"))
            .err()
            .unwrap();
        assert!(err.contains("none.crt"), "{err}");
        // A key file given as the certificate holds no certificate.
        let err = acceptor(&cfg("tests/tls/nida-test.key", "tests/tls/nida-test.key"))
            .err()
            .unwrap();
        assert!(err.contains("no certificate"), "{err}");
        let err = acceptor(&cfg("tests/tls/nida-test.crt", "tests/tls/nida-test.crt"))
            .err()
            .unwrap();
        assert!(err.contains("private key"), "{err}");
    }

    #[test]
    fn srtp_keys_are_fresh() {
        let (a, b) = (srtp_key(), srtp_key());
        assert_ne!(a, b);
    }
}
