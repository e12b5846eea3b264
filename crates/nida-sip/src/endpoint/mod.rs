//! The SIP endpoint: nida's user-agent server core (RFC 3261 sections 8, 12,
//! 13, 15, 17 and RFC 3581), sans-IO.
//!
//! It owns every transaction and dialog. The shell feeds it datagrams or
//! framed stream messages with [`Endpoint::handle_message`], fires timers with
//! [`Endpoint::handle_timeout`], and drains [`Endpoint::poll_transmit`] and
//! [`Endpoint::poll_event`]. The application answers with
//! [`Endpoint::ringing`], [`Endpoint::answer`], [`Endpoint::reject`] and
//! [`Endpoint::hangup`]. Every call that is reported by [`Event::Incoming`]
//! is reported exactly once by [`Event::Ended`].
//!
//! ```text
//!   loop {
//!       select! { datagram => ep.handle_message(now, transport, from, &bytes),
//!                 sleep_until(ep.poll_timeout()) => ep.handle_timeout(now) }
//!       while let Some(t) = ep.poll_transmit() { socket.send_to(&t.data, t.dest) }
//!       while let Some(e) = ep.poll_event() { app.handle(e) }
//!   }
//! ```

use crate::headers::{NameAddr, SipUri, Via};
use crate::message::{self, Headers, Message, Method, Request, Response};
use crate::offer_answer::OfferAnswer;
use crate::registrar::{Binding, Change, Registrar};
use crate::rng::Rng;
use crate::sdp::{Negotiated, SessionDescription};
use crate::session_timer::{SessionTimer, TimerWish};
use crate::transaction::{
    ClientInvite, ClientNonInvite, ClientVerdict, ServerInvite, ServerNonInvite, Termination,
    TimerConfig, TxAction, TxState,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Methods nida accepts, for Allow headers.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, UPDATE, PRACK";

/// Option tags nida serves (RFC 3262 reliable provisionals, RFC 4028
/// session timers), for Supported headers and Require checks.
pub const SUPPORTED: &str = "100rel, replaces, timer";

mod dialog;

/// RFC 3261 branch magic cookie.
const COOKIE: &str = "z9hG4bK";

/// A transport a message came in on or goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// A TCP connection (messages framed by Content-Length).
    Tcp,
    /// A TLS connection (framed like TCP).
    Tls,
    /// A WebSocket (RFC 7118): one SIP message per WebSocket message, on
    /// a connection the peer opened to the HTTP listener.
    Ws,
    /// A WebSocket over TLS.
    Wss,
}

impl Transport {
    /// Whether the transport retransmits by itself.
    pub fn reliable(self) -> bool {
        self != Transport::Udp
    }

    /// Whether the signalling is encrypted (SDES keys may travel in it).
    pub fn secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// Whether the peer is reached only over the connection it opened (a
    /// WebSocket: its Contact's host is not an address, RFC 7118 5.2), so
    /// the connection's end is the end of its registration and calls.
    pub fn connection_bound(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }

    /// The `transport` URI parameter for it (RFC 3261 19.1.1, RFC 7118).
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
            Transport::Ws => ";transport=ws",
            Transport::Wss => ";transport=wss",
        }
    }

    fn token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }
}

/// Bytes to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport to use (for TCP, the connection to `dest`).
    pub transport: Transport,
    /// Destination address.
    pub dest: SocketAddr,
    /// One whole SIP message.
    pub data: Vec<u8>,
}

/// Settings of an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The address written into Via and Contact.
    pub local_addr: SocketAddr,
    /// Transaction timer values.
    pub timers: TimerConfig,
    /// Value of the Server and User-Agent headers.
    pub user_agent: String,
    /// Tags, branches and Call-IDs come from a ChaCha20 generator keyed
    /// from the OS CSPRNG (`None`); a seed makes them repeat, for
    /// reproducible tests only.
    pub seed: Option<u64>,
    /// Session timers (RFC 4028) nida asks for and accepts.
    pub session_timer: TimerWish,
}

/// A call nida places (see [`Endpoint::invite`]).
#[derive(Debug, Clone)]
pub struct Invite {
    /// Request-URI.
    pub uri: String,
    /// Where the INVITE goes.
    pub dest: SocketAddr,
    /// Over what.
    pub transport: Transport,
    /// The user part of From.
    pub from_user: String,
    /// The audio negotiation; its offer goes in the INVITE.
    pub media: OfferAnswer,
    /// Offer reliable provisional responses (`Supported: 100rel`, RFC
    /// 3262), as some trunks ask.
    pub rel100: bool,
}

/// A request outside any dialog that the application sends (REGISTER,
/// OPTIONS): it gives From, To, Call-ID, CSeq and what else the method
/// needs; the endpoint adds Via, Max-Forwards and User-Agent, runs the
/// client transaction and reports the final response as
/// [`Event::Response`] with `tag`.
#[derive(Debug, Clone)]
pub struct OutRequest {
    /// Chosen by the application to match the response.
    pub tag: u64,
    /// The method.
    pub method: Method,
    /// Request-URI.
    pub uri: String,
    /// Where it goes.
    pub dest: SocketAddr,
    /// Over what.
    pub transport: Transport,
    /// Headers besides Via, Max-Forwards and User-Agent.
    pub headers: Headers,
}

/// Identifies a call for the life of the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// A new INVITE that created a call.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    /// The handle to answer with.
    pub call: CallHandle,
    /// SIP Call-ID (for log spans).
    pub call_id: String,
    /// The From header.
    pub from: NameAddr,
    /// The To header.
    pub to: NameAddr,
    /// The Request-URI (the number dialled).
    pub request_uri: String,
    /// The SDP offer, `None` for a late offer.
    pub offer: Option<SessionDescription>,
    /// Transport of the INVITE.
    pub transport: Transport,
    /// Source address of the INVITE.
    pub source: SocketAddr,
    /// The identity in `P-Asserted-Identity` (RFC 3325), if any. Only a
    /// trusted peer (a trunk's network) may assert one: the application
    /// decides whether to believe it.
    pub asserted: Option<NameAddr>,
    /// The dialog this INVITE's `Replaces` (RFC 3891) names: it is to
    /// take that dialog's place. The application decides whether the
    /// caller may.
    pub replaces: Option<crate::headers::Replaces>,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    RemoteBye,
    /// nida hung up (BYE sent).
    LocalBye,
    /// The caller cancelled before answer (487 sent).
    Cancelled,
    /// nida answered with this final non-2xx status.
    Rejected(u16),
    /// The 2xx was never acknowledged; nida sent BYE (RFC 3261 13.3.1.4).
    NoAck,
    /// A call nida placed was refused with this status.
    Refused(u16),
    /// A call nida placed got no final answer (Timer B).
    NoAnswer,
    /// The session timer ran out without a refresh (RFC 4028 10), or a
    /// refresh failed; nida sent BYE.
    SessionExpired,
    /// The connection the peer is reached over only (its WebSocket)
    /// closed: nothing more can be said to it.
    ConnectionClosed,
}

/// What the endpoint reports to the application.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new call to answer or reject.
    Incoming(Box<IncomingCall>),
    /// The ACK for the 2xx arrived; `sdp` is the answer of a late offer.
    Confirmed {
        /// Which call.
        call: CallHandle,
        /// SDP carried by the ACK, if any.
        sdp: Option<SessionDescription>,
    },
    /// A call nida placed got a provisional response.
    Progress {
        /// Which call.
        call: CallHandle,
        /// The status (180, 183, ...).
        status: u16,
    },
    /// A call nida placed was answered; the ACK has been sent.
    Answered {
        /// Which call.
        call: CallHandle,
        /// The SDP of the 2xx.
        sdp: Option<SessionDescription>,
    },
    /// The peer asked, inside a call, to transfer it (REFER, RFC 3515);
    /// it has been answered 202 and waits for
    /// [`Endpoint::notify_refer`].
    Refer {
        /// Which call.
        call: CallHandle,
        /// The Refer-To URI (without its angle brackets and parameters
        /// of the header).
        target: String,
    },
    /// The peer sent a key by SIP INFO (`application/dtmf-relay` or
    /// `application/dtmf`), already answered 200.
    Dtmf {
        /// Which call.
        call: CallHandle,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
    },
    /// An offer and answer inside the dialog changed the media: where to
    /// send, the codec, the direction (hold, resume), the peer's SRTP key.
    Media {
        /// Which call.
        call: CallHandle,
        /// What the media runs on now.
        media: Negotiated,
    },
    /// A user registered a contact (or moved to another).
    Registered(Binding),
    /// A user's registration was removed or lapsed.
    Unregistered {
        /// The user.
        user: String,
    },
    /// A REGISTER's credentials were refused (403: wrong user or wrong
    /// password, the same answer for both).
    AuthFailed {
        /// Where it came from.
        source: SocketAddr,
    },
    /// A REGISTER's credentials were accepted.
    AuthSucceeded {
        /// Where it came from.
        source: SocketAddr,
    },
    /// The final response to a request sent with [`Endpoint::request`]
    /// (`408` when none came before the transaction timed out).
    Response {
        /// The tag the request was sent with.
        tag: u64,
        /// The status.
        status: u16,
        /// The response's headers (challenges, Expires, Contact).
        headers: Headers,
    },
    /// The call is over; the handle is no longer valid.
    Ended {
        /// Which call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
    },
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages received.
    pub received: u64,
    /// Messages that failed to parse or validate.
    pub malformed: u64,
    /// Messages dropped without an answer (unreadable request line or Via).
    pub dropped: u64,
    /// Responses dropped because they came from another address or
    /// connection than the one the request went to (a forged answer).
    pub foreign_responses: u64,
    /// Calls live now.
    pub calls: u64,
    /// CRLF keep-alives received over UDP (RFC 5626 3.5.1; ignored, and
    /// not malformed).
    pub keepalives: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// nida's INVITE is out, no final response yet.
    Calling,
    Early,
    Answered,
    Confirmed,
}

