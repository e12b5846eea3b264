//! The SIP shell: owns the UDP socket, the TCP and TLS listeners and
//! connections, and the one [`Endpoint`] that all signalling goes
//! through. It is the only writer of SIP state; call tasks talk to it
//! through a channel.

use crate::base::bus::{Counters, Dial, LegRequest, LegSetup, MediaSocket, ToCall, ToDriver};
use crate::call::{self, CallSetup};
use crate::config::features::FeatureCodes;
use crate::config::Config;
use crate::redact::Redacted;
use nida_call::LegEvent;
use nida_media::PromptStore;
use nida_sip::framing::StreamFramer;
use nida_sip::guard::{Admit, Guard, GuardEvent};
use nida_sip::trunk::{TrunkEvent, Trunks};
use nida_sip::{CallHandle, Endpoint, EndpointConfig, Event, Transport};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

/// The sockets the driver serves SIP on.
pub struct Listeners {
    /// UDP.
    pub udp: UdpSocket,
    /// TCP.
    pub tcp: TcpListener,
    /// TLS, when configured: its listener, its server side, and the client
    /// side for connections nida opens.
    pub tls: Option<(TcpListener, TlsAcceptor, TlsConnector)>,
}

/// Allocates and binds RTP ports; only the driver touches it.
struct Ports {
    free: VecDeque<u16>,
    /// Ports in the range, free or not.
    total: usize,
}

impl Ports {
    /// Binds the next free port and the one after it (RTCP); a port
    /// another program holds goes to the back of the queue and the next
    /// one is tried (eight at most).
    fn bind(&mut self, ip: std::net::IpAddr) -> Option<(u16, MediaSocket)> {
        let open = |port: u16| {
            let sock = std::net::UdpSocket::bind((ip, port)).ok()?;
            sock.set_nonblocking(true).ok()?;
            Some(sock)
        };
        for _ in 0..8 {
            let port = self.free.pop_front()?;
            match (open(port), open(port + 1)) {
                (Some(rtp), Some(rtcp)) => return Some((port, MediaSocket { rtp, rtcp })),
                _ => {
                    warn!(port, "RTP port unavailable; trying the next");
                    self.free.push_back(port);
                }
            }
        }
        None
    }

    fn new(cfg: &Config) -> Self {
        // Even ports for RTP (RFC 3550 11), the odd one left for RTCP.
        let first = cfg.rtp_ports.first + cfg.rtp_ports.first % 2;
        // nida's own listening ports never serve as RTP ports.
        let own = [cfg.sip_addr.port(), cfg.http_addr.port()];
        let free: VecDeque<u16> = (first..=cfg.rtp_ports.last)
            .step_by(2)
            .filter(|p| *p < cfg.rtp_ports.last)
            .filter(|p| !own.contains(p) && !own.contains(&(p + 1)))
            .collect();
        Ports {
            total: free.len(),
            free,
        }
    }
}

/// What every call shares: prompts, the current flows, lookup backends.
#[derive(Clone)]
pub struct Shared {
    /// All prompts.
    pub prompts: Arc<PromptStore>,
    /// The flows now; each call takes the version current when it starts.
    pub flows: tokio::sync::watch::Receiver<Arc<nida_ivr::FlowSet>>,
    /// Lookup backends.
    pub backends: Arc<crate::call::lookup::Backends>,
    /// The contact centre (queues and agents).
    pub centre: crate::centre::CentreHandle,
    /// The store.
    pub store: crate::base::db::StoreHandle,
    /// The media threads.
    pub engine: crate::call::engine::Engine,
}

/// A call's own part of its setup; the rest is what every call shares.
struct NewCall {
    handle: CallHandle,
    call_id: String,
    offer: Option<nida_sip::sdp::SessionDescription>,
    port: u16,
    socket: Option<MediaSocket>,
    caller: String,
    source: SocketAddr,
    called: String,
    rng: Arc<std::sync::Mutex<nida_sip::rng::Rng>>,
    confirm: Option<(String, String)>,
    then: Option<crate::centre::ToCentre>,
    internal: Option<(nida_acd::AgentId, nida_call::Target)>,
    secure: bool,
    proven_number: Option<String>,
}

impl Shared {
    /// The setup of a call task, with the channel the driver reaches it by.
    fn call_setup(
        &self,
        cfg: &Arc<Config>,
        counters: &Arc<Counters>,
        driver: &mpsc::Sender<ToDriver>,
        c: NewCall,
    ) -> CallSetup {
        let (tx, rx) = mpsc::channel(64);
        CallSetup {
            handle: c.handle,
            call_id: c.call_id,
            offer: c.offer,
            port: c.port,
            socket: c.socket,
            caller: c.caller,
            source: c.source,
            called: c.called,
            flows: self.flows.borrow().clone(),
            backends: self.backends.clone(),
            cfg: cfg.clone(),
            prompts: self.prompts.clone(),
            driver: driver.clone(),
            rx,
            rng: c.rng,
            counters: counters.clone(),
            centre: self.centre.clone(),
            store: self.store.clone(),
            tx,
            confirm: c.confirm,
            then: c.then,
            internal: c.internal,
            secure: c.secure,
            proven_number: c.proven_number,
            engine: self.engine.clone(),
        }
    }
}

/// How far a shutdown has gone.
struct Drain {
    /// Live calls are hung up at this time.
    deadline: tokio::time::Instant,
    /// Set once the calls still live at the deadline were hung up: nida
    /// stops at this time whatever is left.
    hard_stop: Option<tokio::time::Instant>,
}

/// Runs the SIP driver until `stop` turns true and the calls have ended:
/// from then on new calls get 503 with Retry-After, live calls go on for
/// `shutdown_grace`, then nida hangs up the rest (BYE, CANCEL) and returns
/// once their tasks have finished (their records are on disk) or 5
/// seconds later.
/// The SIP shell's state: the one endpoint, the trunks, the guard, the
/// RTP ports, and which call owns each dialog. [`run`] feeds it one input
/// at a time (a datagram, a message from a task, a timer, the stop
/// signal) and then lets it write what the endpoint queued.
struct Driver {
    cfg: Arc<Config>,
    shared: Shared,
    counters: Arc<Counters>,
    /// The driver's own mailbox (given to call tasks and connections).
    tx: mpsc::Sender<ToDriver>,
    ep: Endpoint,
    ports: Ports,
    trunks: Trunks,
    guard: Guard,
    outbound: crate::config::outbound::Outbound,
    last_prune: Instant,
    /// The source of each call counted against its source's limit.
    call_sources: HashMap<CallHandle, std::net::IpAddr>,
    /// Calls nida placed (agent legs), to the call that owns each.
    legs: HashMap<CallHandle, mpsc::Sender<ToCall>>,
    calls: HashMap<CallHandle, mpsc::Sender<ToCall>>,
    /// Legs to web phones, through their media gateways.
    gateways: HashMap<CallHandle, crate::sip::gateway::GatewayLeg>,
    /// Incoming calls answered or ringing whose ACK has not come.
    half_open: std::collections::HashSet<CallHandle>,
    conns: Conns,
    media_rng: Arc<std::sync::Mutex<nida_sip::rng::Rng>>,
    drain: Option<Drain>,
    /// One clone per live call task: the count says when all have ended.
    alive: Arc<()>,
}

