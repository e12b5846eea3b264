//! SIP transaction state machines (RFC 3261 section 17, with the Accepted
//! states of RFC 6026), driven by time passed in.
//!
//! Each transaction owns a [`TimerTable`] of the RFC 3261 timers A to K (and
//! L, M of RFC 6026). The owner asks [`TimerTable::next`] when to wake up and
//! calls `handle_timeout(now)`; the transaction answers with [`TxAction`]s.
//! Nothing here reads a clock or touches a socket.

use std::time::{Duration, Instant};

/// Timer values (RFC 3261 17.1.1.1 and table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip estimate, 500 ms by default.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE
    /// responses, 4 s by default.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s by default.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1, the transaction timeout.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// The RFC 3261 / RFC 6026 transaction timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// INVITE client: request retransmission (UDP).
    A,
    /// INVITE client: transaction timeout.
    B,
    /// INVITE client: wait for response retransmissions after a non-2xx.
    D,
    /// Non-INVITE client: request retransmission (UDP).
    E,
    /// Non-INVITE client: transaction timeout.
    F,
    /// INVITE server: final non-2xx response retransmission (UDP).
    G,
    /// INVITE server: wait for ACK.
    H,
    /// INVITE server: wait for ACK retransmissions.
    I,
    /// Non-INVITE server: wait for request retransmissions.
    J,
    /// Non-INVITE client: wait for response retransmissions.
    K,
    /// INVITE server, Accepted state: absorb INVITE retransmissions (RFC 6026).
    L,
    /// INVITE client, Accepted state: accept 2xx retransmissions (RFC 6026).
    M,
}

const ALL_TIMERS: [Timer; 12] = [
    Timer::A,
    Timer::B,
    Timer::D,
    Timer::E,
    Timer::F,
    Timer::G,
    Timer::H,
    Timer::I,
    Timer::J,
    Timer::K,
    Timer::L,
    Timer::M,
];

/// A deadline per timer; the next wake-up is the earliest.
#[derive(Debug, Clone, Default)]
pub struct TimerTable([Option<Instant>; 12]);

impl TimerTable {
    /// Arms a timer.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    /// Disarms a timer.
    pub fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.0 = Default::default();
    }

    /// The deadline of a timer.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer as usize]
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// Takes the earliest timer due at `now`, disarming it.
    pub fn expired(&mut self, now: Instant) -> Option<Timer> {
        let t = ALL_TIMERS
            .iter()
            .copied()
            .filter(|t| self.0[*t as usize].is_some_and(|at| at <= now))
            .min_by_key(|t| self.0[*t as usize])?;
        self.0[t as usize] = None;
        Some(t)
    }
}

/// Why a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It ran its course.
    Normal,
    /// Timer B, F or H fired: the peer never answered (or never ACKed).
    Timeout,
}

/// What a transaction asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxAction {
    /// Send these bytes again to the peer.
    Retransmit(Vec<u8>),
    /// The transaction is over; drop it.
    Terminated(Termination),
}

/// States shared by the four machines (RFC 3261 figures 5 to 8, RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Client: request sent, no response yet (INVITE).
    Calling,
    /// Non-INVITE: request sent or received, no final response yet.
    Trying,
    /// A provisional response was sent or received.
    Proceeding,
    /// A final response was sent or received; absorbing retransmissions.
    Completed,
    /// INVITE server: the ACK for a non-2xx arrived.
    Confirmed,
    /// INVITE, RFC 6026: a 2xx was sent or received.
    Accepted,
    /// Over.
    Terminated,
}

/// INVITE server transaction (RFC 3261 17.2.1, RFC 6026 7.1).
#[derive(Debug, Clone)]
pub struct ServerInvite {
    state: TxState,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Vec<u8>>,
    g_interval: Duration,
    /// Armed timers.
    pub timers: TimerTable,
}

impl ServerInvite {
    /// A new transaction in Proceeding (the TU sends 100 Trying at once).
    pub fn new(cfg: TimerConfig, reliable: bool) -> Self {
        ServerInvite {
            state: TxState::Proceeding,
            reliable,
            cfg,
            last_response: None,
            g_interval: cfg.t1,
            timers: TimerTable::default(),
        }
    }

