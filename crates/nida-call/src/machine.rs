//! The call machine: its state, how it starts, its inputs, and the loop
//! that settles it after each input. The contact-centre rules live in the
//! sibling modules (`queue`, `callback`, `transfer`, `media`), each an
//! `impl Call` block over the same state.

use crate::io::{
    CallEvent, CallInfo, HangupCause, LegEvent, NotBooked, Outcome, Output, Recording, Stored,
    Transmit,
};
use crate::leg::{Leg, LegId, LegState, Role};
use crate::rules::{CallConfig, QueueRules, Shared};
use crate::timer::{Timer, TimerTable};
use nida_acd::{AgentId, TaskId};
use nida_ivr::{Action, LookupResult, Session};
use nida_media::{MediaEvent, RtpSession};
use nida_sip::rng::Rng;
use nida_sip::sdp::Negotiated;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How an answered call begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Run this flow; when it does not exist, play the welcome prompt.
    Flow {
        /// The flow.
        flow: String,
        /// The welcome prompt (in the default language).
        welcome: String,
    },
    /// Play the welcome prompt (no flow for the number).
    Welcome(String),
    /// An agent's phone calls another agent (to consult them before an
    /// attended transfer): nida rings that agent and bridges the two.
    Internal {
        /// The agent called.
        agent: AgentId,
        /// Their phone.
        target: crate::target::Target,
    },
    /// A feature code's confirmation: this prompt, then hang up.
    Confirm {
        /// Language.
        lang: String,
        /// Prompt.
        name: String,
    },
}

/// A call-back the caller asked for: the task stays in line without the
/// caller; when an agent takes it, nida dials the caller and bridges.
pub(crate) struct Callback {
    /// Tries so far to reach the caller.
    pub attempts: u32,
    /// The leg dialling the caller, while it rings.
    pub dial: Option<LegId>,
    /// No more tries.
    pub done: bool,
    /// When the caller asked (Unix seconds).
    pub requested_at: i64,
    /// The number to call: one the caller proved.
    pub number: String,
    /// Its place among the pending call-backs, held until the call ends.
    pub _booking: Option<crate::bookings::Booking>,
    /// The time the caller chose: the slot's start and when this one is
    /// made (Unix seconds). `None`: as soon as an agent is free.
    pub chosen: Option<(i64, i64)>,
}

/// Why a call-back request waits for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BookingFor {
    /// The caller pressed the call-back digit while waiting.
    Digit,
    /// The queue's longest wait ran out (exit `callback`); the priority
    /// before the raise it got.
    Exit(u8),
    /// The flow's `callback_offer`.
    FlowOffer,
}

/// A request the store has not yet answered.
pub(crate) struct PendingBooking {
    pub why: BookingFor,
    pub number: String,
    pub requested_at: i64,
    pub booking: crate::bookings::Booking,
    /// The time chosen: the slot's start and when it is made.
    pub chosen: Option<(i64, i64)>,
}

/// The caller and whoever they talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bridge {
    /// The other leg.
    pub leg: LegId,
    /// The agent on it (`None`: a transfer's far end).
    pub agent: Option<AgentId>,
}

/// The stereo recording being made: what each side sent since the last
/// frame.
#[derive(Default)]
pub(crate) struct Tape {
    pub left: VecDeque<i16>,
    pub right: VecDeque<i16>,
}