#[derive(Debug)]
struct Pending2xx {
    bytes: Vec<u8>,
    cseq: u32,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

#[derive(Debug)]
struct Call {
    state: CallState,
    call_id: String,
    local_tag: String,
    /// From of the caller, as received (our To in requests we send).
    remote: String,
    /// To of the INVITE with our tag (our From in requests we send).
    local: String,
    remote_target: String,
    route_set: Vec<String>,
    transport: Transport,
    peer: SocketAddr,
    invite: Request,
    invite_tx: String,
    invite_dest: SocketAddr,
    local_cseq: u32,
    pending_2xx: Option<Pending2xx>,
    /// For calls nida placed: the last RSeq acknowledged by PRACK.
    pracked: u32,
    hangup_after_ack: bool,
    /// The dialog's offers and answers (what nida sent, what runs, hold).
    media: Option<OfferAnswer>,
    /// The session timer, once agreed (RFC 4028).
    timer: Option<SessionTimer>,
    /// The agreement made on the INVITE, started with the 2xx.
    timer_agreed: Option<crate::session_timer::Agreement>,
    /// A re-INVITE or UPDATE of nida's in progress.
    out: Option<dialog::OutRequest>,
    /// After a 491, when to send the offer again (RFC 3261 14.1).
    retry_offer: Option<Instant>,
    /// The peer listed UPDATE in Allow: refreshes go by UPDATE.
    peer_update: bool,
    /// Reliable provisional responses (RFC 3262) to send, or sent.
    rel100: Option<dialog::Reliable>,
    /// For calls nida placed: the ACK of the 2xx, resent when the 2xx is.
    uac_ack: Option<Vec<u8>>,
    /// For calls nida placed: user and password to answer one digest
    /// challenge with (taken when used).
    credentials: Option<(String, String)>,
    scheduled: Option<Instant>,
}

impl Call {
    /// A request inside the dialog (RFC 3261 12.2.1.1) on a new branch.
    fn dialog_request(
        &self,
        method: Method,
        cseq: u32,
        branch: &str,
        local: SocketAddr,
    ) -> Request {
        let mut h = Headers::default();
        h.push(
            "Via",
            format!(
                "SIP/2.0/{} {local};branch={branch};rport",
                self.transport.token()
            ),
        );
        h.push("Max-Forwards", "70");
        h.push("From", self.local.as_str());
        h.push("To", self.remote.as_str());
        h.push("Call-ID", self.call_id.as_str());
        h.push("CSeq", format!("{cseq} {method}"));
        for r in &self.route_set {
            h.push("Route", r.as_str());
        }
        Request {
            method,
            uri: self.remote_target.clone(),
            headers: h,
            body: Vec::new(),
        }
    }

    /// Where requests inside the dialog go: the first route, else the
    /// remote target; over TCP, the connection the call uses.
    fn next_hop(&self) -> SocketAddr {
        let target = self
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .map(|r| r.uri)
            .unwrap_or_else(|| self.remote_target.clone());
        match self.transport {
            Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss => self.peer,
            Transport::Udp => SipUri::parse(&target)
                .and_then(|u| u.socket_addr())
                .unwrap_or(self.peer),
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        [
            self.pending_2xx.as_ref().map(|p| p.next.min(p.give_up)),
            self.timer.map(|t| t.deadline()),
            self.retry_offer,
            self.rel100.as_ref().and_then(dialog::Reliable::next_timer),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[derive(Debug)]
enum ServerTxKind {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

#[derive(Debug)]
struct ServerTx {
    kind: ServerTxKind,
    transport: Transport,
    dest: SocketAddr,
    call: Option<CallHandle>,
    /// For an INVITE: its entry in the merged-request map, removed with it.
    merge: Option<(String, String, u32)>,
    scheduled: Option<Instant>,
}

impl ServerTx {
    fn next_timer(&self) -> Option<Instant> {
        match &self.kind {
            ServerTxKind::Invite(t) => t.timers.next(),
            ServerTxKind::NonInvite(t) => t.timers.next(),
        }
    }
}

#[derive(Debug)]
struct ClientTx {
    kind: ClientKind,
    transport: Transport,
    dest: SocketAddr,
    call: Option<CallHandle>,
    /// For a request of the application's: its tag.
    tag: Option<u64>,
    scheduled: Option<Instant>,
}

#[derive(Debug)]
enum ClientKind {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

impl ClientTx {
    fn next_timer(&self) -> Option<Instant> {
        match &self.kind {
            ClientKind::Invite(t) => t.timers.next(),
            ClientKind::NonInvite(t) => t.timers.next(),
        }
    }
}

/// What a client transaction is for.
#[derive(Debug, Clone, Copy)]
enum TxStart {
    /// An INVITE of this call (the first, or a re-INVITE).
    Invite(CallHandle),
    /// A request inside this call's dialog (UPDATE, PRACK, BYE, NOTIFY).
    InDialog(CallHandle),
    /// Another request; with a tag when the application sent it.
    NonInvite(Option<u64>),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Server(String),
    Client(String),
    Call(CallHandle),
}

/// The SIP user-agent server core.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    rng: Rng,
    next_handle: u64,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, local tag) to call.
    dialogs: HashMap<(String, String), CallHandle>,
    /// (Call-ID, From tag, CSeq) of live INVITE transactions, to spot merged
    /// requests (RFC 3261 8.2.2.2).
    invites: HashMap<(String, String, u32), String>,
    server_txs: HashMap<String, ServerTx>,
    client_txs: HashMap<String, ClientTx>,
    heap: BinaryHeap<Reverse<(Instant, Owner)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    registrar: Option<Registrar>,
    /// Set while the application stops: OPTIONS is answered 503.
    draining: bool,
    /// The TLS listener's address, for Via and Contact over TLS.
    tls_addr: Option<SocketAddr>,
    /// When the maps are next looked at for room a burst left.
    next_shrink: Option<Instant>,
}

/// How often the maps are looked at for room a burst left.
const SHRINK_EVERY: Duration = Duration::from_secs(10);

/// One of the endpoint's tables, as far as its room goes.
trait Table {
    fn len(&self) -> usize;
    fn capacity(&self) -> usize;
    fn shrink_to(&mut self, n: usize);

    /// Far more room than entries: a burst of calls grew the table and it
    /// would keep that room for good (tens of MiB after thousands of
    /// calls a second).
    fn roomy(&self) -> bool {
        self.capacity() > 256 && self.len() * 4 < self.capacity()
    }

    /// Gives most of the spare room back.
    fn fit(&mut self) {
        if self.roomy() {
            self.shrink_to(self.len() * 2);
        }
    }
}

impl<K: Eq + std::hash::Hash, V> Table for HashMap<K, V> {
    fn len(&self) -> usize {
        HashMap::len(self)
    }
    fn capacity(&self) -> usize {
        HashMap::capacity(self)
    }
    fn shrink_to(&mut self, n: usize) {
        HashMap::shrink_to(self, n)
    }
}

impl<T: Ord> Table for BinaryHeap<T> {
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
    fn capacity(&self) -> usize {
        BinaryHeap::capacity(self)
    }
    fn shrink_to(&mut self, n: usize) {
        BinaryHeap::shrink_to(self, n)
    }
}

impl<T> Table for VecDeque<T> {
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
    fn capacity(&self) -> usize {
        VecDeque::capacity(self)
    }
    fn shrink_to(&mut self, n: usize) {
        VecDeque::shrink_to(self, n)
    }
}

/// The address nida names in Via and Contact for a transport: the TLS
/// listener's for TLS, else the main one.
fn sent_by(local: SocketAddr, tls: Option<SocketAddr>, transport: Transport) -> SocketAddr {
    match (transport, tls) {
        (Transport::Tls, Some(addr)) => addr,
        _ => local,
    }
}

/// Where the server sends responses to a request (RFC 3261 18.2.2, RFC 3581).
fn response_dest(via: &Via, source: SocketAddr, transport: Transport) -> SocketAddr {
    if transport.reliable() || via.params.has("rport") {
        source
    } else {
        SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
    }
}

/// The transaction key of a request (RFC 3261 17.2.3); ACK and CANCEL are
/// keyed to the INVITE they refer to by the caller choosing the method.
fn tx_key(req: &Request, via: &Via, method: &Method) -> String {
    match via.branch() {
        Some(b) if b.starts_with(COOKIE) => format!("{b}|{}|{method}", via.sent_by()),
        _ => {
            // RFC 2543 peers: fall back on the dialog identifiers.
            let from_tag = NameAddr::parse(req.headers.get("From").unwrap_or_default())
                .ok()
                .and_then(|n| n.tag().map(str::to_string))
                .unwrap_or_default();
            let cseq = req.cseq().map(|c| c.0).unwrap_or(0);
            format!(
                "{}|{from_tag}|{cseq}|{}|{method}",
                req.call_id(),
                via.sent_by()
            )
        }
    }
}

impl Endpoint {
    /// A new endpoint.
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpoint {
            rng: Rng::new(cfg.seed),
            cfg,
            next_handle: 1,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            heap: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            registrar: None,
            draining: false,
            tls_addr: None,
            next_shrink: None,
        }
    }

    /// The address of the TLS listener: Via and Contact of messages over
    /// TLS name it.
    pub fn set_tls_addr(&mut self, addr: SocketAddr) {
        self.tls_addr = Some(addr);
    }

    /// Marks the endpoint as stopping: from now on OPTIONS outside a
    /// dialog is answered `503 Service Unavailable` with `Retry-After`, so
    /// a dispatcher or carrier probing with OPTIONS stops sending calls
    /// here while the live ones finish.
    pub fn set_draining(&mut self) {
        self.draining = true;
    }

    /// Serves REGISTER with this registrar (without one, REGISTER gets
    /// `405`).
    pub fn set_registrar(&mut self, registrar: Registrar) {
        self.registrar = Some(registrar);
    }

    /// The registrar, if any.
    pub fn registrar(&self) -> Option<&Registrar> {
        self.registrar.as_ref()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            calls: self.calls.len() as u64,
            ..self.stats
        }
    }

    /// Number of live transactions (server and client).
    pub fn transactions(&self) -> usize {
        self.server_txs.len() + self.client_txs.len()
    }

    /// Next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tx = self.heap.peek().map(|Reverse((at, _))| *at);
        let reg = self.registrar.as_ref().and_then(Registrar::next_expiry);
        let shrink = self.next_shrink.filter(|_| self.is_roomy());
        [tx, reg, shrink].into_iter().flatten().min()
    }

    /// How many entries the endpoint's tables have room for now (their
    /// capacity, not their length): what a burst of calls leaves behind
    /// until the tables are given back their spare room.
    pub fn table_room(&self) -> usize {
        self.tables().iter().map(|t| t.capacity()).sum()
    }

    /// Every table a burst of calls grows.
    fn tables(&self) -> [&dyn Table; 8] {
        [
            &self.calls,
            &self.dialogs,
            &self.invites,
            &self.server_txs,
            &self.client_txs,
            &self.heap,
            &self.transmits,
            &self.events,
        ]
    }

    /// Whether some table holds far more room than entries.
    fn is_roomy(&self) -> bool {
        self.tables().iter().any(|t| t.roomy())
    }

    /// Gives back the room a burst left in the tables, at most once per
    /// [`SHRINK_EVERY`].
    fn shrink_if_due(&mut self, now: Instant) {
        match self.next_shrink {
            None => self.next_shrink = Some(now + SHRINK_EVERY),
            Some(at) if at <= now => {
                let tables: [&mut dyn Table; 8] = [
                    &mut self.calls,
                    &mut self.dialogs,
                    &mut self.invites,
                    &mut self.server_txs,
                    &mut self.client_txs,
                    &mut self.heap,
                    &mut self.transmits,
                    &mut self.events,
                ];
                for t in tables {
                    t.fit();
                }
                self.next_shrink = Some(now + SHRINK_EVERY);
            }
            Some(_) => {}
        }
    }

    /// A connection ended. A peer reached only over it (a WebSocket, RFC
    /// 7118) is gone with it: its registration is removed
    /// ([`Event::Unregistered`]) and its calls end ([`Event::Ended`] with
    /// [`EndReason::ConnectionClosed`]). Other transports' peers may
    /// connect again and are left alone.
    pub fn connection_closed(&mut self, transport: Transport, peer: SocketAddr) {
        if !transport.connection_bound() {
            return;
        }
        if let Some(reg) = self.registrar.as_mut() {
            for user in reg.drop_connection(transport, peer) {
                self.events.push_back(Event::Unregistered { user });
            }
        }
        let gone: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, c)| c.transport == transport && c.peer == peer)
            .map(|(h, _)| *h)
            .collect();
        for h in gone {
            self.end_call(h, EndReason::ConnectionClosed);
        }
    }