    /// Current state.
    pub fn state(&self) -> TxState {
        self.state
    }

    /// The TU sends a response through the transaction. Returns whether it
    /// may go on the wire (responses after a final one are refused).
    pub fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        if self.state != TxState::Proceeding {
            return false;
        }
        self.last_response = Some(bytes);
        match status {
            100..=199 => {}
            200..=299 => {
                self.state = TxState::Accepted;
                self.timers.set(Timer::L, now + self.cfg.timeout());
            }
            _ => {
                self.state = TxState::Completed;
                if !self.reliable {
                    self.timers.set(Timer::G, now + self.g_interval);
                }
                self.timers.set(Timer::H, now + self.cfg.timeout());
            }
        }
        true
    }

    /// The INVITE arrived again. In Proceeding and Completed the last
    /// response is resent; in Accepted the retransmission is absorbed (the
    /// TU retransmits the 2xx itself).
    pub fn handle_request_retransmission(&mut self) -> Option<Vec<u8>> {
        match self.state {
            TxState::Proceeding | TxState::Completed => self.last_response.clone(),
            _ => None,
        }
    }

    /// An ACK matched this transaction (only a non-2xx ACK does).
    pub fn handle_ack(&mut self, now: Instant) {
        if self.state == TxState::Completed {
            self.state = TxState::Confirmed;
            self.timers.stop(Timer::G);
            self.timers.stop(Timer::H);
            let wait = if self.reliable {
                Duration::ZERO
            } else {
                self.cfg.t4
            };
            self.timers.set(Timer::I, now + wait);
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        let mut out = Vec::new();
        while let Some(t) = self.timers.expired(now) {
            match t {
                Timer::G if self.state == TxState::Completed => {
                    self.g_interval = (self.g_interval * 2).min(self.cfg.t2);
                    self.timers.set(Timer::G, now + self.g_interval);
                    if let Some(r) = &self.last_response {
                        out.push(TxAction::Retransmit(r.clone()));
                    }
                }
                Timer::H => {
                    self.terminate(&mut out, Termination::Timeout);
                    break;
                }
                Timer::I | Timer::L => {
                    self.terminate(&mut out, Termination::Normal);
                    break;
                }
                _ => {}
            }
        }
        out
    }

    fn terminate(&mut self, out: &mut Vec<TxAction>, why: Termination) {
        self.state = TxState::Terminated;
        self.timers.stop_all();
        out.push(TxAction::Terminated(why));
    }
}

/// Non-INVITE server transaction (RFC 3261 17.2.2).
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    state: TxState,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Vec<u8>>,
    /// Armed timers.
    pub timers: TimerTable,
}

impl ServerNonInvite {
    /// A new transaction in Trying.
    pub fn new(cfg: TimerConfig, reliable: bool) -> Self {
        ServerNonInvite {
            state: TxState::Trying,
            reliable,
            cfg,
            last_response: None,
            timers: TimerTable::default(),
        }
    }

    /// Current state.
    pub fn state(&self) -> TxState {
        self.state
    }

    /// The TU sends a response; a final one moves to Completed with Timer J.
    pub fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        if !matches!(self.state, TxState::Trying | TxState::Proceeding) {
            return false;
        }
        self.last_response = Some(bytes);
        if status >= 200 {
            self.state = TxState::Completed;
            let wait = if self.reliable {
                Duration::ZERO
            } else {
                self.cfg.timeout()
            };
            self.timers.set(Timer::J, now + wait);
        } else {
            self.state = TxState::Proceeding;
        }
        true
    }

    /// The request arrived again: resend the last response, if any.
    pub fn handle_request_retransmission(&self) -> Option<Vec<u8>> {
        self.last_response.clone()
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        if self.timers.expired(now) == Some(Timer::J) {
            self.state = TxState::Terminated;
            self.timers.stop_all();
            return vec![TxAction::Terminated(Termination::Normal)];
        }
        Vec::new()
    }
}

/// What a client transaction tells its TU about a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientVerdict {
    /// Pass the response up to the TU.
    Deliver,
    /// A retransmission, already handled (for a non-2xx INVITE response the
    /// owner resends the ACK).
    Absorb,
}

