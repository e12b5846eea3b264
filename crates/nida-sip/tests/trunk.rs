//! Trunks in virtual time: nida's endpoint registers through a trunk to a
//! second endpoint acting as the carrier's registrar (real digest both
//! ways), refreshes before expiry, checks the health of several addresses
//! with OPTIONS and moves to the one that answers.

use nida_sip::auth::Authenticator;
use nida_sip::guard::Cidr;
use nida_sip::registrar::Registrar;
use nida_sip::trunk::{rewrite, Health, RegState, Rewrite, TrunkConfig, TrunkEvent, Trunks};
use nida_sip::{Endpoint, EndpointConfig, Event, Transport};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const NIDA: &str = "127.0.0.1:5060";
const CARRIER: &str = "127.0.0.1:5080";
const CARRIER2: &str = "127.0.0.1:5082";
const DEAD: &str = "127.0.0.1:5090";

fn ep(addr: &str, seed: u64) -> Endpoint {
    Endpoint::new(EndpointConfig {
        local_addr: addr.parse().unwrap(),
        timers: Default::default(),
        user_agent: "test".into(),
        seed: Some(seed),
        session_timer: Default::default(),
    })
}

fn carrier(addr: &str, t0: Instant) -> Endpoint {
    let mut c = ep(addr, 9);
    let auth = Authenticator::new("carrier", "carrier-secret", t0, Duration::from_secs(3600));
    c.set_registrar(Registrar::new(
        auth,
        [("4420".to_string(), "trunk-pass".to_string())],
    ));
    c
}

fn trunk(addresses: &[&str], probe: Option<u64>) -> TrunkConfig {
    TrunkConfig {
        name: "carrier".into(),
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        transport: Transport::Udp,
        domain: "carrier.example".into(),
        username: Some("4420".into()),
        password: "trunk-pass".into(),
        register: true,
        expires: Duration::from_secs(120),
        probe_interval: probe.map(Duration::from_secs),
        retry: Duration::from_secs(30),
        inbound: vec![Cidr::parse("192.0.2.0/28").unwrap()],
        rewrite_in: vec![Rewrite {
            prefix: "+44".into(),
            replace: "0".into(),
        }],
        rewrite_out: vec![Rewrite {
            prefix: "0".into(),
            replace: "+44".into(),
        }],
        rel100: false,
        resolve: None,
    }
}

/// nida (endpoint + trunks) and carriers on a virtual network; messages to
/// an address with no endpoint are lost.
struct Net {
    now: Instant,
    nida: Endpoint,
    trunks: Trunks,
    carriers: BTreeMap<SocketAddr, Endpoint>,
    /// Carriers' events by address.
    carrier_events: Vec<(SocketAddr, Event)>,
    trunk_events: Vec<TrunkEvent>,
    /// Requests nida sent: (destination, method).
    sent: Vec<(SocketAddr, String)>,
}

impl Net {
    fn new(cfg: TrunkConfig, carriers: &[&str]) -> Net {
        let now = Instant::now();
        let mut n = Net {
            now,
            nida: ep(NIDA, 1),
            trunks: Trunks::new(vec![cfg], NIDA.parse().unwrap(), Some(5), now),
            carriers: carriers
                .iter()
                .map(|a| (a.parse().unwrap(), carrier(a, now)))
                .collect(),
            carrier_events: Vec::new(),
            trunk_events: Vec::new(),
            sent: Vec::new(),
        };
        n.trunks.handle_timeout(now);
        n.step();
        n
    }

