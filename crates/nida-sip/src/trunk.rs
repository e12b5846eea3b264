//! Carrier trunks, sans-IO: registration to the carrier with digest
//! authentication, refreshed before it lapses; OPTIONS health checks of
//! each of a trunk's addresses, so calls and registrations go to one that
//! answers; recognition of calls coming from a trunk by source address; and
//! the number rewriting between the carrier's format and the dial plan's.
//!
//! [`Trunks`] asks for requests through [`Trunks::poll_request`] (the shell
//! gives them to [`crate::Endpoint::request`]) and is told their outcome
//! through [`Trunks::handle_response`]; time comes in as `now`.

use crate::auth;
use crate::endpoint::{OutRequest, Transport};
use crate::guard::Cidr;
use crate::headers::NameAddr;
use crate::message::{Headers, Method};
use crate::rng::Rng;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One rewriting rule: a number starting with `prefix` has it replaced by
/// `replace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// What the number starts with.
    pub prefix: String,
    /// What replaces it.
    pub replace: String,
}

/// Applies the first rule whose prefix matches, after dropping the visual
/// separators people and some carriers put in numbers (spaces, `-`, `.`,
/// brackets).
pub fn rewrite(rules: &[Rewrite], number: &str) -> String {
    let plain: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    for r in rules {
        if let Some(rest) = plain.strip_prefix(r.prefix.as_str()) {
            return format!("{}{rest}", r.replace);
        }
    }
    plain
}

/// A trunk's settings.
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// Name in the configuration, logs and metrics.
    pub name: String,
    /// The carrier's addresses in order of preference.
    pub addresses: Vec<SocketAddr>,
    /// Transport to them.
    pub transport: Transport,
    /// The carrier's domain: registrar URI and host of dialled URIs.
    pub domain: String,
    /// Account name for registration and digest challenges.
    pub username: Option<String>,
    /// Its password.
    pub password: String,
    /// Whether nida registers to the carrier.
    pub register: bool,
    /// Registration time asked for.
    pub expires: Duration,
    /// Time between OPTIONS to each address; `None`: no health checks
    /// (every address counts as usable, the first is used).
    pub probe_interval: Option<Duration>,
    /// Wait before registering again after a failure.
    pub retry: Duration,
    /// Source networks calls from this trunk come from (its addresses
    /// count too).
    pub inbound: Vec<Cidr>,
    /// Rules from the carrier's called numbers to the dial plan's.
    pub rewrite_in: Vec<Rewrite>,
    /// Rules from nida's numbers to the carrier's (call-backs).
    pub rewrite_out: Vec<Rewrite>,
    /// Offer reliable provisional responses (`Supported: 100rel`, RFC
    /// 3262) on the INVITEs sent to this carrier.
    pub rel100: bool,
    /// The carrier's host name, with its port when one was written: the
    /// shell resolves it (RFC 3263) and sets the addresses (see
    /// [`Trunks::set_addresses`]); `addresses` start empty then.
    pub resolve: Option<(String, Option<u16>)>,
}

/// What nida knows of an address's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No answer to a health check yet.
    Unknown,
    /// Answered its last health check.
    Up,
    /// Did not answer its last health check, or answered 503.
    Down,
}

impl Health {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// Where a trunk's registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegState {
    /// The trunk does not register.
    Off,
    /// Waiting for an address that answers health checks.
    Waiting,
    /// A REGISTER is out.
    Registering,
    /// Registered until this time.
    Registered(Instant),
    /// The last attempt failed with this status (408: no answer).
    Failed(u16),
}

/// A trunk's state, for the admin API and metrics.
#[derive(Debug, Clone)]
pub struct TrunkStatus {
    /// Its name.
    pub name: String,
    /// Registration.
    pub registration: RegState,
    /// Where it is (or was last) registered.
    pub registered_at: Option<SocketAddr>,
    /// Each address and its health.
    pub addresses: Vec<(SocketAddr, Health)>,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkEvent {
    /// The carrier accepted the registration for this long.
    Registered {
        /// Trunk name.
        trunk: String,
        /// Where.
        at: SocketAddr,
        /// Time granted.
        expires: Duration,
    },
    /// A registration attempt failed.
    RegistrationFailed {
        /// Trunk name.
        trunk: String,
        /// Where.
        at: SocketAddr,
        /// Final status (408: no answer).
        status: u16,
    },
    /// An address's health changed.
    Health {
        /// Trunk name.
        trunk: String,
        /// Which address.
        address: SocketAddr,
        /// Now.
        health: Health,
    },
}

/// Where a call through a trunk goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Request-URI.
    pub uri: String,
    /// The address chosen.
    pub dest: SocketAddr,
    /// Over what.
    pub transport: Transport,
    /// Credentials for the carrier's challenge, if any.
    pub credentials: Option<(String, String)>,
    /// Offer 100rel on the INVITE.
    pub rel100: bool,
}

