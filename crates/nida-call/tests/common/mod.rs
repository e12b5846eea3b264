//! An in-process contact centre for tests: callers, nida's call machines,
//! the real routing core and agents' phones, stepped in virtual time.
//!
//! Phones are real RTP sessions (nida-media) speaking tones; every RTP
//! datagram crosses an emulated network that delays, jitters (so
//! reorders) and drops packets from a seeded generator. The harness plays
//! the SIP shell (placing legs, phones answering or refusing), the centre
//! (the `nida_acd::Router` fed the machines' requests) and the store
//! (booking call-backs, keeping records). Nothing sleeps: time jumps to
//! the next wake-up of whichever part needs it.

#![allow(dead_code)]

use nida_acd::{
    AgentConfig, AgentId, Channel, EndReason as CoreEnd, LangId, Output as CoreOutput, QueueConfig,
    QueueId, Router, SkillId, TaskId, TaskSpec,
};
use nida_call::{
    Call, CallConfig, CallEvent, FromCentre, LegEvent, LegId, Output, QueueRules, Recording,
    Shared, Start, Stored, Target, ToCentre,
};
use nida_media::{Prompt, PromptStore, RtpSession, SessionConfig};
use nida_sip::sdp::{Codec, Direction, Negotiated, SessionDescription};
use nida_sip::{EndReason, Transport};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The caller's voice.
pub const CALLER_HZ: f64 = 1000.0;
/// Agents' voices.
pub const AGENT_HZ: f64 = 600.0;

/// How a phone takes a call nida places to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Answers after ringing this long.
    After(Duration),
    /// Rings until cancelled.
    Never,
    /// Refuses at once (486 Busy Here).
    Busy,
}

/// A phone: its SIP and media addresses, how it answers, its media.
pub struct Phone {
    /// Its name in assertions.
    pub name: String,
    /// Where nida's INVITEs go.
    pub sip: SocketAddr,
    /// Its RTP address.
    pub media: SocketAddr,
    /// The tone it speaks.
    pub tone: Arc<Prompt>,
    /// How it takes calls.
    pub answer: Answer,
    /// Its media while on a call.
    pub rtp: Option<RtpSession>,
    /// The call and nida's leg it is on (or ringing on).
    pub leg: Option<(usize, LegId)>,
    /// When it answers the ringing leg.
    ring_until: Option<Instant>,
    /// Everything it heard on its calls, decoded.
    pub heard: Vec<i16>,
    /// Says nothing (its tone stops).
    pub silent: bool,
}

impl Phone {
    fn new(name: &str, host: [u8; 4], hz: f64, answer: Answer) -> Phone {
        Phone {
            name: name.to_string(),
            sip: SocketAddr::from((host, 5060)),
            media: SocketAddr::from((host, 4000)),
            tone: Arc::new(tone(name, hz, 2000)),
            answer,
            rtp: None,
            leg: None,
            ring_until: None,
            heard: Vec::new(),
            silent: false,
        }
    }

    fn start_media(&mut self, now: Instant, to: SocketAddr, seed: u32) {
        let mut rtp = RtpSession::new(
            now,
            SessionConfig {
                law: nida_media::Law::Mu,
                telephone_event: Some(101),
                ssrc: 0x5000 + seed,
                initial_seq: seed as u16,
                initial_ts: seed,
                remote: to,
                rtp_timeout: Duration::from_secs(3600),
                keep_audio: true,
            },
        );
        rtp.play(self.tone.clone());
        self.rtp = Some(rtp);
    }

    fn stop_media(&mut self) {
        if let Some(rtp) = self.rtp.take() {
            self.heard.extend_from_slice(rtp.received_audio());
        }
        self.leg = None;
        self.ring_until = None;
    }

    /// All it heard so far.
    pub fn all_heard(&self) -> Vec<i16> {
        let mut v = self.heard.clone();
        if let Some(rtp) = &self.rtp {
            v.extend_from_slice(rtp.received_audio());
        }
        v
    }

    /// Its SDP (PCMU and telephone-event).
    fn sdp(&self) -> SessionDescription {
        let ip = self.media.ip();
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n",
            self.media.port()
        );
        SessionDescription::parse(text.as_bytes()).expect("a valid SDP")
    }
}

/// What an offer and answer agreed with a phone at `at`, both ways.
pub fn negotiated_for(at: SocketAddr) -> Negotiated {
    negotiated(at, Direction::SendRecv)
}

/// What an offer and answer agreed with a phone at `at` (PCMU).
fn negotiated(at: SocketAddr, direction: Direction) -> Negotiated {
    Negotiated {
        codec: Codec::Pcmu,
        telephone_event: Some(101),
        remote: at,
        direction,
        index: 0,
        srtp: None,
        ptime: 20,
        rtcp: SocketAddr::new(at.ip(), at.port() + 1),
        rtcp_mux: false,
    }
}

/// A tone of `ms` milliseconds at `hz`.
pub fn tone(name: &str, hz: f64, ms: usize) -> Prompt {
    let pcm = (0..ms * 8)
        .map(|i| ((i as f64 * hz * 2.0 * std::f64::consts::PI / 8000.0).sin() * 8000.0) as i16)
        .collect();
    Prompt::from_pcm(name, pcm)
}

/// Whether `pcm` holds a clear tone at `hz` for a quarter of its length
/// (at most 4 s of it).
pub fn hears(pcm: &[i16], hz: f64) -> bool {
    let (hits, blocks) = tone_blocks(pcm, hz, 0.5);
    hits > 0 && hits * 4 >= blocks.min(40)
}