    fn step(&mut self) {
        let nida: SocketAddr = NIDA.parse().unwrap();
        loop {
            let mut moved = false;
            while let Some(r) = self.trunks.poll_request() {
                self.nida.request(self.now, r);
            }
            while let Some(t) = self.nida.poll_transmit() {
                moved = true;
                let text = String::from_utf8_lossy(&t.data).to_string();
                let first = text.split(' ').next().unwrap_or_default().to_string();
                self.sent.push((t.dest, first));
                if let Some(c) = self.carriers.get_mut(&t.dest) {
                    c.handle_message(self.now, Transport::Udp, nida, &t.data);
                }
            }
            for (addr, c) in self.carriers.iter_mut() {
                while let Some(t) = c.poll_transmit() {
                    moved = true;
                    self.nida
                        .handle_message(self.now, Transport::Udp, *addr, &t.data);
                }
                while let Some(e) = c.poll_event() {
                    self.carrier_events.push((*addr, e));
                }
            }
            while let Some(e) = self.nida.poll_event() {
                if let Event::Response {
                    tag,
                    status,
                    headers,
                } = e
                {
                    moved = true;
                    self.trunks.handle_response(self.now, tag, status, &headers);
                }
            }
            self.trunk_events
                .extend(std::iter::from_fn(|| self.trunks.poll_event()));
            if !moved {
                break;
            }
        }
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.nida.poll_timeout(), self.trunks.poll_timeout()]
                .into_iter()
                .chain(self.carriers.values().map(|c| c.poll_timeout()))
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.nida.handle_timeout(self.now);
                    self.trunks.handle_timeout(self.now);
                    for c in self.carriers.values_mut() {
                        c.handle_timeout(self.now);
                    }
                    self.step();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn registers_to(&self, addr: &str) -> usize {
        let a: SocketAddr = addr.parse().unwrap();
        self.sent
            .iter()
            .filter(|(d, m)| *d == a && m == "REGISTER")
            .count()
    }

    /// Registrations the trunk saw accepted.
    fn registrations(&self) -> usize {
        self.trunk_events
            .iter()
            .filter(|e| matches!(e, TrunkEvent::Registered { .. }))
            .count()
    }

    /// New bindings the carrier made.
    fn carrier_registrations(&self, addr: &str) -> usize {
        let a: SocketAddr = addr.parse().unwrap();
        self.carrier_events
            .iter()
            .filter(|(d, e)| *d == a && matches!(e, Event::Registered(_)))
            .count()
    }
}

#[test]
fn registers_with_digest_and_refreshes_before_expiry() {
    let mut n = Net::new(trunk(&[CARRIER], None), &[CARRIER]);
    // REGISTER, 401, REGISTER with the answer, 200.
    assert_eq!(
        n.registers_to(CARRIER),
        2,
        "{:?} {:?} {:?}",
        n.sent,
        n.trunk_events,
        n.carrier_events
    );
    assert_eq!(
        n.carrier_registrations(CARRIER),
        1,
        "{:?}",
        n.carrier_events
    );
    let st = &n.trunks.status()[0];
    let RegState::Registered(until) = st.registration else {
        panic!("not registered: {st:?}");
    };
    assert_eq!(until, n.now + Duration::from_secs(120));
    assert!(matches!(
        n.trunk_events.as_slice(),
        [TrunkEvent::Registered { expires, .. }] if *expires == Duration::from_secs(120)
    ));
    // Refreshed at half time, well before it lapses; again and again.
    n.run(Duration::from_secs(59));
    assert_eq!(n.registrations(), 1);
    n.run(Duration::from_secs(2));
    assert_eq!(n.registrations(), 2);
    assert_eq!(
        n.registers_to(CARRIER),
        4,
        "each refresh answers a new challenge"
    );
    n.run(Duration::from_secs(600));
    assert_eq!(n.registrations(), 12);
    assert!(matches!(
        n.trunks.status()[0].registration,
        RegState::Registered(u) if u > n.now
    ));
}

#[test]
fn a_wrong_password_fails_and_is_retried_later_not_hammered() {
    let mut cfg = trunk(&[CARRIER], None);
    cfg.password = "wrong".into();
    let mut n = Net::new(cfg, &[CARRIER]);
    assert_eq!(n.carrier_registrations(CARRIER), 0);
    assert_eq!(
        n.trunks.status()[0].registration,
        RegState::Failed(403),
        "{:?}",
        n.trunk_events
    );
    let before = n.registers_to(CARRIER);
    n.run(Duration::from_secs(29));
    assert_eq!(n.registers_to(CARRIER), before, "no retry before 30 s");
    n.run(Duration::from_secs(2));
    assert!(n.registers_to(CARRIER) > before, "retried after 30 s");
}