#[derive(Debug)]
struct Address {
    addr: SocketAddr,
    health: Health,
    /// Tag of the OPTIONS out, if one is.
    probe: Option<u64>,
    next_probe: Instant,
}

#[derive(Debug)]
struct Registration {
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: RegState,
    at: Option<SocketAddr>,
    /// Tag of the REGISTER out.
    pending: Option<u64>,
    /// Challenges answered in this attempt.
    challenges: u8,
    /// Expiry asked for (raised by 423).
    expires: Duration,
    /// When to register (again).
    next: Option<Instant>,
}

#[derive(Debug)]
struct Trunk {
    cfg: TrunkConfig,
    addresses: Vec<Address>,
    reg: Registration,
}

impl Trunk {
    /// The best address: the first that is up; with no health checks, the
    /// first; with health checks, one not yet checked if none is up.
    fn best(&self) -> Option<SocketAddr> {
        if self.cfg.probe_interval.is_none() {
            return self.addresses.first().map(|a| a.addr);
        }
        let pick = |h: Health| self.addresses.iter().find(|a| a.health == h);
        pick(Health::Up)
            .or_else(|| pick(Health::Unknown))
            .map(|a| a.addr)
    }

    /// An address that answered its health check (any address when there
    /// are no health checks).
    fn answering(&self) -> Option<SocketAddr> {
        match self.cfg.probe_interval {
            None => self.best(),
            Some(_) => self
                .addresses
                .iter()
                .find(|a| a.health == Health::Up)
                .map(|a| a.addr),
        }
    }

    fn user(&self) -> &str {
        self.cfg.username.as_deref().unwrap_or("nida")
    }
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Probe(usize, usize),
    Register(usize),
}

/// Every trunk of the configuration.
#[derive(Debug)]
pub struct Trunks {
    trunks: Vec<Trunk>,
    local: SocketAddr,
    rng: Rng,
    next_tag: u64,
    purposes: HashMap<u64, Purpose>,
    out: VecDeque<OutRequest>,
    events: VecDeque<TrunkEvent>,
}