    /// Feeds one message received from `source`.
    pub fn handle_message(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        data: &[u8],
    ) {
        self.next_shrink.get_or_insert(now + SHRINK_EVERY);
        if !data.is_empty() && data.iter().all(|b| *b == b'\r' || *b == b'\n') {
            // A keep-alive (phones send CRLF CRLF every 30 s or so): no
            // message, nothing to answer over UDP.
            self.stats.keepalives += 1;
            return;
        }
        self.stats.received += 1;
        match message::parse(data) {
            Ok(Message::Request(req)) => {
                if let Err(e) = req.validate() {
                    self.stats.malformed += 1;
                    self.answer_malformed(&req, e, transport, source);
                } else {
                    self.handle_request(now, req, transport, source);
                }
            }
            Ok(Message::Response(resp)) => self.handle_response(now, resp, transport, source),
            Err(err) => {
                self.stats.malformed += 1;
                match err.partial {
                    Some(req) => self.answer_malformed(&req, err.error, transport, source),
                    None => {
                        self.stats.dropped += 1;
                        debug!(%source, error = %err.error, "dropped unreadable message");
                    }
                }
            }
        }
    }

    fn answer_malformed(
        &mut self,
        req: &Request,
        err: crate::Error,
        transport: Transport,
        source: SocketAddr,
    ) {
        let crate::Error::Malformed { status, reason } = err else {
            return;
        };
        debug!(%source, status, %reason, "malformed request");
        // Never answer an ACK; without the headers a response needs, drop.
        let via = req
            .headers
            .list("Via")
            .next()
            .and_then(|v| Via::parse(v).ok());
        // The answer repeats these: none may be missing, none may carry a
        // control character back to the sender.
        let complete = ["Via", "From", "To", "Call-ID", "CSeq"].iter().all(|h| {
            req.headers
                .get(h)
                .is_some_and(|v| !crate::message::has_control(v))
        });
        match via {
            Some(via) if req.method != Method::Ack && complete => {
                let reason = reason.replace(['\r', '\n'], " ");
                let tag = self.rng.hex();
                let resp = self.response(req, &via, source, status, &reason, Some(&tag));
                let dest = response_dest(&via, source, transport);
                self.send(transport, dest, resp.to_bytes());
            }
            _ => self.stats.dropped += 1,
        }
    }

