//! The HTTP client of lookup backends and webhooks: one reqwest client
//! (rustls on ring, the provider nida's SIP TLS already uses) shared by
//! every request, so connections to a backend are reused, `https://`
//! backends are verified against the configured CA or the system's roots,
//! and every request has connect and total timeouts. Bodies are read up
//! to a bound and decoded leniently: no response can panic a caller.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// How much of a response body is read.
pub const BODY_LIMIT: usize = 1 << 20;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per backend.
const IDLE_PER_HOST: usize = 8;

static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TLS trust roots could not be loaded.
    #[error("{0}")]
    Tls(#[from] crate::base::tls::TlsError),
    /// The client could not be built.
    #[error("HTTP client: {0}")]
    Build(reqwest::Error),
    /// The request failed: bad URL, connect, TLS, timeout or a broken body.
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    /// The method is not a valid HTTP method.
    #[error("bad HTTP method {0}")]
    Method(String),
    /// The body was larger than [`BODY_LIMIT`].
    #[error("response body over {BODY_LIMIT} bytes")]
    TooLarge,
}

fn build(ca: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    let tls = crate::base::tls::client_config(ca)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(IDLE_PER_HOST)
        .user_agent(concat!("nida/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(HttpError::Build)
}

/// Sets up the shared client, trusting only `ca` (the TLS section's CA
/// file) when given, else the system's roots. Called once at start; later
/// calls keep the first client.
pub fn init(ca: Option<&Path>) -> Result<(), HttpError> {
    let client = build(ca)?;
    let _ = CLIENT.set(client);
    Ok(())
}

fn client() -> Result<&'static reqwest::Client, HttpError> {
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = build(None)?;
    Ok(CLIENT.get_or_init(|| c))
}

/// Sends one request with an optional bearer token and JSON body; returns
/// the status and the body (lossy UTF-8, at most [`BODY_LIMIT`] bytes).
pub async fn request(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    json_body: Option<&str>,
) -> Result<(u16, String), HttpError> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| HttpError::Method(method.to_string()))?;
    let mut req = client()?
        .request(method, url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(b) = json_body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(b.to_string());
    }
    let mut resp = req.send().await?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves each accepted connection `answer` after reading its head.
    async fn serve(answer: Vec<u8>) -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(&answer).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_chunked_body_split_inside_a_character_is_joined_whole() {
        // "é" (C3 A9) split across two chunks, then "ü" cut off by the end.
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
            3\r\n{\"\xC3\r\n4\r\n\xA9\":1\r\n2\r\n}\xC3\r\n0\r\n\r\n"
            .to_vec();
        let addr = serve(answer).await;
        let (status, body) = request("GET", &format!("http://{addr}/x"), None, None)
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, "{\"é\":1}\u{FFFD}");
    }

    #[tokio::test]
    async fn a_garbled_or_endless_response_is_an_error_not_a_panic() {
        let garbage = serve(b"\x00\xFF not http at all\r\n\r\n".to_vec()).await;
        let r = request("GET", &format!("http://{garbage}/"), None, None).await;
        assert!(matches!(r, Err(HttpError::Request(_))), "{r:?}");
        let mut big = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', BODY_LIMIT + 10));
        let big = serve(big).await;
        let r = request("GET", &format!("http://{big}/"), None, None).await;
        assert!(matches!(r, Err(HttpError::TooLarge)), "{r:?}");
        let r = request("BAD METHOD", "http://127.0.0.1:1/", None, None).await;
        assert!(matches!(r, Err(HttpError::Method(_))), "{r:?}");
    }

    fn repo(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel)
    }

    #[tokio::test]
    async fn an_https_backend_is_verified_against_the_configured_ca() {
        let cfg = crate::config::TlsConfig {
            addr: None,
            certificate: repo("tests/tls/nida-test.crt"),
            key: repo("tests/tls/nida-test.key"),
            ca: Some(repo("tests/tls/test-ca.crt")),
            https_addr: None,
        };
        let acceptor = crate::base::tls::acceptor(&cfg).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(s).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let body = "{\"status\":\"approved\"}";
                    let _ = s
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                    let _ = s.shutdown().await;
                });
            }
        });
        let trusting = build(cfg.ca.as_deref()).unwrap();
        let url = format!("https://localhost:{port}/status");
        let resp = trusting.get(&url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.text().await.unwrap(), "{\"status\":\"approved\"}");
        // Without the CA the backend's certificate is refused.
        let system = build(None).unwrap();
        assert!(system.get(&url).send().await.is_err());
    }
}