/// One call's whole life with the contact centre, sans-IO.
pub struct Call {
    pub(crate) shared: Shared,
    pub(crate) cfg: CallConfig,
    pub(crate) rng: Rng,
    pub(crate) start: Instant,
    pub(crate) start_unix: i64,
    pub(crate) legs: Vec<Leg>,
    next_leg: u32,
    /// The caller's leg while the caller is on the line.
    pub(crate) caller: Option<LegId>,
    pub(crate) ivr: Option<Session>,
    confirm: bool,
    pub(crate) timers: TimerTable,
    pub(crate) outputs: VecDeque<Output>,
    pub(crate) hang_up: Option<HangupCause>,
    pub(crate) next_flow: Option<String>,
    digits: String,
    over: bool,
    // The centre's part.
    pub(crate) task: Option<TaskId>,
    pub(crate) language: String,
    pub(crate) path: Vec<String>,
    pub(crate) rules: QueueRules,
    pub(crate) info: CallInfo,
    pub(crate) skills: BTreeMap<String, u8>,
    pub(crate) priority: u8,
    pub(crate) music: bool,
    pub(crate) announcing: bool,
    pub(crate) closing: bool,
    pub(crate) in_survey: bool,
    pub(crate) queued_at: Option<Instant>,
    pub(crate) queued_unix: Option<i64>,
    pub(crate) answered_at: Option<Instant>,
    pub(crate) talk_ended: Option<Instant>,
    pub(crate) agent: Option<AgentId>,
    rating: Option<u8>,
    pub(crate) outcome: Outcome,
    pub(crate) callback: Option<Callback>,
    pub(crate) pending_booking: Option<PendingBooking>,
    /// The call-back times the caller hears, while they choose.
    pub(crate) slot_menu: Option<Vec<crate::calendar::Slot>>,
    /// The time chosen, to say it back once it is booked.
    pub(crate) slot_chosen: Option<crate::calendar::Slot>,
    /// What the agent keys after `*` (a wrap-up code's number).
    pub(crate) agent_keys: Option<String>,
    pub(crate) transfers: Vec<String>,
    pub(crate) bridge: Option<Bridge>,
    /// The caller's hold by the agent.
    pub(crate) hold: crate::hold::Hold,
    /// The colleague the agent consults.
    pub(crate) consult: Option<crate::consult::Consult>,
    /// The supervisor in the call.
    pub(crate) supervisor: Option<crate::supervise::Supervisor>,
    /// The mix, while someone hears more than one party.
    pub(crate) mixing: Option<crate::supervise::Mixing>,
    /// Supervisors' joins and mode switches, for the record.
    pub(crate) listens: Vec<nida_store::ListenIn>,
    /// Who hears whom: (from, to).
    pub(crate) links: Vec<(LegId, LegId)>,
    pub(crate) tape: Option<Tape>,
    pub(crate) recording_name: Option<String>,
    pub(crate) recorded: Option<String>,
    /// The media quality of the legs closed so far, for the record.
    pub(crate) media_quality: Vec<nida_store::LegQuality>,
    /// RTCP BYEs of closed legs, sent before their sockets go.
    final_rtcp: VecDeque<(Transmit, Vec<u8>)>,
    /// The time of the input being handled (for what a rule does without
    /// being handed the time, such as closing a leg).
    pub(crate) now: Instant,
    /// The caller's way through the IVR so far, for the record.
    pub(crate) trail: Option<nida_store::IvrTrail>,
    /// The voice message being taken.
    pub(crate) voicemail: Option<crate::voicemail::Voicemail>,
    /// The file the shell writes it to.
    pub(crate) voicemail_name: Option<String>,
    /// The message kept, for the record.
    pub(crate) voicemail_left: Option<nida_store::VoicemailLeft>,
    /// When the running (non-survey) flow started.
    ivr_started: Option<Instant>,
    /// The notification this call delivers.
    pub(crate) notice: Option<crate::notify::NoticeCall>,
}

