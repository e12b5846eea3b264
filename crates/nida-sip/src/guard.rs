//! Flood and abuse protection per source address, sans-IO: a token bucket
//! of messages per second, a size limit, a count of live dialogs, and a
//! block after repeated authentication failures. The shell asks it before
//! it hands a message to the endpoint and tells it what the endpoint
//! decided; it never reads the clock itself.
//!
//! A "source" is a network, not an address: IPv4 by /32 and IPv6 by /64
//! by default (`ipv4_prefix`, `ipv6_prefix`), since one IPv6 host owns a
//! whole /64 and would otherwise get a fresh budget per address.
//! [`Connections`] bounds stream connections the same way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The limits.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// Messages per second a source may send, on average.
    pub rate: f64,
    /// Messages a source may send at once above the rate.
    pub burst: f64,
    /// Largest message accepted, in bytes.
    pub max_message: usize,
    /// Calls a source may have at once.
    pub max_dialogs: usize,
    /// Authentication failures within `failure_window` that block a source.
    pub max_auth_failures: u32,
    /// The window in which failures count.
    pub failure_window: Duration,
    /// How long a blocked source is ignored.
    pub block_for: Duration,
    /// Sources no limit applies to (carriers' trunks, a proxy in front).
    pub trusted: Vec<Cidr>,
    /// IPv4 addresses sharing their first this many bits are one source.
    pub ipv4_prefix: u8,
    /// IPv6 addresses sharing their first this many bits are one source.
    pub ipv6_prefix: u8,
    /// TCP and TLS connections open at once, from everyone.
    pub max_connections: usize,
    /// TCP and TLS connections open at once from one source.
    pub max_connections_per_source: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            rate: 50.0,
            burst: 200.0,
            max_message: 16 * 1024,
            max_dialogs: 50,
            max_auth_failures: 5,
            failure_window: Duration::from_secs(60),
            block_for: Duration::from_secs(600),
            trusted: Vec::new(),
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            max_connections: 1024,
            max_connections_per_source: 32,
        }
    }
}

/// An address block, e.g. `192.0.2.0/24` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `ADDR/BITS` or a bare address (all bits).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim().parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net, bits })
    }

    /// Whether `ip` is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl GuardConfig {
    /// The source `ip` counts as: its network under the configured
    /// prefixes.
    pub fn source_of(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => {
                let bits = u32::from(self.ipv4_prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u32::from(self.ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

/// Open stream connections, in total and per source. The shell asks
/// [`Connections::open`] on accept (and closes the connection at once on
/// `false`) and calls [`Connections::close`] when it ends.
#[derive(Debug)]
pub struct Connections {
    cfg: GuardConfig,
    total: usize,
    per_source: HashMap<IpAddr, usize>,
    /// Connections refused since start.
    pub refused: u64,
}

impl Connections {
    /// No connection yet.
    pub fn new(cfg: GuardConfig) -> Connections {
        Connections {
            cfg,
            total: 0,
            per_source: HashMap::new(),
            refused: 0,
        }
    }

    /// A connection from `ip` wants in: whether it may stay.
    pub fn open(&mut self, ip: IpAddr) -> bool {
        let trusted = self.cfg.trusted.iter().any(|c| c.contains(ip));
        let key = self.cfg.source_of(ip);
        let mine = self.per_source.get(&key).copied().unwrap_or(0);
        if self.total >= self.cfg.max_connections
            || (!trusted && mine >= self.cfg.max_connections_per_source)
        {
            self.refused += 1;
            return false;
        }
        self.total += 1;
        *self.per_source.entry(key).or_default() += 1;
        true
    }

    /// A connection that [`Connections::open`] let in has closed.
    pub fn close(&mut self, ip: IpAddr) {
        let key = self.cfg.source_of(ip);
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_source.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&key);
            }
        }
    }

    /// Connections open now.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Hand it to the endpoint.
    Pass,
    /// Drop it without an answer: the source is blocked.
    Blocked,
    /// Drop it: the source sends faster than its rate.
    TooFast,
    /// Drop it: larger than the limit.
    TooLarge,
}

/// What the guard has to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardEvent {
    /// A source was blocked until `until`.
    Blocked {
        /// The source.
        ip: IpAddr,
        /// Failures counted.
        failures: u32,
        /// Until when.
        until: Instant,
    },
    /// A block ended.
    Unblocked {
        /// The source.
        ip: IpAddr,
    },
}