/// Runs the SIP shell until it has stopped (after `stop`, once the calls
/// have ended or the grace period is over).
/// The driver's queue: the sender goes to whoever asks the driver for
/// something outside a call (the API's call-backs), the pair to [`run`].
pub fn channel() -> (mpsc::Sender<ToDriver>, mpsc::Receiver<ToDriver>) {
    mpsc::channel::<ToDriver>(65536)
}

/// Runs the SIP side until stopped.
pub async fn run(
    cfg: Arc<Config>,
    shared: Shared,
    listeners: Listeners,
    counters: Arc<Counters>,
    queue: (mpsc::Sender<ToDriver>, mpsc::Receiver<ToDriver>),
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Listeners { udp, tcp, tls } = listeners;
    let (mut d, mut rx) = Driver::new(cfg, shared, tcp, tls, counters, queue);
    d.restore_callbacks();
    let mut buf = vec![0u8; 65536];
    loop {
        let deadline = [d.ep.poll_timeout(), d.trunks.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
        let drain_tick = d.drain.as_ref().map(|dr| {
            let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(100);
            soon.min(dr.hard_stop.unwrap_or(dr.deadline))
        });
        tokio::select! {
            Ok(()) = stop.changed(), if d.drain.is_none() => d.on_stop(),
            _ = tokio::time::sleep_until(drain_tick.unwrap_or(deadline)), if drain_tick.is_some() => d.on_drain_tick(),
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) => d.on_datagram(Transport::Udp, from, &buf[..n]),
                Err(e) => warn!(error = %e, "UDP receive failed"),
            },
            Some(msg) = rx.recv() => d.on_message(msg),
            _ = tokio::time::sleep_until(deadline) => {
                d.ep.handle_timeout(Instant::now());
                d.trunks.handle_timeout(Instant::now());
            }
        }
        d.flush(&udp).await;
        d.publish();
        if d.stopped() {
            return;
        }
    }
}

impl Driver {
    fn new(
        cfg: Arc<Config>,
        shared: Shared,
        tcp: TcpListener,
        tls: Option<(TcpListener, TlsAcceptor, TlsConnector)>,
        counters: Arc<Counters>,
        (tx, rx): (mpsc::Sender<ToDriver>, mpsc::Receiver<ToDriver>),
    ) -> (Driver, mpsc::Receiver<ToDriver>) {
        let streams = StreamLimits {
            admission: crate::sip::listen::Admission::new(cfg.protection.guard()),
            max_message: cfg.protection.max_message,
            idle: cfg.protection.tcp_idle,
            counters: counters.clone(),
        };
        tokio::spawn(accept_loop(tcp, None, tx.clone(), streams.clone()));
        let mut ep = Endpoint::new(EndpointConfig {
            local_addr: cfg.sip_addr,
            timers: Default::default(),
            user_agent: format!("nida/{}", env!("CARGO_PKG_VERSION")),
            seed: cfg.seed,
            session_timer: cfg.session_timer(),
        });
        let connector = match tls {
            Some((listener, acceptor, connector)) => {
                if let Ok(addr) = listener.local_addr() {
                    ep.set_tls_addr(addr);
                }
                tokio::spawn(accept_loop(
                    listener,
                    Some(acceptor),
                    tx.clone(),
                    streams.clone(),
                ));
                Some(connector)
            }
            None => None,
        };
        if !cfg.agents.is_empty() || !cfg.supervisors.is_empty() {
            // The nonce key comes from the OS whatever `seed` says: a test
            // seed must never make nonces predictable.
            let secret = format!("{}{}", nida_sip::rng::os_token(), nida_sip::rng::os_token());
            let auth = nida_sip::auth::Authenticator::new(
                &cfg.realm,
                &secret,
                Instant::now(),
                std::time::Duration::from_secs(300),
            )
            .with_algorithms(cfg.digest_algorithms.clone());
            ep.set_registrar(nida_sip::registrar::Registrar::new(
                auth,
                cfg.agents
                    .iter()
                    .map(|a| (a.user.clone(), a.secret()))
                    .chain(cfg.supervisors.iter().map(|s| (s.user.clone(), s.secret()))),
            ));
        }
        let ports = Ports::new(&cfg);
        let trunks = Trunks::new(
            cfg.trunks.clone(),
            cfg.sip_addr,
            cfg.seed.map(|s| s ^ 0x7a11),
            Instant::now(),
        );
        counters
            .trunks
            .send_replace(Arc::new(crate::config::trunks::views(
                &trunks.status(),
                Instant::now(),
                crate::clock::unix_now(),
            )));
        for t in cfg.trunks.iter().filter(|t| t.resolve.is_some()) {
            if let Some(host) = t.resolve.clone() {
                tokio::spawn(crate::sip::dns::follow(
                    t.name.clone(),
                    host,
                    t.transport,
                    cfg.dns_servers.clone(),
                    tx.clone(),
                ));
            }
        }
        let guard = Guard::new(cfg.protection.guard());
        let outbound = crate::config::outbound::Outbound::new(cfg.outbound.clone());
        let last_prune = Instant::now();
        // The source of each call counted against its source's limit.
        let call_sources: HashMap<CallHandle, std::net::IpAddr> = HashMap::new();
        // Calls nida placed (agent legs), to the call that owns each.
        let legs: HashMap<CallHandle, mpsc::Sender<ToCall>> = HashMap::new();
        let calls: HashMap<CallHandle, mpsc::Sender<ToCall>> = HashMap::new();
        // Incoming calls answered or ringing whose ACK has not come.
        let half_open: std::collections::HashSet<CallHandle> = Default::default();
        let conns = Conns {
            open: HashMap::new(),
            connector,
            names: HashMap::new(),
            driver: tx.clone(),
            limits: streams.clone(),
        };
        let media_rng = Arc::new(std::sync::Mutex::new(nida_sip::rng::Rng::new(
            cfg.seed.map(|s| s ^ 0x5eed),
        )));
        let mut driver = Driver {
            cfg,
            shared,
            counters,
            tx,
            ep,
            ports,
            trunks,
            guard,
            outbound,
            last_prune,
            call_sources,
            legs,
            calls,
            gateways: HashMap::new(),
            half_open,
            conns,
            media_rng,
            drain: None,
            alive: Arc::new(()),
        };
        let fixed: Vec<(String, Vec<SocketAddr>)> = driver
            .cfg
            .trunks
            .iter()
            .map(|t| (t.name.clone(), t.addresses.clone()))
            .collect();
        for (name, addrs) in fixed {
            driver.name_tls_peers(&name, &addrs);
        }
        (driver, rx)
    }

    /// Call-backs stored before a restart wait in line again.
    fn restore_callbacks(&self) {
        let pending = tokio::task::block_in_place(|| {
            self.shared.store.reader().and_then(|st| st.callbacks(true))
        })
        .unwrap_or_else(|e| {
            warn!(error = %e, "cannot read the stored call-backs");
            Vec::new()
        });
        for row in pending {
            self.start_callback(row);
        }
    }