#[test]
fn health_checks_pick_the_address_that_answers() {
    // The first address is dead: nothing answers there.
    let mut n = Net::new(trunk(&[DEAD, CARRIER], Some(5)), &[CARRIER]);
    let st = &n.trunks.status()[0];
    assert_eq!(
        st.addresses,
        vec![
            (DEAD.parse().unwrap(), Health::Unknown),
            (CARRIER.parse().unwrap(), Health::Up)
        ]
    );
    // Registration went where OPTIONS were answered.
    assert_eq!(n.registers_to(DEAD), 0);
    assert_eq!(
        n.carrier_registrations(CARRIER),
        1,
        "{:?} {:?}",
        n.sent,
        n.trunk_events
    );
    assert_eq!(st.registered_at, Some(CARRIER.parse().unwrap()));
    // The unanswered check marks the dead address down.
    n.run(Duration::from_secs(6));
    assert_eq!(n.trunks.status()[0].addresses[0].1, Health::Down);
    let route = n.trunks.route("carrier", "07700900123").unwrap();
    assert_eq!(route.dest, CARRIER.parse::<SocketAddr>().unwrap());
    assert_eq!(route.uri, "sip:+447700900123@carrier.example");
    assert_eq!(
        route.credentials,
        Some(("4420".to_string(), "trunk-pass".to_string()))
    );
}

#[test]
fn when_the_registrar_goes_silent_registration_moves_to_the_other_address() {
    let mut n = Net::new(trunk(&[CARRIER, CARRIER2], Some(5)), &[CARRIER, CARRIER2]);
    assert_eq!(n.carrier_registrations(CARRIER), 1);
    assert_eq!(n.carrier_registrations(CARRIER2), 0);
    // The first carrier address dies.
    n.carriers.remove(&CARRIER.parse().unwrap());
    n.run(Duration::from_secs(11));
    let st = &n.trunks.status()[0];
    assert_eq!(st.addresses[0].1, Health::Down);
    assert_eq!(n.carrier_registrations(CARRIER2), 1, "{:?}", n.trunk_events);
    assert_eq!(st.registered_at, Some(CARRIER2.parse().unwrap()));
    let route = n.trunks.route("carrier", "0123").unwrap();
    assert_eq!(route.dest, CARRIER2.parse::<SocketAddr>().unwrap());
}

#[test]
fn no_usable_address_means_no_route() {
    let mut n = Net::new(trunk(&[DEAD], Some(5)), &[]);
    n.run(Duration::from_secs(6));
    assert_eq!(n.trunks.status()[0].addresses[0].1, Health::Down);
    assert_eq!(n.trunks.route("carrier", "0123"), None);
    assert_eq!(n.trunks.status()[0].registration, RegState::Waiting);
    assert_eq!(n.trunks.route("other", "0123"), None);
}

#[test]
fn inbound_sources_and_numbers() {
    let n = Net::new(trunk(&[CARRIER], None), &[]);
    assert!(n.trunks.restricts_inbound());
    assert_eq!(
        n.trunks.identify("192.0.2.7".parse().unwrap()),
        Some("carrier")
    );
    assert_eq!(
        n.trunks.identify("127.0.0.1".parse().unwrap()),
        Some("carrier")
    );
    assert_eq!(n.trunks.identify("192.0.2.20".parse().unwrap()), None);
    assert_eq!(
        n.trunks.called_number("carrier", "+44 20 7946-0958"),
        "02079460958"
    );
    assert_eq!(n.trunks.called_number("carrier", "901"), "901");
    assert_eq!(n.trunks.called_number("nobody", "+44901"), "+44901");
    let rules = [
        Rewrite {
            prefix: "0044".into(),
            replace: "0".into(),
        },
        Rewrite {
            prefix: "00".into(),
            replace: "+".into(),
        },
    ];
    assert_eq!(rewrite(&rules, "0044901"), "0901");
    assert_eq!(rewrite(&rules, "0033 1 23"), "+33123");
    assert_eq!(rewrite(&rules, "(0)901"), "0901");
}

#[test]
fn unregister_sends_expires_zero() {
    let mut n = Net::new(trunk(&[CARRIER], None), &[CARRIER]);
    assert_eq!(n.carrier_registrations(CARRIER), 1);
    n.trunks.unregister_all();
    n.step();
    assert!(
        n.carrier_events
            .iter()
            .any(|(_, e)| matches!(e, Event::Unregistered { user } if user == "4420")),
        "{:?}",
        n.carrier_events
    );
    assert_eq!(n.trunks.status()[0].registration, RegState::Off);
}