#[derive(Debug, Clone)]
struct Source {
    tokens: f64,
    last: Instant,
    failures: Vec<Instant>,
    blocked_until: Option<Instant>,
    dialogs: usize,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// Messages dropped from blocked sources.
    pub blocked: u64,
    /// Messages dropped for the rate.
    pub too_fast: u64,
    /// Messages dropped for their size.
    pub too_large: u64,
    /// Calls refused for the per-source limit.
    pub dialogs_refused: u64,
    /// Sources blocked since start.
    pub blocks: u64,
}

/// The per-source state.
#[derive(Debug)]
pub struct Guard {
    cfg: GuardConfig,
    sources: HashMap<IpAddr, Source>,
    events: Vec<GuardEvent>,
    stats: GuardStats,
}

/// Sources kept at most; idle ones are forgotten first.
const MAX_SOURCES: usize = 100_000;

impl Guard {
    /// A guard with these limits.
    pub fn new(cfg: GuardConfig) -> Guard {
        Guard {
            cfg,
            sources: HashMap::new(),
            events: Vec::new(),
            stats: GuardStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> GuardStats {
        self.stats
    }

    /// Whether `ip` is in a trusted network (no limits apply).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.cfg.trusted.iter().any(|c| c.contains(ip))
    }

    fn source(&mut self, now: Instant, ip: IpAddr) -> &mut Source {
        let ip = self.cfg.source_of(ip);
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            self.forget_idle(now);
        }
        let burst = self.cfg.burst;
        self.sources.entry(ip).or_insert(Source {
            tokens: burst,
            last: now,
            failures: Vec::new(),
            blocked_until: None,
            dialogs: 0,
        })
    }

    /// A message of `len` bytes arrived from `ip`.
    pub fn handle_message(&mut self, now: Instant, ip: IpAddr, len: usize) -> Admit {
        if len > self.cfg.max_message {
            self.stats.too_large += 1;
            return Admit::TooLarge;
        }
        if self.is_trusted(ip) {
            return Admit::Pass;
        }
        let (rate, burst) = (self.cfg.rate, self.cfg.burst);
        let ip = self.cfg.source_of(ip);
        let s = self.source(now, ip);
        if let Some(until) = s.blocked_until {
            if now < until {
                self.stats.blocked += 1;
                return Admit::Blocked;
            }
            s.blocked_until = None;
            s.failures.clear();
            self.events.push(GuardEvent::Unblocked { ip });
        }
        let s = self.sources.get_mut(&ip).expect("just added");
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(burst);
        s.last = now;
        if s.tokens < 1.0 {
            self.stats.too_fast += 1;
            return Admit::TooFast;
        }
        s.tokens -= 1.0;
        Admit::Pass
    }

    /// The endpoint refused `ip`'s credentials (403), or `ip` answered a
    /// challenge for a user nida does not know.
    pub fn handle_auth_failure(&mut self, now: Instant, ip: IpAddr) {
        if self.is_trusted(ip) {
            return;
        }
        let (window, max, block) = (
            self.cfg.failure_window,
            self.cfg.max_auth_failures,
            self.cfg.block_for,
        );
        let ip = self.cfg.source_of(ip);
        let s = self.source(now, ip);
        s.failures
            .retain(|t| now.saturating_duration_since(*t) < window);
        s.failures.push(now);
        let failures = s.failures.len() as u32;
        if failures >= max && s.blocked_until.is_none() {
            let until = now + block;
            s.blocked_until = Some(until);
            self.stats.blocks += 1;
            self.events.push(GuardEvent::Blocked {
                ip,
                failures,
                until,
            });
        }
    }