impl Trunks {
    /// Trunks starting at `now` (their first checks and registrations are
    /// due then: see [`Trunks::poll_timeout`]); `local` is nida's SIP
    /// address (Contact).
    pub fn new(
        cfgs: Vec<TrunkConfig>,
        local: SocketAddr,
        seed: Option<u64>,
        now: Instant,
    ) -> Trunks {
        let mut rng = Rng::new(seed);
        let trunks = cfgs
            .into_iter()
            .map(|cfg| {
                let reg = Registration {
                    call_id: format!("{}@{}", rng.hex128(), local.ip()),
                    from_tag: rng.hex(),
                    cseq: 0,
                    state: if cfg.register {
                        RegState::Waiting
                    } else {
                        RegState::Off
                    },
                    at: None,
                    pending: None,
                    challenges: 0,
                    expires: cfg.expires,
                    next: cfg.register.then_some(now),
                };
                let addresses = cfg
                    .addresses
                    .iter()
                    .map(|&addr| Address {
                        addr,
                        health: Health::Unknown,
                        probe: None,
                        next_probe: now,
                    })
                    .collect();
                Trunk {
                    cfg,
                    addresses,
                    reg,
                }
            })
            .collect();
        Trunks {
            trunks,
            local,
            rng,
            next_tag: 1,
            purposes: HashMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A trunk's addresses as DNS now gives them (RFC 3263), in the order
    /// to try: an address still listed keeps its health; a new one is
    /// checked at once. Health checks in flight to the old list are
    /// forgotten (their answers are ignored). False for an unknown trunk.
    pub fn set_addresses(&mut self, trunk: &str, addrs: Vec<SocketAddr>, now: Instant) -> bool {
        let Some(ti) = self.trunks.iter().position(|t| t.cfg.name == trunk) else {
            return false;
        };
        self.purposes
            .retain(|_, p| !matches!(p, Purpose::Probe(t, _) if *t == ti));
        let t = &mut self.trunks[ti];
        let addresses = addrs
            .iter()
            .map(|&addr| {
                let old = t.addresses.iter().find(|a| a.addr == addr);
                Address {
                    addr,
                    health: old.map_or(Health::Unknown, |a| a.health),
                    probe: None,
                    next_probe: old.map_or(now, |a| a.next_probe.min(now + Duration::from_secs(1))),
                }
            })
            .collect();
        t.addresses = addresses;
        t.cfg.addresses = addrs;
        // A registration waiting for an address may go now.
        if t.reg.state != RegState::Off && t.reg.at.is_none() && t.reg.pending.is_none() {
            t.reg.next = Some(t.reg.next.map_or(now, |n| n.min(now)));
        }
        true
    }

    /// Whether there are no trunks.
    pub fn is_empty(&self) -> bool {
        self.trunks.is_empty()
    }

    /// Whether any trunk lists inbound networks: then only they (and what
    /// the shell trusts otherwise) may place calls.
    pub fn restricts_inbound(&self) -> bool {
        self.trunks.iter().any(|t| !t.cfg.inbound.is_empty())
    }

    /// The trunk a call from `ip` comes from: one whose inbound networks or
    /// addresses hold it.
    pub fn identify(&self, ip: IpAddr) -> Option<&str> {
        self.trunks
            .iter()
            .find(|t| {
                t.cfg.inbound.iter().any(|c| c.contains(ip))
                    || t.cfg.addresses.iter().any(|a| a.ip() == ip)
            })
            .map(|t| t.cfg.name.as_str())
    }

    /// A called number from `trunk` rewritten for the dial plan.
    pub fn called_number(&self, trunk: &str, number: &str) -> String {
        match self.find(trunk) {
            Some(t) => rewrite(&t.cfg.rewrite_in, number),
            None => number.to_string(),
        }
    }

    /// Where a call to `number` through `trunk` goes now; `None` when the
    /// trunk is unknown or none of its addresses is usable.
    pub fn route(&self, trunk: &str, number: &str) -> Option<Route> {
        let t = self.find(trunk)?;
        let dest = t.best()?;
        let n = rewrite(&t.cfg.rewrite_out, number);
        Some(Route {
            uri: format!("sip:{n}@{}", t.cfg.domain),
            dest,
            transport: t.cfg.transport,
            credentials: t
                .cfg
                .username
                .as_ref()
                .map(|u| (u.clone(), t.cfg.password.clone())),
            rel100: t.cfg.rel100,
        })
    }

    fn find(&self, name: &str) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.cfg.name == name)
    }

    /// The state of every trunk.
    pub fn status(&self) -> Vec<TrunkStatus> {
        self.trunks
            .iter()
            .map(|t| TrunkStatus {
                name: t.cfg.name.clone(),
                registration: t.reg.state,
                registered_at: t.reg.at,
                addresses: t.addresses.iter().map(|a| (a.addr, a.health)).collect(),
            })
            .collect()
    }

    /// Next request to send.
    pub fn poll_request(&mut self) -> Option<OutRequest> {
        self.out.pop_front()
    }

    /// Next event to log.
    pub fn poll_event(&mut self) -> Option<TrunkEvent> {
        self.events.pop_front()
    }

