//! The shell around a web phone's media gateway
//! ([`nida_media::webrtc::Gateway`]): its WebRTC port (a port pair of the
//! RTP range, the host candidate the browser reaches) and its call-side
//! port, shuttled to the sans-IO gateway by one task per leg. The call
//! sees an ordinary PCMU phone at the call-side port and answers nothing
//! from elsewhere; the browser's answer SDP comes through [`GatewayLeg`].
//! The task ends, and gives its port back, when the leg ends.

use crate::base::bus::MediaSocket;
use crate::base::bus::ToDriver;
use nida_media::webrtc::{Gateway, GatewayEvent, Out};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// What the driver tells a gateway.
#[derive(Debug)]
pub enum ToGateway {
    /// The browser's answer SDP.
    Answer(String),
}

/// The driver's end of one gateway: dropping it ends the gateway.
#[derive(Debug)]
pub struct GatewayLeg {
    /// To the gateway's task.
    pub ctl: mpsc::Sender<ToGateway>,
    /// The call-side address the call's RTP goes to.
    pub side: SocketAddr,
}

/// Starts a gateway on `web` (its WebRTC port pair, port `web_port`) for
/// a call leg whose RTP is at `call_rtp`: the offer to send to the
/// browser, and the driver's end.
pub fn start(
    web: MediaSocket,
    web_port: u16,
    call_rtp: SocketAddr,
    ssrc: u32,
    driver: mpsc::Sender<ToDriver>,
) -> Option<(String, GatewayLeg)> {
    let ip = call_rtp.ip();
    let side = std::net::UdpSocket::bind((ip, 0)).ok()?;
    side.set_nonblocking(true).ok()?;
    let side_addr = side.local_addr().ok()?;
    let web_addr = SocketAddr::new(ip, web_port);
    let (gw, offer) = match Gateway::offer(Instant::now(), web_addr, ssrc) {
        Ok(g) => g,
        Err(e) => {
            warn!(error = %e, "cannot set up a WebRTC gateway");
            return None;
        }
    };
    let web_sock = UdpSocket::from_std(web.rtp).ok()?;
    let side_sock = UdpSocket::from_std(side).ok()?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        run(gw, web_sock, side_sock, call_rtp, rx).await;
        drop(web.rtcp);
        let _ = driver.send(ToDriver::PortFree(web_port)).await;
    });
    Some((
        offer,
        GatewayLeg {
            ctl: tx,
            side: side_addr,
        },
    ))
}

async fn run(
    mut gw: Gateway,
    web: UdpSocket,
    side: UdpSocket,
    call_rtp: SocketAddr,
    mut ctl: mpsc::Receiver<ToGateway>,
) {
    let mut wbuf = vec![0u8; 2048];
    let mut sbuf = vec![0u8; 2048];
    loop {
        while let Some(o) = gw.poll_transmit() {
            let sent = match o {
                Out::Browser { dest, data } => web.send_to(&data, dest).await,
                Out::Call(data) => side.send_to(&data, call_rtp).await,
            };
            if let Err(e) = sent {
                debug!(error = %e, "gateway: send failed");
            }
        }
        while let Some(ev) = gw.poll_event() {
            match ev {
                GatewayEvent::Connected => info!("web phone's media connected (ICE, DTLS)"),
                GatewayEvent::Disconnected => info!("web phone's media disconnected"),
            }
        }
        let deadline = tokio::time::Instant::from_std(gw.poll_timeout());
        tokio::select! {
            r = web.recv_from(&mut wbuf) => {
                if let Ok((n, from)) = r {
                    gw.handle_browser(Instant::now(), from, &wbuf[..n]);
                }
            }
            r = side.recv_from(&mut sbuf) => {
                // Only the call's own RTP port is heard on this side.
                if let Ok((n, from)) = r {
                    if from == call_rtp {
                        gw.handle_call(Instant::now(), &sbuf[..n]);
                    }
                }
            }
            c = ctl.recv() => match c {
                Some(ToGateway::Answer(sdp)) => {
                    if let Err(e) = gw.accept_answer(&sdp) {
                        warn!(error = %e, "the web phone's answer cannot be used");
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => gw.handle_timeout(Instant::now()),
        }
    }
    let s = gw.stats();
    info!(
        from_browser = s.from_browser,
        to_browser = s.to_browser,
        keys = s.keys,
        failed = s.failed,
        "web phone's gateway closed"
    );
}