    /// A call from `ip` is starting; `false` when `ip` has too many.
    pub fn dialog_start(&mut self, now: Instant, ip: IpAddr) -> bool {
        if self.is_trusted(ip) {
            return true;
        }
        let max = self.cfg.max_dialogs;
        let s = self.source(now, ip);
        if s.dialogs >= max {
            self.stats.dialogs_refused += 1;
            return false;
        }
        s.dialogs += 1;
        true
    }

    /// A call from `ip` that `dialog_start` let in has ended.
    pub fn dialog_end(&mut self, ip: IpAddr) {
        if let Some(s) = self.sources.get_mut(&self.cfg.source_of(ip)) {
            s.dialogs = s.dialogs.saturating_sub(1);
        }
    }

    /// Whether `ip` is blocked now.
    pub fn is_blocked(&self, now: Instant, ip: IpAddr) -> bool {
        self.sources
            .get(&self.cfg.source_of(ip))
            .and_then(|s| s.blocked_until)
            .is_some_and(|u| now < u)
    }

    /// The next report.
    pub fn poll_event(&mut self) -> Option<GuardEvent> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }

    /// Forgets sources with nothing to remember (full bucket, no failure,
    /// no block, no call); call it now and then to bound memory.
    pub fn forget_idle(&mut self, now: Instant) {
        let (rate, burst, window) = (self.cfg.rate, self.cfg.burst, self.cfg.failure_window);
        self.sources.retain(|_, s| {
            let refilled = s.tokens + now.saturating_duration_since(s.last).as_secs_f64() * rate;
            let recent_failure = s
                .failures
                .last()
                .is_some_and(|t| now.saturating_duration_since(*t) < window);
            refilled < burst
                || recent_failure
                || s.dialogs > 0
                || s.blocked_until.is_some_and(|u| now < u)
        });
    }

    /// Sources remembered now.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn small() -> GuardConfig {
        GuardConfig {
            rate: 10.0,
            burst: 5.0,
            max_message: 100,
            max_dialogs: 2,
            max_auth_failures: 3,
            failure_window: Duration::from_secs(60),
            block_for: Duration::from_secs(600),
            trusted: vec![Cidr::parse("192.0.2.0/24").unwrap()],
            ..GuardConfig::default()
        }
    }

    #[test]
    fn cidr_blocks_hold_their_addresses() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(!c.contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains(ip("2001:db8:1::5")));
        assert!(Cidr::parse("203.0.113.7")
            .unwrap()
            .contains(ip("203.0.113.7")));
        assert!(!Cidr::parse("203.0.113.7")
            .unwrap()
            .contains(ip("203.0.113.8")));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("ten/8"), None);
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let mut g = Guard::new(small());
        let t0 = Instant::now();
        let a = ip("198.51.100.1");
        for _ in 0..5 {
            assert_eq!(g.handle_message(t0, a, 10), Admit::Pass);
        }
        assert_eq!(g.handle_message(t0, a, 10), Admit::TooFast);
        // Another source has its own bucket.
        assert_eq!(g.handle_message(t0, ip("198.51.100.2"), 10), Admit::Pass);
        // 10 per second: one more after 100 ms.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(g.handle_message(t1, a, 10), Admit::Pass);
        assert_eq!(g.handle_message(t1, a, 10), Admit::TooFast);
        assert_eq!(g.stats().too_fast, 2);
        // Trusted sources and size.
        for _ in 0..50 {
            assert_eq!(g.handle_message(t0, ip("192.0.2.9"), 10), Admit::Pass);
        }
        assert_eq!(g.handle_message(t1, ip("192.0.2.9"), 101), Admit::TooLarge);
    }

    #[test]
    fn repeated_failures_block_then_the_block_lapses() {
        let mut g = Guard::new(small());
        let t0 = Instant::now();
        let a = ip("198.51.100.1");
        g.handle_auth_failure(t0, a);
        g.handle_auth_failure(t0 + Duration::from_secs(1), a);
        assert!(!g.is_blocked(t0, a));
        assert_eq!(g.poll_event(), None);
        g.handle_auth_failure(t0 + Duration::from_secs(2), a);
        let t3 = t0 + Duration::from_secs(3);
        assert!(g.is_blocked(t3, a));
        assert!(matches!(
            g.poll_event(),
            Some(GuardEvent::Blocked { failures: 3, .. })
        ));
        assert_eq!(g.handle_message(t3, a, 10), Admit::Blocked);
        let later = t0 + Duration::from_secs(603);
        assert_eq!(g.handle_message(later, a, 10), Admit::Pass);
        assert_eq!(g.poll_event(), Some(GuardEvent::Unblocked { ip: a }));
        // Failures spread beyond the window never add up to a block.
        let b = ip("198.51.100.2");
        for i in 0..10 {
            g.handle_auth_failure(t0 + Duration::from_secs(61 * i), b);
        }
        assert!(!g.is_blocked(t0 + Duration::from_secs(610), b));
        // Nothing but time clears the count (a guesser holding one account
        // must not reset it by logging in with that one); trusted sources
        // are never blocked.
        let c = ip("198.51.100.3");
        g.handle_auth_failure(t0, c);
        g.handle_auth_failure(t0, c);
        g.handle_auth_failure(t0, c);
        assert!(g.is_blocked(t0, c));
        for _ in 0..10 {
            g.handle_auth_failure(t0, ip("192.0.2.1"));
        }
        assert!(!g.is_blocked(t0, ip("192.0.2.1")));
    }

    #[test]
    fn dialogs_per_source_are_capped() {
        let mut g = Guard::new(small());
        let t0 = Instant::now();
        let a = ip("198.51.100.1");
        assert!(g.dialog_start(t0, a));
        assert!(g.dialog_start(t0, a));
        assert!(!g.dialog_start(t0, a));
        g.dialog_end(a);
        assert!(g.dialog_start(t0, a));
        assert_eq!(g.stats().dialogs_refused, 1);
    }

    #[test]
    fn idle_sources_are_forgotten() {
        let mut g = Guard::new(small());
        let t0 = Instant::now();
        for i in 0..100u8 {
            g.handle_message(t0, IpAddr::from([198, 51, 100, i]), 10);
        }
        g.dialog_start(t0, ip("198.51.100.1"));
        assert_eq!(g.sources(), 100);
        g.forget_idle(t0 + Duration::from_secs(1));
        // Only the one with a call in progress stays.
        assert_eq!(g.sources(), 1);
    }

    #[test]
    fn an_ipv6_host_is_one_source_across_its_64() {
        let mut g = Guard::new(small());
        let t0 = Instant::now();
        for i in 0..3u16 {
            let a = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i + 1]);
            g.handle_auth_failure(t0, a);
        }
        assert!(g.is_blocked(t0, ip("2001:db8:0:1::ffff")));
        assert!(!g.is_blocked(t0, ip("2001:db8:0:2::1")));
    }

    #[test]
    fn connections_are_bounded_in_total_and_per_source() {
        let cfg = GuardConfig {
            max_connections: 3,
            max_connections_per_source: 2,
            trusted: vec![Cidr::parse("192.0.2.0/24").unwrap()],
            ..GuardConfig::default()
        };
        let mut c = Connections::new(cfg);
        let a = ip("198.51.100.1");
        assert!(c.open(a));
        assert!(c.open(a));
        assert!(!c.open(a));
        assert!(c.open(ip("192.0.2.7")));
        assert!(!c.open(ip("192.0.2.8")), "the total binds the trusted too");
        c.close(a);
        assert!(c.open(ip("198.51.100.9")));
        assert_eq!((c.total(), c.refused), (3, 2));
    }
}