    /// Builds a response to `req`, copying the headers RFC 3261 8.2.6.2 asks
    /// for and adding received/rport to the top Via.
    fn response(
        &self,
        req: &Request,
        top: &Via,
        source: SocketAddr,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Response {
        let mut h = Headers::default();
        for (i, v) in req.headers.list("Via").enumerate() {
            if i == 0 {
                let mut v = v.to_string();
                if top.host != source.ip().to_string() {
                    v.push_str(&format!(";received={}", source.ip()));
                }
                if top.params.has("rport") && top.params.value("rport").is_none() {
                    v = rewrite_rport(&v, source.port());
                }
                h.push("Via", v);
            } else {
                h.push("Via", v);
            }
        }
        for name in ["From", "Call-ID", "CSeq"] {
            if let Some(v) = req.headers.get(name) {
                h.push(name, v);
            }
        }
        let mut to = req.headers.get("To").unwrap_or_default().to_string();
        if let (Some(tag), Ok(n)) = (to_tag, NameAddr::parse(&to)) {
            if n.tag().is_none() && status > 100 {
                to.push_str(&format!(";tag={tag}"));
            }
        }
        h.push("To", to);
        h.push("Server", self.cfg.user_agent.as_str());
        Response {
            status,
            reason: reason.to_string(),
            headers: h,
            body: Vec::new(),
        }
    }

    fn send(&mut self, transport: Transport, dest: SocketAddr, data: Vec<u8>) {
        self.transmits.push_back(Transmit {
            transport,
            dest,
            data,
        });
    }

    fn schedule(&mut self, owner: Owner, next: Option<Instant>) {
        let slot = match &owner {
            Owner::Server(k) => self.server_txs.get_mut(k).map(|t| &mut t.scheduled),
            Owner::Client(k) => self.client_txs.get_mut(k).map(|t| &mut t.scheduled),
            Owner::Call(h) => self.calls.get_mut(h).map(|c| &mut c.scheduled),
        };
        let (Some(slot), Some(next)) = (slot, next) else {
            return;
        };
        if slot.is_none_or(|s| next < s) {
            *slot = Some(next);
            self.heap.push(Reverse((next, owner)));
        }
    }

    fn reschedule_server(&mut self, key: &str) {
        let next = self.server_txs.get(key).and_then(ServerTx::next_timer);
        self.schedule(Owner::Server(key.to_string()), next);
    }

    /// Sends a response through a server transaction and remembers it for
    /// retransmissions.
    fn respond_in_tx(&mut self, now: Instant, key: &str, status: u16, bytes: Vec<u8>) {
        let Some(tx) = self.server_txs.get_mut(key) else {
            return;
        };
        let ok = match &mut tx.kind {
            ServerTxKind::Invite(t) => t.send_response(now, status, bytes.clone()),
            ServerTxKind::NonInvite(t) => t.send_response(now, status, bytes.clone()),
        };
        if ok {
            let (transport, dest) = (tx.transport, tx.dest);
            self.send(transport, dest, bytes);
            self.reschedule_server(key);
        }
    }

    /// Answers a non-INVITE request statelessly-correct: a server transaction
    /// keeps the response for retransmissions.
    fn reply(
        &mut self,
        now: Instant,
        ctx: &RequestCtx,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = self.rng.hex();
        let mut resp = self.response(&ctx.req, &ctx.via, ctx.source, status, reason, Some(&tag));
        for (k, v) in extra {
            resp.headers.push(k, *v);
        }
        let key = tx_key(&ctx.req, &ctx.via, &ctx.req.method);
        self.new_server_tx(&key, false, ctx);
        self.respond_in_tx(now, &key, status, resp.to_bytes());
    }

    fn handle_request(
        &mut self,
        now: Instant,
        req: Request,
        transport: Transport,
        source: SocketAddr,
    ) {
        let Ok(via) = req.top_via() else { return };
        let dest = response_dest(&via, source, transport);
        // Retransmission of a request whose transaction is still alive.
        let match_method = if req.method == Method::Ack {
            Method::Invite
        } else {
            req.method.clone()
        };
        let key = tx_key(&req, &via, &match_method);
        if let Some(tx) = self.server_txs.get_mut(&key) {
            let (transport, tx_dest) = (tx.transport, tx.dest);
            let resend = match (&mut tx.kind, &req.method) {
                (ServerTxKind::Invite(t), Method::Ack) => {
                    if t.state() != TxState::Completed {
                        // An ACK for a 2xx reusing the INVITE's branch
                        // belongs to the dialog, not to the transaction.
                        self.handle_ack(
                            now,
                            &RequestCtx {
                                req,
                                via,
                                source,
                                dest,
                                transport,
                            },
                        );
                        return;
                    }
                    t.handle_ack(now);
                    None
                }
                (ServerTxKind::Invite(t), _) => t.handle_request_retransmission(),
                (ServerTxKind::NonInvite(t), _) => t.handle_request_retransmission(),
            };
            if let Some(r) = resend {
                self.send(transport, tx_dest, r);
            }
            self.reschedule_server(&key);
            return;
        }
        let ctx = RequestCtx {
            req,
            via,
            source,
            dest,
            transport,
        };
        if ctx.req.method != Method::Ack {
            // RFC 3261 8.2.2.1 and 8.2.2.3, for every request but ACK (and
            // CANCEL, which carries the INVITE's Require).
            if !is_supported_uri(&ctx.req.uri) {
                self.reply(now, &ctx, 416, "Unsupported URI Scheme", &[]);
                return;
            }
            if ctx.req.method != Method::Cancel {
                let unknown: Vec<&str> = ctx
                    .req
                    .headers
                    .all("Require")
                    .flat_map(message::split_list)
                    .map(str::trim)
                    .filter(|t| {
                        !message::split_list(SUPPORTED)
                            .iter()
                            .any(|s| s.eq_ignore_ascii_case(t))
                    })
                    .collect();
                if !unknown.is_empty() {
                    let tags = unknown.join(", ");
                    self.reply(now, &ctx, 420, "Bad Extension", &[("Unsupported", &tags)]);
                    return;
                }
            }
        }
        match ctx.req.method {
            Method::Ack => self.handle_ack(now, &ctx),
            Method::Invite => self.handle_invite(now, ctx),
            Method::Cancel => self.handle_cancel(now, &ctx),
            Method::Bye => self.handle_bye(now, &ctx),
            Method::Options if self.draining && self.dialog_of(&ctx.req).is_none() => {
                let extra = [("Retry-After", "30"), ("Allow", ALLOW)];
                self.reply(now, &ctx, 503, "Service Unavailable", &extra);
            }
            Method::Options => {
                let extra = [
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Supported", SUPPORTED),
                ];
                self.reply(now, &ctx, 200, "OK", &extra);
            }
            Method::Info => self.handle_info(now, &ctx),
            Method::Refer => self.handle_refer(now, &ctx),
            Method::Update => self.handle_update(now, &ctx),
            Method::Prack => self.handle_prack(now, &ctx),
            Method::Register if self.registrar.is_some() => self.handle_register(now, &ctx),
            Method::Other(_) => self.reply(now, &ctx, 501, "Not Implemented", &[("Allow", ALLOW)]),
            _ => self.reply(now, &ctx, 405, "Method Not Allowed", &[("Allow", ALLOW)]),
        }
    }

    /// INFO in a dialog: a key by `application/dtmf-relay` or
    /// `application/dtmf` becomes [`Event::Dtmf`]; an empty INFO (a
    /// carrier probing the dialog) is answered 200; other bodies 415.
    fn handle_info(&mut self, now: Instant, ctx: &RequestCtx) {
        let Some(call) = self.dialog_of(&ctx.req) else {
            self.reply(now, ctx, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        };
        if ctx.req.body.is_empty() {
            self.reply(now, ctx, 200, "OK", &[]);
            return;
        }
        let kind = ctx.req.headers.get("Content-Type").unwrap_or("");
        match crate::dtmf::info_digit(kind, &ctx.req.body) {
            Ok(digit) => {
                self.reply(now, ctx, 200, "OK", &[]);
                self.events.push_back(Event::Dtmf { call, digit });
            }
            Err(crate::dtmf::InfoError::Unsupported) => {
                let accept = ("Accept", crate::dtmf::INFO_TYPES);
                self.reply(now, ctx, 415, "Unsupported Media Type", &[accept]);
            }
            Err(crate::dtmf::InfoError::Unreadable) => {
                self.reply(now, ctx, 400, "Bad DTMF Body", &[]);
            }
        }
    }

    fn handle_register(&mut self, now: Instant, ctx: &RequestCtx) {
        let Some(reg) = self.registrar.as_mut() else {
            return;
        };
        let reply = reg.handle(now, &ctx.req, ctx.source, ctx.transport);
        self.reply(now, ctx, reply.status, reply.reason, &reply.header_pairs());
        match reply.status {
            403 => self
                .events
                .push_back(Event::AuthFailed { source: ctx.source }),
            200 => self
                .events
                .push_back(Event::AuthSucceeded { source: ctx.source }),
            _ => {}
        }
        match reply.change {
            Some(Change::Registered(b)) => self.events.push_back(Event::Registered(b)),
            Some(Change::Unregistered(user)) => self.events.push_back(Event::Unregistered { user }),
            None => {}
        }
    }

    /// Checks the digest credentials of an incoming call's INVITE against
    /// the registrar (feature codes from agents' phones): the user when
    /// they are good. Otherwise nida answers the INVITE itself (401 with a
    /// challenge, or 403) and the call ends; `None`.
    pub fn authenticate_caller(&mut self, now: Instant, handle: CallHandle) -> Option<String> {
        let call = self.calls.get(&handle)?;
        let source = call.peer;
        let outcome = match self.registrar.as_mut() {
            Some(reg) => reg.authenticate(now, &call.invite, source, None),
            None => Err(Box::new(crate::registrar::Reply {
                status: 403,
                reason: "Forbidden",
                headers: Vec::new(),
                change: None,
            })),
        };
        match outcome {
            Ok(user) => {
                self.events.push_back(Event::AuthSucceeded { source });
                Some(user)
            }
            Err(reply) => {
                if reply.status == 403 {
                    self.events.push_back(Event::AuthFailed { source });
                }
                self.reject(
                    now,
                    handle,
                    reply.status,
                    reply.reason,
                    &reply.header_pairs(),
                );
                None
            }
        }
    }

    fn is_early(&self, handle: CallHandle) -> bool {
        self.calls
            .get(&handle)
            .is_some_and(|c| c.state == CallState::Early)
    }

    /// Starts a server transaction for the request in `ctx` under `key`.
    fn new_server_tx(&mut self, key: &str, invite: bool, ctx: &RequestCtx) {
        let (timers, reliable) = (self.cfg.timers, ctx.transport.reliable());
        let kind = if invite {
            ServerTxKind::Invite(ServerInvite::new(timers, reliable))
        } else {
            ServerTxKind::NonInvite(ServerNonInvite::new(timers, reliable))
        };
        self.server_txs.insert(
            key.to_string(),
            ServerTx {
                kind,
                transport: ctx.transport,
                dest: ctx.dest,
                call: None,
                merge: None,
                scheduled: None,
            },
        );
    }

    /// The call whose dialog has this Call-ID, nida's own tag and the
    /// peer's tag (the dialog a `Replaces` names, RFC 3891 3).
    pub fn dialog_by_ids(
        &self,
        call_id: &str,
        local_tag: &str,
        remote_tag: &str,
    ) -> Option<CallHandle> {
        let handle = *self
            .dialogs
            .get(&(call_id.to_string(), local_tag.to_string()))?;
        let call = self.calls.get(&handle)?;
        let remote = NameAddr::parse(&call.remote).ok()?;
        (remote.tag() == Some(remote_tag)).then_some(handle)
    }

    fn dialog_of(&self, req: &Request) -> Option<CallHandle> {
        let to = NameAddr::parse(req.headers.get("To")?).ok()?;
        let tag = to.tag()?;
        let handle = *self
            .dialogs
            .get(&(req.call_id().to_string(), tag.to_string()))?;
        // The remote tag must match too.
        let from = NameAddr::parse(req.headers.get("From")?).ok()?;
        let call = self.calls.get(&handle)?;
        let remote = NameAddr::parse(&call.remote).ok()?;
        (from.tag() == remote.tag()).then_some(handle)
    }

    fn handle_invite(&mut self, now: Instant, ctx: RequestCtx) {
        let to = NameAddr::parse(ctx.req.headers.get("To").unwrap_or_default());
        if to.as_ref().is_ok_and(|t| t.tag().is_some()) {
            self.handle_reinvite(now, ctx);
            return;
        }
        let key = tx_key(&ctx.req, &ctx.via, &Method::Invite);
        let from = NameAddr::parse(ctx.req.headers.get("From").unwrap_or_default());
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let cseq = ctx.req.cseq().map(|c| c.0).unwrap_or(0);
        let merge_key = (
            ctx.req.call_id().to_string(),
            from.tag().unwrap_or_default().to_string(),
            cseq,
        );
        self.new_server_tx(&key, true, &ctx);
        let local_tag = self.rng.hex();
        let early_reject = if self.invites.contains_key(&merge_key) {
            Some((482, "Loop Detected"))
        } else if ctx.req.max_forwards() == 0 {
            Some((483, "Too Many Hops"))
        } else if crate::session_timer::as_uas(&ctx.req.headers, self.cfg.session_timer).is_err() {
            Some((422, "Session Interval Too Small"))
        } else if !ctx.req.body.is_empty()
            && !ctx
                .req
                .headers
                .get("Content-Type")
                .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"))
        {
            Some((415, "Unsupported Media Type"))
        } else {
            None
        };
        let offer = if early_reject.is_none() && !ctx.req.body.is_empty() {
            match SessionDescription::parse(&ctx.req.body) {
                Ok(sd) => Some(sd),
                Err(e) => {
                    self.stats.malformed += 1;
                    let resp = self.response(
                        &ctx.req,
                        &ctx.via,
                        ctx.source,
                        400,
                        &e.to_string(),
                        Some(&local_tag),
                    );
                    self.respond_in_tx(now, &key, 400, resp.to_bytes());
                    return;
                }
            }
        } else {
            None
        };
        if let Some((status, reason)) = early_reject {
            let mut resp = self.response(
                &ctx.req,
                &ctx.via,
                ctx.source,
                status,
                reason,
                Some(&local_tag),
            );
            if status == 415 {
                resp.headers.push("Accept", "application/sdp");
            }
            if status == 422 {
                let min = self.cfg.session_timer.min_se.as_secs().to_string();
                resp.headers.push("Min-SE", min);
            }
            self.respond_in_tx(now, &key, status, resp.to_bytes());
            return;
        }

        let trying = self.response(&ctx.req, &ctx.via, ctx.source, 100, "Trying", None);
        self.respond_in_tx(now, &key, 100, trying.to_bytes());

        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        if let Some(tx) = self.server_txs.get_mut(&key) {
            tx.call = Some(handle);
        }
        if let Some(tx) = self.server_txs.get_mut(&key) {
            tx.merge = Some(merge_key.clone());
        }
        self.invites.insert(merge_key, key.clone());
        let contact = ctx
            .req
            .headers
            .list("Contact")
            .next()
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|c| c.uri)
            .unwrap_or_else(|| from.uri.clone());
        let route_set = ctx
            .req
            .headers
            .list("Record-Route")
            .map(str::to_string)
            .collect();
        let mut local = ctx.req.headers.get("To").unwrap_or_default().to_string();
        local.push_str(&format!(";tag={local_tag}"));
        let h = &ctx.req.headers;
        let rel100 = crate::session_timer::names(h, "Require", "100rel")
            || crate::session_timer::names(h, "Supported", "100rel");
        let timer_agreed = crate::session_timer::as_uas(h, self.cfg.session_timer)
            .ok()
            .flatten();
        let peer_update = h
            .list("Allow")
            .any(|m| m.trim().eq_ignore_ascii_case("UPDATE"));
        let mut call = Call {
            state: CallState::Early,
            call_id: ctx.req.call_id().to_string(),
            local_tag: local_tag.clone(),
            remote: ctx.req.headers.get("From").unwrap_or_default().to_string(),
            local,
            remote_target: contact,
            route_set,
            transport: ctx.transport,
            peer: ctx.source,
            invite: ctx.req.clone(),
            invite_tx: key,
            invite_dest: ctx.dest,
            local_cseq: 0,
            pending_2xx: None,
            pracked: 0,
            hangup_after_ack: false,
            media: None,
            timer: None,
            timer_agreed: None,
            out: None,
            retry_offer: None,
            peer_update: false,
            rel100: None,
            uac_ack: None,
            credentials: None,
            scheduled: None,
        };
        call.timer_agreed = timer_agreed;
        call.peer_update = peer_update;
        call.rel100 = rel100.then(dialog::Reliable::default);
        self.dialogs
            .insert((call.call_id.clone(), local_tag), handle);
        self.calls.insert(handle, call);
        self.events
            .push_back(Event::Incoming(Box::new(IncomingCall {
                call: handle,
                call_id: ctx.req.call_id().to_string(),
                from,
                to,
                request_uri: ctx.req.uri.clone(),
                offer,
                transport: ctx.transport,
                source: ctx.source,
                asserted: ctx
                    .req
                    .headers
                    .list("P-Asserted-Identity")
                    .find_map(|v| NameAddr::parse(v).ok()),
                replaces: ctx
                    .req
                    .headers
                    .get("Replaces")
                    .and_then(crate::headers::parse_replaces),
            })));
    }

    /// Contact, Allow and Supported of a response (every option tag
    /// nida serves).
    fn add_contact(&self, h: &mut Headers, transport: Transport) {
        self.add_contact_with(h, transport, SUPPORTED);
    }

    /// Contact, Allow and the option tags given as Supported.
    fn add_contact_with(&self, h: &mut Headers, transport: Transport, supported: &str) {
        let addr = sent_by(self.cfg.local_addr, self.tls_addr, transport);
        let param = transport.uri_param();
        h.push("Contact", format!("<sip:nida@{addr}{param}>"));
        h.push("Allow", ALLOW);
        h.push("Supported", supported);
    }

    fn start_2xx(&mut self, now: Instant, handle: CallHandle, bytes: Vec<u8>, cseq: u32) {
        let t = self.cfg.timers;
        if let Some(call) = self.calls.get_mut(&handle) {
            call.pending_2xx = Some(Pending2xx {
                bytes,
                cseq,
                interval: t.t1,
                next: now + t.t1,
                give_up: now + t.timeout(),
            });
            let next = call.next_timer();
            self.schedule(Owner::Call(handle), next);
        }
    }

    fn handle_ack(&mut self, now: Instant, ctx: &RequestCtx) {
        let Some(handle) = self.dialog_of(&ctx.req) else {
            return;
        };
        let cseq = ctx.req.cseq().map(|c| c.0).unwrap_or(0);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.pending_2xx.as_ref().is_some_and(|p| p.cseq == cseq) {
            call.pending_2xx = None;
            let first = call.state == CallState::Answered;
            call.state = CallState::Confirmed;
            let sdp = if ctx.req.body.is_empty() {
                None
            } else {
                SessionDescription::parse(&ctx.req.body).ok()
            };
            // The answer to an offer nida made in its 2xx.
            let answered = match (call.media.as_mut(), &sdp) {
                (Some(m), Some(sdp)) if m.offering() => m.take_answer(sdp),
                (Some(m), _) => {
                    m.withdraw();
                    None
                }
                _ => None,
            };
            if first {
                self.events
                    .push_back(Event::Confirmed { call: handle, sdp });
            } else if let Some(media) = answered {
                self.events.push_back(Event::Media {
                    call: handle,
                    media,
                });
            }
            if call.hangup_after_ack {
                self.send_bye(now, handle, EndReason::LocalBye);
            }
        }
    }

    fn handle_cancel(&mut self, now: Instant, ctx: &RequestCtx) {
        let invite_key = tx_key(&ctx.req, &ctx.via, &Method::Invite);
        let Some(tx) = self.server_txs.get(&invite_key) else {
            self.reply(now, ctx, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        };
        let call = tx.call;
        self.reply(now, ctx, 200, "OK", &[]);
        let Some(handle) = call else { return };
        let early = self.is_early(handle);
        if early {
            self.final_error(now, handle, 487, "Request Terminated", &[]);
            self.end_call(handle, EndReason::Cancelled);
        }
    }

    /// REFER inside a dialog (RFC 3515): 202 and an event; outside one,
    /// 481; without a usable Refer-To, 400.
    fn handle_refer(&mut self, now: Instant, ctx: &RequestCtx) {
        let Some(handle) = self.dialog_of(&ctx.req) else {
            self.reply(now, ctx, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        };
        let target = ctx
            .req
            .headers
            .get("Refer-To")
            .and_then(|v| NameAddr::parse(v).ok())
            .map(|n| n.uri)
            .filter(|u| is_supported_uri(u));
        let Some(target) = target else {
            self.reply(now, ctx, 400, "Bad Refer-To", &[]);
            return;
        };
        self.reply(now, ctx, 202, "Accepted", &[]);
        self.events.push_back(Event::Refer {
            call: handle,
            target,
        });
    }

    /// Tells the peer how a transfer it asked for went: a NOTIFY in the
    /// call's dialog with the final status as a `message/sipfrag` body,
    /// ending the implicit subscription (RFC 3515 2.4.4, 2.4.5).
    pub fn notify_refer(&mut self, now: Instant, handle: CallHandle, status: u16, reason: &str) {
        let contact = format!("<sip:{}>", self.cfg.local_addr);
        self.send_in_dialog(now, handle, Method::Notify, |req| {
            req.headers.push("Contact", contact);
            req.headers.push("Event", "refer");
            req.headers
                .push("Subscription-State", "terminated;reason=noresource");
            req.headers
                .push("Content-Type", "message/sipfrag;version=2.0");
            req.body = format!("SIP/2.0 {status} {reason}\r\n").into_bytes();
        });
    }

    /// Sends a request inside a call's dialog as a new client transaction;
    /// `fill` adds its own headers and body. Returns the transaction's key.
    fn send_in_dialog(
        &mut self,
        now: Instant,
        handle: CallHandle,
        method: Method,
        fill: impl FnOnce(&mut Request),
    ) -> Option<String> {
        let call = self.calls.get_mut(&handle)?;
        call.local_cseq += 1;
        let branch = format!("{COOKIE}{}", self.rng.hex());
        let dest = call.next_hop();
        let key = format!("{branch}|{method}");
        let local = sent_by(self.cfg.local_addr, self.tls_addr, call.transport);
        let mut req = call.dialog_request(method, call.local_cseq, &branch, local);
        fill(&mut req);
        req.headers.push("User-Agent", self.cfg.user_agent.as_str());
        let bytes = req.to_bytes();
        let transport = call.transport;
        self.start_client_tx(
            now,
            key.clone(),
            TxStart::InDialog(handle),
            (transport, dest),
            bytes,
        );
        Some(key)
    }

    fn handle_bye(&mut self, now: Instant, ctx: &RequestCtx) {
        let Some(handle) = self.dialog_of(&ctx.req) else {
            self.reply(now, ctx, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        };
        self.reply(now, ctx, 200, "OK", &[]);
        let early = self.is_early(handle);
        if early {
            self.final_error(now, handle, 487, "Request Terminated", &[]);
        }
        self.end_call(handle, EndReason::RemoteBye);
    }

    /// A response: it belongs to the client transaction its top Via names,
    /// and only if it came back from where that request went (the same UDP
    /// address, or the same TCP/TLS connection, which the driver keys by
    /// the peer's address). Anyone can copy a branch off the wire or guess
    /// it; the source is what a forger on another host cannot choose.
    fn handle_response(
        &mut self,
        now: Instant,
        resp: Response,
        transport: Transport,
        source: SocketAddr,
    ) {
        let Some(via) = resp
            .headers
            .list("Via")
            .next()
            .and_then(|v| Via::parse(v).ok())
        else {
            return;
        };
        let Some(branch) = via.branch() else { return };
        let Ok((_, method)) = resp.cseq() else { return };
        let key = format!("{branch}|{method}");
        let Some(tx) = self.client_txs.get_mut(&key) else {
            debug!(status = resp.status, "response matches no transaction");
            return;
        };
        if (tx.transport, tx.dest) != (transport, source) {
            self.stats.foreign_responses += 1;
            warn!(
                status = resp.status,
                %source,
                expected = %tx.dest,
                "response from another address than the request went to: dropped"
            );
            return;
        }
        let verdict = match &mut tx.kind {
            ClientKind::Invite(t) => t.handle_response(now, resp.status),
            ClientKind::NonInvite(t) => t.handle_response(now, resp.status),
        };
        let (call, transport, dest, tag) = (tx.call, tx.transport, tx.dest, tx.tag);
        let next = tx.next_timer();
        self.schedule(Owner::Client(key.clone()), next);
        if let Some(tag) = tag {
            if verdict == ClientVerdict::Deliver && resp.status >= 200 {
                self.events.push_back(Event::Response {
                    tag,
                    status: resp.status,
                    headers: resp.headers,
                });
            }
            return;
        }
        let ours = call
            .and_then(|h| self.calls.get(&h))
            .and_then(|c| c.out.as_ref())
            .is_some_and(|o| o.key == key);
        match (&method, call) {
            (_, Some(handle)) if ours => {
                self.out_response(now, handle, &resp, verdict, (transport, dest));
            }
            (Method::Invite, Some(handle)) => {
                self.uac_response(now, handle, &resp, verdict, (transport, dest));
            }
            _ if verdict == ClientVerdict::Deliver && resp.status >= 200 => {
                debug!(status = resp.status, %method, "final response to our request");
            }
            _ => {}
        }
    }

    /// A response to an INVITE nida sent (RFC 3261 13.2.2).
    fn uac_response(
        &mut self,
        now: Instant,
        handle: CallHandle,
        resp: &Response,
        verdict: ClientVerdict,
        (transport, dest): (Transport, SocketAddr),
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        match resp.status {
            100 => {}
            101..=199 => {
                if resp.headers.get("RSeq").is_some()
                    && crate::session_timer::names(&resp.headers, "Require", "100rel")
                {
                    self.send_prack(now, handle, resp);
                }
                self.events.push_back(Event::Progress {
                    call: handle,
                    status: resp.status,
                });
            }
            200..=299 => {
                if let Some(ack) = &call.uac_ack {
                    // A retransmitted 2xx: the ACK again.
                    let (t, d, a) = (call.transport, call.peer, ack.clone());
                    self.send(t, d, a);
                    return;
                }
                if verdict != ClientVerdict::Deliver || call.state != CallState::Calling {
                    return;
                }
                call.learn_dialog(resp);
                call.state = CallState::Confirmed;
                let cseq = call.invite.cseq().map(|c| c.0).unwrap_or(1);
                let branch = format!("{COOKIE}{}", self.rng.hex());
                let local = sent_by(self.cfg.local_addr, self.tls_addr, call.transport);
                let ack = call
                    .dialog_request(Method::Ack, cseq, &branch, local)
                    .to_bytes();
                call.uac_ack = Some(ack.clone());
                let dest = call.next_hop();
                call.peer = dest;
                let (t, cancelled) = (call.transport, call.hangup_after_ack);
                self.send(t, dest, ack);
                let sdp = if resp.body.is_empty() {
                    None
                } else {
                    SessionDescription::parse(&resp.body).ok()
                };
                if let Some(call) = self.calls.get_mut(&handle) {
                    call.peer_update = resp
                        .headers
                        .list("Allow")
                        .any(|m| m.trim().eq_ignore_ascii_case("UPDATE"));
                    if let (Some(m), Some(sdp)) = (call.media.as_mut(), &sdp) {
                        m.take_answer(sdp);
                    }
                    call.timer = crate::session_timer::as_uac(&resp.headers)
                        .map(|a| SessionTimer::start(now, &a));
                    let next = call.next_timer();
                    self.schedule(Owner::Call(handle), next);
                }
                self.events.push_back(Event::Answered { call: handle, sdp });
                if cancelled {
                    // The CANCEL crossed the 2xx: end the call with a BYE.
                    self.send_bye(now, handle, EndReason::LocalBye);
                }
            }
            status => {
                let ack = non2xx_ack(&call.invite, resp);
                self.send(transport, dest, ack);
                if verdict == ClientVerdict::Deliver {
                    let retried = match status {
                        401 | 407 => self.retry_with_credentials(now, handle, resp),
                        422 => self.retry_with_interval(now, handle, resp),
                        _ => false,
                    };
                    if !retried {
                        self.end_call(handle, EndReason::Refused(status));
                    }
                }
            }
        }
    }

    /// Places a call (see [`Invite`]): progress, answer and end come as
    /// events.
    pub fn invite(&mut self, now: Instant, inv: Invite) -> CallHandle {
        let Invite {
            uri,
            dest,
            transport,
            from_user,
            mut media,
            rel100,
        } = inv;
        let uri = uri.as_str();
        let sdp = media.offer();
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let local_tag = self.rng.hex();
        let (branch, via) = self.new_via(transport);
        let call_id = format!("{}@{}", self.rng.hex128(), self.cfg.local_addr.ip());
        let local = format!("<sip:{from_user}@{}>;tag={local_tag}", self.cfg.local_addr);
        let mut h = Headers::default();
        h.push("Via", via);
        h.push("Max-Forwards", "70");
        h.push("From", local.as_str());
        h.push("To", format!("<{uri}>"));
        h.push("Call-ID", call_id.as_str());
        h.push("CSeq", "1 INVITE");
        // 100rel only where asked for: a peer that takes it may send its
        // 18x reliably, which costs a PRACK each.
        let supported = if rel100 { "100rel, timer" } else { "timer" };
        self.add_contact_with(&mut h, transport, supported);
        let wish = self.cfg.session_timer;
        crate::session_timer::request_headers(&mut h, wish.expires, wish);
        h.push("User-Agent", self.cfg.user_agent.as_str());
        h.push("Content-Type", "application/sdp");
        let req = Request {
            method: Method::Invite,
            uri: uri.to_string(),
            headers: h,
            body: sdp,
        };
        let bytes = req.to_bytes();
        let key = format!("{branch}|INVITE");
        self.calls.insert(
            handle,
            Call {
                state: CallState::Calling,
                call_id: call_id.clone(),
                local_tag: local_tag.clone(),
                remote: format!("<{uri}>"),
                local,
                remote_target: uri.to_string(),
                route_set: Vec::new(),
                transport,
                peer: dest,
                invite: req,
                invite_tx: key.clone(),
                invite_dest: dest,
                local_cseq: 1,
                pending_2xx: None,
                pracked: 0,
                hangup_after_ack: false,
                media: Some(media),
                timer: None,
                timer_agreed: None,
                out: None,
                retry_offer: None,
                peer_update: false,
                rel100: None,
                uac_ack: None,
                credentials: None,
                scheduled: None,
            },
        );
        self.dialogs.insert((call_id, local_tag), handle);
        self.start_client_tx(now, key, TxStart::Invite(handle), (transport, dest), bytes);
        handle
    }

    /// A new branch and the Via naming it, for a request nida starts.
    fn new_via(&mut self, transport: Transport) -> (String, String) {
        let branch = format!("{COOKIE}{}", self.rng.hex());
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            transport.token(),
            sent_by(self.cfg.local_addr, self.tls_addr, transport)
        );
        (branch, via)
    }

    /// Lets a call nida placed answer one digest challenge (401 or 407 to
    /// its INVITE) with these credentials, as carriers ask of calls through
    /// their trunks.
    pub fn set_credentials(&mut self, handle: CallHandle, user: &str, password: &str) {
        if let Some(call) = self.calls.get_mut(&handle) {
            call.credentials = Some((user.to_string(), password.to_string()));
        }
    }

    /// Sends a request outside any dialog (see [`OutRequest`]).
    pub fn request(&mut self, now: Instant, out: OutRequest) {
        let (branch, via) = self.new_via(out.transport);
        let mut h = Headers::default();
        h.push("Via", via);
        h.push("Max-Forwards", "70");
        for header in out.headers.iter() {
            h.push(&header.name, header.value.as_str());
        }
        h.push("User-Agent", self.cfg.user_agent.as_str());
        let req = Request {
            method: out.method.clone(),
            uri: out.uri,
            headers: h,
            body: Vec::new(),
        };
        let bytes = req.to_bytes();
        let key = format!("{branch}|{}", out.method);
        let start = TxStart::NonInvite(Some(out.tag));
        self.start_client_tx(now, key, start, (out.transport, out.dest), bytes);
    }

    /// Sends the INVITE of a call again with an answer to the challenge
    /// in `resp` (RFC 3261 22.2): same Call-ID and From tag, next CSeq,
    /// new branch. False when the call has no credentials (left).
    fn retry_with_credentials(
        &mut self,
        now: Instant,
        handle: CallHandle,
        resp: &Response,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        let (challenge_name, answer_name) = if resp.status == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let Some(challenge) = resp.headers.get(challenge_name) else {
            return false;
        };
        let Some((user, password)) = call.credentials.take() else {
            return false;
        };
        let cnonce = self.rng.hex();
        let Some(value) = crate::auth::answer(
            challenge,
            "INVITE",
            &call.invite.uri,
            &user,
            &password,
            &cnonce,
        ) else {
            return false;
        };
        let mut req = call.invite.clone();
        req.headers.set(answer_name, value);
        self.resend_invite(now, handle, req)
    }

    /// Sends the INVITE of a call again asking for the session interval
    /// a 422 named (RFC 4028 7.3), once.
    fn retry_with_interval(&mut self, now: Instant, handle: CallHandle, resp: &Response) -> bool {
        let wish = self.cfg.session_timer;
        let Some(interval) = crate::session_timer::retry_interval(&resp.headers, wish) else {
            return false;
        };
        let Some(call) = self.calls.get(&handle) else {
            return false;
        };
        let asked = call.invite.headers.get("Session-Expires").unwrap_or("");
        let secs = interval.as_secs().to_string();
        if asked.split(';').next() == Some(secs.as_str()) {
            return false;
        }
        let mut req = call.invite.clone();
        req.headers
            .set("Session-Expires", format!("{secs};refresher=uac"));
        req.headers.set("Min-SE", secs);
        self.resend_invite(now, handle, req)
    }

    /// Sends `req`, a call's INVITE as amended, on a new branch with the
    /// next CSeq (same Call-ID and From tag).
    fn resend_invite(&mut self, now: Instant, handle: CallHandle, mut req: Request) -> bool {
        let Some(call) = self.calls.get(&handle) else {
            return false;
        };
        let cseq = req.cseq().map(|c| c.0).unwrap_or(1) + 1;
        let (transport, dest) = (call.transport, call.invite_dest);
        let (branch, via) = self.new_via(transport);
        req.headers.set("Via", via);
        req.headers.set("CSeq", format!("{cseq} INVITE"));
        let bytes = req.to_bytes();
        let key = format!("{branch}|INVITE");
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        call.invite = req;
        call.invite_tx = key.clone();
        call.local_cseq = cseq;
        self.start_client_tx(now, key, TxStart::Invite(handle), (transport, dest), bytes);
        true
    }

    /// Starts a client transaction: builds it (an INVITE one for a call's
    /// INVITE), registers it, sends the request once and arms its timers.
    fn start_client_tx(
        &mut self,
        now: Instant,
        key: String,
        start: TxStart,
        (transport, dest): (Transport, SocketAddr),
        bytes: Vec<u8>,
    ) {
        let (t, reliable) = (self.cfg.timers, transport.reliable());
        let (kind, call, tag) = match start {
            TxStart::Invite(h) => (
                ClientKind::Invite(ClientInvite::new(now, t, reliable, bytes.clone())),
                Some(h),
                None,
            ),
            TxStart::NonInvite(tag) => (
                ClientKind::NonInvite(ClientNonInvite::new(now, t, reliable, bytes.clone())),
                None,
                tag,
            ),
            TxStart::InDialog(h) => (
                ClientKind::NonInvite(ClientNonInvite::new(now, t, reliable, bytes.clone())),
                Some(h),
                None,
            ),
        };
        let tx = ClientTx {
            kind,
            transport,
            dest,
            call,
            tag,
            scheduled: None,
        };
        let next = tx.next_timer();
        self.client_txs.insert(key.clone(), tx);
        self.send(transport, dest, bytes);
        self.schedule(Owner::Client(key), next);
    }

    /// Cancels a call nida placed that has no final answer yet
    /// (RFC 3261 9.1); the INVITE then ends with 487.
    fn cancel(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        call.hangup_after_ack = true;
        let inv = &call.invite;
        let mut h = Headers::default();
        for name in ["Via", "From", "To", "Call-ID"] {
            h.push(name, inv.headers.get(name).unwrap_or_default());
        }
        h.push("Max-Forwards", "70");
        h.push(
            "CSeq",
            format!("{} CANCEL", inv.cseq().map(|c| c.0).unwrap_or(1)),
        );
        let req = Request {
            method: Method::Cancel,
            uri: inv.uri.clone(),
            headers: h,
            body: Vec::new(),
        };
        let bytes = req.to_bytes();
        let branch = inv
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let (transport, dest) = (call.transport, call.invite_dest);
        let key = format!("{branch}|CANCEL");
        self.start_client_tx(now, key, TxStart::NonInvite(None), (transport, dest), bytes);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.shrink_if_due(now);
        if let Some(reg) = self.registrar.as_mut() {
            for user in reg.expire(now) {
                self.events.push_back(Event::Unregistered { user });
            }
        }
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, owner))) = self.heap.pop() else {
                break;
            };
            match owner {
                Owner::Server(key) => {
                    let Some(tx) = self.server_txs.get_mut(&key) else {
                        continue;
                    };
                    if tx.scheduled != Some(at) {
                        continue;
                    }
                    tx.scheduled = None;
                    let actions = match &mut tx.kind {
                        ServerTxKind::Invite(t) => t.handle_timeout(now),
                        ServerTxKind::NonInvite(t) => t.handle_timeout(now),
                    };
                    let (transport, dest) = (tx.transport, tx.dest);
                    let mut done = false;
                    for a in actions {
                        match a {
                            TxAction::Retransmit(b) => self.send(transport, dest, b),
                            TxAction::Terminated(why) => {
                                if why == Termination::Timeout {
                                    debug!("no ACK for a final response (Timer H)");
                                }
                                done = true;
                            }
                        }
                    }
                    if done {
                        if let Some(m) = self.server_txs.remove(&key).and_then(|t| t.merge) {
                            self.invites.remove(&m);
                        }
                    } else {
                        self.reschedule_server(&key);
                    }
                }
                Owner::Client(key) => {
                    let Some(tx) = self.client_txs.get_mut(&key) else {
                        continue;
                    };
                    if tx.scheduled != Some(at) {
                        continue;
                    }
                    tx.scheduled = None;
                    let (transport, dest, call, tag) = (tx.transport, tx.dest, tx.call, tx.tag);
                    let actions = match &mut tx.kind {
                        ClientKind::Invite(t) => t.handle_timeout(now),
                        ClientKind::NonInvite(t) => t.handle_timeout(now),
                    };
                    let mut done = false;
                    for a in actions {
                        match a {
                            TxAction::Retransmit(b) => self.send(transport, dest, b),
                            TxAction::Terminated(why) => {
                                done = true;
                                if let (Termination::Timeout, Some(tag)) = (why, tag) {
                                    self.events.push_back(Event::Response {
                                        tag,
                                        status: 408,
                                        headers: Headers::default(),
                                    });
                                }
                                // A re-INVITE or UPDATE of nida's got
                                // nothing: the dialog is gone (RFC 3261
                                // 12.2.1.2, RFC 4028 10).
                                let ours = call
                                    .and_then(|h| self.calls.get(&h))
                                    .and_then(|c| c.out.as_ref())
                                    .is_some_and(|o| o.key == key);
                                if let (Termination::Timeout, true, Some(h)) = (why, ours, call) {
                                    self.send_bye(now, h, EndReason::SessionExpired);
                                }
                                // Timer B: the callee never answered.
                                let calling = call
                                    .and_then(|h| self.calls.get(&h))
                                    .is_some_and(|c| c.state == CallState::Calling);
                                if let (Termination::Timeout, true, Some(h)) = (why, calling, call)
                                {
                                    self.end_call(h, EndReason::NoAnswer);
                                }
                            }
                        }
                    }
                    if done {
                        self.client_txs.remove(&key);
                    } else {
                        let next = self.client_txs.get(&key).and_then(ClientTx::next_timer);
                        self.schedule(Owner::Client(key), next);
                    }
                }
                Owner::Call(handle) => self.call_timeout(now, handle, at),
            }
        }
    }

    fn call_timeout(&mut self, now: Instant, handle: CallHandle, at: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.scheduled != Some(at) {
            return;
        }
        call.scheduled = None;
        let t2 = self.cfg.timers.t2;
        let mut resend = None;
        let mut give_up = false;
        if let Some(p) = call.pending_2xx.as_mut() {
            if now >= p.give_up {
                give_up = true;
            } else if now >= p.next {
                p.interval = (p.interval * 2).min(t2);
                p.next = now + p.interval;
                resend = Some((call.transport, call.invite_dest, p.bytes.clone()));
            }
        }
        if give_up {
            call.pending_2xx = None;
            warn!(call_id = %call.call_id, "no ACK for 2xx within 64*T1: ending the call");
            self.send_bye(now, handle, EndReason::NoAck);
            return;
        }
        if let Some((transport, dest, bytes)) = resend {
            self.send(transport, dest, bytes);
        }
        self.dialog_timers(now, handle);
        let next = self.calls.get(&handle).and_then(Call::next_timer);
        self.schedule(Owner::Call(handle), next);
    }

    /// Sends 180 Ringing for an early call.
    pub fn ringing(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        if call.state != CallState::Early {
            return;
        }
        let via = call.invite.top_via().ok();
        let Some(via) = via else { return };
        let resp = self.response(
            &call.invite,
            &via,
            call.peer,
            180,
            "Ringing",
            Some(&call.local_tag),
        );
        let mut resp = resp;
        self.add_contact(&mut resp.headers, call.transport);
        let key = call.invite_tx.clone();
        let reliable = call.rel100.is_some();
        if reliable {
            self.ring_reliably(now, handle, resp);
            return;
        }
        self.respond_in_tx(now, &key, 180, resp.to_bytes());
    }

    /// Answers an early call with 200 OK carrying the SDP `media` wrote
    /// last (the answer, or an offer when the INVITE had none); `media`
    /// then answers the dialog's later offers. The 2xx is retransmitted
    /// until ACK; a session timer agreed on the INVITE starts.
    pub fn answer(&mut self, now: Instant, handle: CallHandle, media: OfferAnswer) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.state != CallState::Early {
            return;
        }
        call.state = CallState::Answered;
        let Ok(via) = call.invite.top_via() else {
            return;
        };
        let tag = call.local_tag.clone();
        let (invite, peer, transport) = (call.invite.clone(), call.peer, call.transport);
        let mut resp = self.response(&invite, &via, peer, 200, "OK", Some(&tag));
        self.add_contact(&mut resp.headers, transport);
        for rr in invite.headers.all("Record-Route") {
            resp.headers.push("Record-Route", rr);
        }
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = media.sdp().to_vec();
        if let Some(call) = self.calls.get_mut(&handle) {
            call.media = Some(media);
            if let Some(a) = call.timer_agreed.take() {
                crate::session_timer::response_headers(&mut resp.headers, &a);
                call.timer = Some(SessionTimer::start(now, &a));
            }
        }
        let bytes = resp.to_bytes();
        let cseq = invite.cseq().map(|c| c.0).unwrap_or(0);
        // The 2xx waits for the PRACK of a reliable 18x still out, so the
        // peer sees them in order (RFC 3262 3 allows sending it at once;
        // waiting costs one round trip and spares the peer a race).
        if let Some(r) = self.calls.get_mut(&handle).and_then(|c| c.rel100.as_mut()) {
            if r.hold_2xx(bytes.clone(), cseq) {
                return;
            }
        }
        self.send_2xx(now, handle, bytes, cseq);
    }

    /// Sends the 2xx of an INVITE nida answers, retransmitted until ACK.
    pub(super) fn send_2xx(&mut self, now: Instant, handle: CallHandle, bytes: Vec<u8>, cseq: u32) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        // A 2xx ends the reliable provisionals (none carried SDP).
        if let Some(r) = call.rel100.as_mut() {
            r.stop();
        }
        let key = call.invite_tx.clone();
        self.respond_in_tx(now, &key, 200, bytes.clone());
        self.start_2xx(now, handle, bytes, cseq);
    }

    /// Rejects an early call with a final status (486, 488, 503, ...) and
    /// extra headers such as Retry-After.
    pub fn reject(
        &mut self,
        now: Instant,
        handle: CallHandle,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let early = self.is_early(handle);
        if early {
            self.final_error(now, handle, status, reason, extra);
            self.end_call(handle, EndReason::Rejected(status));
        }
    }

    fn final_error(
        &mut self,
        now: Instant,
        handle: CallHandle,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let Ok(via) = call.invite.top_via() else {
            return;
        };
        let mut resp = self.response(
            &call.invite,
            &via,
            call.peer,
            status,
            reason,
            Some(&call.local_tag),
        );
        for (k, v) in extra {
            resp.headers.push(k, *v);
        }
        let key = call.invite_tx.clone();
        self.respond_in_tx(now, &key, status, resp.to_bytes());
    }

    /// Ends a call from nida's side: BYE when answered (after the ACK, as
    /// RFC 3261 15 requires), 480 when still early.
    pub fn hangup(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        match call.state {
            CallState::Calling => self.cancel(now, handle),
            CallState::Early => self.reject(now, handle, 480, "Temporarily Unavailable", &[]),
            CallState::Answered => call.hangup_after_ack = true,
            CallState::Confirmed => self.send_bye(now, handle, EndReason::LocalBye),
        }
    }

    fn send_bye(&mut self, now: Instant, handle: CallHandle, reason: EndReason) {
        if !self.calls.contains_key(&handle) {
            return;
        }
        self.send_in_dialog(now, handle, Method::Bye, |_| {});
        self.end_call(handle, reason);
    }

    fn end_call(&mut self, handle: CallHandle, reason: EndReason) {
        if let Some(call) = self.calls.remove(&handle) {
            self.dialogs
                .remove(&(call.call_id.clone(), call.local_tag.clone()));
            self.events.push_back(Event::Ended {
                call: handle,
                reason,
            });
        }
    }
}

