//! The call's RTP and RTCP sockets behind a narrow interface: a pair (and
//! its reserved ports) per leg, receive from any, send on one, give one
//! back.
//! Nothing here looks into a packet; the call machine does. A batched
//! media engine for many calls can later stand in for this type.

use crate::base::bus::PortGuard;
use nida_call::LegId;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::Poll;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tracing::debug;

/// One leg's sockets and port.
struct Port {
    leg: LegId,
    sock: UdpSocket,
    rtcp: UdpSocket,
    _guard: PortGuard,
}

/// The RTP sockets of one call.
#[derive(Default)]
pub struct MediaPorts {
    ports: Vec<Port>,
}

impl MediaPorts {
    /// Adds a leg's RTP and RTCP sockets; their ports go back when the
    /// leg is released.
    pub fn insert(&mut self, leg: LegId, (sock, rtcp): (UdpSocket, UdpSocket), guard: PortGuard) {
        self.ports.push(Port {
            leg,
            sock,
            rtcp,
            _guard: guard,
        });
    }

    /// Takes a leg's sockets and port out (to hand the leg to another
    /// call).
    pub fn take(&mut self, leg: LegId) -> Option<((UdpSocket, UdpSocket), PortGuard)> {
        let i = self.ports.iter().position(|p| p.leg == leg)?;
        let p = self.ports.remove(i);
        Some(((p.sock, p.rtcp), p._guard))
    }

    /// Gives a leg's socket and port back.
    pub fn release(&mut self, leg: LegId) {
        self.ports.retain(|p| p.leg != leg);
    }

    /// Sends one datagram on a leg's RTP socket (or its RTCP one).
    pub async fn send(&self, leg: LegId, data: &[u8], dest: SocketAddr, rtcp: bool) {
        let Some(p) = self.ports.iter().find(|p| p.leg == leg) else {
            return;
        };
        let sock = if rtcp { &p.rtcp } else { &p.sock };
        if let Err(e) = sock.send_to(data, dest).await {
            debug!(error = %e, %dest, rtcp, "media send failed");
        }
    }

    /// The next datagram on any leg: its leg, length, source and whether
    /// it came on the RTCP port. Waits forever when the call holds no
    /// socket.
    pub async fn recv(&self, buf: &mut [u8]) -> (LegId, usize, SocketAddr, bool) {
        poll_fn(|cx| {
            for (p, rtcp) in self.ports.iter().flat_map(|p| [(p, false), (p, true)]) {
                let sock = if rtcp { &p.rtcp } else { &p.sock };
                loop {
                    let mut rb = ReadBuf::new(buf);
                    match sock.poll_recv_from(cx, &mut rb) {
                        Poll::Ready(Ok(from)) => {
                            return Poll::Ready((p.leg, rb.filled().len(), from, rtcp))
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