/// A session's variables as the record and the screen pop keep them.
pub(crate) fn text_vars(s: &Session) -> BTreeMap<String, String> {
    s.vars()
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

/// A leg's media quality as the record keeps it.
fn leg_quality(role: Role, rtp: &RtpSession) -> nida_store::LegQuality {
    let q = rtp.quality();
    nida_store::LegQuality {
        role: match role {
            Role::Caller => "caller",
            Role::Agent(_) => "agent",
            Role::CallbackCaller => "callback",
            Role::Notified => "notified",
            Role::Transfer => "transfer",
            Role::Supervisor => "supervisor",
            Role::Consult(_) => "consult",
        }
        .into(),
        lost: q.lost,
        loss: q.loss,
        jitter_ms: q.jitter_ms,
        peer_loss: q.peer_loss,
        rtt_ms: q.rtt.map(|d| d.as_secs_f64() * 1000.0),
        r_factor: q.r_factor,
        mos: q.mos,
    }
}

impl Call {
    pub(crate) fn empty(
        now: Instant,
        unix: i64,
        shared: Shared,
        cfg: CallConfig,
        rng: Rng,
    ) -> Call {
        Call {
            language: cfg.language.clone(),
            shared,
            cfg,
            rng,
            start: now,
            start_unix: unix,
            legs: Vec::new(),
            next_leg: 1,
            caller: None,
            ivr: None,
            confirm: false,
            timers: TimerTable::default(),
            outputs: VecDeque::new(),
            hang_up: None,
            next_flow: None,
            digits: String::new(),
            over: false,
            task: None,
            path: Vec::new(),
            rules: QueueRules::default(),
            info: CallInfo::default(),
            skills: BTreeMap::new(),
            priority: 0,
            music: false,
            announcing: false,
            closing: false,
            in_survey: false,
            queued_at: None,
            queued_unix: None,
            answered_at: None,
            talk_ended: None,
            agent: None,
            rating: None,
            outcome: Outcome::Ivr,
            callback: None,
            pending_booking: None,
            slot_menu: None,
            slot_chosen: None,
            agent_keys: None,
            transfers: Vec::new(),
            bridge: None,
            hold: crate::hold::Hold::default(),
            consult: None,
            supervisor: None,
            mixing: None,
            listens: Vec::new(),
            links: Vec::new(),
            tape: None,
            recording_name: None,
            recorded: None,
            media_quality: Vec::new(),
            final_rtcp: VecDeque::new(),
            now,
            trail: None,
            ivr_started: None,
            voicemail: None,
            voicemail_name: None,
            voicemail_left: None,
            notice: None,
        }
    }

    /// A call the caller's dialog just confirmed (the ACK): `caller` is
    /// the audio agreed with them, `srtp` nida's key when it is SRTP.
    /// `unix` is the wall clock at `now`, in seconds.
    #[allow(clippy::too_many_arguments)]
    pub fn answered(
        now: Instant,
        unix: i64,
        shared: Shared,
        cfg: CallConfig,
        rng: Rng,
        caller: Negotiated,
        srtp: Option<[u8; 30]>,
        start: Start,
    ) -> Call {
        let mut call = Call::empty(now, unix, shared, cfg, rng);
        let mut leg = Leg::placing(LegId::CALLER, Role::Caller);
        leg.state = LegState::Up;
        leg.srtp = srtp;
        leg.rtp = Some(call.leg_rtp(now, LegId::CALLER, &caller, srtp));
        leg.media = Some(caller);
        call.legs.push(leg);
        call.caller = Some(LegId::CALLER);
        call.timers
            .set(Timer::MaxDuration, now + call.cfg.call_duration);
        let welcome = match start {
            Start::Flow { flow, welcome } => {
                let mut vars = nida_ivr::expr::Vars::new();
                vars.insert(
                    "caller".into(),
                    nida_ivr::Value::Str(call.cfg.caller.clone()),
                );
                vars.insert(
                    "called".into(),
                    nida_ivr::Value::Str(call.cfg.called.clone()),
                );
                call.ivr = call.new_session(now, &flow, vars);
                match call.ivr {
                    Some(_) => {
                        call.event(CallEvent::FlowStarted(flow));
                        None
                    }
                    None => Some((call.cfg.language.clone(), welcome)),
                }
            }
            Start::Welcome(name) => Some((call.cfg.language.clone(), name)),
            Start::Confirm { lang, name } => {
                call.confirm = true;
                Some((lang, name))
            }
            Start::Internal { agent, target } => {
                let from = call.cfg.caller.clone();
                call.new_leg(
                    Role::Consult(Some(agent)),
                    crate::Dial::Target(target),
                    from,
                    None,
                );
                None
            }
        };
        if let Some((lang, name)) = welcome {
            if call.play(&lang, &[name]) == 0 && call.confirm {
                call.hang_up = Some(HangupCause::Done);
            }
        }
        call.settle(now);
        call
    }

    /// A call-back stored before a restart: back in its queue without the
    /// caller, its tries so far counted.
    pub fn restored(
        now: Instant,
        unix: i64,
        shared: Shared,
        cfg: CallConfig,
        rng: Rng,
        row: &nida_store::CallbackRow,
    ) -> Call {
        let mut c = Call::empty(now, unix, shared, cfg, rng);
        c.language = row.language.clone();
        c.skills = row.skills.clone();
        c.priority = row.priority;
        c.path = row.path.clone();
        c.rules = c.rules_of(&row.queue);
        c.info = CallInfo {
            call_id: row.call_id.clone(),
            queue: row.queue.clone(),
            language: row.language.clone(),
            path: row.path.clone(),
            vars: row.vars.clone(),
        };
        // The wait counts from the request, not from the restart.
        let waited = Duration::from_secs((unix - row.requested_at).max(0) as u64);
        c.queued_at = Some(now.checked_sub(waited).unwrap_or(now));
        c.queued_unix = Some(row.requested_at);
        c.outcome = Outcome::CallbackWaiting;
        c.callback = Some(Callback {
            attempts: row.attempts,
            dial: None,
            done: false,
            requested_at: row.requested_at,
            number: row.number.clone(),
            _booking: c
                .shared
                .bookings
                .book_at(&row.number, row.slot_at, u32::MAX)
                .ok()
                .map(|(b, _)| b),
            chosen: row.slot_at.zip(row.due_at),
        });
        c.event(CallEvent::CallbackRestored {
            queue: row.queue.clone(),
            attempts: row.attempts,
        });
        match row.due_at.filter(|due| *due > unix && row.attempts == 0) {
            // Not due yet: it waits for its time.
            Some(due) => c.timers.set(
                Timer::CallbackRetry,
                now + Duration::from_secs((due - unix) as u64),
            ),
            None if row.due_at.is_some() => c.callback_next(now),
            None => c.join_queue(now),
        }
        c.settle(now);
        c
    }

    /// The caller's leg, while the caller is on the line.
    pub fn caller_leg(&self) -> Option<LegId> {
        self.caller
    }

    /// Whether the call is over (its record, if any, is among the
    /// outputs).
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// The caller's outcome so far.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The routing core's task while the call waits or talks.
    pub fn task(&self) -> Option<TaskId> {
        self.task
    }

    /// The legs and their roles and states.
    pub fn legs(&self) -> impl Iterator<Item = (LegId, Role, LegState)> + '_ {
        self.legs.iter().map(|l| (l.id, l.role, l.state))
    }

    /// The RTP session of a leg, to read its counters.
    pub fn rtp(&self, leg: LegId) -> Option<&RtpSession> {
        self.leg(leg).and_then(|l| l.rtp.as_ref())
    }

    /// The name the shell gave the voice message file it started.
    pub fn set_voicemail_name(&mut self, name: String) {
        self.voicemail_name = Some(name);
    }

    /// The name the shell gave the recording it started (the record links
    /// it).
    pub fn set_recording_name(&mut self, name: String) {
        self.recording_name = Some(name);
    }

    // ---- inputs ----

    /// A datagram arrived on a leg's RTP port.
    pub fn handle_rtp(&mut self, now: Instant, leg: LegId, from: SocketAddr, data: &[u8]) {
        self.now = now;
        let Some(rtp) = self.leg_mut(leg).and_then(|l| l.rtp.as_mut()) else {
            return;
        };
        rtp.handle_packet(now, from, data);
        self.relay_from(leg);
        self.settle(now);
    }

    /// A datagram arrived on a leg's RTCP port.
    pub fn handle_rtcp(&mut self, now: Instant, leg: LegId, from: SocketAddr, data: &[u8]) {
        self.now = now;
        if let Some(rtp) = self.leg_mut(leg).and_then(|l| l.rtp.as_mut()) {
            rtp.handle_rtcp(now, from, data);
        }
        self.settle(now);
    }

    /// Time passed: fires what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for l in &mut self.legs {
            if let Some(rtp) = l.rtp.as_mut() {
                rtp.handle_timeout(now);
            }
        }
        if let Some(s) = self.ivr.as_mut() {
            s.handle_timeout(now);
        }
        for t in self.timers.expired(now) {
            self.on_timer(now, t);
        }
        self.mix_due(now);
        self.settle(now);
    }

    /// A backend answered a lookup.
    pub fn handle_lookup(&mut self, now: Instant, id: u64, result: LookupResult) {
        self.now = now;
        if let Some(s) = self.ivr.as_mut() {
            s.handle_lookup(now, id, result);
        }
        self.settle(now);
    }

    /// The store answered an [`Output::BookCallback`].
    pub fn handle_stored(&mut self, now: Instant, stored: Stored) {
        self.now = now;
        self.booking_stored(now, stored);
        self.settle(now);
    }

    /// The routing core's word.
    pub fn handle_centre(&mut self, now: Instant, m: crate::io::FromCentre) {
        self.now = now;
        self.centre_message(now, m);
        self.settle(now);
    }

    /// Something happened on a leg's SIP side.
    pub fn handle_leg(&mut self, now: Instant, leg: LegId, ev: LegEvent) {
        self.now = now;
        if self.leg(leg).is_none() {
            // A leg already gone (nida hung it up): nothing left to do,
            // but a REFER still gets its answer.
            if let LegEvent::Refer(target) = ev {
                self.transfer_declined(leg, target);
            }
            return;
        }
        if Some(leg) == self.caller {
            match ev {
                LegEvent::Ended(_) => self.caller_gone(now, None),
                LegEvent::Refer(target) => self.transfer_declined(leg, target),
                LegEvent::Dtmf(d) => self.caller_digit(now, d),
                LegEvent::Media(n) => self.media_changed(now, leg, n),
                _ => {}
            }
        } else {
            self.other_leg_event(now, leg, ev);
        }
        self.settle(now);
    }

    // ---- outputs ----

    /// The next thing for the shell to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Whether [`Call::poll_output`] has something (a media thread asks,
    /// to wake the task that carries outputs out).
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// The next RTP datagram due at `now`, written into `buf` (at least
    /// 1500 bytes). Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((t, bytes)) = self.final_rtcp.pop_front() {
            buf[..bytes.len()].copy_from_slice(&bytes);
            return Some(t);
        }
        for i in 0..self.legs.len() {
            let id = self.legs[i].id;
            while let Some(o) = self.legs[i]
                .rtp
                .as_mut()
                .and_then(|r| r.poll_transmit(now, buf))
            {
                if Some(id) == self.caller {
                    self.tick_tape(o.samples);
                }
                if o.len > 0 {
                    return Some(Transmit {
                        leg: id,
                        len: o.len,
                        dest: o.dest,
                        rtcp: false,
                    });
                }
                // A packet time passed unsent (the peer holds): go on.
            }
            if let Some((len, dest)) = self.legs[i]
                .rtp
                .as_mut()
                .and_then(|r| r.poll_rtcp(now, buf))
            {
                let mux = self.legs[i].media.is_some_and(|m| m.rtcp_mux);
                return Some(Transmit {
                    leg: id,
                    len,
                    dest,
                    rtcp: !mux,
                });
            }
        }
        // Sending may have finished a prompt.
        self.settle(now);
        None
    }

    /// When the machine next needs [`Call::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let media = self
            .legs
            .iter()
            .filter_map(|l| l.rtp.as_ref())
            .map(|r| r.poll_timeout());
        let ivr = self.ivr.as_ref().and_then(Session::poll_timeout);
        let mix = self.mixing.as_ref().map(|m| m.next);
        media.chain(ivr).chain(mix).chain(self.timers.next()).min()
    }

    // ---- the loop ----

    /// Carries every consequence of the last input through: the IVR's
    /// actions, media events, a flow to start, a hang-up, the end.
    fn settle(&mut self, now: Instant) {
        self.now = now;
        loop {
            let mut moved = false;
            while let Some(a) = self.ivr.as_mut().and_then(Session::poll_action) {
                self.ivr_action(now, a);
                moved = true;
            }
            let mut i = 0;
            while i < self.legs.len() {
                let id = self.legs[i].id;
                while let Some(ev) = self
                    .leg_mut(id)
                    .and_then(|l| l.rtp.as_mut())
                    .and_then(RtpSession::poll_event)
                {
                    self.media_event(now, id, ev);
                    moved = true;
                }
                i += 1;
            }
            if let Some(flow) = self.next_flow.take() {
                self.start_flow(now, flow);
                moved = true;
            }
            if let Some(cause) = self.hang_up.take() {
                if let Some(leg) = self.caller {
                    self.event(CallEvent::HangingUp(cause));
                    self.outputs.push_back(Output::Hangup(leg));
                    self.caller_gone(now, Some(cause));
                }
                moved = true;
            }
            if self.caller.is_none() && !self.parked() && !self.over {
                self.finish(now);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn ivr_action(&mut self, now: Instant, a: Action) {
        match a {
            Action::Play(refs) => {
                self.stop_playback();
                let mut queued = 0;
                for r in &refs {
                    queued += self.play(&r.lang, std::slice::from_ref(&r.name));
                }
                self.event(CallEvent::Playing(
                    refs.into_iter().map(|r| r.name).collect(),
                ));
                if queued == 0 {
                    if let Some(s) = self.ivr.as_mut() {
                        s.handle_playback_done(now);
                    }
                }
            }
            Action::StopPlayback => self.stop_playback(),
            Action::Lookup {
                id,
                service,
                params,
            } => self.outputs.push_back(Output::Lookup {
                id,
                service,
                params,
            }),
            Action::Callback { queue } => {
                self.event(CallEvent::CallbackAsked(queue.clone()));
                self.enqueue_callback(now, &queue);
            }
            Action::Queue(q) => {
                self.event(CallEvent::QueuedByFlow {
                    queue: q.queue.clone(),
                    language: q.language.clone(),
                    priority: q.priority,
                });
                self.enqueue(now, &q);
            }
            Action::Voicemail(v) => {
                let greeting = v.greeting.into_iter().map(|r| r.name).collect();
                self.language = v.language.clone();
                self.info.queue = v.queue.clone();
                self.start_voicemail(now, &v.queue, greeting, v.max, v.silence);
            }
            Action::Hangup => {
                self.hang_up.get_or_insert(HangupCause::Done);
            }
        }
    }

    /// A key from the caller, by RFC 4733 or by SIP INFO: the queue's
    /// call-back digit, else the IVR's.
    fn caller_digit(&mut self, now: Instant, d: char) {
        self.digits.push(d);
        self.event(CallEvent::Digit {
            digit: d,
            digits: self.digits.clone(),
        });
        if self.in_voicemail() {
            // `#` ends the message; during the greeting it skips to the
            // beep's end.
            if d == '#' {
                if self.voicemail_recording() {
                    self.voicemail_done();
                } else {
                    self.stop_playback();
                    self.begin_message(now);
                }
            }
            return;
        }
        if !self.queue_digit(now, d) {
            if let Some(s) = self.ivr.as_mut() {
                s.handle_digit(now, d);
            }
        }
    }

    fn media_event(&mut self, now: Instant, leg: LegId, ev: MediaEvent) {
        let caller = Some(leg) == self.caller;
        match ev {
            MediaEvent::Dtmf(d) if caller => self.caller_digit(now, d),
            MediaEvent::Dtmf(d) if self.supervisor.as_ref().is_some_and(|s| s.leg == leg) => {
                self.supervisor_key(now, d)
            }
            MediaEvent::Dtmf(d) if self.bridge.is_some_and(|b| b.leg == leg) => {
                self.agent_key(now, d)
            }
            MediaEvent::Dtmf(_) => {}
            MediaEvent::Timeout if caller => {
                self.hang_up = Some(HangupCause::NoMedia);
            }
            MediaEvent::Timeout => {
                if self.bridge.is_some_and(|b| b.leg == leg) {
                    self.event(CallEvent::AgentSilent(self.bridge.and_then(|b| b.agent)));
                    // The leg's end comes back from the SIP side.
                    self.outputs.push_back(Output::Hangup(leg));
                }
            }
            MediaEvent::PlaybackFinished if caller => {
                self.event(CallEvent::PromptFinished);
                self.playback_finished(now)
            }
            MediaEvent::PlaybackFinished => {}
            MediaEvent::Latched(addr) => self.event(CallEvent::Latched { leg, addr }),
            // The SIP side ends the call; RTCP alone ends nothing.
            MediaEvent::PeerLeft => self.event(CallEvent::PeerLeftMedia(leg)),
            MediaEvent::RoundTrip(rtt) => self.event(CallEvent::RoundTrip { leg, rtt }),
        }
    }

    fn playback_finished(&mut self, now: Instant) {
        if self.closing {
            self.hang_up.get_or_insert(HangupCause::Done);
        } else if self.in_voicemail() {
            self.begin_message(now);
        } else if self.waiting() && (self.music || self.announcing) {
            // After an announcement, or at the end of the loop: music.
            self.announcing = false;
            self.slot_menu_played(now);
            self.start_music();
        } else if self.on_hold() {
            // The music loops while the caller is held.
            self.start_music();
        } else if self.confirm {
            self.hang_up.get_or_insert(HangupCause::Done);
        } else if let Some(s) = self.ivr.as_mut() {
            s.handle_playback_done(now);
        }
    }

    fn start_flow(&mut self, now: Instant, flow: String) {
        if let Some(s) = self.ivr.take() {
            self.flow_ended(s);
        }
        let mut vars = nida_ivr::expr::Vars::new();
        vars.insert(
            "caller".into(),
            nida_ivr::Value::Str(self.cfg.caller.clone()),
        );
        vars.insert(
            "language".into(),
            nida_ivr::Value::Str(self.language.clone()),
        );
        self.ivr = self.new_session(now, &flow, vars);
        if self.ivr.is_some() {
            self.event(CallEvent::FlowStarted(flow));
        } else {
            self.event(CallEvent::FlowMissing(flow));
            self.hang_up.get_or_insert(HangupCause::Done);
        }
    }

    /// A session of `flow`, reading the calendars at the call's time.
    pub(crate) fn new_session(
        &mut self,
        now: Instant,
        flow: &str,
        vars: nida_ivr::expr::Vars,
    ) -> Option<Session> {
        let env = nida_ivr::interp::Env {
            unix: self.unix(now),
            hours: Some(self.shared.calendars.clone()),
        };
        let s = Session::start(now, env, self.shared.flows.clone(), flow, vars)?;
        if !self.in_survey {
            self.ivr_started = Some(now);
        }
        Some(s)
    }

    /// Adds a flow's part to the call's IVR trail (the survey has none).
    fn add_to_trail(&mut self, s: &Session) {
        use nida_store::{IvrChoice, IvrEnd, IvrLookup, LookupServed};
        let seconds = self
            .ivr_started
            .take()
            .map_or(0.0, |t| self.now.saturating_duration_since(t).as_secs_f64());
        let flow = s
            .path()
            .first()
            .and_then(|p| p.split('/').next())
            .unwrap_or_default()
            .to_string();
        let t = self.trail.get_or_insert_with(|| nida_store::IvrTrail {
            flow,
            ..Default::default()
        });
        t.seconds += seconds;
        t.exit = s.at();
        t.end = match s.outcome() {
            nida_ivr::Outcome::Running => IvrEnd::CallerHungUp,
            nida_ivr::Outcome::HungUp => IvrEnd::SelfServed,
            nida_ivr::Outcome::Queued(_) => IvrEnd::Queued,
            nida_ivr::Outcome::Failed(_) => IvrEnd::Error,
            nida_ivr::Outcome::Voicemail(_) => IvrEnd::Voicemail,
        };
        for m in s.marks() {
            match m {
                nida_ivr::Mark::Choice { node, digit } => t.choices.push(IvrChoice {
                    node: node.clone(),
                    digit: digit.to_string(),
                }),
                nida_ivr::Mark::Lookup {
                    node,
                    service,
                    served,
                } => t.lookups.push(IvrLookup {
                    node: node.clone(),
                    service: service.clone(),
                    result: match served {
                        nida_ivr::Served::Found => LookupServed::Found,
                        nida_ivr::Served::NotFound => LookupServed::NotFound,
                        nida_ivr::Served::Failed => LookupServed::Failed,
                    },
                }),
            }
        }
        if self.queued_at.is_none() {
            // A call that never queued keeps the IVR's language, path and
            // variables in its record.
            self.language = s.language().to_string();
            self.path.extend(s.path().iter().cloned());
            self.info
                .vars
                .extend(s.vars().iter().map(|(k, v)| (k.clone(), v.to_string())));
        }
    }

    pub(crate) fn flow_ended(&mut self, s: Session) {
        if !self.in_survey {
            self.add_to_trail(&s);
        }
        if self.in_survey {
            self.rating = s
                .vars()
                .get("rating")
                .and_then(|v| v.to_string().parse().ok())
                .filter(|r| (1..=5).contains(r));
        }
        self.event(CallEvent::FlowEnded {
            path: s.path().to_vec(),
            outcome: s.outcome().clone(),
        });
    }

    fn on_timer(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Announce => self.announce_due(now),
            Timer::CallbackRetry => self.callback_next(now),
            Timer::MaxDuration => {
                self.hang_up.get_or_insert(HangupCause::MaxDuration);
            }
            Timer::Voicemail => self.voicemail_done(),
            Timer::Ring => self.notice_ring_out(),
            Timer::SlotMenu => self.slot_not_chosen(),
            Timer::Detect => self.notice_detect_due(now),
        }
    }

    /// The caller's line is gone (they hung up, or nida did: `cause`). A
    /// call-back keeps the call in line without them; else the call ends.
    fn caller_gone(&mut self, now: Instant, _cause: Option<HangupCause>) {
        let Some(leg) = self.caller.take() else {
            return;
        };
        self.links.retain(|(a, b)| *a != leg && *b != leg);
        self.close_leg(leg);
        self.music = false;
        self.announcing = false;
        if self.parked() {
            self.event(CallEvent::Parked);
        } else {
            self.caller_left(now);
        }
    }

    /// The caller left for good: the core and the other legs learn it.
    fn caller_left(&mut self, now: Instant) {
        // A message cut by the caller hanging up is kept when it has voice.
        self.keep_message();
        let others: Vec<LegId> = self.legs.iter().map(|l| l.id).collect();
        let bridged = self.bridge.take();
        for leg in others {
            self.outputs.push_back(Output::Hangup(leg));
            self.close_leg(leg);
        }
        self.links.clear();
        self.mixing = None;
        self.supervisor = None;
        self.consult = None;
        if bridged.is_some() {
            self.talk_ended = Some(now);
            self.event(CallEvent::CallerLeft);
        }
        if let Some(task) = self.task.take() {
            if bridged.is_some() {
                self.centre(crate::io::ToCentre::Complete(task));
            } else {
                self.event(CallEvent::Abandoned);
                self.outcome = Outcome::Abandoned;
                self.centre(crate::io::ToCentre::Abandon(task));
            }
        }
        self.end_recording();
    }

    /// Writes the record (for every call that ran a flow, queued or left
    /// a message: IVR-only calls too) and ends.
    fn finish(&mut self, now: Instant) {
        self.caller_left(now);
        if let Some(s) = self.ivr.take() {
            self.flow_ended(s);
        }
        self.over = true;
        self.timers = TimerTable::default();
        self.notice_over(now);
        if let Some(t) = self.trail.as_mut() {
            if self.voicemail_left.is_some() {
                t.end = nida_store::IvrEnd::Voicemail;
            } else if self.queued_at.is_some() {
                t.end = nida_store::IvrEnd::Queued;
            }
        }
        if self.queued_at.is_some() || self.trail.is_some() || self.voicemail_left.is_some() {
            let record = self.record(now);
            self.outputs.push_back(Output::Record(Box::new(record)));
        }
        self.event(CallEvent::Ended {
            outcome: self.outcome,
            rating: self.rating,
        });
    }

    fn record(&self, now: Instant) -> nida_store::CallRecord {
        let secs = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(b.saturating_duration_since(a).as_secs_f64()),
            _ => None,
        };
        nida_store::CallRecord {
            id: 0,
            call_id: self.cfg.call_id.clone(),
            caller: self.cfg.caller.clone(),
            called: self.cfg.called.clone(),
            queued_at: self.queued_unix,
            ended_at: self.unix(now),
            queue: self.info.queue.clone(),
            language: self.language.clone(),
            outcome: self.outcome.as_str().to_string(),
            agent: self.agent.map(|a| a.0),
            wait_seconds: secs(self.queued_at, self.answered_at),
            talk_seconds: secs(self.answered_at, self.talk_ended),
            service_level_seconds: self.rules.service_level.as_secs() as u32,
            rating: self.rating,
            recording: self.recorded.clone(),
            callback: self.callback.is_some(),
            callback_attempts: self.callback.as_ref().map(|c| c.attempts),
            path: self.path.clone(),
            vars: self.info.vars.clone(),
            transfers: self.transfers.clone(),
            hold_seconds: self.hold.time(now).as_secs_f64(),
            holds: self.hold.count,
            listens: self.listens.clone(),
            started_at: Some(self.start_unix),
            ivr: self.trail.clone(),
            wrapup: Vec::new(),
            voicemail: self.voicemail_left.clone(),
            media: self
                .media_quality
                .iter()
                .cloned()
                .chain(
                    self.legs
                        .iter()
                        .filter_map(|l| l.rtp.as_ref().map(|r| leg_quality(l.role, r))),
                )
                .collect(),
        }
    }

    // ---- helpers shared by the rule modules ----

    /// The wall clock at `now`, in Unix seconds.
    pub(crate) fn unix(&self, now: Instant) -> i64 {
        self.start_unix + now.saturating_duration_since(self.start).as_secs() as i64
    }

    pub(crate) fn event(&mut self, e: CallEvent) {
        self.outputs.push_back(Output::Event(e));
    }

    pub(crate) fn centre(&mut self, m: crate::io::ToCentre) {
        self.outputs.push_back(Output::Centre(m));
    }

    pub(crate) fn leg(&self, id: LegId) -> Option<&Leg> {
        self.legs.iter().find(|l| l.id == id)
    }

    pub(crate) fn leg_mut(&mut self, id: LegId) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.id == id)
    }

    /// A new leg nida places: the shell is asked to dial it.
    /// A fresh leg id.
    pub(crate) fn new_leg_id(&mut self) -> LegId {
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        id
    }

    /// The time of an input that is no `handle_*` (a leg adopted or
    /// given away), for what it does without being handed the time.
    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Carries a change made outside the inputs through (see `settle`).
    pub(crate) fn settle_now(&mut self, now: Instant) {
        self.settle(now);
    }

    pub(crate) fn new_leg(
        &mut self,
        role: Role,
        dial: crate::Dial,
        from_user: String,
        number: Option<(crate::Purpose, String)>,
    ) -> LegId {
        let id = self.new_leg_id();
        self.legs.push(Leg::placing(id, role));
        self.outputs.push_back(Output::Dial {
            leg: id,
            dial,
            from_user,
            number,
        });
        id
    }

    /// Removes a leg: its media counters are reported, its socket and
    /// port go back.
    pub(crate) fn close_leg(&mut self, id: LegId) {
        let Some(i) = self.legs.iter().position(|l| l.id == id) else {
            return;
        };
        let mut leg = self.legs.remove(i);
        if let Role::Consult(Some(agent)) = leg.role {
            self.centre(crate::io::ToCentre::ConsultOver(agent));
        }
        let mux = leg.media.is_some_and(|m| m.rtcp_mux);
        if let Some(rtp) = leg.rtp.as_mut() {
            let mut buf = vec![0u8; 1500];
            if let Some((len, dest)) = rtp.rtcp_bye(self.now, &mut buf) {
                buf.truncate(len);
                let t = Transmit {
                    leg: id,
                    len,
                    dest,
                    rtcp: !mux,
                };
                self.final_rtcp.push_back((t, buf));
            }
        }
        if let Some(rtp) = leg.rtp {
            self.media_quality.push(leg_quality(leg.role, &rtp));
            self.event(CallEvent::MediaClosed {
                leg: id,
                role: leg.role,
                stats: rtp.stats(),
                quality: rtp.quality(),
                rtcp: rtp.rtcp_counts(),
            });
        }
        self.outputs.push_back(Output::Release(id));
    }

    /// Hangs up a leg and forgets it.
    pub(crate) fn drop_leg(&mut self, id: LegId) {
        self.outputs.push_back(Output::Hangup(id));
        self.close_leg(id);
    }

    pub(crate) fn rules_of(&self, queue: &str) -> QueueRules {
        self.shared.queues.get(queue).cloned().unwrap_or_default()
    }

    /// The call waits in line without the caller, for its call-back.
    pub(crate) fn parked(&self) -> bool {
        self.callback.as_ref().is_some_and(|c| !c.done)
            || self
                .notice
                .as_ref()
                .is_some_and(crate::notify::NoticeCall::dialling)
            || self
                .pending_booking
                .as_ref()
                .is_some_and(|p| p.why == BookingFor::FlowOffer)
    }

    /// Waiting for an agent (not talking).
    pub(crate) fn waiting(&self) -> bool {
        self.task.is_some() && self.bridge.is_none()
    }

    pub(crate) fn caller_rtp(&mut self) -> Option<&mut RtpSession> {
        let id = self.caller?;
        self.leg_mut(id).and_then(|l| l.rtp.as_mut())
    }

    pub(crate) fn stop_playback(&mut self) {
        if let Some(rtp) = self.caller_rtp() {
            rtp.stop_playback();
        }
    }

    /// Queues prompts on the caller's leg; returns how many were found.
    pub(crate) fn play(&mut self, lang: &str, names: &[String]) -> usize {
        let mut n = 0;
        for name in names {
            match self.shared.prompts.get(lang, name) {
                Some(p) => {
                    if let Some(rtp) = self.caller_rtp() {
                        rtp.play(p);
                        n += 1;
                    }
                }
                None => self.event(CallEvent::PromptMissing {
                    lang: lang.to_string(),
                    name: name.clone(),
                }),
            }
        }
        n
    }

    /// Plays prompts in the caller's language now; how many were found.
    pub(crate) fn say(&mut self, names: &[String]) -> usize {
        self.stop_playback();
        let lang = self.language.clone();
        self.play(&lang, names)
    }

    pub(crate) fn start_music(&mut self) {
        self.stop_playback();
        let music = self.rules.music.clone();
        self.music = self.say(&[music]) > 0;
    }

    /// Plays a last prompt, then hangs up.
    pub(crate) fn close_with(&mut self, prompt: &str) {
        self.music = false;
        self.announcing = false;
        self.closing = true;
        if self.say(&[prompt.to_string()]) == 0 {
            self.hang_up.get_or_insert(HangupCause::Done);
        }
    }

    pub(crate) fn end_recording(&mut self) {
        if self.tape.take().is_some() {
            self.outputs.push_back(Output::Recording(Recording::Finish));
            self.recorded = self.recording_name.take();
        }
    }

    pub(crate) fn discard_recording(&mut self) {
        if self.tape.take().is_some() {
            self.outputs
                .push_back(Output::Recording(Recording::Discard));
            self.recording_name = None;
        }
    }

    pub(crate) fn not_booked(&mut self, why: NotBooked) {
        self.event(CallEvent::CallbackNotBooked(why));
    }
}