/// INVITE client transaction (RFC 3261 17.1.1, RFC 6026 7.2).
#[derive(Debug, Clone)]
pub struct ClientInvite {
    state: TxState,
    reliable: bool,
    cfg: TimerConfig,
    request: Vec<u8>,
    a_interval: Duration,
    /// Armed timers.
    pub timers: TimerTable,
}

impl ClientInvite {
    /// Starts the transaction: the owner sends `request` once now.
    pub fn new(now: Instant, cfg: TimerConfig, reliable: bool, request: Vec<u8>) -> Self {
        let mut timers = TimerTable::default();
        if !reliable {
            timers.set(Timer::A, now + cfg.t1);
        }
        timers.set(Timer::B, now + cfg.timeout());
        ClientInvite {
            state: TxState::Calling,
            reliable,
            cfg,
            request,
            a_interval: cfg.t1,
            timers,
        }
    }

    /// Current state.
    pub fn state(&self) -> TxState {
        self.state
    }

    /// A response with this transaction's branch arrived.
    pub fn handle_response(&mut self, now: Instant, status: u16) -> ClientVerdict {
        match (self.state, status) {
            (TxState::Calling | TxState::Proceeding, 100..=199) => {
                self.state = TxState::Proceeding;
                self.timers.stop(Timer::A);
                self.timers.stop(Timer::B);
                ClientVerdict::Deliver
            }
            (TxState::Calling | TxState::Proceeding, 200..=299) => {
                self.state = TxState::Accepted;
                self.timers.stop_all();
                self.timers.set(Timer::M, now + self.cfg.timeout());
                ClientVerdict::Deliver
            }
            (TxState::Calling | TxState::Proceeding, _) => {
                self.state = TxState::Completed;
                self.timers.stop_all();
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32).max(self.cfg.timeout())
                };
                self.timers.set(Timer::D, now + wait);
                ClientVerdict::Deliver
            }
            (TxState::Accepted, 200..=299) => ClientVerdict::Deliver,
            _ => ClientVerdict::Absorb,
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        let mut out = Vec::new();
        while let Some(t) = self.timers.expired(now) {
            match t {
                Timer::A if self.state == TxState::Calling => {
                    self.a_interval *= 2;
                    self.timers.set(Timer::A, now + self.a_interval);
                    out.push(TxAction::Retransmit(self.request.clone()));
                }
                Timer::B => {
                    self.state = TxState::Terminated;
                    self.timers.stop_all();
                    out.push(TxAction::Terminated(Termination::Timeout));
                    break;
                }
                Timer::D | Timer::M => {
                    self.state = TxState::Terminated;
                    self.timers.stop_all();
                    out.push(TxAction::Terminated(Termination::Normal));
                    break;
                }
                _ => {}
            }
        }
        out
    }
}

/// Non-INVITE client transaction (RFC 3261 17.1.2).
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    state: TxState,
    reliable: bool,
    cfg: TimerConfig,
    request: Vec<u8>,
    e_interval: Duration,
    /// Armed timers.
    pub timers: TimerTable,
}

impl ClientNonInvite {
    /// Starts the transaction: the owner sends `request` once now.
    pub fn new(now: Instant, cfg: TimerConfig, reliable: bool, request: Vec<u8>) -> Self {
        let mut timers = TimerTable::default();
        if !reliable {
            timers.set(Timer::E, now + cfg.t1);
        }
        timers.set(Timer::F, now + cfg.timeout());
        ClientNonInvite {
            state: TxState::Trying,
            reliable,
            cfg,
            request,
            e_interval: cfg.t1,
            timers,
        }
    }

    /// Current state.
    pub fn state(&self) -> TxState {
        self.state
    }