    /// A stored call-back joins its queue without the caller, and is
    /// dialled when an agent takes it.
    fn start_callback(&self, row: nida_store::CallbackRow) {
        let source = row
            .source
            .parse()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        // The number was proven when the call-back was booked.
        let setup = self.setup_dialling(row.call_id.clone(), &row.number, source, &row.called);
        tokio::spawn(call::restore(setup, row));
    }

    /// A call task's setup for a call that starts with nida dialling
    /// `number`, a number already proven or checked (no caller's dialog,
    /// no port of its own).
    fn setup_dialling(
        &self,
        call_id: String,
        number: &str,
        source: SocketAddr,
        called: &str,
    ) -> CallSetup {
        self.shared.call_setup(
            &self.cfg,
            &self.counters,
            &self.tx,
            NewCall {
                handle: CallHandle(u64::MAX),
                call_id,
                offer: None,
                port: 0,
                socket: None,
                caller: number.to_string(),
                source,
                called: called.to_string(),
                rng: self.media_rng.clone(),
                confirm: None,
                then: None,
                internal: None,
                secure: false,
                proven_number: Some(number.to_string()),
            },
        )
    }

    /// A notification's attempt: a call task that dials the number. While
    /// stopping none starts (the attempt is tried again after the restart).
    fn start_notification(
        &self,
        notice: nida_call::Notice,
        results: mpsc::Sender<nida_call::NoticeResult>,
    ) {
        let call_id = self
            .media_rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hex128();
        if self.drain.is_some() {
            let r = nida_call::NoticeResult {
                id: notice.id,
                attempt: notice.attempt,
                call_id,
                delivery: nida_call::Delivery::NotPlaced,
                message_after: None,
                seconds: 0.0,
            };
            tokio::spawn(async move {
                let _ = results.send(r).await;
            });
            return;
        }
        // The number was checked by the API, and is again by the outbound
        // rules when the leg is placed.
        let setup = self.setup_dialling(
            call_id,
            &notice.number,
            SocketAddr::from(([0, 0, 0, 0], 0)),
            &self.cfg.notifications.from,
        );
        tokio::spawn(call::notify(setup, notice, results));
    }

    /// Stop asked: new calls get 503, live calls may finish.
    fn on_stop(&mut self) {
        let grace = self.cfg.shutdown_grace;
        info!(
            calls = self.calls.len(),
            grace_seconds = grace.as_secs(),
            "stopping: new calls get 503, live calls may finish"
        );
        // Carriers stop sending calls here (best effort: nida may
        // be gone before a challenge to it is answered).
        self.trunks.unregister_all();
        // A dispatcher in front sees 503 to its OPTIONS probes.
        self.ep.set_draining();
        self.drain = Some(Drain {
            deadline: tokio::time::Instant::now() + grace,
            hard_stop: None,
        });
    }

    /// While draining: past the grace period, hang up what is left.
    fn on_drain_tick(&mut self) {
        let now = tokio::time::Instant::now();
        let d = self.drain.as_mut().expect("ticks only while draining");
        if d.hard_stop.is_none() && now >= d.deadline {
            info!(
                calls = self.calls.len(),
                legs = self.legs.len(),
                "stopping: hanging up the calls left"
            );
            for h in self
                .calls
                .keys()
                .chain(self.legs.keys())
                .copied()
                .collect::<Vec<_>>()
            {
                self.ep.hangup(Instant::now(), h);
            }
            d.hard_stop = Some(now + std::time::Duration::from_secs(5));
        }
    }

    /// A SIP message from the network, if the guard admits its source.
    fn on_datagram(&mut self, transport: Transport, from: SocketAddr, data: &[u8]) {
        let now = Instant::now();
        if admit(&mut self.guard, now, from, data.len()) {
            self.counters.responses_received.count(data);
            self.ep.handle_message(now, transport, from, data)
        }
    }

    /// A message from a call task, a connection or the centre.
    fn on_message(&mut self, msg: ToDriver) {
        let now = Instant::now();
        match msg {
            ToDriver::StreamMessage(transport, from, data) => {
                if admit(&mut self.guard, now, from, data.len()) {
                    self.counters.responses_received.count(&data);
                    self.ep.handle_message(now, transport, from, &data)
                }
            }
            ToDriver::StreamOpen(transport, peer, sender) => {
                self.conns.open.insert((transport, peer), sender);
            }
            ToDriver::StreamClosed(transport, peer) => {
                self.conns.open.remove(&(transport, peer));
                // A web phone's registration and calls end with it.
                self.ep.connection_closed(transport, peer);
            }
            ToDriver::Ring(h) => self.ep.ringing(now, h),
            ToDriver::Answer(h, media) => {
                self.ep.answer(now, h, *media);
                self.counters.answered.fetch_add(1, Ordering::Relaxed);
            }
            ToDriver::Reject(h, status, reason) => self.ep.reject(now, h, status, reason, &[]),
            ToDriver::Hangup(h) => self.ep.hangup(now, h),
            ToDriver::Reroute(h, tx) => {
                if let Some(t) = self.legs.get_mut(&h) {
                    *t = tx;
                }
            }
            ToDriver::Hold(h, on) => {
                if !self.ep.hold(now, h, on) {
                    tracing::debug!(on, "hold: the leg is not up");
                }
            }
            ToDriver::PortFree(p) => self.ports.free.push_back(p),
            ToDriver::NotifyRefer(h, status, reason) => {
                self.ep.notify_refer(now, h, status, reason)
            }
            ToDriver::Invite(req) => self.place_leg(now, req),
            ToDriver::Callback(row) => self.start_callback(*row),
            ToDriver::Notify(notice, results) => self.start_notification(*notice, results),
            ToDriver::TrunkAddresses(trunk, addrs) => {
                self.name_tls_peers(&trunk, &addrs);
                self.trunks.set_addresses(&trunk, addrs, now);
                self.counters
                    .trunks
                    .send_replace(Arc::new(crate::config::trunks::views(
                        &self.trunks.status(),
                        now,
                        crate::clock::unix_now(),
                    )));
            }
        }
    }

    /// A TLS trunk's addresses are checked against (and greet with SNI)
    /// the trunk's domain.
    fn name_tls_peers(&mut self, trunk: &str, addrs: &[SocketAddr]) {
        let Some(t) = self.cfg.trunks.iter().find(|t| t.name == trunk) else {
            return;
        };
        if t.transport == Transport::Tls {
            for a in addrs {
                self.conns.names.insert(*a, t.domain.clone());
            }
        }
    }