/// Like [`hears`] for a mix of parties: the tone carries at least a
/// sixth of each block's energy (two or three tones share it).
pub fn hears_in_mix(pcm: &[i16], hz: f64) -> bool {
    let (hits, blocks) = tone_blocks(pcm, hz, 1.0 / 6.0);
    hits > 0 && hits * 4 >= blocks.min(40)
}

/// Whether `pcm` holds a clear tone at `hz` for 200 ms somewhere (a
/// prompt).
pub fn heard_once(pcm: &[i16], hz: f64) -> bool {
    tone_blocks(pcm, hz, 0.5).0 >= 2
}

/// 100 ms blocks of `pcm` with a clear tone at `hz` (Goertzel power
/// against the block's energy, at least `share` of it), and all blocks.
fn tone_blocks(pcm: &[i16], hz: f64, share: f64) -> (usize, usize) {
    let block = 800;
    let blocks: Vec<&[i16]> = pcm.chunks(block).filter(|c| c.len() == block).collect();
    let hits = blocks
        .iter()
        .filter(|b| {
            let k = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            let mut energy = 0.0;
            for &x in b.iter() {
                let x = x as f64;
                energy += x * x;
                let s = x + k * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            let power = s1 * s1 + s2 * s2 - k * s1 * s2;
            energy > 1e6 && power / (energy * block as f64 / 2.0) > share
        })
        .count();
    (hits, blocks.len())
}

/// An emulated network for RTP: delay with jitter, loss, from a seed.
pub struct Net {
    /// Base one-way delay.
    pub delay: Duration,
    /// Up to this much more, at random (packets overtake each other).
    pub jitter: Duration,
    /// Share of packets lost, 0 to 1.
    pub loss: f64,
    seed: u64,
    flying: Vec<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    /// Packets sent, and lost.
    pub sent: u64,
    /// Packets dropped.
    pub dropped: u64,
}

impl Net {
    fn random(&mut self) -> f64 {
        // xorshift64*
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        (self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.sent += 1;
        if self.random() < self.loss {
            self.dropped += 1;
            return;
        }
        let at = now + self.delay + self.jitter.mul_f64(self.random());
        self.flying.push((at, from, to, data.to_vec()));
    }

    fn next(&self) -> Option<Instant> {
        self.flying.iter().map(|f| f.0).min()
    }

    fn due(&mut self, now: Instant) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let mut due: Vec<_> = Vec::new();
        let mut i = 0;
        while i < self.flying.len() {
            if self.flying[i].0 <= now {
                let (at, from, to, data) = self.flying.swap_remove(i);
                due.push((at, from, to, data));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|d| d.0);
        due.into_iter().map(|(_, f, t, d)| (f, t, d)).collect()
    }
}

/// One call as the harness sees it.
pub struct Slot {
    /// The machine.
    pub call: Call,
    /// The phone that called in.
    pub caller: usize,
    /// Everything it reported, with the virtual time.
    pub events: Vec<(Duration, CallEvent)>,
    /// Leg outputs the SIP shell was asked for, in order.
    pub sip: Vec<Output>,
    /// Recording frames written, and finishes.
    pub frames: usize,
    /// The recording's two sides (left: the caller, right: everyone else).
    pub tape: (Vec<i16>, Vec<i16>),
    /// Recordings finished.
    pub recordings: Vec<Recording>,
    /// The voice message's samples (mono), and how it ended.
    pub voicemail: Vec<i16>,
    /// The voice message's end (finish or discard), when it ended.
    pub voicemail_end: Option<Recording>,
}

impl Slot {
    /// A call just started, its caller on phone `caller`.
    fn new(call: Call, caller: usize) -> Slot {
        Slot {
            call,
            caller,
            events: Vec::new(),
            sip: Vec::new(),
            frames: 0,
            tape: (Vec::new(), Vec::new()),
            recordings: Vec::new(),
            voicemail: Vec::new(),
            voicemail_end: None,
        }
    }
}

/// The whole centre in one process.
pub struct World {
    /// Virtual time.
    pub now: Instant,
    t0: Instant,
    /// The network RTP crosses.
    pub net: Net,
    /// The real routing core.
    pub router: Router,
    queues: HashMap<String, QueueId>,
    skills: HashMap<String, SkillId>,
    langs: HashMap<String, LangId>,
    /// Phones: callers, agents, far ends.
    pub phones: Vec<Phone>,
    /// Agent id to phone index.
    pub agents: BTreeMap<u32, usize>,
    /// The calls.
    pub calls: Vec<Slot>,
    owners: HashMap<TaskId, usize>,
    shared: Shared,
    /// What the store keeps.
    pub records: Vec<nida_store::CallRecord>,
    /// Agents a call said it no longer consults.
    pub consults_over: Vec<u32>,
    /// Agents a call was handed to (their screen pops).
    pub handed_to: Vec<u32>,
    /// Call-back rows in the order written.
    pub callbacks: Vec<nida_store::CallbackRow>,
    /// Whether the store takes call-back requests.
    pub store_works: bool,
    stores: VecDeque<(Instant, usize)>,
    /// The agents' state changes.
    pub agent_states: Vec<(u32, nida_acd::AgentState)>,
    cfg: CallConfig,
    seq: u32,
    /// Answers to the next lookups, in order (then: not found).
    pub lookups: VecDeque<nida_ivr::LookupResult>,
    /// The wall clock (Unix seconds) at the start.
    pub unix0: i64,
    /// Notification attempts' results, in order.
    pub notices: Vec<nida_call::NoticeResult>,
    /// Wrap-up codes keyed on agents' phones, in order.
    pub wrapups: Vec<nida_store::Wrapup>,
}

/// A queue's rules for the router (the defaults, with `f` applied).
pub fn queue(name: &str) -> QueueConfig {
    let mut q = QueueConfig::new(name);
    q.offer_timeout = Duration::from_secs(10);
    q.reoffer_after = q.offer_timeout;
    q.wrap_up = Duration::from_secs(5);
    q
}

const FLOWS: &str = "flow: line
description: welcome, then the queue
languages: [en]
start: hello
nodes:
  hello:
    play: [welcome]
    next: wait
  wait:
    queue: { name: visa, skills: { visa: 1 } }
";

const URGENT: &str = "flow: urgent
description: straight to the queue, priority 5
languages: [en]
start: wait
nodes:
  wait:
    queue: { name: visa, priority: 5 }
";

const THEN: &str = "flow: then
description: a queue's exit flow
languages: [en]
start: bye
nodes:
  bye:
    hangup: { prompt: [exit_message] }
";

impl World {
    /// A centre with these queues (router rules, call rules).
    pub fn new(queues: Vec<(QueueConfig, QueueRules)>) -> World {
        let t0 = Instant::now();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("line.yaml"), FLOWS).unwrap();
        std::fs::write(dir.join("urgent.yaml"), URGENT).unwrap();
        std::fs::write(dir.join("then.yaml"), THEN).unwrap();
        let survey =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows/survey.yaml");
        std::fs::copy(survey, dir.join("survey.yaml")).unwrap();
        let flows = nida_ivr::load_path(dir, &nida_ivr::AnyPrompt)
            .unwrap_or_else(|r| panic!("{}", r.render()));
        let mut prompts = PromptStore::default();
        for (i, name) in PROMPTS.iter().enumerate() {
            let ms = if *name == "moh" { 3000 } else { 400 };
            prompts.insert("en", tone(name, 300.0 + 37.0 * i as f64, ms));
        }
        let mut q = HashMap::new();
        let mut rules = BTreeMap::new();
        let mut configs = Vec::new();
        for (i, (c, r)) in queues.into_iter().enumerate() {
            q.insert(c.name.clone(), QueueId(i as u16));
            rules.insert(c.name.clone(), r);
            configs.push(c);
        }
        World {
            now: t0,
            t0,
            net: Net {
                delay: Duration::from_millis(30),
                jitter: Duration::from_millis(25),
                loss: 0.02,
                seed: 0x9E37_79B9_7F4A_7C15,
                flying: Vec::new(),
                sent: 0,
                dropped: 0,
            },
            router: Router::new(configs, 7),
            queues: q,
            skills: HashMap::new(),
            langs: HashMap::new(),
            phones: Vec::new(),
            agents: BTreeMap::new(),
            calls: Vec::new(),
            owners: HashMap::new(),
            shared: Shared {
                flows: Arc::new(flows),
                prompts: Arc::new(prompts),
                queues: Arc::new(rules),
                bookings: Default::default(),
                calendars: Default::default(),
            },
            records: Vec::new(),
            consults_over: Vec::new(),
            handed_to: Vec::new(),
            callbacks: Vec::new(),
            store_works: true,
            stores: VecDeque::new(),
            agent_states: Vec::new(),
            cfg: CallConfig {
                call_id: String::new(),
                caller: String::new(),
                called: "800".into(),
                source: SocketAddr::from(([10, 0, 2, 1], 5060)),
                proven_number: None,
                language: "en".into(),
                codecs: vec![Codec::Pcmu, Codec::Pcma],
                rtp_timeout: Duration::from_secs(30),
                call_duration: Duration::from_secs(3600),
                outbound_trunk: None,
                outbound_uri: None,
                sip_addr: SocketAddr::from(([10, 0, 0, 1], 5060)),
            },
            seq: 0,
            lookups: VecDeque::new(),
            unix0: 1_800_000_000,
            notices: Vec::new(),
            wrapups: Vec::new(),
        }
    }

    /// A centre with these queues and these flows besides the usual ones
    /// (name, YAML).
    pub fn with_flows(queues: Vec<(QueueConfig, QueueRules)>, flows: &[(&str, &str)]) -> World {
        let mut w = World::new(queues);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for (name, text) in [("line", FLOWS), ("urgent", URGENT), ("then", THEN)]
            .into_iter()
            .chain(flows.iter().copied())
        {
            std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
        }
        let survey =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows/survey.yaml");
        std::fs::copy(survey, dir.join("survey.yaml")).unwrap();
        w.shared.flows = Arc::new(
            nida_ivr::load_path(dir, &nida_ivr::AnyPrompt)
                .unwrap_or_else(|r| panic!("{}", r.render())),
        );
        w
    }

    /// The centre's calendars.
    pub fn set_calendars(&mut self, c: nida_call::calendar::Calendars) {
        self.shared.calendars = Arc::new(c);
    }

    /// Whether the caller of `call` speaks (its tone) or is silent.
    pub fn caller_speaks(&mut self, call: usize, speaks: bool) {
        let p = self.calls[call].caller;
        let tone = self.phones[p].tone.clone();
        self.phones[p].silent = !speaks;
        if let Some(r) = self.phones[p].rtp.as_mut() {
            if speaks {
                r.play(tone);
            } else {
                r.stop_playback();
            }
        }
    }

    /// One queue `visa` with these call rules and the test defaults.
    pub fn visa(rules: QueueRules) -> World {
        World::new(vec![(queue("visa"), rules)])
    }

    /// Settings every next call gets.
    pub fn call_config(&mut self) -> &mut CallConfig {
        &mut self.cfg
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn skill(&mut self, name: &str) -> SkillId {
        let next = SkillId(self.skills.len() as u16);
        *self.skills.entry(name.to_string()).or_insert(next)
    }

    fn lang(&mut self, name: &str) -> LangId {
        let next = LangId(self.langs.len() as u8);
        *self.langs.entry(name.to_string()).or_insert(next)
    }

    /// An agent speaking English with `visa` at level 5, logged in and
    /// ready, whose phone answers as `answer`; returns its id.
    pub fn agent(&mut self, id: u32, answer: Answer) -> u32 {
        let skill = self.skill("visa");
        let lang = self.lang("en");
        let phone = Phone::new(
            &format!("agent{id}"),
            [10, 0, 1, id as u8],
            AGENT_HZ,
            answer,
        );
        self.phones.push(phone);
        self.agents.insert(id, self.phones.len() - 1);
        self.router.add_agent(
            self.now,
            AgentConfig {
                id: AgentId(id),
                skills: vec![(skill, 5)],
                languages: vec![lang],
                capacity: [1, 0, 0],
                weight: 1,
            },
        );
        self.router.login(self.now, AgentId(id)).unwrap();
        self.router.ready(self.now, AgentId(id)).unwrap();
        id
    }

    /// A phone outside the centre (a transfer's far end) at `host`.
    pub fn far_end(&mut self, host: [u8; 4], answer: Answer) -> usize {
        self.phones.push(Phone::new("far", host, 1400.0, answer));
        self.phones.len() - 1
    }

    /// A caller (number `number`) calls the number whose flow is `flow`;
    /// their phone answers call-backs as `answer`. Returns the call.
    pub fn call_in(&mut self, flow: &str, number: &str, answer: Answer) -> usize {
        let n = self.calls.len() as u8 + 1;
        let mut phone = Phone::new(&format!("caller{n}"), [10, 0, 2, n], CALLER_HZ, answer);
        let index = self.calls.len();
        let nida_media = leg_addr(index, LegId::CALLER);
        phone.start_media(self.now, nida_media, 1000 + n as u32);
        phone.leg = Some((index, LegId::CALLER));
        let negotiated = Negotiated {
            codec: Codec::Pcmu,
            telephone_event: Some(101),
            remote: phone.media,
            direction: Direction::SendRecv,
            index: 0,
            srtp: None,
            ptime: 20,
            rtcp: SocketAddr::new(phone.media.ip(), phone.media.port() + 1),
            rtcp_mux: false,
        };
        let mut cfg = self.cfg.clone();
        cfg.call_id = format!("call-{n}");
        cfg.caller = number.to_string();
        cfg.source = phone.sip;
        self.phones.push(phone);
        let call = Call::answered(
            self.now,
            self.unix0 + self.elapsed().as_secs() as i64,
            self.shared.clone(),
            cfg,
            nida_sip::rng::Rng::seeded(n as u64),
            negotiated,
            None,
            Start::Flow {
                flow: flow.to_string(),
                welcome: "welcome".into(),
            },
        );
        self.calls.push(Slot::new(call, self.phones.len() - 1));
        self.drain(index);
        index
    }

    /// A citizen's phone at `host` that answers as `answer` and then says
    /// `voice` (once).
    pub fn citizen(&mut self, host: [u8; 4], answer: Answer, voice: Vec<i16>) -> usize {
        let mut p = Phone::new("citizen", host, CALLER_HZ, answer);
        p.tone = Arc::new(Prompt::from_pcm("citizen", voice));
        self.phones.push(p);
        self.phones.len() - 1
    }

    /// nida places `notice` to the phone `p` (its number routed to it).
    /// Returns the call.
    pub fn notify(&mut self, p: usize, notice: nida_call::Notice) -> usize {
        let index = self.calls.len();
        let mut cfg = self.cfg.clone();
        cfg.call_id = format!("call-{}", index + 1);
        cfg.outbound_uri = Some(format!("sip:{{number}}@{}", self.phones[p].sip));
        let call = Call::notification(
            self.now,
            self.unix0 + self.elapsed().as_secs() as i64,
            self.shared.clone(),
            cfg,
            nida_sip::rng::Rng::seeded(900 + index as u64),
            notice,
        );
        self.calls.push(Slot::new(call, p));
        self.drain(index);
        index
    }

    /// A call-back stored before a restart comes back (its caller on a
    /// phone at `host` that answers as `answer`). Returns the call.
    pub fn restore(
        &mut self,
        host: [u8; 4],
        answer: Answer,
        mut row: nida_store::CallbackRow,
    ) -> usize {
        let phone = Phone::new("restored", host, CALLER_HZ, answer);
        row.source = phone.sip.to_string();
        let index = self.calls.len();
        let mut cfg = self.cfg.clone();
        cfg.call_id = row.call_id.clone();
        cfg.caller = row.number.clone();
        cfg.source = phone.sip;
        self.phones.push(phone);
        let call = Call::restored(
            self.now,
            self.unix0 + self.elapsed().as_secs() as i64,
            self.shared.clone(),
            cfg,
            nida_sip::rng::Rng::seeded(700 + index as u64),
            &row,
        );
        self.calls.push(Slot::new(call, self.phones.len() - 1));
        self.drain(index);
        index
    }

    /// The caller of `call` presses `digit`.
    pub fn press(&mut self, call: usize, digit: char) {
        let p = self.calls[call].caller;
        let rtp = self.phones[p]
            .rtp
            .as_mut()
            .expect("the caller is on the line");
        assert!(rtp.send_dtmf(digit, Duration::from_millis(100)));
    }

    /// Agent `id`'s phone sends `digit` in its media (RFC 4733).
    pub fn agent_press(&mut self, id: u32, digit: char) {
        let p = self.agents[&id];
        let rtp = self.phones[p]
            .rtp
            .as_mut()
            .expect("the agent is on the line");
        assert!(rtp.send_dtmf(digit, Duration::from_millis(100)));
    }

    /// The caller of `call` sends `digit` by SIP INFO (not in the media).
    pub fn press_by_info(&mut self, call: usize, digit: char) {
        self.calls[call]
            .call
            .handle_leg(self.now, LegId::CALLER, LegEvent::Dtmf(digit));
        self.drain(call);
    }

    /// Phone `p` sends a key (SIP INFO) on the call it is on.
    pub fn phone_press(&mut self, p: usize, digit: char) {
        let (call, leg) = self.phones[p].leg.expect("the phone is on a call");
        self.calls[call]
            .call
            .handle_leg(self.now, leg, LegEvent::Dtmf(digit));
        self.drain(call);
    }

    /// The agent on `call` consults agent `other` (kept out of routing
    /// meanwhile, as the centre does).
    pub fn consult_agent(&mut self, call: usize, other: u32) {
        let sip = self.phones[self.agents[&other]].sip;
        let target = nida_call::static_target(&format!("sip:{other}@{sip}")).unwrap();
        self.router
            .not_ready(self.now, AgentId(other), "consult")
            .unwrap();
        self.route();
        self.calls[call].call.handle_centre(
            self.now,
            FromCentre::Consult(nida_call::ConsultTarget::Agent {
                agent: AgentId(other),
                target,
            }),
        );
        self.drain(call);
    }

    /// Agent `other`'s phone, on a leg of another call, is handed to
    /// `call` (an attended transfer by REFER with `Replaces` from agent
    /// `from`'s phone): the leg `call` adopts; the phone's media goes there.
    pub fn adopt_agent(&mut self, call: usize, from: u32, other: u32) -> LegId {
        let p = self.agents[&other];
        let (_, by) = self.phones[self.agents[&from]]
            .leg
            .expect("the agent is on the call");
        let d = nida_call::Detached {
            leg: LegId(99),
            media: negotiated(self.phones[p].media, Direction::SendRecv),
            srtp: None,
            role: nida_call::Role::Consult(Some(AgentId(other))),
        };
        let leg = self.calls[call].call.adopt(self.now, d, by, true);
        self.seq += 1;
        let seed = 7000 + self.seq;
        self.phones[p].start_media(self.now, leg_addr(call, leg), seed);
        self.phones[p].leg = Some((call, leg));
        self.drain(call);
        leg
    }

    /// Phone `p` (the agent's other phone) takes `agent`'s leg of `call`
    /// by an INVITE with `Replaces`; the new leg, or `None` when refused.
    pub fn replace_agent_leg(&mut self, call: usize, agent: u32, p: usize) -> Option<LegId> {
        let (_, old) = self.phones[self.agents[&agent]]
            .leg
            .expect("the agent is on the call");
        let media = negotiated(self.phones[p].media, Direction::SendRecv);
        let leg = self.calls[call]
            .call
            .replace_leg(self.now, old, media, None)?;
        self.seq += 1;
        let seed = 7000 + self.seq;
        self.phones[p].start_media(self.now, leg_addr(call, leg), seed);
        self.phones[p].leg = Some((call, leg));
        self.drain(call);
        Some(leg)
    }

    /// The agent on `call` completes, cancels or joins the consult.
    pub fn consult_action(&mut self, call: usize, a: nida_call::ConsultAction) {
        self.calls[call]
            .call
            .handle_centre(self.now, FromCentre::ConsultAction(a));
        self.drain(call);
    }

    /// Supervisor `user`, whose phone is phone `p`, joins `call` in
    /// `mode` (or switches to it).
    pub fn supervise(&mut self, call: usize, user: &str, p: usize, mode: nida_call::SuperviseMode) {
        let sip = self.phones[p].sip;
        let target = nida_call::static_target(&format!("sip:{user}@{sip}")).unwrap();
        self.calls[call].call.handle_centre(
            self.now,
            FromCentre::Supervise {
                supervisor: user.to_string(),
                target,
                mode,
            },
        );
        self.drain(call);
    }

    /// An offer and answer in the caller's dialog of `call` (a re-INVITE
    /// or UPDATE the SIP shell answered): the caller's phone now receives
    /// on `at` and sends only if `direction` (seen from nida) receives.
    pub fn caller_media(&mut self, call: usize, at: SocketAddr, direction: Direction) {
        let p = self.calls[call].caller;
        self.phones[p].media = at;
        self.phone_media(p, call, LegId::CALLER, direction);
    }

    /// The same in agent `agent`'s dialog: its phone holds (nida sees
    /// `RecvOnly`) or resumes (`SendRecv`).
    pub fn agent_media(&mut self, agent: u32, direction: Direction) {
        let p = self.agents[&agent];
        let (call, leg) = self.phones[p].leg.expect("the agent is on a call");
        self.phone_media(p, call, leg, direction);
    }

    fn phone_media(&mut self, p: usize, call: usize, leg: LegId, direction: Direction) {
        let phone = &mut self.phones[p];
        let at = phone.media;
        if let Some(r) = phone.rtp.as_mut() {
            r.set_direction(self.now, direction.receives(), false);
        }
        self.calls[call]
            .call
            .handle_leg(self.now, leg, LegEvent::Media(negotiated(at, direction)));
        self.drain(call);
    }

    /// The agent page holds (`on`) or resumes agent `agent`'s caller.
    pub fn page_hold(&mut self, agent: u32, on: bool) {
        let p = self.agents[&agent];
        let (call, _) = self.phones[p].leg.expect("the agent is on a call");
        self.calls[call]
            .call
            .handle_centre(self.now, FromCentre::Hold(on));
        self.drain(call);
    }

    /// The caller of `call` hangs up.
    pub fn caller_hangs_up(&mut self, call: usize) {
        let p = self.calls[call].caller;
        let leg = self.phones[p].leg.map(|(_, l)| l);
        self.phones[p].stop_media();
        if let Some(leg) = leg {
            self.calls[call]
                .call
                .handle_leg(self.now, leg, LegEvent::Ended(EndReason::RemoteBye));
        }
        self.drain(call);
    }

    /// The agent hangs up their call.
    pub fn agent_hangs_up(&mut self, agent: u32) {
        let p = self.agents[&agent];
        self.phone_hangs_up(p);
    }

    /// A phone hangs up whatever call it is on.
    pub fn phone_hangs_up(&mut self, p: usize) {
        let Some((call, leg)) = self.phones[p].leg else {
            panic!("{} is on no call", self.phones[p].name);
        };
        self.phones[p].stop_media();
        self.calls[call]
            .call
            .handle_leg(self.now, leg, LegEvent::Ended(EndReason::RemoteBye));
        self.drain(call);
    }

    /// The agent asks to transfer their call (REFER) to `target`.
    pub fn refer(&mut self, agent: u32, target: &str) {
        let p = self.agents[&agent];
        let (call, leg) = self.phones[p].leg.expect("the agent is on a call");
        self.calls[call]
            .call
            .handle_leg(self.now, leg, LegEvent::Refer(target.to_string()));
        self.drain(call);
    }

    /// Whether `call` reported an event matching `f`.
    pub fn saw(&self, call: usize, f: impl Fn(&CallEvent) -> bool) -> bool {
        self.calls[call].events.iter().any(|(_, e)| f(e))
    }

    /// When `call` first reported an event matching `f`.
    pub fn when(&self, call: usize, f: impl Fn(&CallEvent) -> bool) -> Option<Duration> {
        self.calls[call]
            .events
            .iter()
            .find(|(_, e)| f(e))
            .map(|(t, _)| *t)
    }

    /// Runs until `done` holds; fails past `limit` of virtual time.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&World) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(
                self.now < end,
                "not reached within {limit:?}; events: {:#?}",
                self.calls.iter().map(|s| &s.events).collect::<Vec<_>>()
            );
            self.step(end);
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step(end);
        }
    }

    /// The record of `call`, once written.
    pub fn record(&self, call: usize) -> Option<&nida_store::CallRecord> {
        let id = format!("call-{}", call + 1);
        self.records.iter().find(|r| r.call_id == id)
    }

    /// One step: send what is due, then jump to the next wake-up (not
    /// past `end`) and deliver what is due then.
    fn step(&mut self, end: Instant) {
        // Decisions the core made outside a step (an agent got ready).
        self.route();
        self.transmit();
        let mut next = end;
        for s in &self.calls {
            if let Some(t) = s.call.poll_timeout() {
                next = next.min(t);
            }
        }
        for p in &self.phones {
            if let Some(r) = &p.rtp {
                next = next.min(r.poll_timeout());
            }
            if let Some(t) = p.ring_until {
                next = next.min(t);
            }
        }
        for t in [
            self.net.next(),
            self.router.poll_timeout(),
            self.stores.front().map(|s| s.0),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(t);
        }
        self.now = self.now.max(next);
        let now = self.now;
        for (from, to, data) in self.net.due(now) {
            self.deliver(from, to, &data);
        }
        self.router.handle_timeout(now);
        self.route();
        for i in 0..self.calls.len() {
            if self.calls[i].call.poll_timeout().is_some_and(|t| t <= now) {
                self.calls[i].call.handle_timeout(now);
            }
            self.drain(i);
        }
        for p in 0..self.phones.len() {
            let tone = self.phones[p].tone.clone();
            let silent = self.phones[p].silent;
            if let Some(r) = self.phones[p].rtp.as_mut() {
                r.handle_timeout(now);
                while let Some(ev) = r.poll_event() {
                    // Phones speak their tone for as long as they talk.
                    if ev == nida_media::MediaEvent::PlaybackFinished && !silent {
                        r.play(tone.clone());
                    }
                }
            }
            if self.phones[p].ring_until.is_some_and(|t| t <= now) {
                self.phone_answers(p);
            }
        }
        while self.stores.front().is_some_and(|s| s.0 <= now) {
            let (_, call) = self.stores.pop_front().unwrap();
            let stored = if self.store_works {
                Stored::Yes
            } else {
                Stored::Failed
            };
            self.calls[call].call.handle_stored(now, stored);
            self.drain(call);
        }
    }

    fn transmit(&mut self) {
        let mut buf = [0u8; 1500];
        for i in 0..self.calls.len() {
            while let Some(t) = self.calls[i].call.poll_transmit(self.now, &mut buf) {
                let from = leg_addr(i, t.leg);
                self.net.send(self.now, from, t.dest, &buf[..t.len]);
            }
            self.drain(i);
        }
        for p in &mut self.phones {
            if let Some(r) = p.rtp.as_mut() {
                while let Some(o) = r.poll_transmit(self.now, &mut buf) {
                    if o.len > 0 {
                        self.net.send(self.now, p.media, o.dest, &buf[..o.len]);
                    }
                }
            }
        }
    }

    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        if let Some((call, leg)) = addr_leg(to) {
            if call < self.calls.len() {
                self.calls[call].call.handle_rtp(self.now, leg, from, data);
                self.drain(call);
            }
            return;
        }
        if let Some(p) = self.phones.iter_mut().find(|p| p.media == to) {
            if let Some(r) = p.rtp.as_mut() {
                r.handle_packet(self.now, from, data);
            }
        }
    }

    /// Carries out what call `i` asks.
    pub fn drain(&mut self, i: usize) {
        let now = self.now;
        let at = self.elapsed();
        while let Some(o) = self.calls[i].call.poll_output() {
            match o {
                Output::Event(e) => self.calls[i].events.push((at, e)),
                Output::Centre(m) => self.centre_request(i, m),
                Output::Dial { leg, ref dial, .. } => {
                    self.calls[i].sip.push(o.clone());
                    let dest = match dial {
                        nida_call::Dial::Target(t) => Some(t.dest),
                        nida_call::Dial::Trunk { .. } => None,
                    };
                    let phone = self
                        .phones
                        .iter()
                        .position(|p| Some(p.sip) == dest && p.leg.is_none());
                    match phone {
                        None => self.calls[i]
                            .call
                            .handle_leg(now, leg, LegEvent::PlaceFailed),
                        Some(p) => {
                            self.calls[i].call.handle_leg(
                                now,
                                leg,
                                LegEvent::Placed { srtp: None },
                            );
                            match self.phones[p].answer {
                                Answer::Busy => self.calls[i].call.handle_leg(
                                    now,
                                    leg,
                                    LegEvent::Ended(EndReason::Refused(486)),
                                ),
                                Answer::After(d) => {
                                    self.calls[i].call.handle_leg(
                                        now,
                                        leg,
                                        LegEvent::Progress(180),
                                    );
                                    self.phones[p].leg = Some((i, leg));
                                    self.phones[p].ring_until = Some(now + d);
                                }
                                Answer::Never => {
                                    self.calls[i].call.handle_leg(
                                        now,
                                        leg,
                                        LegEvent::Progress(180),
                                    );
                                    self.phones[p].leg = Some((i, leg));
                                }
                            }
                        }
                    }
                }
                Output::Hangup(leg) => {
                    self.calls[i].sip.push(o.clone());
                    for p in &mut self.phones {
                        if p.leg == Some((i, leg)) {
                            p.stop_media();
                        }
                    }
                }
                Output::Release(_) | Output::NotifyRefer { .. } => self.calls[i].sip.push(o),
                Output::HoldLeg { leg, on } => {
                    // nida's re-INVITE: the phone answers recvonly (hold)
                    // or sendrecv, and sends only when resumed.
                    self.calls[i].sip.push(o.clone());
                    let (direction, sends) = if on {
                        (Direction::SendOnly, false)
                    } else {
                        (Direction::SendRecv, true)
                    };
                    if let Some(p) = self.phones.iter_mut().find(|p| p.leg == Some((i, leg))) {
                        let at = p.media;
                        if let Some(r) = p.rtp.as_mut() {
                            r.set_direction(now, sends, false);
                        }
                        self.calls[i].call.handle_leg(
                            now,
                            leg,
                            LegEvent::Media(negotiated(at, direction)),
                        );
                    }
                }
                Output::Lookup { id, .. } => {
                    let answer = self
                        .lookups
                        .pop_front()
                        .unwrap_or(nida_ivr::LookupResult::NotFound);
                    self.calls[i].call.handle_lookup(now, id, answer)
                }
                Output::BookCallback(row) => {
                    self.callbacks.push(row);
                    self.stores.push_back((now + Duration::from_millis(5), i));
                }
                Output::StoreCallback(row) => self.callbacks.push(row),
                Output::Record(r) => self.records.push(*r),
                Output::Recording(Recording::Start) => {
                    self.calls[i]
                        .call
                        .set_recording_name(format!("rec-{i}.wav"));
                }
                Output::Recording(Recording::Frame(f)) => {
                    assert_eq!(f.len(), 320);
                    self.calls[i].frames += 1;
                    let tape = &mut self.calls[i].tape;
                    for pair in f.chunks(2) {
                        tape.0.push(pair[0]);
                        tape.1.push(pair[1]);
                    }
                }
                Output::Recording(r) => self.calls[i].recordings.push(r),
                Output::Voicemail(Recording::Start) => {
                    self.calls[i].call.set_voicemail_name(format!("vm-{i}.wav"));
                }
                Output::Voicemail(Recording::Frame(f)) => {
                    assert_eq!(f.len(), 160, "mono 20 ms frames");
                    self.calls[i].voicemail.extend(f);
                }
                Output::Voicemail(r) => self.calls[i].voicemail_end = Some(r),
                Output::Notice(n) => self.notices.push(n),
                Output::Wrapup(w) => self.wrapups.push(w),
            }
        }
    }

    fn phone_answers(&mut self, p: usize) {
        let Some((call, leg)) = self.phones[p].leg else {
            return;
        };
        self.phones[p].ring_until = None;
        self.seq += 1;
        let seed = 7000 + self.seq;
        self.phones[p].start_media(self.now, leg_addr(call, leg), seed);
        let sdp = self.phones[p].sdp();
        // A call-back's caller is on the call's caller leg from now on.
        if self.calls[call].caller == p || self.phones[p].name.starts_with("caller") {
            self.calls[call].caller = p;
        }
        self.calls[call]
            .call
            .handle_leg(self.now, leg, LegEvent::Answered(Some(sdp)));
        self.drain(call);
    }

    fn centre_request(&mut self, call: usize, m: ToCentre) {
        let now = self.now;
        let r = match m {
            ToCentre::Enqueue {
                task,
                skills,
                priority,
                info,
            } => {
                self.owners.insert(task, call);
                let Some(&queue) = self.queues.get(&info.queue) else {
                    self.calls[call]
                        .call
                        .handle_centre(now, FromCentre::Refused);
                    return;
                };
                let skills = skills.iter().map(|(s, l)| (self.skill(s), *l)).collect();
                let language = self.lang(&info.language);
                self.router.enqueue(
                    now,
                    TaskSpec {
                        id: task,
                        queue,
                        skills,
                        language,
                        priority,
                        channel: Channel::Voice,
                    },
                );
                Ok(())
            }
            ToCentre::Abandon(t) => self.router.abandon(now, t),
            ToCentre::Reschedule(t) => self.router.reschedule(now, t),
            ToCentre::Accept(a, t) => self.router.accept(now, a, t),
            ToCentre::Reject(a, t) => self.router.reject(now, a, t),
            ToCentre::Complete(t) => self.router.complete(now, t),
            ToCentre::Position(t) => {
                self.router.ask_position(t);
                Ok(())
            }
            ToCentre::HandedTo(a, _) => {
                self.handed_to.push(a.0);
                Ok(())
            }
            ToCentre::ConsultOver(a) => {
                self.consults_over.push(a.0);
                self.router.ready(now, a)
            }
        };
        let _ = r;
        self.route();
    }

    /// Delivers the router's decisions to the calls they concern.
    fn route(&mut self) {
        let now = self.now;
        while let Some(o) = self.router.poll_output() {
            let (task, m) = match o {
                CoreOutput::Offer { task, agent } => {
                    let p = &self.phones[self.agents[&agent.0]];
                    let target = Target {
                        uri: format!("sip:{}@{}", p.name, p.sip),
                        dest: p.sip,
                        transport: Transport::Udp,
                    };
                    let name = p.name.clone();
                    (
                        task,
                        FromCentre::Offer {
                            agent,
                            target,
                            name,
                        },
                    )
                }
                CoreOutput::Withdraw { task, agent } => (task, FromCentre::Withdraw(agent)),
                CoreOutput::Connected { task, agent } => (task, FromCentre::Connected(agent)),
                CoreOutput::Position { task, place, wait } => {
                    (task, FromCentre::Position { place, wait })
                }
                CoreOutput::Ended { task, reason } => match reason {
                    CoreEnd::Exited(e) => (task, FromCentre::Exit(e)),
                    CoreEnd::Refused(_) => (task, FromCentre::Refused),
                    _ => continue,
                },
                CoreOutput::AgentState { agent, state } => {
                    self.agent_states.push((agent.0, state));
                    continue;
                }
            };
            if let Some(&call) = self.owners.get(&task) {
                self.calls[call].call.handle_centre(now, m);
                self.drain(call);
            }
        }
    }
}