    /// A response with this transaction's branch arrived.
    pub fn handle_response(&mut self, now: Instant, status: u16) -> ClientVerdict {
        match self.state {
            TxState::Trying | TxState::Proceeding if status < 200 => {
                self.state = TxState::Proceeding;
                ClientVerdict::Deliver
            }
            TxState::Trying | TxState::Proceeding => {
                self.state = TxState::Completed;
                self.timers.stop_all();
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t4
                };
                self.timers.set(Timer::K, now + wait);
                ClientVerdict::Deliver
            }
            _ => ClientVerdict::Absorb,
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        let mut out = Vec::new();
        while let Some(t) = self.timers.expired(now) {
            match t {
                Timer::E if matches!(self.state, TxState::Trying | TxState::Proceeding) => {
                    // In Proceeding the interval is T2 (RFC 3261 17.1.2.2).
                    self.e_interval = if self.state == TxState::Trying {
                        (self.e_interval * 2).min(self.cfg.t2)
                    } else {
                        self.cfg.t2
                    };
                    self.timers.set(Timer::E, now + self.e_interval);
                    out.push(TxAction::Retransmit(self.request.clone()));
                }
                Timer::F => {
                    self.state = TxState::Terminated;
                    self.timers.stop_all();
                    out.push(TxAction::Terminated(Termination::Timeout));
                    break;
                }
                Timer::K => {
                    self.state = TxState::Terminated;
                    self.timers.stop_all();
                    out.push(TxAction::Terminated(Termination::Normal));
                    break;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps a machine through virtual time, collecting retransmission times
    /// (relative to t0) and the termination.
    fn run<F>(
        t0: Instant,
        until: Duration,
        mut next: impl FnMut() -> Option<Instant>,
        mut fire: F,
    ) -> (Vec<Duration>, Option<(Duration, Termination)>)
    where
        F: FnMut(Instant) -> Vec<TxAction>,
    {
        let mut sent = Vec::new();
        while let Some(at) = next() {
            if at > t0 + until {
                break;
            }
            for a in fire(at) {
                match a {
                    TxAction::Retransmit(_) => sent.push(at - t0),
                    TxAction::Terminated(why) => return (sent, Some((at - t0, why))),
                }
            }
        }
        (sent, None)
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn timer_a_doubles_and_timer_b_times_out() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, TimerConfig::default(), false, b"INVITE".to_vec());
        let tx2 = std::cell::RefCell::new(&mut tx);
        let (sent, end) = run(
            t0,
            Duration::from_secs(60),
            || tx2.borrow().timers.next(),
            |now| tx2.borrow_mut().handle_timeout(now),
        );
        // A at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
        assert_eq!(sent, ms(&[500, 1500, 3500, 7500, 15500, 31500]));
        assert_eq!(end, Some((Duration::from_secs(32), Termination::Timeout)));
    }

    #[test]
    fn invite_client_provisional_stops_a_and_b_then_d_after_error() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, TimerConfig::default(), false, b"INVITE".to_vec());
        assert_eq!(tx.handle_response(t0, 180), ClientVerdict::Deliver);
        assert_eq!(tx.timers.next(), None, "no timer in Proceeding");
        let t1 = t0 + Duration::from_secs(100);
        assert_eq!(tx.handle_response(t1, 486), ClientVerdict::Deliver);
        assert_eq!(tx.handle_response(t1, 486), ClientVerdict::Absorb);
        assert_eq!(tx.timers.get(Timer::D), Some(t1 + Duration::from_secs(32)));
        let acts = tx.handle_timeout(t1 + Duration::from_secs(32));
        assert_eq!(acts, vec![TxAction::Terminated(Termination::Normal)]);
    }

    #[test]
    fn invite_client_2xx_goes_to_accepted_with_timer_m() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, TimerConfig::default(), true, b"INVITE".to_vec());
        assert_eq!(tx.timers.get(Timer::A), None, "no retransmission over TCP");
        assert_eq!(tx.handle_response(t0, 200), ClientVerdict::Deliver);
        assert_eq!(tx.state(), TxState::Accepted);
        assert_eq!(
            tx.handle_response(t0, 200),
            ClientVerdict::Deliver,
            "2xx retransmits reach the TU"
        );
        assert_eq!(tx.timers.get(Timer::M), Some(t0 + Duration::from_secs(32)));
    }

    #[test]
    fn timer_e_caps_at_t2_and_f_times_out() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(t0, TimerConfig::default(), false, b"BYE".to_vec());
        let cell = std::cell::RefCell::new(&mut tx);
        let (sent, end) = run(
            t0,
            Duration::from_secs(60),
            || cell.borrow().timers.next(),
            |now| cell.borrow_mut().handle_timeout(now),
        );
        // 0.5, 1.5, 3.5, 7.5 then every 4 s until F at 32 s.
        assert_eq!(
            sent,
            ms(&[500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
        );
        assert_eq!(end, Some((Duration::from_secs(32), Termination::Timeout)));
    }

    #[test]
    fn timer_e_uses_t2_in_proceeding_and_k_after_final() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(t0, TimerConfig::default(), false, b"BYE".to_vec());
        tx.handle_response(t0 + Duration::from_millis(100), 100);
        let acts = tx.handle_timeout(t0 + Duration::from_millis(500));
        assert_eq!(acts.len(), 1);
        assert_eq!(
            tx.timers.get(Timer::E),
            Some(t0 + Duration::from_millis(4500))
        );
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(tx.handle_response(t1, 200), ClientVerdict::Deliver);
        assert_eq!(tx.handle_response(t1, 200), ClientVerdict::Absorb);
        assert_eq!(
            tx.timers.next(),
            Some(t1 + Duration::from_secs(5)),
            "K = T4"
        );
        assert_eq!(
            tx.handle_timeout(t1 + Duration::from_secs(5)),
            vec![TxAction::Terminated(Termination::Normal)]
        );
    }

    #[test]
    fn timer_g_retransmits_final_response_until_h() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(TimerConfig::default(), false);
        assert!(tx.send_response(t0, 100, b"100".to_vec()));
        assert_eq!(tx.handle_request_retransmission(), Some(b"100".to_vec()));
        assert!(tx.send_response(t0, 486, b"486".to_vec()));
        assert!(
            !tx.send_response(t0, 200, b"200".to_vec()),
            "no second final"
        );
        let cell = std::cell::RefCell::new(&mut tx);
        let (sent, end) = run(
            t0,
            Duration::from_secs(60),
            || cell.borrow().timers.next(),
            |now| cell.borrow_mut().handle_timeout(now),
        );
        assert_eq!(
            sent,
            ms(&[500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
        );
        assert_eq!(end, Some((Duration::from_secs(32), Termination::Timeout)));
    }

    #[test]
    fn ack_stops_g_and_h_then_timer_i() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(TimerConfig::default(), false);
        tx.send_response(t0, 487, b"487".to_vec());
        let t1 = t0 + Duration::from_millis(700);
        tx.handle_ack(t1);
        assert_eq!(tx.state(), TxState::Confirmed);
        assert_eq!(
            tx.timers.next(),
            Some(t1 + Duration::from_secs(5)),
            "I = T4"
        );
        assert_eq!(tx.handle_request_retransmission(), None);
        assert_eq!(
            tx.handle_timeout(t1 + Duration::from_secs(5)),
            vec![TxAction::Terminated(Termination::Normal)]
        );
    }

    #[test]
    fn accepted_absorbs_invite_retransmissions_until_l() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(TimerConfig::default(), true);
        tx.send_response(t0, 200, b"200".to_vec());
        assert_eq!(tx.state(), TxState::Accepted);
        assert_eq!(tx.handle_request_retransmission(), None);
        assert_eq!(tx.timers.next(), Some(t0 + Duration::from_secs(32)));
        assert!(tx.handle_timeout(t0 + Duration::from_secs(31)).is_empty());
        assert_eq!(
            tx.handle_timeout(t0 + Duration::from_secs(32)),
            vec![TxAction::Terminated(Termination::Normal)]
        );
    }

    #[test]
    fn timer_j_is_64t1_on_udp_and_zero_on_tcp() {
        let t0 = Instant::now();
        let mut udp = ServerNonInvite::new(TimerConfig::default(), false);
        udp.send_response(t0, 200, b"200".to_vec());
        assert_eq!(udp.handle_request_retransmission(), Some(b"200".to_vec()));
        assert_eq!(udp.timers.next(), Some(t0 + Duration::from_secs(32)));
        let mut tcp = ServerNonInvite::new(TimerConfig::default(), true);
        tcp.send_response(t0, 200, b"200".to_vec());
        assert_eq!(tcp.timers.next(), Some(t0));
        assert_eq!(
            tcp.handle_timeout(t0),
            vec![TxAction::Terminated(Termination::Normal)]
        );
        assert_eq!(tcp.state(), TxState::Terminated);
    }
}