    /// Places a leg for a call (an agent's phone, a caller called back, a
    /// transfer target) if the outbound policy allows the number; the
    /// reply carries the leg, or `None`.
    fn place_leg(&mut self, now: Instant, req: LegRequest) {
        let LegRequest {
            target,
            from_user,
            number,
            call_id,
            owner,
            reply,
        } = req;
        if let Some((purpose, number)) = number {
            let verdict = self.outbound.check(now, &number);
            self.shared.store.outbound(nida_store::OutboundRow {
                at: crate::clock::unix_now() as i64,
                call_id,
                purpose: purpose.as_str().into(),
                number: number.clone(),
                verdict: verdict.map_or_else(|r| r.as_str(), |()| "allowed").into(),
            });
            if let Err(r) = verdict {
                warn!(
                    number = %Redacted::new(&number, self.cfg.log_caller_numbers),
                    refusal = r.as_str(),
                    purpose = purpose.as_str(),
                    "call out refused by the outbound policy"
                );
                let _ = reply.send(None);
                return;
            }
        }
        let (target, credentials, rel100) = match target {
            Dial::Target(t) => (t, None, false),
            Dial::Trunk { trunk, number } => match self.trunks.route(&trunk, &number) {
                Some(r) => (
                    nida_call::Target {
                        uri: r.uri,
                        dest: r.dest,
                        transport: r.transport,
                    },
                    r.credentials,
                    r.rel100,
                ),
                None => {
                    warn!(%trunk, "no address of the trunk answers: cannot dial");
                    let _ = reply.send(None);
                    return;
                }
            },
        };
        let Some((port, socket)) = self.ports.bind(self.cfg.media_ip()) else {
            warn!("no RTP port free to ring an agent");
            let _ = reply.send(None);
            return;
        };
        // A web phone (reached over its WebSocket) speaks WebRTC: its
        // gateway offers for it, and the call's leg talks plain RTP to
        // the gateway. Over TLS the leg's audio is SRTP too.
        let web = target.transport.connection_bound();
        let srtp = (target.transport.secure() && !web).then(crate::base::tls::srtp_key);
        let rand = self
            .media_rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_u64();
        let local = nida_sip::sdp::LocalMedia {
            addr: SocketAddr::new(self.cfg.media_ip(), port),
            session_id: rand >> 16,
            version: 1,
            srtp,
        };
        let mut gateway = None;
        let media = if web {
            let started = self
                .ports
                .bind(self.cfg.media_ip())
                .and_then(|(wport, wsock)| {
                    let g = crate::sip::gateway::start(
                        wsock,
                        wport,
                        local.addr,
                        rand as u32,
                        self.tx.clone(),
                    );
                    if g.is_none() {
                        self.ports.free.push_back(wport);
                    }
                    g
                });
            let Some((offer, leg)) = started else {
                warn!("no WebRTC gateway for the web phone: cannot ring it");
                self.ports.free.push_back(port);
                let _ = reply.send(None);
                return;
            };
            gateway = Some(leg);
            nida_sip::offer_answer::OfferAnswer::opaque(local, offer.into_bytes())
        } else {
            nida_sip::offer_answer::OfferAnswer::new(local, self.cfg.codecs.clone(), srtp.is_some())
        };
        let handle = self.ep.invite(
            now,
            nida_sip::Invite {
                uri: target.uri,
                dest: target.dest,
                transport: target.transport,
                from_user,
                media,
                rel100,
            },
        );
        if let Some((user, password)) = credentials {
            self.ep.set_credentials(handle, &user, &password);
        }
        self.legs.insert(handle, owner);
        if let Some(g) = gateway {
            self.gateways.insert(handle, g);
        }
        if let Err(Some(leg)) = reply.send(Some(LegSetup {
            handle,
            port,
            socket,
            srtp,
        })) {
            // The call ended meanwhile.
            self.ep.hangup(now, leg.handle);
            self.ports.free.push_back(leg.port);
        }
    }

    /// Writes what the endpoint queued and hands out its events, until
    /// quiet (answering an event can queue more output).
    async fn flush(&mut self, udp: &UdpSocket) {
        loop {
            let mut busy = false;
            while let Some(r) = self.trunks.poll_request() {
                self.ep.request(Instant::now(), r);
            }
            while let Some(t) = self.ep.poll_transmit() {
                busy = true;
                self.counters.responses_sent.count(&t.data);
                match t.transport {
                    Transport::Udp => {
                        if let Err(e) = udp.send_to(&t.data, t.dest).await {
                            debug!(error = %e, dest = %t.dest, "UDP send failed");
                        }
                    }
                    Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss => {
                        self.conns.send(t.transport, t.dest, t.data)
                    }
                }
            }
            while let Some(ev) = self.ep.poll_event() {
                busy = true;
                let now = Instant::now();
                self.on_event(now, ev);
            }
            if !busy {
                break;
            }
        }
    }

    /// One event of the endpoint.
    fn on_event(&mut self, now: Instant, ev: Event) {
        match ev {
            Event::Incoming(inc) => self.on_incoming(now, inc),
            Event::Confirmed { call, sdp } => {
                self.half_open.remove(&call);
                if let Some(c) = self.calls.get(&call) {
                    let _ = c.try_send(ToCall::Confirmed(sdp.map(Box::new)));
                }
            }
            Event::Progress { call, status } => {
                if let Some(c) = self.legs.get(&call) {
                    let _ = c.try_send(ToCall::sip(call, LegEvent::Progress(status)));
                }
            }
            Event::Answered { call, sdp } => match self.legs.get(&call) {
                Some(c) if self.gateways.contains_key(&call) => {
                    // The browser's answer goes to its gateway; the call
                    // is answered by the gateway's plain side.
                    let g = &self.gateways[&call];
                    let plain = sdp.map(|sd| {
                        let raw = String::from_utf8_lossy(&sd.raw).into_owned();
                        let _ = g.ctl.try_send(crate::sip::gateway::ToGateway::Answer(raw));
                        nida_media::webrtc::call_side_sdp(g.side)
                    });
                    let plain = plain
                        .and_then(|p| nida_sip::sdp::SessionDescription::parse(p.as_bytes()).ok());
                    if c.try_send(ToCall::sip(call, LegEvent::Answered(plain)))
                        .is_err()
                    {
                        self.ep.hangup(now, call);
                    }
                }
                Some(c) => {
                    if c.try_send(ToCall::sip(call, LegEvent::Answered(sdp)))
                        .is_err()
                    {
                        self.ep.hangup(now, call);
                    }
                }
                None => self.ep.hangup(now, call),
            },
            // A web phone's media is its gateway's: the call's leg stays
            // as it was.
            Event::Media { call, .. } if self.gateways.contains_key(&call) => {}
            Event::Media { call, media } => {
                // The caller's own call, or a leg nida placed.
                if let Some(c) = self.calls.get(&call).or_else(|| self.legs.get(&call)) {
                    if c.try_send(ToCall::sip(call, LegEvent::Media(media)))
                        .is_err()
                    {
                        warn!("a call's channel is full: its media change is lost");
                    }
                }
            }
            Event::Dtmf { call, digit } => {
                // The caller's own call, or a leg nida placed.
                if let Some(c) = self.calls.get(&call).or_else(|| self.legs.get(&call)) {
                    // A key lost to a full channel is what RTP loss does too.
                    let _ = c.try_send(ToCall::sip(call, LegEvent::Dtmf(digit)));
                }
            }
            Event::Refer { call, target } if nida_sip::headers::replaces_in(&target).is_some() => {
                self.attended_transfer(now, call, &target)
            }
            Event::Refer { call, target } => match self.legs.get(&call) {
                Some(c) => {
                    let m = ToCall::sip(call, LegEvent::Refer(target));
                    if c.try_send(m).is_err() {
                        self.ep.notify_refer(now, call, 503, "Service Unavailable");
                    }
                }
                None => {
                    info!(target = %Redacted::new(&target, self.cfg.log_caller_numbers), "transfer asked by a caller: declined");
                    self.ep.notify_refer(now, call, 603, "Declined");
                }
            },
            Event::Registered(b) => {
                let _ = self
                    .shared
                    .centre
                    .tx
                    .try_send(crate::centre::ToCentre::Registered(b));
            }
            Event::Unregistered { user } => {
                let _ = self
                    .shared
                    .centre
                    .tx
                    .try_send(crate::centre::ToCentre::Unregistered(user));
            }
            Event::Ended { call, reason } if self.legs.contains_key(&call) => {
                // A web phone's gateway ends with its leg.
                self.gateways.remove(&call);
                if let Some(c) = self.legs.remove(&call) {
                    deliver(c, ToCall::sip(call, LegEvent::Ended(reason)));
                }
            }
            Event::Response {
                tag,
                status,
                headers,
            } => {
                self.trunks.handle_response(now, tag, status, &headers);
            }
            Event::AuthFailed { source } => {
                self.guard.handle_auth_failure(now, source.ip());
            }
            // A success resets no count: failures leave the window by time only.
            Event::AuthSucceeded { .. } => {}
            Event::Ended { call, reason } => {
                self.half_open.remove(&call);
                if let Some(ip) = self.call_sources.remove(&call) {
                    self.guard.dialog_end(ip);
                }
                if let Some(c) = self.calls.remove(&call) {
                    self.counters.calls.fetch_sub(1, Ordering::Relaxed);
                    info!(?reason, "call ended");
                    deliver(c, ToCall::sip(call, LegEvent::Ended(reason)));
                }
            }
        }
    }