    /// When [`Trunks::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.trunks
            .iter()
            .flat_map(|t| {
                let probes = t
                    .addresses
                    .iter()
                    .filter(|_| t.cfg.probe_interval.is_some())
                    .map(|a| a.next_probe);
                probes.chain(t.reg.next)
            })
            .min()
    }

    /// Sends what is due at `now`: health checks and registrations.
    pub fn handle_timeout(&mut self, now: Instant) {
        for ti in 0..self.trunks.len() {
            if let Some(every) = self.trunks[ti].cfg.probe_interval {
                for ai in 0..self.trunks[ti].addresses.len() {
                    if self.trunks[ti].addresses[ai].next_probe > now {
                        continue;
                    }
                    self.trunks[ti].addresses[ai].next_probe = now + every;
                    if self.trunks[ti].addresses[ai].probe.is_some() {
                        // The last check is still unanswered.
                        self.set_health(ti, ai, Health::Down, now);
                    } else {
                        self.probe(ti, ai);
                    }
                }
            }
            if self.trunks[ti].reg.next.is_some_and(|at| at <= now) {
                self.trunks[ti].reg.next = None;
                self.register(ti, now);
            }
        }
    }

    fn tag(&mut self, purpose: Purpose) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.purposes.insert(tag, purpose);
        tag
    }

    fn probe(&mut self, ti: usize, ai: usize) {
        let tag = self.tag(Purpose::Probe(ti, ai));
        let t = &self.trunks[ti];
        let addr = t.addresses[ai].addr;
        let mut h = Headers::default();
        let from = format!("<sip:{}@{}>;tag={}", t.user(), t.cfg.domain, self.rng.hex());
        h.push("From", from);
        h.push("To", format!("<sip:{}>", t.cfg.domain));
        h.push(
            "Call-ID",
            format!("{}@{}", self.rng.hex128(), self.local.ip()),
        );
        h.push("CSeq", "1 OPTIONS");
        h.push("Accept", "application/sdp");
        self.out.push_back(OutRequest {
            tag,
            method: Method::Options,
            uri: format!("sip:{}", t.cfg.domain),
            dest: addr,
            transport: t.cfg.transport,
            headers: h,
        });
        self.trunks[ti].addresses[ai].probe = Some(tag);
    }

    fn set_health(&mut self, ti: usize, ai: usize, health: Health, now: Instant) {
        let t = &mut self.trunks[ti];
        let a = &mut t.addresses[ai];
        if a.health == health {
            return;
        }
        a.health = health;
        let address = a.addr;
        self.events.push_back(TrunkEvent::Health {
            trunk: t.cfg.name.clone(),
            address,
            health,
        });
        let reg = &t.reg;
        let again = match (health, reg.state) {
            // The registrar stopped answering: register elsewhere now.
            (Health::Down, RegState::Registered(_)) => reg.at == Some(address),
            // An address answers at last.
            (Health::Up, RegState::Waiting | RegState::Failed(_)) => reg.pending.is_none(),
            _ => false,
        };
        if again {
            t.reg.next = None;
            self.register(ti, now);
        }
    }

    fn register(&mut self, ti: usize, now: Instant) {
        let Some(dest) = self.trunks[ti].answering() else {
            let t = &mut self.trunks[ti];
            if !matches!(t.reg.state, RegState::Failed(_)) {
                t.reg.state = RegState::Waiting;
            }
            // Health checks call again when an address answers.
            if t.cfg.probe_interval.is_none() {
                t.reg.next = Some(now + t.cfg.retry);
            }
            return;
        };
        self.trunks[ti].reg.challenges = 0;
        self.trunks[ti].reg.at = Some(dest);
        self.send_register(ti, None);
    }

    fn send_register(&mut self, ti: usize, authorization: Option<(&str, String)>) {
        let tag = self.tag(Purpose::Register(ti));
        let local = self.local;
        let t = &mut self.trunks[ti];
        let Some(dest) = t.reg.at else { return };
        t.reg.cseq += 1;
        t.reg.pending = Some(tag);
        if !matches!(t.reg.state, RegState::Registered(_)) {
            t.reg.state = RegState::Registering;
        }
        let user = t.user().to_string();
        let aor = format!("<sip:{user}@{}>", t.cfg.domain);
        let transport = t.cfg.transport.uri_param();
        let mut h = Headers::default();
        h.push("From", format!("{aor};tag={}", t.reg.from_tag));
        h.push("To", aor);
        h.push("Call-ID", t.reg.call_id.as_str());
        h.push("CSeq", format!("{} REGISTER", t.reg.cseq));
        h.push("Contact", format!("<sip:{user}@{local}{transport}>"));
        h.push("Expires", t.reg.expires.as_secs().to_string());
        if let Some((name, value)) = authorization {
            h.push(name, value);
        }
        self.out.push_back(OutRequest {
            tag,
            method: Method::Register,
            uri: format!("sip:{}", t.cfg.domain),
            dest,
            transport: t.cfg.transport,
            headers: h,
        });
    }

    /// The final response to a request of ours (`408` for none).
    pub fn handle_response(&mut self, now: Instant, tag: u64, status: u16, headers: &Headers) {
        match self.purposes.remove(&tag) {
            Some(Purpose::Probe(ti, ai)) => {
                if self.trunks[ti].addresses[ai].probe == Some(tag) {
                    self.trunks[ti].addresses[ai].probe = None;
                }
                let health = if matches!(status, 408 | 503) {
                    Health::Down
                } else {
                    Health::Up
                };
                self.set_health(ti, ai, health, now);
            }
            Some(Purpose::Register(ti)) if self.trunks[ti].reg.pending == Some(tag) => {
                self.trunks[ti].reg.pending = None;
                self.registered(ti, now, status, headers);
            }
            _ => {}
        }
    }

    fn registered(&mut self, ti: usize, now: Instant, status: u16, headers: &Headers) {
        let local = self.local;
        let t = &mut self.trunks[ti];
        let at = t.reg.at.unwrap_or(local);
        match status {
            200..=299 if t.reg.expires.is_zero() => {
                t.reg.state = RegState::Off;
            }
            200..=299 => {
                let granted = granted_expiry(headers, local).unwrap_or(t.reg.expires);
                t.reg.state = RegState::Registered(now + granted);
                // Refresh at half the time granted, at most five minutes
                // before it lapses.
                let refresh = (granted / 2).max(granted.saturating_sub(Duration::from_secs(300)));
                t.reg.next = Some(now + refresh.max(Duration::from_secs(1)));
                self.events.push_back(TrunkEvent::Registered {
                    trunk: t.cfg.name.clone(),
                    at,
                    expires: granted,
                });
            }
            401 | 407 if t.reg.challenges < 2 && t.cfg.username.is_some() => {
                let (challenge, answer) = if status == 407 {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                } else {
                    ("WWW-Authenticate", "Authorization")
                };
                let uri = format!("sip:{}", t.cfg.domain);
                let user = t.user().to_string();
                let cnonce = self.rng.hex();
                let value = headers.get(challenge).and_then(|c| {
                    auth::answer(c, "REGISTER", &uri, &user, &t.cfg.password, &cnonce)
                });
                match value {
                    Some(v) => {
                        t.reg.challenges += 1;
                        self.send_register(ti, Some((answer, v)));
                    }
                    None => self.failed(ti, now, status),
                }
            }
            423 => {
                let min = headers
                    .get("Min-Expires")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match min {
                    Some(m) if m > t.reg.expires => {
                        t.reg.expires = m;
                        self.send_register(ti, None);
                    }
                    _ => self.failed(ti, now, status),
                }
            }
            _ => self.failed(ti, now, status),
        }
    }

    fn failed(&mut self, ti: usize, now: Instant, status: u16) {
        let t = &mut self.trunks[ti];
        let at = t.reg.at.unwrap_or(self.local);
        self.events.push_back(TrunkEvent::RegistrationFailed {
            trunk: t.cfg.name.clone(),
            at,
            status,
        });
        t.reg.state = RegState::Failed(status);
        let unreachable = status == 408 || status >= 500;
        let ai = t.addresses.iter().position(|a| a.addr == at);
        if let (true, Some(ai)) = (unreachable, ai) {
            if t.cfg.probe_interval.is_some() {
                // Another address may take the registration at once.
                self.set_health(ti, ai, Health::Down, now);
                let t = &mut self.trunks[ti];
                if t.answering().is_some() {
                    t.reg.next = Some(now);
                    return;
                }
            } else if t.addresses.len() > 1 {
                // Without health checks, rotate to the next address.
                t.addresses.rotate_left(1);
            }
        }
        let t = &mut self.trunks[ti];
        t.reg.next = Some(now + t.cfg.retry);
    }

    /// REGISTERs with `Expires: 0` removing every registration (at
    /// shutdown).
    pub fn unregister_all(&mut self) {
        for ti in 0..self.trunks.len() {
            if matches!(self.trunks[ti].reg.state, RegState::Registered(_)) {
                self.trunks[ti].reg.expires = Duration::ZERO;
                self.trunks[ti].reg.next = None;
                self.trunks[ti].reg.state = RegState::Off;
                self.send_register(ti, None);
            }
        }
    }
}

/// The time a 2xx to REGISTER grants our contact: its `expires`
/// parameter, else the Expires header.
fn granted_expiry(headers: &Headers, local: SocketAddr) -> Option<Duration> {
    let ours = local.to_string();
    let from_contact = headers.list("Contact").find_map(|c| {
        let na = NameAddr::parse(c).ok()?;
        if !na.uri.contains(&ours) {
            return None;
        }
        let v = na.params.value("expires")?;
        v.trim().parse::<u64>().ok()
    });
    from_contact
        .or_else(|| headers.get("Expires")?.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
