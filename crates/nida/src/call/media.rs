//! The call's RTP sockets behind a narrow interface: one socket (and its
//! reserved port) per leg, receive from any, send on one, give one back.
//! Nothing here looks into a packet; the call machine does. A batched
//! media engine for many calls can later stand in for this type.

use super::PortGuard;
use nida_call::LegId;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::Poll;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tracing::debug;

/// One leg's socket and port.
struct Port {
    leg: LegId,
    sock: UdpSocket,
    _guard: PortGuard,
}

/// The RTP sockets of one call.
#[derive(Default)]
pub struct MediaPorts {
    ports: Vec<Port>,
}

impl MediaPorts {
    /// Adds a leg's socket; its port goes back when the leg is released.
    pub fn insert(&mut self, leg: LegId, sock: UdpSocket, guard: PortGuard) {
        self.ports.push(Port {
            leg,
            sock,
            _guard: guard,
        });
    }

    /// Gives a leg's socket and port back.
    pub fn release(&mut self, leg: LegId) {
        self.ports.retain(|p| p.leg != leg);
    }

    /// Sends one datagram on a leg's socket.
    pub async fn send(&self, leg: LegId, data: &[u8], dest: SocketAddr) {
        let Some(p) = self.ports.iter().find(|p| p.leg == leg) else {
            return;
        };
        if let Err(e) = p.sock.send_to(data, dest).await {
            debug!(error = %e, %dest, "RTP send failed");
        }
    }

    /// The next datagram on any leg: its leg, length and source. Waits
    /// forever when the call holds no socket.
    pub async fn recv(&self, buf: &mut [u8]) -> (LegId, usize, SocketAddr) {
        poll_fn(|cx| {
            for p in &self.ports {
                loop {
                    let mut rb = ReadBuf::new(buf);
                    match p.sock.poll_recv_from(cx, &mut rb) {
                        Poll::Ready(Ok(from)) => {
                            return Poll::Ready((p.leg, rb.filled().len(), from))
                        }
                        // An error (an ICMP report) is consumed by the
                        // read: poll again, which also registers the waker.
                        Poll::Ready(Err(_)) => continue,
                        Poll::Pending => break,
                    }
                }
            }
            Poll::Pending
        })
        .await
    }
}