    /// A REFER with `Replaces` (RFC 5589): an agent's phone transfers its
    /// caller to the colleague it called through nida. The dialog named
    /// is that consult call's: it hands its colleague's leg to the call
    /// of the REFER. Any other `Replaces` gets 481.
    fn attended_transfer(&mut self, now: Instant, call: CallHandle, target: &str) {
        let r = nida_sip::headers::replaces_in(target).expect("checked by the caller");
        let named = self
            .ep
            .dialog_by_ids(&r.call_id, &r.to_tag, &r.from_tag)
            .or_else(|| self.ep.dialog_by_ids(&r.call_id, &r.from_tag, &r.to_tag));
        // Phones REFER either dialog: the one with the caller's call
        // naming the consult call (linphone), or the consult call naming
        // the caller's.
        let plan = match named {
            Some(n) if self.legs.contains_key(&call) && self.calls.contains_key(&n) => {
                Some((n, call, true))
            }
            Some(n) if self.calls.contains_key(&call) && self.legs.contains_key(&n) => {
                Some((call, n, false))
            }
            _ => None,
        };
        let Some((consult, agent_leg, notify)) = plan else {
            info!("attended transfer naming no consult call of nida's: 481");
            self.ep.notify_refer(now, call, 481, "Call Does Not Exist");
            return;
        };
        let (Some(y), Some(x)) = (self.calls.get(&consult), self.legs.get(&agent_leg)) else {
            return;
        };
        info!("attended transfer: the consult call hands its colleague over");
        let m = ToCall::HandOver {
            to: x.clone(),
            referred_by: agent_leg,
            notify,
        };
        if y.try_send(m).is_err() {
            self.ep.notify_refer(now, call, 503, "Service Unavailable");
        } else if !notify {
            // The REFER came on the consult call, which ends now: it
            // hears the outcome before it goes.
            self.ep.notify_refer(now, call, 200, "OK");
        }
    }

