//! Accepting TCP connections within bounds, for the SIP listeners (TCP and
//! TLS) and the HTTP one alike: a connection past the limits of
//! [`Connections`] (in total, per source network) is closed at once, an
//! admitted one holds a [`Slot`] given back when it is dropped, and a
//! failing `accept` (out of file descriptors) backs off instead of
//! spinning.

use nida_sip::guard::{Connections, GuardConfig};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

/// The open connections of one or more listeners, counted.
#[derive(Debug, Clone)]
pub struct Admission(Arc<Mutex<Connections>>);

/// An admitted connection's place in the count.
#[derive(Debug)]
pub struct Slot {
    table: Arc<Mutex<Connections>>,
    peer: SocketAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.lock() {
            t.close(self.peer.ip());
        }
    }
}

impl Admission {
    /// No connection yet, under `cfg`'s connection limits.
    pub fn new(cfg: GuardConfig) -> Admission {
        Admission(Arc::new(Mutex::new(Connections::new(cfg))))
    }

    /// The next connection on `listener` that the limits admit (`what`
    /// names the listener in the log).
    pub async fn accept(
        &self,
        listener: &TcpListener,
        what: &'static str,
    ) -> (TcpStream, SocketAddr, Slot) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: wait for connections to close.
                    warn!(error = %e, listener = what, pause_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let admitted = self
                .0
                .lock()
                .map(|mut t| t.open(peer.ip()))
                .unwrap_or(false);
            if !admitted {
                debug!(%peer, listener = what, "connection refused: too many open");
                continue;
            }
            let slot = Slot {
                table: self.0.clone(),
                peer,
            };
            return (stream, peer, slot);
        }
    }
}