struct RequestCtx {
    req: Request,
    via: Via,
    source: SocketAddr,
    dest: SocketAddr,
    transport: Transport,
}

/// The ACK of a non-2xx final response to an INVITE belongs to the
/// transaction: the INVITE's branch and the To of the response (RFC 3261
/// 17.1.1.3).
fn non2xx_ack(invite: &Request, resp: &Response) -> Vec<u8> {
    let cseq = invite.cseq().map(|c| c.0).unwrap_or(1);
    let mut h = Headers::default();
    h.push("Via", invite.headers.get("Via").unwrap_or_default());
    h.push("Max-Forwards", "70");
    h.push("From", invite.headers.get("From").unwrap_or_default());
    h.push("To", resp.headers.get("To").unwrap_or_default());
    h.push("Call-ID", invite.call_id());
    h.push("CSeq", format!("{cseq} ACK"));
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        headers: h,
        body: Vec::new(),
    }
    .to_bytes()
}

fn is_supported_uri(uri: &str) -> bool {
    let scheme = uri.split(':').next().unwrap_or_default();
    ["sip", "sips", "tel"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
}

/// Replaces a valueless `rport` with `rport=PORT` (RFC 3581 4).
fn rewrite_rport(via: &str, port: u16) -> String {
    via.split(';')
        .map(|p| {
            if p.trim().eq_ignore_ascii_case("rport") {
                format!("rport={port}")
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}