    /// An INVITE with `Replaces` (RFC 3891): only an authenticated phone
    /// may take a dialog's place, and only a leg nida placed (an agent's)
    /// can be named; the call owning it decides (the same agent's other
    /// phone). Anything else gets 481.
    fn replacing_invite(&mut self, now: Instant, inc: Box<nida_sip::endpoint::IncomingCall>) {
        let Some(user) = self.ep.authenticate_caller(now, inc.call) else {
            return;
        };
        let r = inc.replaces.clone().expect("checked by the caller");
        let named = self.ep.dialog_by_ids(&r.call_id, &r.to_tag, &r.from_tag);
        let Some((old, x)) = named.and_then(|h| Some((h, self.legs.get(&h)?.clone()))) else {
            info!(%user, "INVITE with Replaces naming no leg of nida's: 481");
            self.ep
                .reject(now, inc.call, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        };
        let Some((port, socket)) = self.ports.bind(self.cfg.media_ip()) else {
            unavailable(&mut self.ep, now, inc.call, "5");
            return;
        };
        info!(%user, "INVITE with Replaces: the call owning the leg decides");
        self.legs.insert(inc.call, x.clone());
        let m = ToCall::Replace {
            old,
            handle: inc.call,
            offer: inc.offer.map(Box::new),
            user,
            port,
            socket,
            secure: inc.transport.secure(),
        };
        if x.try_send(m).is_err() {
            self.legs.remove(&inc.call);
            unavailable(&mut self.ep, now, inc.call, "5");
        }
    }

    /// A new INVITE: feature code, admission, capacity, then a call task.
    fn on_incoming(&mut self, now: Instant, inc: Box<nida_sip::endpoint::IncomingCall>) {
        let mut called = called_number(&inc.request_uri);
        let trunk = self.trunks.identify(inc.source.ip()).map(str::to_string);
        if let Some(t) = &trunk {
            called = self.trunks.called_number(t, &called);
        }
        if inc.replaces.is_some() {
            self.replacing_invite(now, inc);
            return;
        }
        let mut confirm = None;
        let mut then = None;
        if FeatureCodes::is_feature(&called) {
            match feature_call(
                &mut self.ep,
                &self.cfg,
                &self.shared.centre,
                &inc,
                &called,
                now,
            ) {
                Ok(Some((c, after))) => {
                    confirm = Some(c);
                    then = after;
                }
                Ok(None) => return,
                Err((status, reason)) => {
                    self.ep.reject(now, inc.call, status, reason, &[]);
                    return;
                }
            }
        }
        let mut internal = None;
        if confirm.is_none() && trunk.is_none() {
            if let Some(&other) = self.shared.centre.agents_by_user.get(&called) {
                match internal_call(&mut self.ep, &self.shared.centre, &inc, other, now) {
                    Ok(Some(i)) => internal = Some(i),
                    Ok(None) => return,
                    Err((status, reason)) => {
                        self.ep.reject(now, inc.call, status, reason, &[]);
                        return;
                    }
                }
            }
        }
        if confirm.is_none()
            && internal.is_none()
            && trunk.is_none()
            && self.trunks.restricts_inbound()
            && !known_source(&self.ep, &self.cfg, &self.guard, inc.source, now)
        {
            warn!(call_id = %inc.call_id, source = %inc.source.ip(), "call from no trunk, agent or trusted network: 403");
            self.ep.reject(now, inc.call, 403, "Forbidden", &[]);
            return;
        }
        if self.drain.is_some() {
            self.counters
                .overload_rejects
                .fetch_add(1, Ordering::Relaxed);
            info!(call_id = %inc.call_id, "stopping: 503");
            unavailable(&mut self.ep, now, inc.call, "30");
            return;
        }
        if !self.guard.dialog_start(now, inc.source.ip()) {
            warn!(call_id = %inc.call_id, source = %inc.source.ip(), "too many calls from this source: 503");
            unavailable(&mut self.ep, now, inc.call, "30");
            return;
        }
        // Calls not yet confirmed by their ACK (spoofed
        // INVITEs never will be) hold a bounded share of
        // the ports, so they cannot starve real callers.
        let half_open_full = self.half_open.len() as f64
            >= self.cfg.protection.max_half_open_share * self.ports.total as f64;
        if half_open_full {
            warn!(call_id = %inc.call_id, half_open = self.half_open.len(), "too many calls waiting for their ACK: 503");
        }
        let media = if self.calls.len() >= self.cfg.max_calls || half_open_full {
            None
        } else {
            self.ports.bind(self.cfg.media_ip())
        };
        let Some((port, socket)) = media else {
            self.guard.dialog_end(inc.source.ip());
            self.counters
                .overload_rejects
                .fetch_add(1, Ordering::Relaxed);
            warn!(call_id = %inc.call_id, "at capacity: 503");
            unavailable(&mut self.ep, now, inc.call, "5");
            return;
        };
        let from_user = user_of(&inc.from.uri);
        // Only a trunk's or a trusted network tells nida who
        // calls: its P-Asserted-Identity, else its From.
        let vouched = trunk.is_some() || self.guard.is_trusted(inc.source.ip());
        let proven_number = vouched.then(|| {
            inc.asserted
                .as_ref()
                .map_or_else(|| from_user.clone(), |a| user_of(&a.uri))
        });
        info!(
            call_id = %inc.call_id,
            from = %Redacted::new(&from_user, self.cfg.log_caller_numbers),
            to = %inc.request_uri,
            called = %called,
            trunk = trunk.as_deref().unwrap_or("-"),
            transport = ?inc.transport,
            "incoming call"
        );
        let setup = self.shared.call_setup(
            &self.cfg,
            &self.counters,
            &self.tx,
            NewCall {
                handle: inc.call,
                call_id: inc.call_id.clone(),
                offer: inc.offer,
                port,
                socket: Some(socket),
                caller: from_user,
                source: inc.source,
                called,
                rng: self.media_rng.clone(),
                confirm,
                then,
                internal,
                secure: inc.transport.secure(),
                proven_number,
            },
        );
        self.calls.insert(inc.call, setup.tx.clone());
        self.half_open.insert(inc.call);
        self.call_sources.insert(inc.call, inc.source.ip());
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let task_alive = self.alive.clone();
        let call = call::run(setup);
        tokio::spawn(async move {
            call.await;
            drop(task_alive);
        });
    }

    /// Publishes counters, guard and trunk news.
    fn publish(&mut self) {
        self.counters.rtp_ports_in_use.store(
            (self.ports.total - self.ports.free.len()) as u64,
            Ordering::Relaxed,
        );
        let s = self.ep.stats();
        self.counters
            .sip_received
            .store(s.received, Ordering::Relaxed);
        self.counters
            .sip_malformed
            .store(s.malformed, Ordering::Relaxed);
        self.counters
            .sip_keepalives
            .store(s.keepalives, Ordering::Relaxed);
        self.counters
            .sip_foreign_responses
            .store(s.foreign_responses, Ordering::Relaxed);
        while let Some(ev) = self.guard.poll_event() {
            match ev {
                GuardEvent::Blocked {
                    ip,
                    failures,
                    until,
                } => warn!(
                    source = %ip,
                    failures,
                    seconds = until.saturating_duration_since(Instant::now()).as_secs(),
                    "source blocked after repeated authentication failures"
                ),
                GuardEvent::Unblocked { ip } => info!(source = %ip, "source unblocked"),
            }
        }
        if self.last_prune.elapsed() >= std::time::Duration::from_secs(10) {
            self.guard.forget_idle(Instant::now());
            self.last_prune = Instant::now();
        }
        self.counters.protection.store(&self.guard.stats());
        let mut trunk_news = false;
        while let Some(ev) = self.trunks.poll_event() {
            trunk_news = true;
            log_trunk_event(ev);
        }
        if trunk_news {
            let views = crate::config::trunks::views(
                &self.trunks.status(),
                Instant::now(),
                crate::clock::unix_now(),
            );
            self.counters.trunks.send_replace(Arc::new(views));
        }
    }

    /// Whether a stop has finished: nothing left, or past the hard stop.
    fn stopped(&self) -> bool {
        if let Some(d) = &self.drain {
            let tasks = Arc::strong_count(&self.alive) - 1;
            let done = self.calls.is_empty() && self.legs.is_empty() && tasks == 0;
            let late = d
                .hard_stop
                .is_some_and(|h| tokio::time::Instant::now() >= h);
            if done || late {
                info!(calls = self.calls.len(), tasks, "stopped");
                return true;
            }
        }
        false
    }
}

/// Refuses a new call with 503 and when to try again (seconds).
fn unavailable(ep: &mut Endpoint, now: Instant, call: CallHandle, retry_after: &str) {
    ep.reject(
        now,
        call,
        503,
        "Service Unavailable",
        &[("Retry-After", retry_after)],
    );
}

/// The user part of a `sip:` URI, the number of a `tel:` one (as
/// [`called_number`] reads them), else the URI it
fn user_of(uri: &str) -> String {
    let user = called_number(uri);
    if user.is_empty() {
        uri.to_string()
    } else {
        user
    }
}

/// Whether a call from `source` comes from one of nida's own: an agent's
/// registered or fixed address, or a trusted network.
fn known_source(
    ep: &Endpoint,
    cfg: &Config,
    guard: &Guard,
    source: SocketAddr,
    now: Instant,
) -> bool {
    guard.is_trusted(source.ip())
        || ep
            .registrar()
            .is_some_and(|r| r.user_at(source, now).is_some())
        || cfg.agents.iter().any(|a| {
            a.contact
                .as_deref()
                .and_then(nida_call::static_target)
                .is_some_and(|t| t.dest.ip() == source.ip())
        })
}

fn log_trunk_event(ev: TrunkEvent) {
    match ev {
        TrunkEvent::Registered { trunk, at, expires } => {
            info!(%trunk, %at, expires = expires.as_secs(), "registered to the carrier")
        }
        TrunkEvent::RegistrationFailed { trunk, at, status } => {
            warn!(%trunk, %at, status, "registration to the carrier failed")
        }
        TrunkEvent::Health {
            trunk,
            address,
            health,
        } => info!(%trunk, %address, health = health.as_str(), "trunk address health"),
    }
}

/// Whether the guard lets a message of `len` bytes from `from` through.
fn admit(guard: &mut Guard, now: Instant, from: SocketAddr, len: usize) -> bool {
    match guard.handle_message(now, from.ip(), len) {
        Admit::Pass => true,
        why => {
            debug!(source = %from, len, ?why, "message dropped");
            false
        }
    }
}

/// A feature code dialled by an agent: the state change goes to the centre
/// and the call is answered with a confirmation (prompt, language). The
/// agent is the one registered from (or fixed at) the call's source
/// address; anyone else gets 403.
/// A feature code from an agent's phone. The phone proves whose it is by
/// digest, like its REGISTER (an address proves nothing: UDP sources are
/// forged at will). `Ok(None)`: nida challenged or refused the INVITE
/// itself; `Ok(Some(..))`: the confirmation prompt (name, language).
fn feature_call(
    ep: &mut Endpoint,
    cfg: &Config,
    centre: &crate::centre::CentreHandle,
    inc: &nida_sip::IncomingCall,
    called: &str,
    now: Instant,
) -> Result<Option<Confirmed>, (u16, &'static str)> {
    let Some(user) = ep.authenticate_caller(now, inc.call) else {
        debug!(source = %inc.source, code = %called, "feature code: challenged or refused");
        return Ok(None);
    };
    if let Some(sup) = cfg.supervisors.iter().find(|s| s.user == user) {
        return supervisor_code(cfg, centre, sup, called).map(Some);
    }
    let Some(id) = centre.agents_by_user.get(&user).copied() else {
        warn!(source = %inc.source, code = %called, "feature code from a user who is no agent: 403");
        return Err((403, "Forbidden"));
    };
    let feature = cfg.feature_codes.parse(called).map_err(|why| {
        warn!(agent = id, %why, "unknown feature code: 404");
        (404, "Not Found")
    })?;
    info!(agent = id, code = %called, command = ?feature.command, "feature code");
    let agent = nida_acd::AgentId(id);
    let mut commands = vec![feature.command];
    if commands[0] == crate::config::features::AgentCommand::Ready {
        // Ready from the phone also logs in: the agent meant to take calls.
        commands.insert(0, crate::config::features::AgentCommand::Login);
    }
    for c in commands {
        if centre
            .tx
            .try_send(crate::centre::ToCentre::Agent(agent, c))
            .is_err()
        {
            return Err((503, "Service Unavailable"));
        }
    }
    let language = cfg
        .agents
        .iter()
        .find(|a| a.id == id)
        .and_then(|a| a.languages.first().cloned())
        .unwrap_or_else(|| cfg.language.clone());
    Ok(Some(((feature.prompt.to_string(), language), None)))
}

/// An agent's phone calls a colleague's user (to consult them, then
/// transfer by REFER with `Replaces`): the caller proves by digest to be
/// an agent, the colleague must be available and registered; they are
/// kept out of routing until the call ends. `Ok(None)`: challenged.
fn internal_call(
    ep: &mut Endpoint,
    centre: &crate::centre::CentreHandle,
    inc: &nida_sip::IncomingCall,
    other: u32,
    now: Instant,
) -> Result<Option<(nida_acd::AgentId, nida_call::Target)>, (u16, &'static str)> {
    let Some(user) = ep.authenticate_caller(now, inc.call) else {
        return Ok(None);
    };
    let Some(&me) = centre.agents_by_user.get(&user) else {
        warn!(source = %inc.source, "a call to an agent from a user who is no agent: 403");
        return Err((403, "Forbidden"));
    };
    let free = centre
        .live
        .borrow()
        .agents
        .get(&other)
        .is_some_and(|a| a.state == "available");
    let target = centre
        .agents_by_user
        .iter()
        .find(|(_, id)| **id == other)
        .and_then(|(u, _)| ep.registrar()?.lookup(u, now))
        .map(nida_call::Target::from);
    match (free && me != other, target) {
        (true, Some(t)) => {
            info!(agent = me, colleague = other, "agent calls a colleague");
            let _ = centre.tx.try_send(crate::centre::ToCentre::Agent(
                nida_acd::AgentId(other),
                crate::config::features::AgentCommand::NotReady("consult".into()),
            ));
            Ok(Some((nida_acd::AgentId(other), t)))
        }
        _ => {
            info!(
                agent = me,
                colleague = other,
                "colleague not available: 486"
            );
            Err((486, "Busy Here"))
        }
    }
}

/// A feature call's confirmation (prompt, language) and what the centre
/// is told once it is over.
type Confirmed = ((String, String), Option<crate::centre::ToCentre>);

/// A supervisor's code with an agent's number (`*70` + `12`: listen to
/// agent 12's call): the supervisor hears that nida calls back, and once
/// the confirmation is over nida rings their phone into the call (the
/// centre checks it again). A call they may not join gets its own prompt.
fn supervisor_code(
    cfg: &Config,
    centre: &crate::centre::CentreHandle,
    sup: &crate::config::SupervisorDef,
    called: &str,
) -> Result<Confirmed, (u16, &'static str)> {
    let Some((mode, agent)) = cfg.feature_codes.parse_supervise(called) else {
        warn!(user = %sup.user, code = %called, "unknown supervisor feature code: 404");
        return Err((404, "Not Found"));
    };
    let live = centre.live.borrow().clone();
    let call = live
        .calls
        .values()
        .find(|c| c.agent == Some(agent) && c.state == "talking")
        .filter(|c| sup.may_join(&c.info.queue, agent));
    let language = cfg.language.clone();
    match call {
        Some(c) => {
            info!(user = %sup.user, agent, mode = mode.as_str(), "supervisor code: calling back into the call");
            let (reply, _) = tokio::sync::oneshot::channel();
            let then = crate::centre::ToCentre::Supervise {
                user: sup.user.clone(),
                task: nida_acd::TaskId(c.task),
                mode,
                reply,
            };
            Ok((("supervisor_calling".into(), language), Some(then)))
        }
        None => {
            warn!(user = %sup.user, agent, "supervisor code: no call of that agent they may join");
            Ok((("supervisor_refused".into(), language), None))
        }
    }
}

/// Sends a message that must arrive (an end): when the call's queue is
/// full, a task waits for room. The call holds its own sender, so dropping
/// ours would not tell it.
fn deliver(c: mpsc::Sender<ToCall>, m: ToCall) {
    if let Err(mpsc::error::TrySendError::Full(m)) = c.try_send(m) {
        tokio::spawn(async move {
            let _ = c.send(m).await;
        });
    }
}

/// The dialled number: the user part of a SIP URI, or a tel: number.
fn called_number(uri: &str) -> String {
    if let Some(u) = nida_sip::headers::SipUri::parse(uri) {
        return u.user.unwrap_or_default();
    }
    uri.split_once(':')
        .map(|(_, rest)| rest.split(';').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// The TCP and TLS connections, by transport and peer, and how to open
/// new ones.
struct Conns {
    open: HashMap<(Transport, SocketAddr), mpsc::Sender<Vec<u8>>>,
    connector: Option<TlsConnector>,
    /// The host name a TLS peer's certificate must carry (and nida sends
    /// as SNI): a carrier trunk's domain; other peers by their address.
    names: HashMap<SocketAddr, String>,
    driver: mpsc::Sender<ToDriver>,
    /// Message size and idle time for the connections nida opens too.
    limits: StreamLimits,
}

impl Conns {
    /// Sends over the connection to `dest`, opening one if there is none
    /// (RFC 3261 18.2.2); over TLS the peer's certificate must be valid
    /// for its host name when it has one (a trunk's domain, sent as SNI),
    /// else for its address.
    fn send(&mut self, transport: Transport, dest: SocketAddr, data: Vec<u8>) {
        if let Some(c) = self.open.get(&(transport, dest)) {
            if c.try_send(data).is_err() {
                warn!(%dest, ?transport, "connection backlogged or closed: message dropped");
            }
            return;
        }
        if transport.connection_bound() {
            // A web phone is reached over its own WebSocket only.
            debug!(%dest, ?transport, "the peer's WebSocket is closed: message dropped");
            return;
        }
        let driver = self.driver.clone();
        let limits = self.limits.clone();
        let host = self.names.get(&dest).cloned();
        let tls = match (transport, &self.connector) {
            (Transport::Tls, Some(c)) => Some(c.clone()),
            (Transport::Tls, None) => {
                warn!(%dest, "no TLS connection to the peer and TLS is not configured: message dropped");
                return;
            }
            _ => None,
        };
        tokio::spawn(async move {
            let stream = match TcpStream::connect(dest).await {
                Ok(s) => s,
                Err(e) => {
                    debug!(%dest, error = %e, "connect failed");
                    return;
                }
            };
            let (wtx, wrx) = mpsc::channel(256);
            let _ = wtx.send(data).await;
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    serve_connection(stream, Transport::Tcp, dest, driver, (wtx, wrx), &limits)
                        .await
                }
                Some(connector) => {
                    use tokio_rustls::rustls::pki_types::ServerName;
                    let name = match host.and_then(|h| ServerName::try_from(h).ok()) {
                        Some(n) => n,
                        None => ServerName::IpAddress(dest.ip().into()),
                    };
                    match connector.connect(name, stream).await {
                        Ok(s) => {
                            serve_connection(s, Transport::Tls, dest, driver, (wtx, wrx), &limits)
                                .await
                        }
                        Err(e) => warn!(%dest, error = %e, "TLS handshake failed"),
                    }
                }
            }
        });
    }
}

/// What bounds the stream connections of both listeners (TCP, TLS).
#[derive(Clone)]
struct StreamLimits {
    /// Open connections, in total and per source network.
    admission: crate::sip::listen::Admission,
    /// Largest message, refused at its header.
    max_message: usize,
    /// A connection silent this long between messages is closed.
    idle: std::time::Duration,
    /// Where the keep-alive pings are counted.
    counters: Arc<Counters>,
}

/// Time for a message that has begun to arrive whole, and for a TLS
/// handshake: a peer trickling bytes holds its connection no longer.
const MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts TCP connections (TLS ones when `tls` is given) within
/// `limits`.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    driver: mpsc::Sender<ToDriver>,
    limits: StreamLimits,
) {
    let what = if tls.is_some() { "SIP TLS" } else { "SIP TCP" };
    loop {
        let (stream, peer, slot) = limits.admission.accept(&listener, what).await;
        let _ = stream.set_nodelay(true);
        let (wtx, wrx) = mpsc::channel(256);
        let driver = driver.clone();
        let limits = limits.clone();
        match tls.clone() {
            None => {
                tokio::spawn(async move {
                    let _slot = slot;
                    serve_connection(stream, Transport::Tcp, peer, driver, (wtx, wrx), &limits)
                        .await
                });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let _slot = slot;
                    // A peer that never finishes the handshake does not
                    // hold its slot for ever.
                    let handshake = tokio::time::timeout(MESSAGE_TIMEOUT, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(s)) => {
                            serve_connection(s, Transport::Tls, peer, driver, (wtx, wrx), &limits)
                                .await
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Reads framed messages from a connection and writes what the driver
/// sends. The connection closes when a message is too large, when a
/// begun message does not arrive whole within [`MESSAGE_TIMEOUT`], or
/// when nothing arrives for the idle time.
async fn serve_connection<S>(
    stream: S,
    transport: Transport,
    peer: SocketAddr,
    driver: mpsc::Sender<ToDriver>,
    (wtx, mut wrx): (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>),
    limits: &StreamLimits,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let pong = wtx.clone();
    if driver
        .send(ToDriver::StreamOpen(transport, peer, wtx))
        .await
        .is_err()
    {
        return;
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        while let Some(data) = wrx.recv().await {
            if wr.write_all(&data).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let mut framer = StreamFramer::with_limit(limits.max_message);
    let mut buf = vec![0u8; 16384];
    'read: loop {
        let wait = if framer.pending() {
            MESSAGE_TIMEOUT
        } else {
            limits.idle
        };
        let n = match tokio::time::timeout(wait, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
            Err(_) => {
                debug!(%peer, ?transport, "connection silent too long: closing");
                break;
            }
        };
        framer.push(&buf[..n]);
        loop {
            let message = framer.next_message();
            // RFC 5626 3.5.1: a double-CRLF ping gets a CRLF pong.
            let pings = framer.take_pings();
            if pings > 0 {
                limits
                    .counters
                    .sip_pings
                    .fetch_add(pings as u64, Ordering::Relaxed);
                if pong.send(b"\r\n".to_vec()).await.is_err() {
                    break 'read;
                }
            }
            match message {
                Ok(Some(msg)) => {
                    let m = ToDriver::StreamMessage(transport, peer, msg);
                    if driver.send(m).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, ?transport, error = %e, "closing connection");
                    break 'read;
                }
            }
        }
    }
    let _ = driver.send(ToDriver::StreamClosed(transport, peer)).await;
    writer.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn called_numbers() {
        assert_eq!(called_number("sip:901@127.0.0.1:5060"), "901");
        assert_eq!(
            called_number("tel:+97143131901;phone-context=x"),
            "+97143131901"
        );
        assert_eq!(called_number("sip:127.0.0.1"), "");
        // A caller's identity: the URI itself when it has no user.
        assert_eq!(user_of("sip:0501234567@192.0.2.1"), "0501234567");
        assert_eq!(user_of("tel:+971501234567;x=y"), "+971501234567");
        assert_eq!(user_of("sip:192.0.2.1"), "sip:192.0.2.1");
    }

    #[test]
    fn rtp_ports_are_even_and_skip_nidas_own_ports() {
        let cfg = Config {
            sip_addr: "127.0.0.1:20004".parse().unwrap(),
            http_addr: "127.0.0.1:20009".parse().unwrap(),
            rtp_ports: crate::config::PortRange {
                first: 20001,
                last: 20012,
            },
            ..Config::default()
        };
        let ports: Vec<u16> = Ports::new(&cfg).free.into_iter().collect();
        // 20004 is SIP, 20008's RTCP port would be HTTP's 20009, and
        // 20012's RTCP port 20013 lies outside the range.
        assert_eq!(ports, vec![20002, 20006, 20010]);
    }
}