/// The prompts the centre has (each a tone of its own).
const PROMPTS: &[&str] = &[
    "welcome",
    "moh",
    "goodbye",
    "callback_thanks",
    "queue_position",
    "queue_in_line",
    "queue_wait",
    "queue_minutes",
    "queue_callback_hint",
    "n_1",
    "n_2",
    "n_3",
    "survey_question",
    "survey_thanks",
    "invalid_choice",
    "exit_message",
    "voicemail_greeting",
    "beep",
    "voicemail_saved",
    "queue_closed",
    "status_said",
    "menu",
    "callback_when",
    "callback_press",
    "callback_scheduled",
    "callback_connecting",
    "day_today",
    "day_tomorrow",
];

/// The tone a prompt was given in this world.
pub fn prompt_hz(name: &str) -> f64 {
    let i = PROMPTS
        .iter()
        .position(|p| *p == name)
        .expect("a known prompt");
    300.0 + 37.0 * i as f64
}

/// nida's RTP address for a leg of a call.
pub fn leg_addr(call: usize, leg: LegId) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 20000 + call as u16 * 10 + leg.0 as u16))
}

fn addr_leg(a: SocketAddr) -> Option<(usize, LegId)> {
    if a.ip() != std::net::IpAddr::from([10, 0, 0, 1]) || a.port() < 20000 {
        return None;
    }
    let n = (a.port() - 20000) as usize;
    Some((n / 10, LegId((n % 10) as u32)))
}
